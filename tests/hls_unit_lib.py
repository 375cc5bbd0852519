"""What the HLS unit tests share (test_hls_units.py, test_unit_<unit>.py): the micro preset, the
precisions (w16a32, and w8a8 with per-tensor overrides so that the runtime scale offsets are
exercised), random raw codes, the bit-for-bit comparison and the checks that several tests run.
The compiled units (the ``lib`` fixture, one shared library per precision) are in conftest.py."""
from __future__ import annotations

import numpy as np

from edgemoe.codegen.unit_harness import LIN_GELU, LIN_SCATTER
from edgemoe.design import get_design
from edgemoe.golden.apfixed import FixedType, Fx
from edgemoe.golden.precision import base_precision
from edgemoe.golden.units import attention, gelu, layernorm, linear, moe_route, softmax
from edgemoe.spec import get_preset

SPEC = get_preset("micro")
DESIGN = get_design("edge-moe")


def _s8(i: int) -> FixedType:
    return FixedType(8, i, True, "AP_RND", "AP_SAT")


def _w8a8_overrides() -> dict:
    """Calibration-like overrides: every calibrated role moves its binary point in some block."""
    k = lambda i, n: f"backbone.blocks.{i}.{n}"  # noqa: E731
    return {
        k(0, "ln1.ln_out"): _s8(2), k(0, "attn.qkv.w"): _s8(0), k(0, "attn.qkv"): _s8(5),
        k(0, "attn_out.attn_out"): _s8(3), k(0, "attn.proj.w"): _s8(2), k(0, "ln2.ln_out"): _s8(4),
        k(0, "mlp.fc1.w"): _s8(2), k(0, "mlp.hidden"): _s8(2), k(0, "mlp.fc2.w"): _s8(0),
        k(1, "ln1.ln_out"): _s8(4), k(1, "attn.qkv"): _s8(3), k(1, "attn_out.attn_out"): _s8(5),
        k(1, "ln2.ln_out"): _s8(2), k(1, "mlp.gate.gate_w"): _s8(0),
        k(1, "mlp.experts.htoh4.w"): _s8(0), k(1, "mlp.experts.hidden"): _s8(4),
        k(1, "mlp.experts.h4toh.w"): _s8(2),
        k(3, "mlp.gate.gate_w"): _s8(2), k(3, "mlp.experts.hidden"): _s8(2),
    }


PRECS = {"w16a32": base_precision("w16a32"),
         "w8a8": base_precision("w8a8").with_overrides(_w8a8_overrides())}


def _rng(seed):
    return np.random.default_rng(seed)


def rand_raw(rng, t: FixedType, shape, scale=None):
    """Raw codes: uniform over the whole type (scale None) or quantised normal(0, scale) values."""
    if scale is None:
        return rng.integers(t.min_raw, t.max_raw, size=shape, endpoint=True, dtype=np.int64)
    return t.quantize(rng.normal(0.0, scale, shape))


