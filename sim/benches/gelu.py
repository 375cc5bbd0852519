"""cocotb bench of edgemoe_gelu: every output bit-exact with golden gelu_fixed.

A vector is one gelu_in value (one in_r beat); frames of FRAME values end with TLAST.  Inputs:
real fc1 outputs of golden-model runs, plus edge cases (0, the extreme codes, |x| around and beyond
the table range 5.5, every table knot and its neighbours) and uniform random codes.
"""
from __future__ import annotations

import cocotb
import numpy as np

from edgemoe.golden.apfixed import Fx
from edgemoe.golden.units.gelu import gelu_fixed

from ._util import Checker, Env, Watchdog, golden_taps, make_stream, pack, start, stream_phase, unpack

FRAME = 64


def _inputs(env: Env, n: int) -> np.ndarray:
    g = env.ctx["g"]
    t = g["in_t"]
    real = golden_taps(env)["gelu_in"]
    lim = g["limit"]
    step = 1 << max(g["sb"], 0)
    knots = np.arange(g["n"] + 2, dtype=np.int64) * step
    edges = np.concatenate([[0, 1, -1, t.min_raw, t.max_raw, t.min_raw + 1, t.max_raw - 1],
                            [lim - 1, lim, lim + 1, -lim + 1, -lim, -lim - 1, 2 * lim, -2 * lim],
                            knots, -knots, knots - 1, -knots + 1, knots + 1]).astype(np.int64)
    edges = np.clip(edges, t.min_raw, t.max_raw)
    n_edge = min(len(edges), n // 4)
    n_rand = n // 8
    n_real = n - n_edge - n_rand
    rng = env.rng
    vals = np.concatenate([rng.choice(real, n_real) if len(real) else np.zeros(n_real, np.int64),
                           edges[:n_edge],
                           rng.integers(-2 * lim, 2 * lim, n_rand // 2),
                           rng.integers(t.min_raw, t.max_raw, n_rand - n_rand // 2, endpoint=True)])
    return rng.permutation(vals.astype(np.int64))


def _frames(vals, in_w, lane):
    return [[pack([v], in_w, lane) for v in vals[i:i + FRAME]] for i in range(0, len(vals), FRAME)]


@cocotb.test()
async def gelu_bench(dut):
    env = Env("gelu")
    g = env.ctx["g"]
    in_t, out_t = g["in_t"], g["out_t"]
    in_sb, out_sb = env.ctx["in_sb"], env.ctx["out_sb"]
    n = max(env.vectors, 1)
    wd = Watchdog(dut, env, env.limit(200 + 20 * n))
    src = make_stream(dut, "in_r", in_sb, True, wd)
    snk = make_stream(dut, "out_r", out_sb, False, wd)
    await start(dut, env)
    cocotb.start_soon(wd.run())

    chk = Checker(dut, "gelu")

    def phase(vals, pause):
        want = gelu_fixed(Fx(vals, in_t), env.prec).raw
        frames = _frames(vals, in_t.W, in_sb)

        def collect(_i, k, fr):
            got = [unpack(w, 1, out_t.W, out_sb, out_t.signed)[0] for w in fr.tdata]
            chk.check(got, [int(v) for v in want[k * FRAME:(k + 1) * FRAME]], f"frame {k}")
        return stream_phase(dut, env, [(src, frames)], [(snk, len(frames))], pause, collect)

    vals = _inputs(env, n)
    cycles = await phase(vals, 0.3)
    tp_vals = vals[:max(min(n, 4096), 256)] if n >= 256 else np.resize(vals, 256)
    tp_cycles = await phase(tp_vals, 0.0)
    ipc = len(tp_vals) / max(tp_cycles, 1)
    lat_cycles = await phase(tp_vals[:1], 0.0)      # one value through the empty pipeline
    # the throughput phase's workload, for a cycle model: frames of FRAME values (TLAST on each)
    workload = dict(values=len(tp_vals), frame=FRAME, pipeline_depth=g["depth"], latency_cycles=lat_cycles)
    wd.note()
    env.write_result(vectors=n, items=chk.items, mismatches=chk.mismatches, cycles=cycles,
                     bp_items_per_cycle=n / max(cycles, 1), items_per_cycle=ipc,
                     throughput_cycles=tp_cycles, throughput_items=len(tp_vals),
                     throughput_workload=workload, last_handshake=wd.last)
    assert chk.mismatches == 0, f"gelu: {chk.mismatches} mismatching outputs of {chk.items}"
