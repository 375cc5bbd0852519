"""What a host program touches on the board that ``edgemoe emulate`` stands in for (:class:`BoardEmulator`).

* the kernel's AXI-Lite registers at the package's base address, laid out as Vitis HLS does
  (package_manifest.json "kernel"): 0x00 control (bit0 ap_start, bit1 ap_done clear-on-read, bit2
  ap_idle, bit3 ap_ready clear-on-read, bit7 auto_restart, stored only), 0x04 GIE, 0x08 IER, 0x0C ISR
  (toggle on write), then the argument registers (a pointer is two 32-bit words, low first);
* ap_start runs the kernel (:class:`edgemoe.sim.emulator_kernel.CsimKernel`, in a thread) on the
  emulated DDR (:mod:`edgemoe.sim.emulator_ddr`) at the pointer registers, with the scalar registers as
  arguments; the kernel writes back ``out``, tap regions of ``scratch`` and the output scalar registers
  (kind "output": ``kernel_id``, the value the C-simulated kernel wrote, with its ap_vld bit set in the
  control word after it, cleared on read). A call with n_images = 0 runs the kernel too (it writes its
  ID and returns: the host's ID read). Output registers ignore writes;
* any other address (PS registers pynq touches while downloading a bitstream, for instance) is a
  plain register store; a small in-memory file system answers the file RPCs (/proc/version says
  aarch64, /proc/device-tree/chosen/pynq_board the board), and a bitstream written to
  /lib/firmware + fpga_manager is accepted and recorded (nothing is checked in it).

A kernel run that faults never sets ap_done (hardware would hang or write garbage): every read of the
control register returns the fault message until the host writes that register again (a new ap_start is
accepted then; nothing of the faulted run was written back).
"""
from __future__ import annotations

import hashlib
import threading
import time
import traceback

from .emulator_ddr import DDR, DDR_BASE, RemoteError

BOARD_FILES = {
    "/proc/version": b"Linux version 6.6.10-xilinx (edgemoe emulate) #1 SMP aarch64 GNU/Linux\n",
    "/sys/class/fpga_manager/fpga0/state": b"operating\n",
    "/sys/class/fpga_manager/fpga0/flags": b"0\n",
}
FPGA_MANAGER = "/sys/class/fpga_manager/fpga0/firmware"
FIRMWARE_DIR = "/lib/firmware/"
MAX_FILES_BYTES = 512 << 20

AP_START, AP_DONE, AP_IDLE, AP_READY, AUTO_RESTART = 0x1, 0x2, 0x4, 0x8, 0x80


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


__all__ = ["BoardEmulator", "BOARD_FILES", "FPGA_MANAGER", "FIRMWARE_DIR", "MAX_FILES_BYTES",
           "AP_START", "AP_DONE", "AP_IDLE", "AP_READY", "AUTO_RESTART"]
