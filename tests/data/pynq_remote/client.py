"""Drives `edgemoe emulate` with the REAL pynq client (pynq 4.0, PYNQ.remote over gRPC).

    PYNQ env python client.py PKG PORT [--fault]

Runs the packaged kernel on the package's golden input through pynq.MMIO / pynq.allocate and
checks: the kernel's ID register after an n_images = 0 call (the ID the kernel wrote: the package's
identity), read-only and with its ap_vld bit; the output bit for bit against
data/golden_out_task0.bin; ap_done clear-on-read and ap_idle; two images in one call; a TAP_ALL
debug run (out still written, scratch filled); a single-tap run (out untouched, only that tap's
scratch words written). With --fault it only starts one run and waits for ap_done (the test kills
the emulator meanwhile): it must fail with a clear message, not hang. Exit 0 only when everything
matches. CLIENT_TIMEOUT bounds every wait.
"""
import json
import os
import sys
import time
from pathlib import Path

os.environ["PYNQ_REMOTE_DEVICES"] = "127.0.0.1"  # before pynq is imported: its remote device class
import numpy as np  # noqa: E402
import pynq  # noqa: E402
from pynq.pl_server.remote_device import RemoteDevice  # noqa: E402

pkg, port = Path(sys.argv[1]), int(sys.argv[2])
fault = "--fault" in sys.argv
timeout = float(os.environ.get("CLIENT_TIMEOUT", "30"))
# pynq probes PYNQ_REMOTE_DEVICES on port 7967 only; the test's emulator is on a free port
dev = RemoteDevice(0, "127.0.0.1", port=port)
pynq.Device.active_device = dev
print("device", dev.name, dev.arch, flush=True)
pm = json.loads((pkg / "package_manifest.json").read_text())
m = json.loads((pkg / "data" / "manifest.json").read_text())
k = pm["kernel"]
wb, sz = m["word_bytes"], m["sizes"]
# the RPCs of RemoteDevice.download (its hwh parsing is local and needs a real .hwh: not done here)
from pynq.pl_server import remote_device as rd  # noqa: E402
from pynq.remote import remote_device_pb2  # noqa: E402
dev.shutdown()  # reads the fpga_manager state and flags
assert dev._stub["device"].set_bitstream_attrs(
    remote_device_pb2.SetBitstreamAttrsRequest(binfile_name="edgemoe.bin", partial=False)).status
if not dev.exists_file(rd.FIRMWARE + "edgemoe.bin").exists:
    dev.write_file(rd.FIRMWARE + "edgemoe.bin", b"\x00\x00\x00\xbb" * 300000)  # 1.2 MB: two chunks
dev.write_file(rd.BS_FPGA_MAN_FLAGS, b"0")
dev.write_file(rd.BS_FPGA_MAN, b"edgemoe.bin")
assert dev.read_file(rd.FIRMWARE + "edgemoe.bin") == b"\x00\x00\x00\xbb" * 300000
print("bitstream accepted", flush=True)
mmio = pynq.MMIO(int(k["base_address"], 16), int(k["address_range"], 16))
AP_START, AP_DONE, AP_IDLE = 1, 2, 4
assert mmio.read(0x00) & AP_IDLE, "kernel not idle at start"


def buf(data_or_size, fill=0):
    if isinstance(data_or_size, int):
        b = pynq.allocate((data_or_size,), np.uint8)
        b[:] = fill
    else:
        b = pynq.allocate(data_or_size.shape, np.uint8)
        b[:] = data_or_size
    b.sync_to_device()
    return b


pix = np.fromfile(pkg / "data" / "input_pixels.bin", np.uint8)
golden = (pkg / "data" / "golden_out_task0.bin").read_bytes()
bufs = dict(pixels=buf(pix), weights=buf(np.fromfile(pkg / "data" / "weights.bin", np.uint8)),
            scratch=buf(sz["scratch_words"] * wb), out=buf(sz["out_words"] * wb))


def run(**vals):
    for a in k["args"]:
        if a["kind"] == "pointer":
            # every weight port (weights, weights1, ...) reads the one weights buffer
            addr = bufs["weights" if a["name"].startswith("weights") else a["name"]].physical_address
            mmio.write(a["offset"], addr & 0xFFFFFFFF)
            mmio.write(a["offset"] + 4, addr >> 32)
        elif a["kind"] != "output":   # kernel_id: read-only
            mmio.write(a["offset"], vals[a["name"]])
    for a in k["args"]:
        if a["kind"] not in ("pointer", "output"):
            assert mmio.read(a["offset"]) == vals[a["name"]] & 0xFFFFFFFF, a["name"]
    mmio.write(0x00, AP_START)
    print("started", vals, flush=True)
    t0 = time.monotonic()
    try:
        while True:
            st = mmio.read(0x00)
            if st & AP_DONE:
                break
            if time.monotonic() - t0 > timeout:
                sys.exit(f"client: kernel not done after {timeout} s")
            time.sleep(0.005)
    except Exception as e:  # the board went away: grpc.RpcError (UNAVAILABLE), or a RuntimeError
        detail = e.details() if hasattr(e, "details") else str(e)
        sys.exit(f"client: lost the board while waiting for ap_done: {type(e).__name__}: {detail}")
    assert st & AP_IDLE and not st & AP_START, f"done but status 0x{st:x}"
    assert not mmio.read(0x00) & AP_DONE, "ap_done must be clear-on-read"


