"""``edgemoe emulate --package PKG``: a board stand-in that the real pynq client drives over PYNQ.remote.

It serves pynq 4.0's PYNQ.remote gRPC services (protocol in :mod:`edgemoe.boards.pynq_remote`) on
127.0.0.1 only, and behind them emulates what a host program touches on the board:

* DDR: ``pynq.allocate`` buffers with page-aligned physical addresses (first fit from 0x4000_0000,
  ``--ddr-mb`` of room), written and read by ``sync_to_device`` / ``sync_from_device``;
* the kernel's AXI-Lite registers at the package's base address, laid out as Vitis HLS does
  (package_manifest.json "kernel"): 0x00 control (bit0 ap_start, bit1 ap_done clear-on-read, bit2
  ap_idle, bit3 ap_ready clear-on-read, bit7 auto_restart, stored only), 0x04 GIE, 0x08 IER, 0x0C ISR
  (toggle on write), then the argument registers (a pointer is two 32-bit words, low first);
* ap_start runs the generated kernel in C simulation (the same C++ and the same ctypes harness as
  ``edgemoe csim``) on the bytes found in emulated DDR at the pointer registers, with the scalar
  registers as arguments, then writes back what the kernel writes: ``out`` (unless a single-tap
  debug run stopped it early), for debug runs the tap regions of ``scratch``, and the output scalar
  registers (kind "output": ``kernel_id``, the value the C-simulated kernel wrote, with its ap_vld
  bit set in the control word after it, cleared on read). A call with n_images = 0 runs the kernel
  too (it writes its ID and returns: the host's ID read). Output registers ignore writes;
* any other address (PS registers pynq touches while downloading a bitstream, for instance) is a
  plain register store; a small in-memory file system answers the file RPCs (/proc/version says
  aarch64, /proc/device-tree/chosen/pynq_board the board), and a bitstream written to
  /lib/firmware + fpga_manager is accepted and recorded (nothing is checked in it).

Where the kernel's C++ comes from: the package does not contain it. If package_manifest.json's
project.path still holds the project whose data/manifest.json is byte-identical to the package's,
its sources are compiled (cached in its build/ like ``edgemoe csim``; it must be writable). Otherwise the kernel sources
are rendered again from the package's data/manifest.json alone (spec, precision, design: all the
kernel C++ depends on; weights come from emulated DDR as on the board), into ``--workdir`` or a
temporary folder. No model, checkpoint or torch run is needed for that.

A bad pointer (outside every allocated buffer), an unknown buffer or region and the like are
reported to the client in the RPC's ``msg`` field (pynq raises RuntimeError with it) or as a gRPC
status. A kernel run that faults never sets ap_done (hardware would hang or write garbage): every
read of the control register returns the fault message until the host writes that register again
(a new ap_start is accepted then; nothing of the faulted run was written back).
"""
from __future__ import annotations

import bisect
import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from concurrent import futures
from pathlib import Path

from edgemoe.errors import EdgeMoeError

HOST = "127.0.0.1"  # never anything else: the emulator has no authentication
DDR_BASE = 0x4000_0000
PAGE = 4096
CHUNK = 1 << 20  # streamed replies (pynq's client accepts 4 MiB messages by default)
BOARD_FILES = {
    "/proc/version": b"Linux version 6.6.10-xilinx (edgemoe emulate) #1 SMP aarch64 GNU/Linux\n",
    "/sys/class/fpga_manager/fpga0/state": b"operating\n",
    "/sys/class/fpga_manager/fpga0/flags": b"0\n",
}
FPGA_MANAGER = "/sys/class/fpga_manager/fpga0/firmware"
FIRMWARE_DIR = "/lib/firmware/"
MAX_FILES_BYTES = 512 << 20

AP_START, AP_DONE, AP_IDLE, AP_READY, AUTO_RESTART = 0x1, 0x2, 0x4, 0x8, 0x80


class RemoteError(Exception):
    """An error returned to the client: in the reply's ``msg`` field, or as a gRPC status."""

    def __init__(self, msg, code: str = "FAILED_PRECONDITION"):
        super().__init__(msg)
        self.code = code


class KernelFault(RemoteError):
    pass


