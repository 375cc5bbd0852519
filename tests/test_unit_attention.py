"""The tests of the attention unit: golden/units/attention.py, hls/include/attention.h; edgemoe/units/attention.py.

Its golden fixed-point model against the float counterpart (and exact integer maths);
the HLS unit against the golden unit, bit for bit (the ``lib`` fixture of conftest.py: one shared
library per precision; the set-up in hls_unit_lib.py).
``pytest tests -k attention`` runs every test of the unit.
"""
from __future__ import annotations

import numpy as np
import pytest

from edgemoe.golden.apfixed import Fx
from edgemoe.golden.precision import base_precision
from edgemoe.golden.units import attention, softmax

from hls_unit_lib import SPEC, DESIGN, _rng, rand_raw, assert_same, block_types


W16 = base_precision("w16a32")


# ------------------------------------------------------------------------------------------------
# the golden fixed-point model (test_units_fixed.py)
# ------------------------------------------------------------------------------------------------
def test_attention_close_to_float():
    rng = np.random.default_rng(5)
    q, k, v = (rng.normal(0, 1, (3, 33, 64)) for _ in range(3))
    qt = W16.t("qkv")
    qq, kq, vq = (Fx.from_float(a, qt) for a in (q, k, v))
    scale = int(W16.t("scale").quantize(64 ** -0.5))
    taps = {}
    out = attention.attention_fixed(qq, kq, vq, scale, W16, 4, taps).to_float()
    ref, probs = attention.attention_float(qq.to_float(), kq.to_float(), vq.to_float(), 0.125)
    assert np.abs(out - ref).max() < 1e-3
    assert np.abs(taps["attn_probs"].to_float() - probs).max() < 1e-4


def test_w8a8_peaked_scores_are_not_clipped_before_the_scale():
    """Issue 14: q.k is held in the ``qk`` type before the 1/sqrt(head_dim) scale, so peaked scores of
    trained models (q.k ~ 144 at head_dim 64, score 18) survive; the 16-bit score type (+-32) would
    clip q.k at 32 and the score at 4."""
    w8 = base_precision("w8a8")
    assert w8.t("qk").I > w8.t("score").I and W16.t("qk") == W16.t("score")
    qt = w8.t("qkv")
    q = np.full((1, 2, 64), 1.5)
    q[0, 1] = -1.5
    qq = Fx.from_float(q, qt)
    scale = int(w8.t("scale").quantize(64 ** -0.5))
    taps = {}
    attention.attention_fixed(qq, qq, qq, scale, w8, 4, taps)
    s = taps["scores"].to_float()[0]
    assert np.allclose(s, [[18.0, -18.0], [-18.0, 18.0]])


# ------------------------------------------------------------------------------------------------
# the HLS unit against the golden unit (test_hls_units.py)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_tok", [1, 4, 5, 9])
def test_attention(lib, n_tok):
    prec = lib.prec
    scale_raw = int(prec.t("scale").quantize(SPEC.scale))
    for block in (0, 1):
        d, t = block_types(lib, block)
        rng = _rng(20 + n_tok + block)
        qkv = rand_raw(rng, t["qkv"], (n_tok, 3 * SPEC.embed), 1.5)
        if n_tok > 2:
            qkv[1] = rand_raw(rng, t["qkv"], 3 * SPEC.embed)   # whole range: saturated scores
        got = lib.attention(qkv, d["D_QKV"], d["D_ATTN_OUT"])
        q = Fx(qkv, t["qkv"])
        qh, kh, vh = (attention.split_heads(q[:, j * SPEC.embed:(j + 1) * SPEC.embed], SPEC.heads) for j in range(3))
        want = attention.attention_fixed(qh, kh, vh, scale_raw, prec, DESIGN.attn_rows, out_t=t["attn_out"]).raw
        assert_same(got, want, f"attention T={n_tok} block {block}")


def test_attention_skew_matters(lib):
    """The unit follows the skewed order: a golden run without the skew differs somewhere."""
    prec = lib.prec
    d, t = block_types(lib, 0)
    rng = _rng(30)
    scale_raw = int(prec.t("scale").quantize(SPEC.scale))
    qkv = rand_raw(rng, t["qkv"], (SPEC.tokens, 3 * SPEC.embed), 3.0)
    got = lib.attention(qkv, d["D_QKV"], d["D_ATTN_OUT"])
    q = Fx(qkv, t["qkv"])
    qh, kh, vh = (attention.split_heads(q[:, j * SPEC.embed:(j + 1) * SPEC.embed], SPEC.heads) for j in range(3))
    skewed = attention.attention_fixed(qh, kh, vh, scale_raw, prec, DESIGN.attn_rows, out_t=t["attn_out"]).raw
    assert_same(got, skewed, "attention")
    scores = Fx(rand_raw(rng, prec.t("score"), (64, SPEC.tokens), 3.0), prec.t("score"))
    a = softmax.online_softmax_fixed(scores, prec, start=np.arange(64) % 4)[2]
    b = softmax.online_softmax_fixed(scores, prec, start=None)[2]
    assert np.any(a != b)  # the order changes the running sum: it is part of the spec