def out_bytes():
    bufs["out"].sync_from_device()
    return bytes(bufs["out"])


if fault:
    run(n_images=1, task=0, reload=1, tap_id=-1)
    sys.exit("client: the run finished although the board was killed")

# the ID register: an n_images = 0 call writes it (no buffer touched); read-only; ap_vld beside it
kid = next(a for a in k["args"] if a["name"] == "kernel_id")
want_id = int(pm["identity"]["config_hash"][:8], 16)
assert mmio.read(kid["offset"]) == 0, "kernel_id holds a value before the kernel ran"
run(n_images=0, task=0, reload=0, tap_id=-1)
assert mmio.read(kid["offset"] + 4) & 1, "kernel_id's ap_vld is not set after the call"
assert not mmio.read(kid["offset"] + 4) & 1, "kernel_id's ap_vld must be clear-on-read"
got_id = mmio.read(kid["offset"])
if got_id != want_id:
    sys.exit(f"client: kernel_id reads 0x{got_id:08X}, the package's identity says 0x{want_id:08X}")
mmio.write(kid["offset"], 0x12345678)
assert mmio.read(kid["offset"]) == want_id, "kernel_id is not read-only"
print(f"MATCH kernel_id 0x{got_id:08X}", flush=True)

run(n_images=1, task=0, reload=1, tap_id=-1)
got = out_bytes()
if got != golden:
    sys.exit(f"client: output differs from golden_out_task0.bin ({sum(a != b for a, b in zip(got, golden))} bytes)")
print("MATCH task0", len(got), "bytes", flush=True)

# two images in one call (one-time parameters already on chip: reload=0)
bufs["pixels"].freebuffer()
bufs["out"].freebuffer()
bufs["pixels"] = buf(np.concatenate([pix, pix]))
bufs["out"] = buf(2 * sz["out_words"] * wb)
run(n_images=2, task=0, reload=0, tap_id=-1)
got = out_bytes()
assert got == golden + golden, "two-image run differs from the golden"
print("MATCH 2 images", flush=True)

# TAP_ALL: out written, every tap in scratch
run(n_images=1, task=0, reload=0, tap_id=m["tap_all"])
assert out_bytes()[:len(golden)] == golden
bufs["scratch"].sync_from_device()
all_taps = bytes(bufs["scratch"])
assert any(all_taps), "TAP_ALL wrote nothing to scratch"
# one tap: the kernel stops after it: out untouched, only that tap's words in scratch
bufs["out"][:] = 0xAA
bufs["out"].sync_to_device()
bufs["scratch"][:] = 0
bufs["scratch"].sync_to_device()
t = m["taps"][1]
run(n_images=1, task=0, reload=0, tap_id=t["id"])
assert set(out_bytes()) == {0xAA}, "a single-tap run wrote out"
bufs["scratch"].sync_from_device()
one = bytes(bufs["scratch"])
a, b = t["word_offset"] * wb, (t["word_offset"] + t["words"]) * wb
assert one[a:b] == all_taps[a:b] and any(one[a:b]), "tap words differ from the TAP_ALL run"
assert not any(one[:a]) and not any(one[b:]), "a single-tap run wrote other scratch words"
print("MATCH taps", flush=True)

# errors come back as exceptions, not hangs
try:
    mmio.read(0x00, 8)
    sys.exit("client: an 8-byte read should be refused")
except RuntimeError as e:
    print("8-byte read refused:", e, flush=True)
pix_reg = next(a for a in k["args"] if a["name"] == "pixels")["offset"]
mmio.write(pix_reg, 0x1000)
mmio.write(pix_reg + 4, 0)
mmio.write(0x00, AP_START)
t0 = time.monotonic()
try:
    while time.monotonic() - t0 < timeout:
        mmio.read(0x00)
        time.sleep(0.005)
    sys.exit("client: a run on an unallocated pixels pointer did not fault")
except RuntimeError as e:
    assert "not inside any allocated buffer" in str(e), e
    print("bad pointer reported:", e, flush=True)
for b in bufs.values():
    b.freebuffer()
print("ALL OK", flush=True)
