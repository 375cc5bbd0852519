"""``edgemoe emulate --package PKG``: a board stand-in that the real pynq client drives over PYNQ.remote.

It serves pynq 4.0's PYNQ.remote gRPC services on 127.0.0.1 only and behind them emulates what a host
program touches on the board: DDR buffers, the kernel's AXI-Lite registers (ap_start runs the generated
kernel in C simulation on the bytes in emulated DDR), other registers and a small file system. The parts:

* :mod:`edgemoe.sim.emulator_ddr`: the emulated DDR (``pynq.allocate`` buffers), the errors sent to the client;
* :mod:`edgemoe.sim.emulator_kernel`: the kernel's C++ (the packaged project's, or rendered again from the
  package's data/manifest.json by ``edgemoe generate``'s own function) and its C-simulation run on DDR;
* :mod:`edgemoe.sim.emulator_board`: the board state: the kernel's registers (control, interrupts, arguments,
  the kernel_id output register), the bus, MMIO regions, files and the bitstream;
* :mod:`edgemoe.sim.emulator_service`: the PYNQ.remote gRPC handlers and the server (:class:`Emulator`);
* here: the command (:func:`emulate_command`), and every public name of the parts, so that
  ``from edgemoe.sim.emulator import ...`` keeps working. A test that monkeypatches a name must patch it in
  the module that looks it up (e.g. ``emulator_service.kernel_project``), not here.
"""
from __future__ import annotations

import signal
import threading

from .emulator_board import (AP_DONE, AP_IDLE, AP_READY, AP_START, AUTO_RESTART, BOARD_FILES, FIRMWARE_DIR,
                             FPGA_MANAGER, MAX_FILES_BYTES, BoardEmulator)
from .emulator_ddr import DDR, DDR_BASE, PAGE, Buffer, KernelFault, RemoteError
from .emulator_kernel import CsimKernel, kernel_project, render_kernel_project
from .emulator_service import CHUNK, HOST, IMPLEMENTED, Emulator


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
           "emulate_command", "IMPLEMENTED", "HOST",
           # the parts' other public names, as before the split
           "Buffer", "RemoteError", "KernelFault", "DDR_BASE", "PAGE", "CHUNK", "BOARD_FILES", "FPGA_MANAGER",
           "FIRMWARE_DIR", "MAX_FILES_BYTES", "AP_START", "AP_DONE", "AP_IDLE", "AP_READY", "AUTO_RESTART"]
