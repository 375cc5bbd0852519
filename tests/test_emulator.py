"""`edgemoe emulate`: PYNQ.remote served on 127.0.0.1, driven by the REAL pynq client (in .venv-pynq),
kernel in C simulation; output bit for bit against the golden; killing the emulator mid-run makes the
client fail fast with a clear error; the protocol table matches pynq's own descriptors; DDR and the
control register semantics in process."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgemoe.sim.emulator import DDR, HOST, BoardEmulator, Emulator, KernelFault, RemoteError, render_kernel_project

ROOT = Path(__file__).resolve().parents[1]
PYNQ_PY = ROOT / ".venv-pynq" / "bin" / "python"
CLIENT = Path(__file__).parent / "data" / "pynq_remote" / "client.py"


def _need_pynq_env():
    if not PYNQ_PY.exists():
        pytest.skip(f"{PYNQ_PY} missing: `make setup` creates the pynq environment")


@pytest.fixture(scope="module")
def emu_pkg(tmp_path_factory):
    """A micro package whose project folder is gone afterwards (the emulator renders the kernel from
    the package), plus a shared work folder so the kernel compiles once for the module."""
    from edgemoe.boards.package import package
    from edgemoe.codegen.generate import generate
    d = tmp_path_factory.mktemp("emu")
    generate(d / "proj", preset="micro", board="zcu104")
    package(d / "proj", d / "pkg")
    # the rendered kernel is the project's kernel, file for file
    render_kernel_project(json.loads((d / "pkg" / "data" / "manifest.json").read_text()), d / "rendered")
    for f in sorted((d / "proj" / "src").iterdir()) + [d / "proj" / "csim" / "edgemoe_csim.cpp"]:
        r = d / "rendered" / f.relative_to(d / "proj")
        assert r.read_bytes() == f.read_bytes(), f"rendered {r.name} differs from the generated one"
    shutil.rmtree(d / "proj")
    (d / "work").mkdir()
    return d / "pkg", d / "work"


class Server:
    def __init__(self, pkg, work, *extra):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "edgemoe.cli", "emulate", "--package", str(pkg),
                                      "--port", "0", "--workdir", str(work), *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.port = None
        line = []
        t = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(60)
        if not line or "serving PYNQ.remote on 127.0.0.1:" not in line[0]:
            self.stop()
            raise AssertionError(f"emulator did not start: {line} {self.proc.stderr.read()}")
        self.port = int(line[0].split("127.0.0.1:")[1].split()[0])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _listening(port: int) -> list:
    """Local addresses (hex, as /proc/net shows them) of the LISTEN sockets on ``port``."""
    out = []
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(f):
            continue
        for row in Path(f).read_text().splitlines()[1:]:
            cols = row.split()
            addr, p = cols[1].rsplit(":", 1)
            if int(p, 16) == port and cols[3] == "0A":
                out.append(addr)
    return out


def _other_local_ip():
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: only picks the outgoing interface
            ip = s.getsockname()[0]
        return None if ip.startswith("127.") else ip
    except OSError:
        return None


def test_real_pynq_client_runs_the_kernel(emu_pkg):
    _need_pynq_env()
    pkg, work = emu_pkg
    srv = Server(pkg, work)
    try:
        # 127.0.0.1 only: IPv4 loopback, or its IPv4-mapped IPv6 form
        addrs = _listening(srv.port)
        assert addrs and all(a in ("0100007F", "0000000000000000FFFF00000100007F") for a in addrs), addrs
        ip = _other_local_ip()
        if ip:
            with pytest.raises(OSError):
                socket.create_connection((ip, srv.port), timeout=2).close()
        r = subprocess.run([str(PYNQ_PY), str(CLIENT), str(pkg), str(srv.port)], capture_output=True, text=True,
                           timeout=60, env=dict(os.environ, CLIENT_TIMEOUT="20"))
        assert r.returncode == 0, r.stdout + r.stderr
        want_id = int(json.loads((pkg / "package_manifest.json").read_text())["identity"]["config_hash"][:8], 16)
        for want in ("device ZCU104 aarch64", "bitstream accepted", f"MATCH kernel_id 0x{want_id:08X}", "MATCH task0",
                     "MATCH 2 images", "MATCH taps",
                     "bad pointer reported", "ALL OK"):
            assert want in r.stdout, r.stdout
    finally:
        srv.stop()
    assert srv.proc.returncode == 0
    err = srv.proc.stderr.read()
    assert "rendered from the package" in err and "run 1:" in err, err


def test_killed_emulator_fails_the_client_fast(emu_pkg):
    _need_pynq_env()
    pkg, work = emu_pkg
    srv = Server(pkg, work, "--latency", "60")  # the run stays busy long after the kill
    client = subprocess.Popen([str(PYNQ_PY), str(CLIENT), str(pkg), str(srv.port), "--fault"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, CLIENT_TIMEOUT="30"))
    try:
        line = []
        t = threading.Thread(target=lambda: [line.append(x) for x in iter(client.stdout.readline, "")
                                             if not line or "started" not in line[-1]], daemon=True)
        t.start()
        deadline = time.monotonic() + 30
        while not any("started" in x for x in line) and time.monotonic() < deadline and client.poll() is None:
            time.sleep(0.05)
        assert any("started" in x for x in line), (line, client.poll())
        time.sleep(0.3)  # polling ap_done now
        srv.proc.kill()
        t0 = time.monotonic()
        client.wait(15)
        took = time.monotonic() - t0
        err = client.stderr.read()
        assert client.returncode != 0
        assert "lost the board while waiting for ap_done" in err, err
        assert took < 10, took
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        srv.stop()


def test_protocol_matches_pynq():
    _need_pynq_env()
    script = r"""
