"""The tests of the linear unit (the engine): golden/units/linear.py, hls/include/linear.h, hls/rtl/linear.v.j2;
edgemoe/units/linear.py.

Its golden fixed-point model against the float counterpart (and exact integer maths);
the HLS unit against the golden unit, bit for bit (the ``lib`` fixture of conftest.py: one shared
library per precision; the set-up in hls_unit_lib.py).  The RTL unit's tests are
parametrized by unit name (test_rtl_lint.py, test_rtl_sim.py, test_rtl_w8a8.py, test_unit_tops.py):
``pytest tests -k linear`` runs them all.
"""
from __future__ import annotations

import numpy as np
import pytest

from edgemoe.golden.apfixed import Fx
from edgemoe.golden.precision import base_precision
from edgemoe.golden.units import gelu, linear
from edgemoe.codegen.unit_harness import BIAS_QKV, LIN_ACT, LIN_GELU, LIN_QKV, LIN_SCATTER

from hls_unit_lib import SPEC, _rng, rand_raw, assert_same, block_types


W16 = base_precision("w16a32")


# ------------------------------------------------------------------------------------------------
# the golden fixed-point model (test_units_fixed.py)
# ------------------------------------------------------------------------------------------------
def test_linear_is_exact_integer_arithmetic():
    rng = np.random.default_rng(4)
    x = Fx.from_float(rng.normal(0, 3, (5, 96)), W16.t("ln_out"))
    w = Fx.from_float(rng.normal(0, .3, (7, 96)), W16.t("w"))
    b = Fx.from_float(rng.normal(0, .3, 7), W16.t("b"))
    out_t = W16.t("act")
    y = linear.linear_fixed(x, w, b, W16, out_t)
    acc_f = x.t.F + w.t.F
    for i in range(5):
        for o in range(7):
            acc = sum(int(a) * int(c) for a, c in zip(x.raw[i], w.raw[o])) + (int(b.raw[o]) << (acc_f - b.t.F))
            assert y.raw[i, o] == acc >> (acc_f - out_t.F)  # truncation = floor
    ref = linear.linear_float(x.to_float(), w.to_float(), b.to_float())
    assert np.abs(y.to_float() - ref).max() <= out_t.lsb


# ------------------------------------------------------------------------------------------------
# the HLS unit against the golden unit (test_hls_units.py)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("block", [0, 1])
def test_linear_plain_gelu_and_bias_kinds(lib, block):
    prec = lib.prec
    d, t = block_types(lib, block)
    rng = _rng(6 + block)
    # qkv: ln1 x w_qkv + qkv_b -> qkv
    x = rand_raw(rng, t["ln1"], (9, SPEC.embed), 1.0)
    x[0] = rand_raw(rng, t["ln1"], SPEC.embed)        # whole range: saturating outputs
    w = rand_raw(rng, t["w_qkv"], (3 * SPEC.embed, SPEC.embed), 0.4)
    w[0] = t["w_qkv"].max_raw
    bq = rand_raw(rng, prec.t("qkv_b"), 3 * SPEC.embed, 0.5)
    got = lib.linear(LIN_QKV, x, w, bq, bias_kind=BIAS_QKV, d_x=d["D_LN1"], d_w=d["D_W_QKV"], d_y=d["D_QKV"])
    want = linear.linear_fixed(Fx(x, t["ln1"]), Fx(w, t["w_qkv"]), Fx(bq, prec.t("qkv_b")), prec, t["qkv"]).raw
    assert_same(got, want, "linear qkv")
    # proj: attn_out x w_proj + b -> act
    x = rand_raw(rng, t["attn_out"], (7, SPEC.embed), 1.0)
    w = rand_raw(rng, t["w_proj"], (SPEC.embed, SPEC.embed))
    b = rand_raw(rng, prec.t("b"), SPEC.embed)
    got = lib.linear(LIN_ACT, x, w, b, d_x=d["D_ATTN_OUT"], d_w=d["D_W_PROJ"])
    want = linear.linear_fixed(Fx(x, t["attn_out"]), Fx(w, t["w_proj"]), Fx(b, prec.t("b")), prec, prec.t("act")).raw
    assert_same(got, want, "linear proj")
    # fc1 + fused GELU: ln2 x w_fc1 + b -> gelu_in -> hidden
    hid = SPEC.expert_hidden if SPEC.is_moe(block) else SPEC.mlp_hidden
    x = rand_raw(rng, t["ln2"], (9, SPEC.embed), 1.0)
    w = rand_raw(rng, t["w_fc1"], (hid, SPEC.embed), 0.5)
    b = rand_raw(rng, prec.t("b"), hid, 0.5)
    got = lib.linear(LIN_GELU, x, w, b, d_x=d["D_LN2"], d_w=d["D_W_FC1"], d_y=d["D_HIDDEN"])
    h = linear.linear_fixed(Fx(x, t["ln2"]), Fx(w, t["w_fc1"]), Fx(b, prec.t("b")), prec, prec.t("gelu_in"))
    want = gelu.gelu_fixed(h, prec, out_t=t["hidden"]).raw
    assert_same(got, want, "linear fc1+gelu")
    # fc2 with a wide input (MAX_IN_DIM) and the whole weight range (accumulator wrap in w8a8)
    x = rand_raw(rng, t["hidden"], (9, hid))
    w = rand_raw(rng, t["w_fc2"], (SPEC.embed, hid))
    b = rand_raw(rng, prec.t("b"), SPEC.embed)
    got = lib.linear(LIN_ACT, x, w, b, d_x=d["D_HIDDEN"], d_w=d["D_W_FC2"])
    want = linear.linear_fixed(Fx(x, t["hidden"]), Fx(w, t["w_fc2"]), Fx(b, prec.t("b")), prec, prec.t("act")).raw
    assert_same(got, want, "linear fc2")


