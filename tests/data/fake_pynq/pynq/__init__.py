"""A fake ``pynq`` for the host-runtime tests (no board, no emulator): just what edgemoe.host calls.

Put tests/data/fake_pynq on PYTHONPATH. Driven by environment variables:
  FAKE_PYNQ_LOG         append one JSON line per device operation (overlay, mmio, allocate, write, start)
  FAKE_PYNQ_REF         folder with the reference input_pixels.bin, weights.bin, golden_out_task{t}.bin
                        (the generated project's data/): the "kernel" writes golden_out_task{task}.bin to
                        every output image when the pointer registers name buffers that hold the
                        reference pixels and weights (after sync_to_device), else zeros
  FAKE_PYNQ_NEVER_DONE  1: ap_done never comes
  FAKE_PYNQ_IP_DICT     JSON ip_dict of Overlay (default: edgemoe_top_0 at 0xA0000000)
  FAKE_PYNQ_RAILS       a power in W: get_rails() returns {"12V": rail with that power}; unset: no get_rails
  FAKE_PYNQ_KERNEL_ID   the value the "kernel" writes to its kernel_id register on every start (hex);
                        default: EDGEMOE_KERNEL_ID of the project's src/edgemoe_config.h (FAKE_PYNQ_REF/..)
The kernel sits at FAKE_PYNQ_KERNEL_BASE (default 0xA0000000) with Vitis's register map.
"""
import json
import os
import re

import numpy as np

__version__ = "0.0-fake"

KERNEL_BASE = int(os.environ.get("FAKE_PYNQ_KERNEL_BASE", "0xA0000000"), 0)
ARGS = dict(pixels=0x10, weights=0x1C, scratch=0x28, out=0x34, n_images=0x40, task=0x48, reload=0x50, tap_id=0x58,
            kernel_id=0x60)
_buffers = {}
_next_addr = [0x10000000]
_kernel = dict(regs={}, status=0x4, loaded=None)


def _log(**ev):
    path = os.environ.get("FAKE_PYNQ_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(ev) + "\n")


class FakeBuffer(np.ndarray):
    def __array_finalize__(self, obj):
        self._phys = getattr(obj, "_phys", None)
        self._dev = getattr(obj, "_dev", None)

    @property
    def physical_address(self):
        return self._phys

    device_address = physical_address

    def sync_to_device(self):
        self._dev[:] = self.view(np.uint8).tobytes()
        _log(op="sync_to_device", addr=self._phys)

    def sync_from_device(self):
        self.view(np.uint8)[:] = np.frombuffer(bytes(self._dev), dtype=np.uint8)
        _log(op="sync_from_device", addr=self._phys)

    def freebuffer(self):
        _buffers.pop(self._phys, None)


def allocate(shape, dtype="u4", target=None, **kwargs):
    a = np.zeros(shape, dtype=dtype).view(FakeBuffer)
    a._phys = _next_addr[0]
    a._dev = bytearray(a.nbytes)
    _next_addr[0] += (a.nbytes + 0xFFF) & ~0xFFF
    _buffers[a._phys] = a
    _log(op="allocate", addr=a._phys, nbytes=a.nbytes)
    return a


def _ref(name):
    with open(os.path.join(os.environ["FAKE_PYNQ_REF"], name), "rb") as f:
        return f.read()


def _kernel_id():
    if os.environ.get("FAKE_PYNQ_KERNEL_ID"):
        return int(os.environ["FAKE_PYNQ_KERNEL_ID"], 16)
    cfg = os.path.join(os.environ["FAKE_PYNQ_REF"], os.pardir, "src", "edgemoe_config.h")
    with open(cfg) as f:
        return int(re.search(r"#define EDGEMOE_KERNEL_ID 0x([0-9A-Fa-f]{8})u", f.read()).group(1), 16)


def _run_kernel():
    r = _kernel["regs"]
    r[ARGS["kernel_id"]] = _kernel_id()  # the first thing the kernel does on every call
    ptr = {k: r.get(ARGS[k], 0) | (r.get(ARGS[k] + 4, 0) << 32) for k in ("pixels", "weights", "scratch", "out")}
    n, task, reload = r.get(ARGS["n_images"], 0), r.get(ARGS["task"], 0), r.get(ARGS["reload"], 0)
    _log(op="start", ptr=ptr, n_images=n, task=task, reload=reload, tap_id=r.get(ARGS["tap_id"], 0))
    if os.environ.get("FAKE_PYNQ_NEVER_DONE") == "1":
        _kernel["status"] = 0x1  # running forever
        return
    bufs = {k: _buffers.get(v) for k, v in ptr.items()}
    pix, out = _ref("input_pixels.bin"), _ref(f"golden_out_task{task}.bin")
    ok = all(b is not None for b in bufs.values()) and 1 <= n <= 64
    if ok and reload:
        _kernel["loaded"] = bytes(bufs["weights"]._dev) == _ref("weights.bin")
    ok = ok and _kernel["loaded"] and bytes(bufs["weights"]._dev) == _ref("weights.bin")
    ok = ok and bytes(bufs["pixels"]._dev[:n * len(pix)]) == pix * n
    if bufs["out"] is not None:
        dev = bufs["out"]._dev
        for i in range(max(n, 0)):
            if (i + 1) * len(out) <= len(dev):
                dev[i * len(out):(i + 1) * len(out)] = out if ok else bytes(len(out))
    _kernel["status"] = 0x6  # done + idle


class MMIO:
    def __init__(self, base_addr, length=4, device=None, **kwargs):
        self.base_addr, self.length = base_addr, length
        _log(op="mmio", base=base_addr, length=length)

    def read(self, offset=0, length=4, word_order="little"):
        if self.base_addr != KERNEL_BASE:
            return 0
        if offset == 0:
            s = _kernel["status"]
            _kernel["status"] &= ~0x2  # ap_done clears on read
            return s
        return _kernel["regs"].get(offset, 0)

    def write(self, offset, data):
        if type(data) is not int:  # real pynq (write_mm) accepts a Python int or bytes only
            raise ValueError("Data type must be int or bytes.")
        _log(op="write", base=self.base_addr, offset=offset, value=data)
        if self.base_addr != KERNEL_BASE:
            return
        if offset == 0:
            if data & 1:
                _kernel["status"] = 0x1
                _run_kernel()
        else:
            _kernel["regs"][offset] = data & 0xFFFFFFFF


class Overlay:
    def __init__(self, bitfile_name, download=True, **kwargs):
        _log(op="overlay", bitfile=os.path.basename(bitfile_name))
        default = {"edgemoe_top_0": {"phys_addr": KERNEL_BASE, "addr_range": 0x10000,
                                     "type": "xilinx.com:hls:edgemoe_top:1.0"}}
        self.ip_dict = json.loads(os.environ["FAKE_PYNQ_IP_DICT"]) if os.environ.get("FAKE_PYNQ_IP_DICT") else default


if os.environ.get("FAKE_PYNQ_RAILS"):
    class _Sensor:
        def __init__(self, v):
            self.value = v

    class _Rail:
        def __init__(self, name, watts):
            self.name, self.power = name, _Sensor(watts)
            self.voltage = self.current = None

    def get_rails(config_file=None):
        return {"12V": _Rail("12V", float(os.environ["FAKE_PYNQ_RAILS"]))}
