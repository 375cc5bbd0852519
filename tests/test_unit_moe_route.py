"""The tests of the MoE router: golden/units/moe_route.py, hls/include/moe_route.h, hls/rtl/moe_route.v.j2;
edgemoe/units/moe_route.py.

Its golden fixed-point model against the float counterpart (and exact integer maths);
the HLS unit against the golden unit, bit for bit (the ``lib`` fixture of conftest.py: one shared
library per precision; the set-up in hls_unit_lib.py).  The RTL unit's tests are
parametrized by unit name (test_rtl_lint.py, test_rtl_sim.py, test_rtl_w8a8.py, test_unit_tops.py):
``pytest tests -k moe_route`` runs them all.
"""
from __future__ import annotations

import numpy as np
import pytest

from edgemoe.golden.apfixed import Fx
from edgemoe.golden.precision import base_precision
from edgemoe.golden.units import moe_route

from hls_unit_lib import (SPEC, _rng, rand_raw, assert_same, block_types, _expert_reference, _run_experts,
                          _check_route_logits)


W16 = base_precision("w16a32")


# ------------------------------------------------------------------------------------------------
# the golden fixed-point model (test_units_fixed.py)
# ------------------------------------------------------------------------------------------------
def test_moe_route_queues_topk_and_ties():
    prec = W16
    # token 0: experts 1 and 2 tie for first -> lower index first; token 2 sends all to expert 3
    logits = np.array([[0.0, 2.0, 2.0, 1.0], [3.0, -1.0, 0.5, 0.2], [0.0, 0.0, 0.0, 9.0]])
    idx = moe_route.topk_by_logit(Fx.from_float(logits, prec.t("gate_logit")).raw, 2)
    assert idx.tolist() == [[1, 2], [0, 2], [3, 0]]
    rng = np.random.default_rng(6)
    x = Fx.from_float(rng.normal(0, 1, (40, 32)), prec.t("ln_out"))
    wg = Fx.from_float(rng.normal(0, 32 ** -.5, (4, 32)), prec.t("gate_w"))
    r = moe_route.route_fixed(x, wg, prec, 2)
    counts = np.zeros(40, int)
    for e, (tok, score) in enumerate(r.queues):
        assert np.all(np.diff(tok) > 0)  # token order inside a queue
        assert np.array_equal(score.raw, r.probs.raw[tok, e])  # weight = full-softmax probability
        counts[tok] += 1
    assert np.all(counts == 2)
    p, fidx, fscore = moe_route.route_float(x.to_float(), wg.to_float().T, 2)
    assert np.array_equal(np.sort(fidx, 1), np.sort(r.topk_idx, 1))
    assert np.abs(r.topk_score.to_float() - fscore).max() < 1e-4
    assert not np.allclose(r.topk_score.to_float().sum(1), 1)  # not renormalised over the top-k


def test_moe_route_empty_experts_when_one_dominates():
    prec = W16
    x = Fx.from_float(np.ones((10, 8)), prec.t("ln_out"))
    wg = Fx.from_float(np.array([[0.5] * 8, [0.1] * 8, [-0.5] * 8]), prec.t("gate_w"))
    r = moe_route.route_fixed(x, wg, prec, 1)
    assert [len(t) for t, _ in r.queues] == [10, 0, 0]


# ------------------------------------------------------------------------------------------------
# the HLS unit against the golden unit (test_hls_units.py)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["random", "one_expert", "ties"])
def test_moe_route_and_experts(lib, case):
    prec = lib.prec
    block = 1
    d, t = block_types(lib, block)
    rng = _rng(10)
    T, E, D, H = SPEC.tokens, SPEC.num_experts, SPEC.embed, SPEC.expert_hidden
    x = rand_raw(rng, t["ln2"], (T, D), 1.0)
    wg = rand_raw(rng, t["gate_w"], (E, D), 0.5)
    if case == "one_expert":
        # expert 2 first for every token, and expert 0 second: experts 1 and 3 get no tokens
        x = np.minimum(np.abs(x), t["ln2"].max_raw)
        wg[:] = 0
        wg[2] = t["gate_w"].max_raw
        wg[0] = t["gate_w"].max_raw // 2
    elif case == "ties":
        wg[3] = wg[1]                       # experts 1 and 3 always tie: 1 must win
        wg[2] = wg[0]
        x[0] = 0                            # token 0: all logits 0 -> experts 0 and 1
    r = lib.moe_route(x, wg, d["D_LN2"], d["D_GATE_W"])
    R = moe_route.route_fixed(Fx(x, t["ln2"]), Fx(wg, t["gate_w"]), prec, SPEC.top_k)
    assert_same(r["logits"], R.logits.raw, "gate logits")
    assert_same(r["probs"], R.probs.raw, "gate probs")
    assert_same(r["topk_idx"], R.topk_idx, "top-k index")
    assert_same(r["topk_score"], R.topk_score.raw, "top-k score")
    for e in range(E):
        assert_same(r["queues"][e][0], R.queues[e][0], f"queue {e} tokens")
        assert_same(r["queues"][e][1], R.queues[e][1].raw, f"queue {e} scores")
        # the slot of an entry: how many of the token's experts come before e in expert order (the
        # experts' outputs, written into their slots, then add up in the golden model's order)
        for j, tok in enumerate(r["queues"][e][0]):
            want_slot = int(np.sum(R.topk_idx[tok] < e))
            assert r["queue_slot"][e][j] == want_slot, (e, j, tok, R.topk_idx[tok])
    if case == "one_expert":
        assert list(r["queue_len"]) == [T, 0, T, 0]
    if case == "ties":
        assert list(r["topk_idx"][0]) == [0, 1]
        for row in r["topk_idx"].tolist():        # a tied higher index only ever after its twin
            for lo, hi in ((1, 3), (0, 2)):
                if hi in row:
                    assert lo in row and row.index(lo) < row.index(hi), row
    # the experts over the queues: gather, fc1 + GELU, fc2, scatter score * y
    w1 = rand_raw(rng, t["w_fc1"], (E, H, D), 0.5)
    b1 = rand_raw(rng, prec.t("b"), (E, H), 0.3)
    w2 = rand_raw(rng, t["w_fc2"], (E, D, H), 0.5)
    b2 = rand_raw(rng, prec.t("b"), (E, D), 0.3)
    out0 = np.zeros((T, D), dtype=np.int64)
    got = _run_experts(lib, d, x, w1, b1, w2, b2, r["queues"], out0)
    want = _expert_reference(prec, t, x, w1, b1, w2, b2, R.queues, out0)
    assert_same(got, want, "experts")


def test_route_interleaved_softmax(lib):
    """The route's softmax runs ROUTE_GROUP tokens interleaved (expert-major, token-minor): every token
    count (whole and partial groups) gives the golden probabilities, top-k and queues bit for bit."""
    _check_route_logits(lib, SPEC)