def test_scatter_saturates_and_repeats(lib):
    """Scatter accumulate onto a nonzero output with full-range scores, repeated gather indices."""
    prec = lib.prec
    d, t = block_types(lib, 1)
    rng = _rng(11)
    T, D, H = SPEC.tokens, SPEC.embed, SPEC.expert_hidden
    x = rand_raw(rng, t["ln2"], (T, D))
    tok = np.array([0, 3, 3, 8, 5], dtype=np.int64)      # gather may repeat; scatter targets distinct rows
    sc_t = prec.t("gate_score")
    score = Fx(rand_raw(rng, sc_t, len(tok)), sc_t)
    score.raw[0] = sc_t.max_raw
    w1 = rand_raw(rng, t["w_fc1"], (1, H, D))
    b1 = rand_raw(rng, prec.t("b"), (1, H))
    w2 = rand_raw(rng, t["w_fc2"], (1, D, H))
    b2 = rand_raw(rng, prec.t("b"), (1, D))
    out0 = rand_raw(rng, prec.t("act"), (T, D))
    h = lib.linear(LIN_GELU, x, w1[0], b1[0], gather=tok, d_x=d["D_LN2"], d_w=d["D_W_FC1"], d_y=d["D_HIDDEN"])
    href = gelu.gelu_fixed(linear.linear_fixed(Fx(x[tok], t["ln2"]), Fx(w1[0], t["w_fc1"]), Fx(b1[0], prec.t("b")),
                                               prec, prec.t("gelu_in")), prec, out_t=t["hidden"]).raw
    assert_same(h, href, "gathered fc1")
    stok = np.array([0, 3, 4, 8, 5], dtype=np.int64)
    got = lib.linear(LIN_SCATTER, h, w2[0], b2[0], scatter=stok, score=score.raw, y_in=out0,
                     d_x=d["D_HIDDEN"], d_w=d["D_W_FC2"])
    act = prec.t("act")
    y = linear.linear_fixed(Fx(href, t["hidden"]), Fx(w2[0], t["w_fc2"]), Fx(b2[0], prec.t("b")), prec, act)
    contrib = (Fx(score.raw[:, None], sc_t) * y).cast(act)
    want_rows = out0.copy()
    for j, dst in enumerate(stok):
        want_rows[dst] = (Fx(want_rows[dst], act) + contrib[j]).cast(act).raw
    assert_same(got, want_rows, "scatter")