# ---- emulated DDR -------------------------------------------------------------------------------
class Buffer:
    __slots__ = ("id", "address", "data", "dtype")

    def __init__(self, bid: str, address: int, size: int, dtype: str):
        self.id, self.address, self.data, self.dtype = bid, address, bytearray(size), dtype


class DDR:
    """Buffers at page-aligned physical addresses in [base, base + size), first fit."""

    def __init__(self, base: int = DDR_BASE, size: int = 1 << 30):
        self.base, self.size = base, size
        self.buffers = {}  # id -> Buffer
        self._starts = []  # sorted addresses of live buffers
        self._by_addr = {}
        self._next_id = 1

    def used(self) -> int:
        return sum(len(b.data) for b in self.buffers.values())

    def allocate(self, size: int, dtype: str = "") -> Buffer:
        if size <= 0:
            raise RemoteError(f"cannot allocate {size} bytes", "INVALID_ARGUMENT")
        span = -(-size // PAGE) * PAGE
        addr = self.base
        for s in self._starts:
            if s - addr >= span:
                break
            b = self._by_addr[s]
            addr = max(addr, s + -(-len(b.data) // PAGE) * PAGE)
        if addr + span > self.base + self.size:
            raise RemoteError(f"emulated DDR is full: {size} bytes requested, {self.used()} of {self.size} "
                              f"in use (edgemoe emulate --ddr-mb)", "RESOURCE_EXHAUSTED")
        b = Buffer(str(self._next_id), addr, size, dtype)
        self._next_id += 1
        self.buffers[b.id] = b
        bisect.insort(self._starts, addr)
        self._by_addr[addr] = b
        return b

    def get(self, bid: str) -> Buffer:
        b = self.buffers.get(bid)
        if b is None:
            raise RemoteError(f"unknown buffer id {bid!r} (freed, or allocated before the emulator restarted)")
        return b

    def free(self, bid: str) -> None:
        b = self.get(bid)
        del self.buffers[bid]
        self._starts.remove(b.address)
        del self._by_addr[b.address]

    def find(self, addr: int, n: int):
        """(buffer, offset) holding [addr, addr + n), or None."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return None
        b = self._by_addr[self._starts[i]]
        off = addr - b.address
        return (b, off) if off + n <= len(b.data) else None

    def span(self, addr: int, n: int, what: str):
        hit = self.find(addr, n)
        if hit is None:
            near = self.find(addr, 1)
            if near is not None:
                raise KernelFault(f"{what}: 0x{addr:X} + {n} bytes runs past the end of the buffer at "
                                  f"0x{near[0].address:X} ({len(near[0].data)} bytes)")
            raise KernelFault(f"{what}: 0x{addr:X} ({n} bytes) is not inside any allocated buffer")
        return hit

    def read(self, addr: int, n: int, what: str = "read") -> bytes:
        b, off = self.span(addr, n, what)
        return bytes(b.data[off:off + n])

    def write(self, addr: int, data: bytes, what: str = "write") -> None:
        b, off = self.span(addr, len(data), what)
        b.data[off:off + len(data)] = data


# ---- the kernel in C simulation -----------------------------------------------------------------
def render_kernel_project(manifest: dict, dst: Path) -> Path:
    """The kernel's sources, csim harness and data/manifest.json from a project manifest alone."""
    from edgemoe.codegen.design import Design
    from edgemoe.codegen.generate import TOP, write_kernel_sources
    from edgemoe.golden.precision import Precision
    from edgemoe.spec import ModelSpec
    spec = ModelSpec.from_dict(manifest["spec"])
    prec = Precision.from_dict(manifest["precision"])
    design = Design(**dict(manifest["design"]))
    if manifest.get("top", TOP) != TOP:
        raise EdgeMoeError(f"the package's kernel is {manifest.get('top')!r}; this edgemoe renders {TOP!r}")
    dst = Path(dst)
    (dst / "data").mkdir(parents=True, exist_ok=True)
    write_kernel_sources(dst, spec, prec, design, manifest["board"]["name"], manifest["board"].get("part", ""),
                         dst / "data")
    (dst / "data" / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return dst


def kernel_project(pkg: Path, workdir=None, log=print):
    """(Project, how) for the package's kernel; see the module docstring."""
    from edgemoe.codegen.project import Project
    pm = json.loads((pkg / "package_manifest.json").read_text())
    mf = pkg / "data" / "manifest.json"
    want = hashlib.sha256(mf.read_bytes()).hexdigest()
    proj = Path(pm.get("project", {}).get("path") or "")
    if str(proj) and (proj / "data" / "manifest.json").is_file() and (proj / "src").is_dir() and os.access(proj, os.W_OK):
        if hashlib.sha256((proj / "data" / "manifest.json").read_bytes()).hexdigest() == want:
            return Project(proj), f"the project it was packaged from ({proj})"
        log(f"edgemoe emulate: {proj} changed since packaging: rendering the kernel from the package")
    manifest = json.loads(mf.read_text())
    if workdir is None:
        raise EdgeMoeError("internal: no work folder")
    dst = Path(workdir) / f"kernel-{want[:12]}"
    if not (dst / "data" / "manifest.json").is_file():
        tmp = Path(tempfile.mkdtemp(prefix=".kernel.", dir=workdir))
        render_kernel_project(manifest, tmp)
        tmp.replace(dst) if not dst.exists() else shutil.rmtree(tmp)
    return Project(dst), f"rendered from the package's data/manifest.json into {dst}"


class CsimKernel:
    """The generated kernel (C simulation, ctypes) run on emulated DDR."""

    def __init__(self, project):
        import ctypes
        self.ctypes = ctypes
        self.project = project
        project.compile()
        self.lib = project._lib
        m = project.manifest
        self.wb = int(m["word_bytes"])
        sz = m["sizes"]
        self.weight_words, self.pix_words = int(sz["weight_words"]), int(sz["pix_words"])
        self.out_words, self.scratch_words = int(sz["out_words"]), int(sz["scratch_words"])
        self.tap_none, self.tap_all = int(m["tap_none"]), int(m["tap_all"])
        self.taps = {int(t["id"]): t for t in m["taps"]}
        self.num_tasks = len(m["spec"]["tasks"])
        self._weights_sha = None

    def run(self, mem: DDR, lock, args: dict) -> dict:
        """One ap_start: reads inputs from ``mem`` (under ``lock``), runs, writes results back."""
        c = self.ctypes
        n, task, reload, tap = args["n_images"], args["task"], args["reload"], args["tap_id"]
        info = dict(n_images=n, task=task, reload=reload, tap_id=tap)
        kid = c.c_uint32(0)
        if n <= 0:  # the kernel writes its ID register and returns before touching a buffer
            if self.lib.em_run(None, None, None, 0, task, reload, tap, c.byref(kid)) != 0:
                raise KernelFault("the C-simulation kernel failed on n_images = 0")
            return dict(info, note="n_images <= 0: ID read only", outputs=dict(kernel_id=int(kid.value)))
        wb = self.wb
        tap_stop = tap in self.taps           # a single-tap debug run stops after that stage
        scratch_regions = ([self.taps[tap]] if tap_stop else list(self.taps.values()) if tap == self.tap_all else [])
        # the C-simulated kernel reads every weight port from the one weights buffer: a host that
        # points an extra port (weights1..) elsewhere would get a result the emulation cannot show
        for name, addr in args.items():
            if name.startswith("weights") and name[7:].isdigit() and addr != args["weights"]:
                raise KernelFault(f"weight port {name} (0x{addr:x}) does not point at the weights buffer "
                                  f"(0x{args['weights']:x})")
        with lock:
            pix = mem.read(args["pixels"], n * self.pix_words * wb, "pixels pointer")
            weights = mem.read(args["weights"], self.weight_words * wb, "weights pointer")
            if not tap_stop:
                mem.span(args["out"], n * self.out_words * wb, "out pointer")
            if scratch_regions:
                mem.span(args["scratch"], self.scratch_words * wb, "scratch pointer")
        sha = hashlib.sha256(weights).digest()
        if sha != self._weights_sha:
            if self.lib.em_load_weights(c.c_char_p(weights), c.c_longlong(self.weight_words)) != 0:
                raise KernelFault("the C-simulation library refused the weights")
            self._weights_sha = sha
        out = c.create_string_buffer(n * self.out_words * wb)
        scratch = c.create_string_buffer(self.scratch_words * wb)
        rc = self.lib.em_run(pix, out, scratch, n, task, reload, tap, c.byref(kid))
        if rc != 0:
            raise KernelFault(f"the C-simulation kernel failed (rc {rc})")
        with lock:
            if not tap_stop:
                mem.write(args["out"], out.raw, "out pointer")
            for t in scratch_regions:
                a, b = int(t["word_offset"]) * wb, (int(t["word_offset"]) + int(t["words"])) * wb
                mem.write(args["scratch"] + a, scratch.raw[a:b], "scratch pointer")
        return dict(info, out_written=not tap_stop, scratch_taps=len(scratch_regions),
                    outputs=dict(kernel_id=int(kid.value)))


# ---- the board ----------------------------------------------------------------------------------
class BoardEmulator:
    """Board state behind the RPCs: files, DDR, MMIO regions, the kernel's registers."""

    def __init__(self, package_manifest: dict, kernel, latency: float = 0.0, ddr_bytes: int = 1 << 30,
                 log=None):
        self.pm = package_manifest
        k = package_manifest["kernel"]
        self.kbase = int(k["base_address"], 16)
        self.krange = int(k["address_range"], 16)
        self.args = {a["name"]: a for a in k["args"] if a.get("kind") != "output"}
        self.outputs = {a["name"]: a for a in k["args"] if a.get("kind") == "output"}
        self.readonly = {int(a["offset"]) for a in self.outputs.values()} | \
            {int(a["offset"]) + 4 for a in self.outputs.values()}
        self.kernel = kernel
        self.latency = float(latency)
        self.log = log or (lambda *a: None)
        self.lock = threading.RLock()
        self.ddr = DDR(DDR_BASE, ddr_bytes)
        board = package_manifest["board"]["name"].upper()
        self.files = dict(BOARD_FILES)
        self.files["/proc/device-tree/chosen/pynq_board"] = board.encode() + b"\x00"
        self.mmio = {}  # id -> (base, length)
        self._next_mmio = 1
        self.other_regs = {}  # address -> u32 outside the kernel and DDR
        self.bitstream = None
        self.runs = 0
        self._reset_kernel()

    # -- kernel registers
    def _reset_kernel(self):
        self.regs = {}
        self.ctrl_busy = False
        self.ctrl_done = False
        self.ctrl_ready = False
        self.auto_restart = False
        self.gie = self.ier = self.isr = 0
        self.fault = None

    def _ctrl_word(self) -> int:
        v = (AP_START if self.ctrl_busy else 0) | (0 if self.ctrl_busy else AP_IDLE)
        v |= (AP_DONE if self.ctrl_done else 0) | (AP_READY if self.ctrl_ready else 0)
        v |= AUTO_RESTART if self.auto_restart else 0
        self.ctrl_done = self.ctrl_ready = False  # clear on read
        return v

    def _reg_read(self, off: int) -> int:
        if off == 0x00:
            if self.fault:
                raise RemoteError(f"edgemoe emulate: kernel fault: {self.fault}")
            return self._ctrl_word()
        if off == 0x04:
            return self.gie
        if off == 0x08:
            return self.ier
        if off == 0x0C:
            return self.isr
        v = self.regs.get(off, 0)
        if off in self.readonly and any(int(a["offset"]) + 4 == off for a in self.outputs.values()):
            self.regs[off] = 0  # ap_vld: clear on read
        return v

    def _reg_write(self, off: int, v: int) -> None:
        if off == 0x00:
            self.fault = None
            self.auto_restart = bool(v & AUTO_RESTART)
            if v & AP_START and not self.ctrl_busy:
                self._start()
        elif off == 0x04:
            self.gie = v & 1
        elif off == 0x08:
            self.ier = v & 3
        elif off == 0x0C:
            self.isr ^= v & 3
        elif off in self.readonly:
            pass  # an output register (kernel_id): read-only, as in the RTL
        else:
            self.regs[off] = v

    def _arg_values(self) -> dict:
        out = {}
        for name, a in self.args.items():
            lo = self.regs.get(a["offset"], 0)
            if a["kind"] == "pointer" or a.get("words", 1) == 2:
                out[name] = lo | (self.regs.get(a["offset"] + 4, 0) << 32)
            else:
                out[name] = lo - (1 << 32) if lo & 0x8000_0000 else lo
        return out

    def _start(self):
        self.ctrl_busy, self.ctrl_done, self.ctrl_ready = True, False, False
        args = self._arg_values()
        self.runs += 1
        threading.Thread(target=self._run, args=(args, self.runs), daemon=True).start()

    def _run(self, args: dict, run_no: int):
        t0 = time.perf_counter()
        try:
            info = self.kernel.run(self.ddr, self.lock, args)
            # --latency emulates a frame's time: an ID read (n_images = 0) returns at once, as on the board
            left = (self.latency if args.get("n_images", 0) > 0 else 0.0) - (time.perf_counter() - t0)
            if left > 0:
                time.sleep(left)
            with self.lock:
                for name, value in info.pop("outputs", {}).items():  # what the kernel wrote to its output registers
                    a = self.outputs.get(name)
                    if a is not None:
                        self.regs[int(a["offset"])] = int(value) & 0xFFFFFFFF
                        self.regs[int(a["offset"]) + 4] = 1  # ap_vld
                self.ctrl_busy, self.ctrl_done, self.ctrl_ready = False, True, True
                if self.ier & 1:
                    self.isr |= 1
            self.log(f"run {run_no}: {info} in {time.perf_counter() - t0:.3f} s")
        except RemoteError as e:
            with self.lock:
                self.fault, self.ctrl_busy = str(e), False
            self.log(f"run {run_no}: kernel fault: {e}")
        except Exception as e:  # a bug: keep serving, report it to the host
            with self.lock:
                self.fault, self.ctrl_busy = f"internal error: {e!r}", False
            self.log(f"run {run_no}: internal error\n{traceback.format_exc()}")

    # -- bus
    def bus_read32(self, addr: int) -> int:
        if self.kbase <= addr < self.kbase + self.krange:
            return self._reg_read(addr - self.kbase)
        hit = self.ddr.find(addr, 4)
        if hit is not None:
            b, off = hit
            return int.from_bytes(b.data[off:off + 4], "little")
        return self.other_regs.get(addr, 0)

    def bus_write32(self, addr: int, v: int) -> None:
        if self.kbase <= addr < self.kbase + self.krange:
            return self._reg_write(addr - self.kbase, v)
        hit = self.ddr.find(addr, 4)
        if hit is not None:
            b, off = hit
            b.data[off:off + 4] = v.to_bytes(4, "little")
            return
        self.other_regs[addr] = v

    # -- mmio service
    def get_mmio(self, base: int, length: int) -> str:
        if length <= 0:
            raise RemoteError(f"MMIO region at 0x{base:X} has length {length}")
        mid = f"mmio{self._next_mmio}"
        self._next_mmio += 1
        self.mmio[mid] = (base, length)
        return mid

    def _region(self, mid: str, offset: int, n: int) -> int:
        if mid not in self.mmio:
            raise RemoteError(f"unknown MMIO id {mid!r}")
        base, length = self.mmio[mid]
        if offset % 4:
            raise RemoteError("unaligned MMIO access: offset must be a multiple of 4")
        if offset + n > length:
            raise RemoteError(f"MMIO access at offset 0x{offset:X} ({n} bytes) is outside the region of "
                              f"0x{length:X} bytes at 0x{base:X}")
        return base + offset

    def mmio_read(self, mid: str, offset: int, length: int) -> int:
        if length == 8:
            raise RemoteError("8-byte MMIO reads do not fit PYNQ.remote's reply (32-bit data): read two words")
        if length not in (1, 2, 4):
            raise RemoteError(f"MMIO reads are 1, 2 or 4 bytes, not {length}")
        addr = self._region(mid, offset, length)
        return self.bus_read32(addr) & ((1 << (8 * length)) - 1)

    def mmio_write(self, mid: str, offset: int, data: bytes) -> None:
        if len(data) % 4 or not data:
            raise RemoteError("MMIO writes are whole 32-bit words")
        addr = self._region(mid, offset, len(data))
        for i in range(0, len(data), 4):
            self.bus_write32(addr + i, int.from_bytes(data[i:i + 4], "little"))

    # -- files
    def write_file(self, path: str, data: bytes) -> None:
        total = sum(len(v) for v in self.files.values()) + len(data)
        if total > MAX_FILES_BYTES:
            raise RemoteError("the emulated file system is full", "RESOURCE_EXHAUSTED")
        if path == FPGA_MANAGER:
            name = data.decode(errors="replace").strip().strip("\x00")
            fw = self.files.get(FIRMWARE_DIR + name)
            if fw is None:
                raise RemoteError(f"fpga_manager: {FIRMWARE_DIR}{name} not found", "NOT_FOUND")
            self.bitstream = dict(name=name, bytes=len(fw), sha256=hashlib.sha256(fw).hexdigest(),
                                  partial=self.files.get("/sys/class/fpga_manager/fpga0/flags", b"0").strip() == b"1")
            self._reset_kernel()
            pkg_bit = self.pm.get("bitstream", {})
            self.log(f"bitstream {name} ({len(fw)} bytes) loaded; the package "
                     f"{'has ' + pkg_bit.get('bit', '') if pkg_bit.get('present') else 'has no bitstream'}; "
                     f"the kernel is the C simulation either way")
        self.files[path] = bytes(data)


# ---- gRPC ---------------------------------------------------------------------------------------
def _handlers(board: BoardEmulator, log):
    import grpc

    from . import pynq_remote as pr
    M = pr.message

    def ok_msg(resp_cls, **kw):
        return resp_cls(**kw)

    # remote_device
    def existsfile(req, ctx):
        with board.lock:
            return M("remote_device.ExistsFileResponse")(exists=req.file_path in board.files)

    def readfile(req, ctx):
        with board.lock:
            data = board.files.get(req.file_path)
        if data is None:
            raise RemoteError(f"{req.file_path}: no such file on the emulated board", "NOT_FOUND")
        R = M("remote_device.ReadFileResponse")
        for i in range(0, max(len(data), 1), CHUNK):
            yield R(data=data[i:i + CHUNK])

    def writefile(it, ctx):
        path, parts = None, []
        for req in it:
            if path is None:
                path = req.file_path
            elif req.file_path and req.file_path != path:
                raise RemoteError("writefile: one stream, one file", "INVALID_ARGUMENT")
            parts.append(req.data)
        if path is None:
            raise RemoteError("writefile: empty stream", "INVALID_ARGUMENT")
        with board.lock:
            board.write_file(path, b"".join(parts))
        return M("remote_device.WriteFileResponse")()

    def set_bitstream_attrs(req, ctx):
        log(f"bitstream attributes: {req.binfile_name} partial={req.partial}")
        return M("remote_device.SetBitstreamAttrsResponse")(status=True)

    def download(it, ctx):
        n = sum(len(r.buffer) for r in it)
        with board.lock:
            board.bitstream = dict(name="(download)", bytes=n)
            board._reset_kernel()
        log(f"bitstream downloaded ({n} bytes); the kernel is the C simulation")
        return M("remote_device.DownloadResponse")(status=True)

    def set_pl_clk(req, ctx):
        log(f"PL clock {req.i}: {req.clk_mhz} MHz (div {req.div0}/{req.div1}); ignored")
        return M("remote_device.SetPlClkResponse")(status=True)

    def shutdown(req, ctx):
        return M("remote_device.ShutdownResponse")(status=True)

    # mmio (errors go in msg: pynq raises RuntimeError(msg))
    def get_mmio(req, ctx):
        R = M("mmio.GetMmioResponse")
        try:
            with board.lock:
                return R(status=True, mmio_id=board.get_mmio(req.base_addr, req.length))
        except RemoteError as e:
            return R(status=False, msg=str(e))

    def mmio_read(req, ctx):
        R = M("mmio.ReadResponse")
        try:
            with board.lock:
                return R(status=True, data=board.mmio_read(req.mmio_id, req.offset, req.length))
        except RemoteError as e:
            return R(status=False, msg=str(e))

    def mmio_write(req, ctx):
        R = M("mmio.WriteResponse")
        try:
            with board.lock:
                board.mmio_write(req.mmio_id, req.offset, req.data)
            return R(status=True)
        except RemoteError as e:
            return R(status=False, msg=str(e))

    # buffer
    def allocate(req, ctx):
        with board.lock:  # errors as a gRPC status: pynq's allocate does not look at msg
            b = board.ddr.allocate(req.size, req.dtype)
        return M("buffer.AllocateResponse")(buffer_id=b.id)

    def buf_write(it, ctx):
        R = M("buffer.BufferWriteResponse")
        pos = 0
        try:
            for req in it:
                with board.lock:
                    b = board.ddr.get(req.buffer_id)
                    at = req.start if req.end > req.start else pos
                    if at < 0 or at + len(req.data) > len(b.data):
                        raise RemoteError(f"write of {len(req.data)} bytes at {at} overflows buffer "
                                          f"{req.buffer_id} ({len(b.data)} bytes)")
                    b.data[at:at + len(req.data)] = req.data
                    pos = at + len(req.data)
        except RemoteError as e:
            return R(msg=str(e))
        return R()

    def buf_read(req, ctx):
        R = M("buffer.BufferReadResponse")
        with board.lock:
            try:
                b = board.ddr.get(req.buffer_id)
            except RemoteError as e:
                yield R(msg=str(e))
                return
            s, e = (req.start, req.end) if req.end > req.start else (0, len(b.data))
            data = bytes(b.data[max(s, 0):min(e, len(b.data))])
        for i in range(0, max(len(data), 1), CHUNK):
            yield R(data=data[i:i + CHUNK])

    def simple(resp, fn):
        def h(req, ctx):
            try:
                with board.lock:
                    return M(resp)(**(fn(req) or {}))
            except RemoteError as e:
                return M(resp)(msg=str(e))
        return h

    impl = {
        "remote_device.RemoteDevice": dict(existsfile=existsfile, readfile=readfile, writefile=writefile,
                                           set_bitstream_attrs=set_bitstream_attrs, download=download,
                                           set_pl_clk=set_pl_clk, shutdown=shutdown),
        "mmio.Mmio": dict(get_mmio=get_mmio, read=mmio_read, write=mmio_write),
        "buffer.RemoteBuffer": dict(
            allocate=allocate, write=buf_write, read=buf_read,
            freebuffer=simple("buffer.FreeBufferResponse", lambda r: board.ddr.free(r.buffer_id)),
            flush=simple("buffer.FlushResponse", lambda r: board.ddr.get(r.buffer_id) and None),
            invalidate=simple("buffer.InvalidateResponse", lambda r: board.ddr.get(r.buffer_id) and None),
            physical_address=simple("buffer.AddressResponse", lambda r: dict(address=board.ddr.get(r.buffer_id).address)),
            # no user space here: a fixed offset keeps virtual addresses distinct from physical ones
            virtual_address=simple("buffer.AddressResponse",
                                   lambda r: dict(address=0x7F00_0000_0000 + board.ddr.get(r.buffer_id).address)),
            cacheable=simple("buffer.CacheableResponse", lambda r: board.ddr.get(r.buffer_id) and dict(cacheable=True)),
        ),
    }

    def guard(fn, name, streaming_out):
        def status(e):
            return getattr(grpc.StatusCode, getattr(e, "code", "INTERNAL"), grpc.StatusCode.INTERNAL)
        if streaming_out:
            def wrapped(req, ctx):
                try:
                    yield from fn(req, ctx)
                except RemoteError as e:
                    ctx.abort(status(e), str(e))
                except Exception as e:
                    log(f"{name}: internal error\n{traceback.format_exc()}")
                    ctx.abort(grpc.StatusCode.INTERNAL, f"edgemoe emulate: {name}: {e!r}")
        else:
            def wrapped(req, ctx):
                try:
                    return fn(req, ctx)
                except RemoteError as e:
                    ctx.abort(status(e), str(e))
                except Exception as e:
                    log(f"{name}: internal error\n{traceback.format_exc()}")
                    ctx.abort(grpc.StatusCode.INTERNAL, f"edgemoe emulate: {name}: {e!r}")
        return wrapped

    kinds = {(False, False): grpc.unary_unary_rpc_method_handler, (True, False): grpc.stream_unary_rpc_method_handler,
             (False, True): grpc.unary_stream_rpc_method_handler, (True, True): grpc.stream_stream_rpc_method_handler}
    handlers = []
    for sname, methods in pr.services():
        if sname not in impl:
            continue  # gpio: not emulated (UNIMPLEMENTED)
        table = {}
        for meth, (req, resp, cs, ss) in methods.items():
            fn = guard(impl[sname][meth], f"{sname}/{meth}", ss)
            table[meth] = kinds[(cs, ss)](fn, request_deserializer=req.FromString,
                                          response_serializer=resp.SerializeToString)
        handlers.append(grpc.method_handlers_generic_handler(sname, table))
    return handlers


IMPLEMENTED = {
    "remote_device.RemoteDevice": ["existsfile", "readfile", "writefile", "set_bitstream_attrs", "download",
                                   "set_pl_clk", "shutdown"],
    "mmio.Mmio": ["get_mmio", "read", "write"],
    "buffer.RemoteBuffer": ["allocate", "write", "read", "freebuffer", "flush", "invalidate", "physical_address",
                            "virtual_address", "cacheable"],
}


def _listen_error(host: str, port: int, why) -> str:
    hint = (" (another emulator or program holds it: stop that one, or give --port N, 0 for any free port)"
            if "in use" in str(why).lower() else "")
    return f"cannot listen on {host}:{port}: {why}{hint}"


class Emulator:
    """A running emulator: ``.port``, ``.board``, ``.stop()``."""

    def __init__(self, package, port: int = 7967, host: str = HOST, latency: float = 0.0, workdir=None,
                 ddr_mb: int = 1024, log=None):
        import grpc
        if host != HOST:
            raise EdgeMoeError(f"the emulator serves {HOST} only (it has no authentication), not {host}")
        self.log = log or (lambda m: print(m, file=sys.stderr, flush=True))
        pkg = Path(package)
        pmf = pkg / "package_manifest.json"
        if not pmf.is_file():
            raise EdgeMoeError(f"{pkg} is not a package made by `edgemoe package` (no package_manifest.json)")
        if not (pkg / "data" / "manifest.json").is_file():
            raise EdgeMoeError(f"{pkg}/data/manifest.json not found: the package is incomplete")
        pm = json.loads(pmf.read_text())
        from edgemoe.options import check_number
        port = check_number("port", port)   # 0..65535, the message naming the range
        if port:  # fail before the kernel compiles, not after
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, port))
                except OSError as e:
                    raise EdgeMoeError(_listen_error(host, port, e.strerror)) from None
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.mkdtemp(prefix="edgemoe-emulate-")
            workdir = self._tmp
        Path(workdir).mkdir(parents=True, exist_ok=True)
        project, how = kernel_project(pkg, workdir, self.log)
        self.log(f"edgemoe emulate: kernel C++ from {how}; compiling (C simulation)")
        kernel = CsimKernel(project)
        self.board = BoardEmulator(pm, kernel, latency=latency, ddr_bytes=int(ddr_mb) << 20, log=self.log)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                                  handlers=_handlers(self.board, self.log),
                                  options=[("grpc.so_reuseport", 0),
                                           ("grpc.max_receive_message_length", 64 << 20),
                                           ("grpc.max_send_message_length", 64 << 20)])
        try:
            bound = self.server.add_insecure_port(f"{host}:{int(port)}")
        except RuntimeError:
            bound = 0
        if not bound:
            raise EdgeMoeError(_listen_error(host, port, "in use, or not available"))
        self.host, self.port = host, bound
        self.server.start()

    def wait(self):
        self.server.wait_for_termination()

    def stop(self, grace: float = 1.0):
        self.server.stop(grace).wait()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def emulate_command(args) -> int:
    emu = Emulator(args.package, port=args.port, latency=args.latency, workdir=args.workdir, ddr_mb=args.ddr_mb)
    k = emu.board.pm["kernel"]
    print(f"edgemoe emulate: serving PYNQ.remote on {emu.host}:{emu.port} (kernel {k['top']} at "
          f"{k['base_address']}, C simulation); pynq client: PYNQ_REMOTE_DEVICES={emu.host}"
          + ("" if emu.port == 7967 else f" and RemoteDevice(0, '{emu.host}', port={emu.port})"), flush=True)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
        print("edgemoe emulate: stopped", flush=True)
    return 0


__all__ = ["Emulator", "BoardEmulator", "DDR", "CsimKernel", "kernel_project", "render_kernel_project",
           "emulate_command", "IMPLEMENTED", "HOST"]
