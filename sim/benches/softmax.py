"""cocotb bench of edgemoe_softmax: every probability bit-exact with golden softmax_fixed.

A vector is one row of scores (one in_r frame ending with TLAST).  Rows: real attention logits of
golden-model runs (every head and query), plus edge cases (length 1, ties, strictly increasing
rows where every score is a new maximum, the extreme codes, huge spreads where exp underflows to 0)
and random rows of random length up to the longest softmax row of the model.
"""
from __future__ import annotations

import cocotb
import numpy as np

from edgemoe.golden.apfixed import Fx
from edgemoe.golden.units.softmax import softmax_fixed

from ._util import Checker, Env, Watchdog, golden_taps, make_stream, pack, start, stream_phase, unpack


def _rows(env: Env, n: int) -> list:
    t = env.prec.t("score")
    real = golden_taps(env)["scores"]
    rng = env.rng
    L = env.ctx["max_len"]
    lo, hi = t.min_raw, t.max_raw
    one = 1 << t.F
    edges = [np.array([0]), np.array([hi]), np.array([lo]), np.full(L, 5 * one), np.array([lo, hi]),
             np.array([hi, lo]), np.arange(L) * one, -np.arange(L) * one, np.full(L, lo), np.full(L, hi),
             np.array([lo, hi] * (L // 2 + 1))[:L], np.array([0, 1, 1, 0, -1, -1, 1]),
             (np.arange(L) - L // 2) * (one // 64)]
    rows = [np.asarray(e, dtype=np.int64) for e in edges][: max(n // 4, 1)]
    while len(rows) < n:
        u = rng.random()
        if u < 0.7 and len(real):
            r = real[rng.integers(len(real))]
            if rng.random() < 0.2:
                r = np.roll(r, rng.integers(len(r)))            # a skewed start
            rows.append(np.asarray(r, dtype=np.int64))
        elif u < 0.8:                                             # ties
            k = int(rng.integers(1, L + 1))
            rows.append(rng.integers(-3, 3, k) * one)
        elif u < 0.9:
            k = int(rng.integers(1, L + 1))
            rows.append(rng.integers(-8 * one, 8 * one, k))
        else:
            k = int(rng.integers(1, L + 1))
            rows.append(rng.integers(lo, hi, k, endpoint=True))
    return [np.clip(r, lo, hi) for r in rows[:n]]     # multiples of `one` may leave a narrow type


def _golden(env: Env, rows: list) -> list:
    """Probabilities per row, batched by row length."""
    t = env.prec.t("score")
    out = [None] * len(rows)
    by_len = {}
    for i, r in enumerate(rows):
        by_len.setdefault(len(r), []).append(i)
    for _, idx in by_len.items():
        p = softmax_fixed(Fx(np.stack([rows[i] for i in idx]), t), env.prec).raw
        for j, i in enumerate(idx):
            out[i] = [int(v) for v in p[j]]
    return out


@cocotb.test()
async def softmax_bench(dut):
    env = Env("softmax")
    st, pt = env.prec.t("score"), env.prec.t("prob")
    in_sb, out_sb = env.ctx["in_sb"], env.ctx["out_sb"]
    n = max(env.vectors, 1)
    rows = _rows(env, n)
    items = sum(len(r) for r in rows)
    wd = Watchdog(dut, env, env.limit(400 + 20 * items))
    src = make_stream(dut, "in_r", in_sb, True, wd)
    snk = make_stream(dut, "out_r", out_sb, False, wd)
    await start(dut, env)
    cocotb.start_soon(wd.run())
    chk = Checker(dut, "softmax")

    def phase(rs, pause):
        want = _golden(env, rs)
        frames = [[pack([v], st.W, in_sb) for v in r] for r in rs]

        def collect(_i, k, fr):
            chk.check([unpack(w, 1, pt.W, out_sb, pt.signed)[0] for w in fr.tdata], want[k], f"row {k}")
        return stream_phase(dut, env, [(src, frames)], [(snk, len(frames))], pause, collect)

    cycles = await phase(rows, 0.3)
    # throughput: rows of the model's own length, no gaps, no backpressure
    real = golden_taps(env)["scores"]
    n_tp = max(min(n, 600), 100)
    tp_rows = [np.asarray(real[i % len(real)], dtype=np.int64) for i in range(n_tp)]
    tp_items = sum(len(r) for r in tp_rows)
    tp_cycles = await phase(tp_rows, 0.0)
    lat_cycles = await phase([tp_rows[0][:1]], 0.0)     # a one-score row through the empty unit
    lens = sorted({len(r) for r in tp_rows})
    # each row: pass 1 (exp pipeline, running sum, 1/S by a div_steps-stage divider), then pass 2
    workload = dict(rows=len(tp_rows), row_len=lens[0] if len(lens) == 1 else [len(r) for r in tp_rows],
                    exp_depth=env.ctx["e"]["depth"], divider_steps=env.ctx["s"]["div_steps"], latency_cycles=lat_cycles)
    wd.note()
    env.write_result(vectors=n, items=chk.items, mismatches=chk.mismatches, cycles=cycles,
                     bp_items_per_cycle=items / max(cycles, 1), items_per_cycle=tp_items / max(tp_cycles, 1),
                     throughput_cycles=tp_cycles, throughput_items=tp_items, throughput_workload=workload,
                     last_handshake=wd.last)
    assert chk.mismatches == 0, f"softmax: {chk.mismatches} mismatching probabilities of {chk.items}"