from google.protobuf import descriptor_pb2
from pynq.remote import remote_device_pb2, mmio_pb2, buffer_pb2, gpio_pb2
from edgemoe.sim import pynq_remote as pr
def norm(fd):
    p = descriptor_pb2.FileDescriptorProto()
    fd.CopyToProto(p)
    for m in p.message_type:
        for f in m.field:
            f.ClearField("json_name")
    for s in p.service:
        for m in s.method:
            m.ClearField("options")
    return (p.package, list(p.message_type), list(p.service))
for mod in (remote_device_pb2, mmio_pb2, buffer_pb2, gpio_pb2):
    assert norm(mod.DESCRIPTOR) == norm(pr.POOL.FindFileByName(mod.DESCRIPTOR.name)), mod.DESCRIPTOR.name
print("same")
"""
    r = subprocess.run([str(PYNQ_PY), "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "same" in r.stdout, r.stdout + r.stderr


# ---- in process: DDR, registers ----------------------------------------------------------------
def test_ddr_first_fit_and_faults():
    d = DDR(0x4000_0000, 1 << 20)
    a, b, c = d.allocate(100), d.allocate(5000), d.allocate(10)
    assert (a.address, b.address, c.address) == (0x4000_0000, 0x4000_1000, 0x4000_3000)
    d.free(b.id)
    assert d.allocate(4096).address == 0x4000_1000  # the gap is reused
    d.write(a.address + 96, b"abcd")
    assert d.read(a.address + 96, 4) == b"abcd"
    with pytest.raises(KernelFault, match="runs past the end"):
        d.read(a.address + 97, 4)
    with pytest.raises(KernelFault, match="not inside any allocated buffer"):
        d.read(0x1000, 4)
    with pytest.raises(RemoteError, match="emulated DDR is full"):
        d.allocate(2 << 20)
    with pytest.raises(RemoteError, match="unknown buffer"):
        d.get("nope")


class SlowKernel:
    def __init__(self):
        self.go = threading.Event()
        self.args = None

    def run(self, mem, lock, args):
        self.args = args
        self.go.wait(5)
        with lock:
            mem.read(args["pixels"], 4, "pixels pointer")
        return {}


def _pm():
    args = [dict(name=n, offset=o, words=2, kind="pointer") for n, o in
            (("pixels", 0x10), ("weights", 0x1C), ("scratch", 0x28), ("out", 0x34))]
    args += [dict(name=n, offset=o, words=1, kind="int32") for n, o in
             (("n_images", 0x40), ("task", 0x48), ("reload", 0x50), ("tap_id", 0x58))]
    return dict(board=dict(name="zcu104"), kernel=dict(base_address="0xA0000000", address_range="0x10000", args=args))


def test_control_register_semantics():
    k = SlowKernel()
    b = BoardEmulator(_pm(), k)
    m = b.get_mmio(0xA000_0000, 0x10000)
    buf = b.ddr.allocate(64)
    assert b.mmio_read(m, 0, 4) == 0x4  # idle
    b.mmio_write(m, 0x10, buf.address.to_bytes(4, "little") + (buf.address >> 32).to_bytes(4, "little"))
    b.mmio_write(m, 0x58, (0xFFFFFFFE).to_bytes(4, "little"))
    b.mmio_write(m, 0x00, b"\x01\x00\x00\x00")
    assert b.mmio_read(m, 0, 4) & 0x7 == 0x1  # started, busy, not idle
    k.go.set()
    for _ in range(200):
        st = b.mmio_read(m, 0, 4)
        if st & 0x2:
            break
        time.sleep(0.01)
    assert st & 0xF == 0xE  # done, idle, ready
    assert b.mmio_read(m, 0, 4) & 0xF == 0x4  # done and ready are clear-on-read
    assert k.args["pixels"] == buf.address and k.args["tap_id"] == -2
    # a bad pointer: the kernel stays busy and the control register reports the fault
    b.mmio_write(m, 0x10, b"\x00\x10\x00\x00\x00\x00\x00\x00")
    b.mmio_write(m, 0x00, b"\x01\x00\x00\x00")
    for _ in range(200):
        if b.fault:
            break
        time.sleep(0.01)
    with pytest.raises(RemoteError, match="kernel fault: pixels pointer: 0x1000"):
        b.mmio_read(m, 0, 4)
    with pytest.raises(RemoteError, match="kernel fault"):  # until the host writes control again
        b.mmio_read(m, 0, 4)
    b.mmio_write(m, 0x10, buf.address.to_bytes(4, "little") + (buf.address >> 32).to_bytes(4, "little"))
    b.mmio_write(m, 0x00, b"\x01\x00\x00\x00")  # clears the fault and starts again
    for _ in range(200):
        st = b.mmio_read(m, 0, 4)
        if st & 0x2:
            break
        time.sleep(0.01)
    assert st & 0xF == 0xE
    # other addresses: a plain register store; region bounds are checked
    o = b.get_mmio(0xFD61_5000, 8)
    b.mmio_write(o, 4, b"\x07\x00\x00\x00")
    assert b.mmio_read(o, 4, 4) == 7
    with pytest.raises(RemoteError, match="outside the region"):
        b.mmio_read(o, 8, 4)


def test_binds_loopback_only(tmp_path):
    assert HOST == "127.0.0.1"
    from edgemoe.errors import EdgeMoeError
    with pytest.raises(EdgeMoeError, match="127.0.0.1 only"):
        Emulator(tmp_path, host="0.0.0.0")
    with pytest.raises(EdgeMoeError, match="not a package"):
        Emulator(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        (tmp_path / "package_manifest.json").write_text("{}")
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "manifest.json").write_text("{}")
        with pytest.raises(EdgeMoeError, match="cannot listen on 127.0.0.1"):
            Emulator(tmp_path, port=s.getsockname()[1])


def _wait_done(b, m):
    for _ in range(1000):
        st = b.mmio_read(m, 0, 4)
        if st & 0x2:
            return st
        time.sleep(0.01)
    raise AssertionError("ap_done never came")


def test_id_register_comes_from_the_kernel(emu_pkg, tmp_path):
    """The emulator's kernel_id register holds what the C-simulated kernel wrote, not a value typed in
    Python: a kernel compiled with another EDGEMOE_KERNEL_ID reads back that one."""
    import re

    from edgemoe.sim.emulator import CsimKernel
    from edgemoe.codegen.project import Project
    pkg, _ = emu_pkg
    pm = json.loads((pkg / "package_manifest.json").read_text())
    d = render_kernel_project(json.loads((pkg / "data" / "manifest.json").read_text()), tmp_path / "k")
    cfg = d / "src" / "edgemoe_config.h"
    text = cfg.read_text()
    assert f"#define EDGEMOE_KERNEL_ID 0x{pm['identity']['config_hash'][:8].upper()}u" in text
    cfg.write_text(re.sub(r"#define EDGEMOE_KERNEL_ID 0x[0-9A-F]{8}u", "#define EDGEMOE_KERNEL_ID 0x0BADC0DEu", text))
    b = BoardEmulator(pm, CsimKernel(Project(d)))
    kid = next(a for a in pm["kernel"]["args"] if a["name"] == "kernel_id")
    assert kid["kind"] == "output"
    m = b.get_mmio(0xA000_0000, 0x10000)
    assert b.mmio_read(m, kid["offset"], 4) == 0      # nothing written before the first call
    b.mmio_write(m, kid["offset"], (0x1234).to_bytes(4, "little"))
    assert b.mmio_read(m, kid["offset"], 4) == 0      # read-only: a write is ignored
    # n_images = 0 (no pointer set at all): the kernel writes its ID and returns
    b.mmio_write(m, 0x40, (0).to_bytes(4, "little"))
    b.mmio_write(m, 0x00, b"\x01\x00\x00\x00")
    assert _wait_done(b, m) & 0xE == 0xE and b.fault is None
    assert b.mmio_read(m, kid["offset"] + 4, 4) == 1  # ap_vld, clear on read
    assert b.mmio_read(m, kid["offset"] + 4, 4) == 0
    assert b.mmio_read(m, kid["offset"], 4) == 0x0BADC0DE


def test_emulate_port_checks(emu_pkg, tmp_path, capsys):
    """--port outside 0-65535 and a port in use: one line naming the range / the port, before any compile."""
    from edgemoe.cli import main
    pkg, _ = emu_pkg
    for bad in ("99999", "-1", "65536"):
        assert main(["emulate", "--package", str(pkg), "--port", bad, "--workdir", str(tmp_path / "w")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert f"--port {bad}" in err and "0..65535" in err, err
    from edgemoe.errors import EdgeMoeError
    with pytest.raises(EdgeMoeError, match=r"0\.\.65535"):
        Emulator(pkg, port=70000)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        t0 = time.monotonic()
        assert main(["emulate", "--package", str(pkg), "--port", str(port), "--workdir", str(tmp_path / "w")]) == 2
        assert time.monotonic() - t0 < 5   # refused before the kernel compiles
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in err and "in use" in err, err
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())


def test_parts_are_re_exported_and_render_through_generate(emu_pkg, monkeypatch, tmp_path):
    """sim/emulator.py re-exports the names of its parts (the same objects), and the package's kernel is
    rendered by generate's own write_kernel_sources (looked up in edgemoe.codegen.generate at call time)."""
    from edgemoe.sim import emulator, emulator_board, emulator_ddr, emulator_kernel, emulator_service
    for mod in (emulator_ddr, emulator_kernel, emulator_board, emulator_service):
        for name in mod.__all__:
            assert getattr(emulator, name) is getattr(mod, name), name
            assert name in emulator.__all__, name
    import edgemoe.codegen.generate as gen
    real, calls = gen.write_kernel_sources, []

    def spy(*a, **k):
        calls.append(a[0])
        return real(*a, **k)
    monkeypatch.setattr(gen, "write_kernel_sources", spy)
    pkg, _ = emu_pkg
    d = render_kernel_project(json.loads((pkg / "data" / "manifest.json").read_text()), tmp_path / "k")
    assert calls == [d] and (d / "src" / f"{gen.TOP}.cpp").is_file()
