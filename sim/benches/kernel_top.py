"""cocotb bench of a Vitis-generated top kernel (s_axi_control + m_axi_<bundle> ports), driven the way a
host driver does it: write the arguments, set ap_start, poll ap_done, read the outputs back.

Everything comes from the job JSON written by :mod:`edgemoe.sim.kernel_bench` (env EDGEMOE_KERNEL_JOB):

    {"top", "control": "s_axi_control", "bundles": ["gmem", ...],
     "regs": {"ap_ctrl": 0, "gie": 4, "ier": 8, "isr": 12},
     "args": [{"name", "offset", "bits", "value"}],           # written low word first
     "loads": [{"addr", "file", "offset", "length"}],         # memory contents before the run
     "fills": [{"addr", "length", "byte"}],                   # e.g. a pattern in the output buffers
     "dumps": [{"name", "addr", "length"}],                   # read back after ap_done
     "reads": [{"name", "offset"}],                           # output registers read after ap_done
     "cycle_limit", "poll_cycles", "clock_ns"}

All m_axi bundles share one sparse 64-bit memory, as they share DDR on the board. The bench writes
EDGEMOE_RESULT: {"done", "cycles", "polls", "dumps": {name: file}, "reads": {name: int}, "error"?} and the dumps as
<EDGEMOE_KERNEL_OUT>/dump_<name>.bin; the comparison with the expected bytes is done by the caller.
"""
import json
import logging
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_time

AP_START, AP_DONE, AP_IDLE, AP_READY = 0x1, 0x2, 0x4, 0x8


def _cycles(clock_ns: float) -> int:
    return int(get_sim_time("ns") // clock_ns)


def vitis_axi_bus(dut, prefix: str):
    """AxiBus of a Vitis m_axi port. Vitis declares AWLOCK/ARLOCK 2 bits wide (the AXI3 width), which
    cocotbext-axi refuses (it expects AXI4's 1 bit); they carry nothing (always 0), so they are dropped."""
    from cocotbext.axi import AxiBus
    bus = AxiBus.from_prefix(dut, prefix)
    for ch, sig in ((bus.write.aw, "awlock"), (bus.read.ar, "arlock")):
        if hasattr(ch, sig) and len(getattr(ch, sig)) != 1:
            delattr(ch, sig)
            ch._signals.pop(sig, None)
    return bus


@cocotb.test()
async def kernel_top(dut):
    from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiRam
    from cocotbext.axi.sparse_memory import SparseMemory

    job = json.loads(Path(os.environ["EDGEMOE_KERNEL_JOB"]).read_text())
    out_dir = Path(os.environ.get("EDGEMOE_KERNEL_OUT", "."))
    result_path = Path(os.environ.get("EDGEMOE_RESULT", "result.json"))
    top = job["top"]
    clock_ns = float(job.get("clock_ns", 10))
    limit = int(job["cycle_limit"])
    poll = int(job.get("poll_cycles", 16))
    regs = job["regs"]
    result = dict(done=False, cycles=0, polls=0, dumps={}, reads={})

    def finish(**kw):
        result.update(kw)
        result_path.write_text(json.dumps(result, indent=1))

    cocotb.start_soon(Clock(dut.ap_clk, clock_ns, unit="ns").start())
    mem = SparseMemory(2 ** 48)     # (slices of a 2**64 memory overflow Python indices)
    rams = []
    for b in job["bundles"]:
        ram = AxiRam(vitis_axi_bus(dut, f"m_axi_{b}"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False,
                     mem=mem)
        rams.append(ram)
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, job.get("control", "s_axi_control")), dut.ap_clk,
                         dut.ap_rst_n, reset_active_level=False)
    for x in [axil] + rams:
        for sub in (x, getattr(x, "write_if", None), getattr(x, "read_if", None)):
            if sub is not None and hasattr(sub, "log"):
                sub.log.setLevel(logging.WARNING)

    for ld in job.get("loads", []):
        with open(ld["file"], "rb") as f:
            f.seek(int(ld["offset"]))
            data = f.read(int(ld["length"]))
        if len(data) != int(ld["length"]):
            finish(error=f"{ld['file']}: {len(data)} bytes at offset {ld['offset']}, expected {ld['length']}")
            raise AssertionError(result["error"])
        mem.write(int(ld["addr"]), data)
    for fl in job.get("fills", []):
        mem.write(int(fl["addr"]), bytes([int(fl["byte"]) & 0xFF]) * int(fl["length"]))

    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 10)
    dut.ap_rst_n.value = 1
    await ClockCycles(dut.ap_clk, 5)

    ctrl = await axil.read_dword(regs["ap_ctrl"])
    if not ctrl & AP_IDLE:
        finish(error=f"kernel {top}: not idle after reset (control register 0x{ctrl:02x})")
        raise AssertionError(result["error"])
    for a in job["args"]:
        value, bits = int(a["value"]), int(a["bits"])
        value &= (1 << bits) - 1
        for k in range((bits + 31) // 32):
            await axil.write_dword(int(a["offset"]) + 4 * k, (value >> (32 * k)) & 0xFFFFFFFF)
    # read the arguments back: catches a register map that does not match the RTL
    for a in job["args"]:
        bits = int(a["bits"])
        got = 0
        for k in range((bits + 31) // 32):
            got |= (await axil.read_dword(int(a["offset"]) + 4 * k)) << (32 * k)
        want = int(a["value"]) & ((1 << bits) - 1)
        if got != want:
            finish(error=f"kernel {top}: argument {a['name']} at 0x{int(a['offset']):x} reads back 0x{got:x}, "
                         f"wrote 0x{want:x} (register map from the driver header does not match the RTL?)")
            raise AssertionError(result["error"])

    t0 = _cycles(clock_ns)
    await axil.write_dword(regs["ap_ctrl"], AP_START)
    polls = 0
    while True:
        ctrl = await axil.read_dword(regs["ap_ctrl"])
        polls += 1
        if ctrl & AP_DONE:
            break
        if _cycles(clock_ns) - t0 > limit:
            finish(cycles=_cycles(clock_ns) - t0, polls=polls,
                   error=f"kernel {top}: ap_done not set within {limit} cycles (cycle limit; "
                         f"control register 0x{ctrl:02x}: start={ctrl & 1}, idle={(ctrl >> 2) & 1})")
            raise AssertionError(result["error"])
        await ClockCycles(dut.ap_clk, poll)
    cycles = _cycles(clock_ns) - t0
    await RisingEdge(dut.ap_clk)
    ctrl_after = await axil.read_dword(regs["ap_ctrl"])
    for r in job.get("reads", []):
        result["reads"][r["name"]] = int(await axil.read_dword(int(r["offset"])))
    for d in job.get("dumps", []):
        f = out_dir / f"dump_{d['name']}.bin"
        f.write_bytes(mem.read(int(d["addr"]), int(d["length"])))
        result["dumps"][d["name"]] = str(f)
    finish(done=True, cycles=cycles, polls=polls, ctrl_after=ctrl_after)
