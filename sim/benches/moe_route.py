"""cocotb bench of edgemoe_moe_route: every queue entry bit-exact with golden route_fixed.

A vector is one token (one in_r beat: its E gate logits); calls (frames ending with TLAST) have 1 to
`tokens` tokens.  Each call's output frame holds the per-expert queues, all experts in parallel (beat
r: entry r of every queue, with valid bits).  Tokens: real gate logits of golden-model runs, plus
edge cases (equal logits: ties in the top-k go to the lower expert; calls where one expert wins
every token; calls where some experts are never chosen: empty queues; the extreme codes; huge
spreads where exp underflows) and random logits.
"""
from __future__ import annotations

import cocotb
import numpy as np

from edgemoe.golden.apfixed import Fx
from edgemoe.golden.units.moe_route import topk_by_logit
from edgemoe.golden.units.softmax import softmax_fixed

from ._util import Checker, Env, Watchdog, golden_taps, make_stream, pack, start, stream_phase, unpack


def _calls(env: Env, n: int) -> list:
    """Calls: [tokens, E] raw logits, n tokens in all."""
    c = env.ctx
    E, T, lt = c["E"], c["max_t"], c["logit_t"]
    real = golden_taps(env)["gate_logits"]
    rng = env.rng
    one = 1 << lt.F
    lo, hi = lt.min_raw, lt.max_raw
    ar = np.arange(E)

    def one_wins(t, w):                                   # expert w wins every token
        x = rng.integers(-2 * one, 2 * one, (t, E))
        x[:, w] = 4 * one + rng.integers(0, one, t)
        return x

    def some_empty(t):                                    # experts >= 2 (or 0, 1) never chosen
        x = rng.integers(-one, one, (t, E))
        win = [0, 1] if rng.random() < 0.5 else [E - 2, E - 1]
        x[:, win] += 6 * one
        return x
    edges = [np.zeros((T, E)), np.full((T, E), hi), np.full((T, E), lo), np.tile(ar * 0 + 3 * one, (T, 1)),
             np.tile(np.where(ar % 2, hi, lo), (T, 1)), np.tile(np.where(ar % 2, lo, hi), (T, 1)),
             np.tile(ar * one, (T, 1)), np.tile(-ar * one, (T, 1)), one_wins(T, E - 1), one_wins(T, 0),
             some_empty(T), some_empty(T), np.zeros((1, E)), np.tile(np.where(ar == E - 1, one, 0), (1, 1)),
             rng.integers(-2, 3, (T, E)) * one, np.tile(np.where(ar < 2, hi, hi - 1), (T, 1))]
    calls, left = [], n
    for e in edges:
        if left < len(e) or len(calls) >= max(n // (4 * T), 1):
            break
        calls.append(np.asarray(e, dtype=np.int64))
        left -= len(e)
    while left > 0:
        t = min(left, T if rng.random() < 0.6 else int(rng.integers(1, T + 1)))
        u = rng.random()
        if u < 0.7 and len(real):
            x = real[rng.integers(len(real), size=t)]
        elif u < 0.78:
            x = one_wins(t, int(rng.integers(E)))
        elif u < 0.86:
            x = some_empty(t)
        elif u < 0.93:                                    # ties
            x = rng.integers(-2, 2, (t, E)) * one
        else:
            x = rng.integers(lo, hi, (t, E), endpoint=True)
        calls.append(np.asarray(x, dtype=np.int64))
        left -= t
    return [np.clip(x, lo, hi) for x in calls]     # multiples of `one` may leave a narrow type


def _expected(env: Env, calls: list) -> list:
    """Per call: the lane words of its output beats, beat by beat (E lanes per beat)."""
    c = env.ctx
    E, K, tw, scw = c["E"], c["K"], c["tw"], c["scw"]
    allx = np.concatenate(calls)
    probs = softmax_fixed(Fx(allx, c["logit_t"]), env.prec, start=None, out_t=c["score_t"]).raw
    idx = topk_by_logit(allx, K)
    out, base = [], 0
    for x in calls:
        t = len(x)
        queues = []
        for e in range(E):
            tok, slot = np.nonzero(idx[base:base + t] == e)
            queues.append([(1 << (scw + tw)) | (int(k) << scw) | (int(probs[base + k, e]) & ((1 << scw) - 1))
                           for k in tok])
        base += t
        n = max(len(q) for q in queues)
        out.append([q[r] if r < len(q) else 0 for r in range(n) for q in queues])
    return out


@cocotb.test()
async def moe_route_bench(dut):
    env = Env("moe_route")
    c = env.ctx
    E, lt = c["E"], c["logit_t"]
    in_sb, out_sb, il, ol = c["in_sb"], c["out_sb"], c["in_lane"], c["out_lane"]
    n = max(env.vectors, 1)
    calls = _calls(env, n)
    wd = Watchdog(dut, env, env.limit(400 + 20 * n))
    src = make_stream(dut, "in_r", in_sb, True, wd)
    snk = make_stream(dut, "out_r", out_sb, False, wd)
    await start(dut, env)
    cocotb.start_soon(wd.run())
    chk = Checker(dut, "moe_route")

    def phase(cs, pause):
        want = _expected(env, cs)
        frames = [[pack(row, lt.W, il) for row in x] for x in cs]

        def collect(_i, k, fr):
            got = [w for beat in fr.tdata for w in unpack(beat, E, ol, ol, False)]
            chk.check(got, want[k], f"call {k}")
        return stream_phase(dut, env, [(src, frames)], [(snk, len(frames))], pause, collect)

    cycles = await phase(calls, 0.3)
    # throughput: real logits in calls of the model's length, no gaps, no backpressure
    real = golden_taps(env)["gate_logits"]
    T = c["max_t"]
    n_tp = max(min(n, 2000), 200)
    tp = [np.asarray(real[np.arange(i, i + T) % len(real)], dtype=np.int64) for i in range(0, n_tp, T)]
    tp_items = sum(len(x) for x in tp)
    tp_cycles = await phase(tp, 0.0)
    lat_cycles = await phase([tp[0][:1]], 0.0)          # a one-token call through the empty unit
    # out_beats: a call's output beats = its longest expert queue (E entries per beat)
    workload = dict(calls=len(tp), tokens=[len(x) for x in tp], experts=E, top_k=c["K"],
                    out_beats=[len(w) // E for w in _expected(env, tp)], exp_depth=c["e"]["depth"],
                    divider_steps=c["s"]["div_steps"], latency_cycles=lat_cycles)
    wd.note()
    env.write_result(vectors=n, items=n, entries=chk.items, mismatches=chk.mismatches, cycles=cycles,
                     bp_items_per_cycle=n / max(cycles, 1), items_per_cycle=tp_items / max(tp_cycles, 1),
                     throughput_cycles=tp_cycles, throughput_items=tp_items, throughput_workload=workload,
                     last_handshake=wd.last)
    assert chk.mismatches == 0, f"moe_route: {chk.mismatches} mismatching queue entries of {chk.items}"
