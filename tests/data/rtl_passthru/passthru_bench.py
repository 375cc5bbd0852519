"""cocotb bench of the throwaway passthru unit, to the edgemoe bench contract (env vars in, JSON out)."""
import json
import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_time, get_time_from_sim_steps
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

PERIOD_NS = 10
MASK = 0xFFFFFFFF


def _cycle():
    return int(get_sim_time("ns")) // PERIOD_NS


@cocotb.test()
async def passthru(dut):
    n = int(os.environ.get("EDGEMOE_VECTORS", "1000"))
    seed = int(os.environ.get("EDGEMOE_SEED", "0"))
    limit = int(os.environ.get("EDGEMOE_CYCLE_LIMIT", str(20 * n + 1000)))
    cfg_path = os.environ.get("EDGEMOE_CONFIG")
    if cfg_path:
        json.loads(open(cfg_path).read())          # {"preset","precision","design"}: unused by this unit
    rng = random.Random(seed)
    Clock(dut.ap_clk, PERIOD_NS, unit="ns").start()
    src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "in_r"), dut.ap_clk, dut.ap_rst_n,
                          reset_active_level=False, byte_size=32)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "out_r"), dut.ap_clk, dut.ap_rst_n,
                         reset_active_level=False, byte_size=32)
    for x in (src, sink):
        x.log.setLevel(logging.WARNING)
    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 5)
    dut.ap_rst_n.value = 1
    await RisingEdge(dut.ap_clk)
    start = _cycle()
    xs = [rng.getrandbits(32) for _ in range(n)]
    half = n // 2
    # phase 1: random stalls on both sides; phase 2 (throughput): none
    src.set_pause_generator(iter(lambda: rng.random() < 0.3, None))
    sink.set_pause_generator(iter(lambda: rng.random() < 0.3, None))
    got, times = [], []
    last = {"port": "none", "index": -1, "cycle": start}
    result = dict(vectors=n, mismatches=0, cycles=0, items_per_cycle=0.0, throughput_cycles=0, last_handshake=last)

    def dump():
        if os.environ.get("EDGEMOE_RESULT"):
            with open(os.environ["EDGEMOE_RESULT"], "w") as f:
                json.dump(result, f)

    async def collect(count):
        while len(got) < count:
            if sink.empty():
                await ClockCycles(dut.ap_clk, 8)
                if _cycle() - start > limit:
                    result["cycles"] = _cycle() - start
                    dump()
                    raise AssertionError(f"passthru: hung: cycle limit {limit} reached with {len(got)} of {n} outputs; "
                                         f"last handshake: {last['port']} #{last['index']} at cycle {last['cycle']}")
                continue
            fr = sink.recv_nowait()
            got.extend(fr.tdata)
            times.extend([int(get_time_from_sim_steps(fr.sim_time_end, "ns")) // PERIOD_NS] * len(fr.tdata))
            last.update(port="out_r", index=len(got) - 1, cycle=_cycle())

    for x in xs[:half]:
        src.send_nowait(AxiStreamFrame([x]))
    await collect(half)
    src.clear_pause_generator()
    sink.clear_pause_generator()
    src.pause = False
    sink.pause = False
    for x in xs[half:]:
        src.send_nowait(AxiStreamFrame([x]))
    await collect(n)
    m = n - half
    span = times[-1] - times[half] + 1 if m else 1
    result.update(mismatches=sum(1 for x, y in zip(xs, got) if (x + 1) & MASK != y),
                  cycles=_cycle() - start, items_per_cycle=m / span, throughput_cycles=span)
    dump()
