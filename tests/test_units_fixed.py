"""Each hardware unit's fixed-point model against its float counterpart (and exact integer maths)."""
import numpy as np
import pytest

from edgemoe.golden.apfixed import FixedType, Fx
from edgemoe.golden.precision import GELU_RANGE, base_precision, pow2_type
from edgemoe.golden.units import attention, gelu, layernorm, linear, moe_route, patch_embed, softmax

W16 = base_precision("w16a32")
W8 = base_precision("w8a8")


def test_gelu_error_over_minus8_to_8():
    x = np.linspace(-8, 8, 200001)
    y = gelu.gelu_fixed(Fx.from_float(x, W16.t("gelu_in")), W16).to_float()
    err = np.abs(y - gelu.gelu_float(x))
    assert err.max() < 2e-4, err.max()
    assert gelu.table_size() == 177  # [0, 5.5] in steps of 1/32


def test_gelu_is_relu_beyond_table_and_exact_on_grid():
    prec = W16
    x = np.array([-9.0, -GELU_RANGE, GELU_RANGE, 7.25, 100.0])
    y = gelu.gelu_fixed(Fx.from_float(x, prec.t("gelu_in")), prec).to_float()
    assert np.array_equal(y, np.maximum(x, 0))
    # on the table's grid the interpolation adds nothing: y = relu(x) - table[i] exactly
    i = np.arange(0, 176)
    grid = i / 32.0
    y = gelu.gelu_fixed(Fx.from_float(grid, prec.t("gelu_in")), prec)
    tab = gelu.gelu_table(prec)
    expect = (Fx.from_float(grid, prec.t("gelu_in")) - Fx(tab[i], prec.t("gelu_tab"))).cast(prec.t("hidden"))
    assert np.array_equal(y.raw, expect.raw)


def test_gelu_w8a8_within_output_lsb():
    out_t = FixedType(8, 3, True, "AP_RND", "AP_SAT")
    x = np.linspace(-4, 3.9, 5001)
    y = gelu.gelu_fixed(Fx.from_float(x, W8.t("gelu_in")), W8, out_t=out_t).to_float()
    assert np.abs(y - gelu.gelu_float(x)).max() <= out_t.lsb


def test_exp_neg_relative_error():
    d = -np.linspace(0, 20, 40001)
    t = FixedType(33, 11)
    e = softmax.exp_neg_fixed(Fx.from_float(d, t), W16) * W16.t("exp").lsb
    exact = np.exp(Fx.from_float(d, t).to_float())
    assert np.abs(e - exact).max() < 2e-6  # 256-segment interpolation of 2^f
    assert e[0] == 1.0  # exp(0) is exactly one


@pytest.mark.parametrize("scale", [0.5, 2.0, 6.0])
def test_softmax_close_to_exact_for_attention_logits(scale):
    rng = np.random.default_rng(1)
    s = rng.normal(0, scale, (3, 129, 129))  # heads x rows x keys
    p = softmax.softmax_fixed(Fx.from_float(s, W16.t("score")), W16,
                              start=attention.row_start(129, 4)).to_float()
    exact = softmax.softmax_float(Fx.from_float(s, W16.t("score")).to_float())
    assert np.abs(p - exact).max() < 1e-4
    assert np.abs(p.sum(-1) - 1).max() < 1e-3


def test_softmax_running_max_is_the_row_max_and_order_matters_only_in_rounding():
    rng = np.random.default_rng(2)
    s = Fx.from_float(rng.normal(0, 3, (16, 50)), W16.t("score"))
    m0, r0, _ = softmax.online_softmax_fixed(s, W16, start=np.zeros(16, int))
    m1, r1, _ = softmax.online_softmax_fixed(s, W16, start=np.arange(16) % 4)
    assert np.array_equal(m0.raw, s.raw.max(-1)) and np.array_equal(m1.raw, s.raw.max(-1))
    assert np.abs(r0.astype(np.int64) - r1).max() <= 8  # a few LSBs from the visiting order


def test_softmax_single_element_row_is_one():
    s = Fx.from_float(np.array([[3.0]]), W16.t("score"))
    p = softmax.softmax_fixed(s, W16)
    assert p.to_float()[0, 0] == 1.0


def test_rsqrt_relative_error_over_wide_range():
    out_t = W16.t("ln_rstd")
    v = 2.0 ** np.linspace(-18, 18, 5000)
    f = 28
    raw = np.round(v * 2 ** f).astype(np.int64)
    r = out_t.to_float(layernorm.rsqrt_to_type(*layernorm.rsqrt_fixed(raw, f), out_t))
    exact = (raw / 2.0 ** f) ** -0.5
    in_range = exact < 2 ** (out_t.I) * 0.99
    rel = np.abs(r - exact)[in_range] / exact[in_range]
    assert (rel < 1e-5 + out_t.lsb / exact[in_range]).all()


@pytest.mark.parametrize("std", [0.01, 0.5, 8.0])
def test_layernorm_close_to_float(std):
    rng = np.random.default_rng(3)
    x = rng.normal(0.2, std, (20, 192))
    g, b = 1 + rng.normal(0, .1, 192), rng.normal(0, .05, 192)
    pt = W16.t("ln_param")
    gq, bq = Fx.from_float(g, pt), Fx.from_float(b, pt)
    xq = Fx.from_float(x, W16.t("act"))
    y = layernorm.layernorm_fixed(xq, gq, bq, W16).to_float()
    ref = layernorm.layernorm_float(xq.to_float(), gq.to_float(), bq.to_float())
    assert np.abs(y - ref).max() < (2e-5 if std >= 0.1 else 5e-5)  # tiny rows: limited by x's own LSB


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


def test_patch_embed_matches_a_convolution():
    rng = np.random.default_rng(7)
    img = rng.random((3, 32, 48))
    w = rng.normal(0, .02, (8, 3, 16, 16))
    b, cls, pos = rng.normal(0, .02, 8), rng.normal(0, .02, 8), rng.normal(0, .02, (7, 8))
    y = patch_embed.patch_embed_float(img, w, b, cls, pos)
    conv = np.einsum("chwij,ocij->ohw", img.reshape(3, 2, 16, 3, 16).transpose(0, 1, 3, 2, 4), w)
    assert np.allclose(y[1:], conv.reshape(8, -1).T + b + pos[1:])
    prec = W16
    fx = patch_embed.patch_embed_fixed(
        Fx.from_float(patch_embed.patchify(img, 16), prec.t("pixel")), Fx.from_float(w.reshape(8, -1), prec.t("patch_w")),
        Fx.from_float(b, prec.t("bias")), Fx.from_float(cls, prec.t("bias")), Fx.from_float(pos, prec.t("bias")), prec)
    assert np.abs(fx.to_float() - y).max() < 2e-3  # 8-bit pixels, 16-bit weights


def test_pow2_type_holds_the_calibrated_maximum():
    for m in (0.01, 0.9, 1.0, 3.0, 100.0):
        t = pow2_type(m, 8)
        assert t.to_float(t.max_raw) >= m * 0.99 and t.to_float(t.max_raw) < 4 * m