def assert_same(got, want, what=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    bad = np.argwhere(got != want)
    assert len(bad) == 0, f"{what}: {len(bad)} mismatches of {got.size}; first at {bad[0].tolist()}: " \
                          f"C++ {got[tuple(bad[0])]} vs Python {want[tuple(bad[0])]}"


def block_types(lib, block):
    """(deltas, actual types) of ``block`` as the compiled tables say, with the types they imply."""
    prec = lib.prec
    d = lib.block_deltas(block)
    lin = prec.types["ln_out"]

    def shifted(t, delta):
        return FixedType(t.W, t.I - delta, t.signed, t.Q, t.O)
    types = dict(ln1=shifted(lin, d["D_LN1"]), ln2=shifted(lin, d["D_LN2"]),
                 attn_out=shifted(lin, d["D_ATTN_OUT"]), hidden=shifted(lin, d["D_HIDDEN"]),
                 qkv=shifted(prec.types["qkv"], d["D_QKV"]), w_qkv=shifted(prec.types["w"], d["D_W_QKV"]),
                 w_proj=shifted(prec.types["w"], d["D_W_PROJ"]), w_fc1=shifted(prec.types["w"], d["D_W_FC1"]),
                 w_fc2=shifted(prec.types["w"], d["D_W_FC2"]),
                 gate_w=shifted(prec.types["gate_w"], d["D_GATE_W"]))
    return d, types


def _check_layernorm(lib, spec, seed=5):
    """Every row kind, every output scale the compiled tables use, and calls of 1, 2 and 3 rows (the
    three overlapped passes' first and last rows: with 3 rows all three run at once in one step)."""
    prec = lib.prec
    act, lp = prec.t("act"), prec.t("ln_param")
    rng = _rng(seed)
    x = rand_raw(rng, act, (spec.tokens, spec.embed), 1.5)
    x[1] = rand_raw(rng, act, spec.embed)            # whole range
    x[2] = x[2, 0]                                   # constant row: variance 0, eps only
    x[3] = act.quantize(rng.normal(0, 1e-3, spec.embed))  # tiny
    x[4, ::2], x[4, 1::2] = act.max_raw, act.min_raw  # saturated extremes
    g, b = rand_raw(rng, lp, spec.embed, 1.0), rand_raw(rng, lp, spec.embed, 0.5)
    g[:3] = [lp.max_raw, lp.min_raw, 0]
    for d in sorted(set(lib.deltas["D_LN1"] + lib.deltas["D_LN2"])):
        lin = prec.types["ln_out"]
        out_t = FixedType(lin.W, lin.I - d, True, lin.Q, lin.O)
        want = layernorm.layernorm_fixed(Fx(x, act), Fx(g, lp), Fx(b, lp), prec, spec.ln_eps, out_t=out_t).raw
        assert_same(lib.layernorm(x, g, b, d), want, f"layernorm d_out={d}")
        for rows in (slice(1, 2), slice(3, 5), slice(2, 5)):
            assert_same(lib.layernorm(x[rows], g, b, d), want[rows], f"layernorm d_out={d} rows {rows}")


def _expert_reference(prec, t, ln2, w1, b1, w2, b2, queues, out0):
    """fixed_model._moe's expert loop for given queues."""
    act = prec.t("act")
    out = Fx(out0.copy(), act)
    for e, (tok, score) in enumerate(queues):
        if len(tok) == 0:
            continue
        h = linear.linear_fixed(Fx(ln2[tok], t["ln2"]), Fx(w1[e], t["w_fc1"]), Fx(b1[e], prec.t("b")), prec,
                                prec.t("gelu_in"))
        h = gelu.gelu_fixed(h, prec, out_t=t["hidden"])
        y = linear.linear_fixed(h, Fx(w2[e], t["w_fc2"]), Fx(b2[e], prec.t("b")), prec, act)
        contrib = (Fx(score.raw[:, None], score.t) * y).cast(act)
        out.raw[tok] = (out[tok] + contrib).cast(act).raw
    return out.raw


def _run_experts(lib, d, ln2, w1, b1, w2, b2, queues, out0):
    y = out0.copy()
    for e, (tok, score) in enumerate(queues):
        if len(tok) == 0:
            continue
        h = lib.linear(LIN_GELU, ln2, w1[e], b1[e], gather=tok, d_x=d["D_LN2"], d_w=d["D_W_FC1"], d_y=d["D_HIDDEN"])
        y = lib.linear(LIN_SCATTER, h, w2[e], b2[e], scatter=tok, score=score, y_in=y,
                       d_x=d["D_HIDDEN"], d_w=d["D_W_FC2"])
    return y


def _check_attention(lib, spec, n_toks, seed):
    prec = lib.prec
    scale_raw = int(prec.t("scale").quantize(spec.scale))
    d, t = block_types(lib, 1)
    for n_tok in n_toks:
        rng = _rng(seed + n_tok)
        qkv = rand_raw(rng, t["qkv"], (n_tok, 3 * spec.embed), 1.5)
        if n_tok > 2:
            qkv[1] = rand_raw(rng, t["qkv"], 3 * spec.embed)   # whole range: saturated scores
        got = lib.attention(qkv, d["D_QKV"], d["D_ATTN_OUT"], d["D_PROB"])
        q = Fx(qkv, t["qkv"])
        qh, kh, vh = (attention.split_heads(q[:, j * spec.embed:(j + 1) * spec.embed], spec.heads) for j in range(3))
        prob_t = prec.t("prob", tensor="backbone.blocks.1.attn")
        want = attention.attention_fixed(qh, kh, vh, scale_raw, prec, lib.design.attn_rows, out_t=t["attn_out"],
                                         prob_t=prob_t).raw
        assert_same(got, want, f"attention T={n_tok} rows={lib.design.attn_rows} lanes={lib.design.attn_lanes}")


def _route_from_logits(lg: Fx, prec, k: int) -> dict:
    """The golden route after the gate (route_fixed's softmax, top-k and queues) from given logits."""
    probs = softmax.softmax_fixed(lg, prec, start=None, out_t=prec.t("gate_score"))
    idx = moe_route.topk_by_logit(lg.raw, k)
    score = np.take_along_axis(probs.raw, idx, -1)
    queues = []
    for e in range(lg.shape[-1]):
        tok, slot = np.nonzero(idx == e)
        queues.append((tok, score[tok, slot]))
    return dict(probs=probs.raw, topk_idx=idx, topk_score=score, queues=queues)


def _check_route_logits(lib, spec, seed=0):
    """moe_route_unit from given logits: tokens in interleaved groups (ROUTE_GROUP), partial last groups,
    whole-range (saturated) logits, ties, rows whose running max moves at every expert."""
    prec = lib.prec
    lt = prec.t("gate_logit")
    rng = _rng(seed)
    E, T = spec.num_experts, spec.tokens
    lg = rand_raw(rng, lt, (T, E))
    lg[0] = 0                                           # all tied: experts 0, 1 first
    lg[1 % T] = np.arange(E)[::-1] * (lt.max_raw // E)  # decreasing: the max never moves
    lg[2 % T] = np.arange(E) * (lt.max_raw // E) - lt.max_raw // 2   # increasing: a new max at every expert
    lg[3 % T] = lt.min_raw
    lg[3 % T, -1] = lt.max_raw                          # one huge logit, the rest at the bottom
    lg[4 % T, ::2] = lg[4 % T, 0]                       # ties among the even experts
    for n_tok in sorted({1, 3, 4, 5, T - 1, T} & set(range(1, T + 1))):
        r = lib.route_logits(lg[:n_tok])
        want = _route_from_logits(Fx(lg[:n_tok], lt), prec, spec.top_k)
        what = f"route T={n_tok}"
        assert_same(r["probs"], want["probs"], f"{what} probs")
        assert_same(r["topk_idx"], want["topk_idx"], f"{what} top-k index")
        assert_same(r["topk_score"], want["topk_score"], f"{what} top-k score")
        for e in range(E):
            assert_same(r["queues"][e][0], want["queues"][e][0], f"{what} queue {e} tokens")
            assert_same(r["queues"][e][1], want["queues"][e][1], f"{what} queue {e} scores")
        assert r["queue_len"].sum() == n_tok * spec.top_k
    if T > 1:
        assert list(lib.route_logits(lg[:1])["topk_idx"][0]) == list(range(spec.top_k))


def _check_residual(lib, seed=50):
    prec = lib.prec
    act, sc = prec.t("act"), prec.t("gate_score")
    rng = _rng(seed)
    n = 2000 + lib.sizes["tokens"] * lib.sizes["embed"]   # a tail that is not a whole lane group
    x, y = rand_raw(rng, act, n), rand_raw(rng, act, n)
    x[:4] = [act.max_raw, act.min_raw, act.max_raw, 0]
    y[:4] = [act.max_raw, act.min_raw, 1, act.min_raw]
    assert_same(lib.residual(x, y), (Fx(x, act) + Fx(y, act)).cast(act).raw, "residual")
    s = rand_raw(rng, sc, n)
    want = (Fx(x, act) + (Fx(s, sc) * Fx(y, act)).cast(act)).cast(act).raw
    assert_same(lib.residual(x, y, score=s), want, "score multiply-accumulate")

