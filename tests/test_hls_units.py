"""Every HLS unit (hls/include/*.h) against its golden Python unit, bit for bit.

One shared library per precision (module fixtures): w16a32, and w8a8 with per-tensor overrides so
that the runtime scale offsets (D_* tables, ``rescale``) are exercised with nonzero values.  Inputs:
random raw codes over each type's whole range (saturation), realistic values, and edge cases; then
the micro preset's whole encoder chained through the units, compared with the golden fixed model's
taps.  No skips: without g++ or the ap_types headers the fixtures fail with the ToolMissingError text.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from edgemoe.codegen.config_header import render_config, scale_deltas
from edgemoe.design import DESIGNS, Design, board_default, get_design
from edgemoe.codegen.unit_harness import (BIAS_QKV, LIN_ACT, LIN_GELU, LIN_QKV, LIN_SCATTER,
                                          build_unit_library)
from edgemoe.errors import EdgeMoeError
from edgemoe.golden.apfixed import FixedType, Fx
from edgemoe.golden.fixed_model import FixedM3ViT
from edgemoe.golden.precision import GELU_RANGE, base_precision
from edgemoe.golden.units import attention, gelu, layernorm, linear, moe_route, patch_embed, softmax
from edgemoe.golden.units.layernorm import rsqrt_fixed, rsqrt_table
from edgemoe.golden.units.softmax import exp2_table, log2e_raw
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


@pytest.fixture(scope="module", params=list(PRECS))
def lib(request, tmp_path_factory):
    prec = PRECS[request.param]
    return build_unit_library(SPEC, prec, DESIGN, out_dir=tmp_path_factory.mktemp("units"))


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


# ------------------------------------------------------------------------------------------------
# config header and design
# ------------------------------------------------------------------------------------------------
def _header_array(text, name):
    m = re.search(rf"\b{name}\[[A-Z0-9_]+\] = \{{([^}}]*)\}}", text)
    assert m, name
    return [int(v.rstrip("L")) for v in m.group(1).replace("\n", " ").split(",") if v.strip()]


@pytest.mark.parametrize("pname", list(PRECS))
def test_config_header_tables_and_types(pname):
    prec = PRECS[pname]
    text = render_config(SPEC, prec, DESIGN)
    # the GELU table: one initializer macro for the global table and the engine's per-lane copies
    ginit = re.search(r"#define GELU_TABLE_INIT (\{[^}]*\})", text).group(1).replace("\\\n", " ")
    assert [int(v) for v in ginit.strip("{} ").split(",")] == list(gelu.gelu_table(prec))
    assert len(gelu.gelu_table(prec)) == 177
    assert "GELU_TABLE[GELU_TABLE_SIZE] = GELU_TABLE_INIT;" in text
    groms = re.search(r"#define GELU_ROMS_ENGINE_INIT \{(.*?)\}", text, re.S).group(1)
    assert groms.count("GELU_TABLE_INIT") == DESIGN.engine_out
    # the 2^f table: one initializer macro, the global table and the attention unit's copies use it
    init = re.search(r"#define EXP2_TABLE_INIT (\{[^}]*\})", text).group(1).replace("\\\n", " ")
    assert [int(v) for v in init.strip("{} ").split(",")] == list(exp2_table(prec))
    assert len(exp2_table(prec)) == 257
    assert "EXP2_TABLE[EXP2_TABLE_SIZE] = EXP2_TABLE_INIT;" in text
    copies = SPEC.heads * DESIGN.attn_rows
    assert f"#define EXP2_ATTN_COPIES {copies}\n" in text
    roms = re.search(r"#define EXP2_ROMS_ATTN_INIT \{(.*?)\}", text, re.S).group(1)
    assert roms.count("EXP2_TABLE_INIT") == copies
    assert _header_array(text, "RSQRT_TABLE") == list(rsqrt_table())
    assert len(_header_array(text, "RSQRT_TABLE")) == 96
    assert f"#define LOG2E_RAW {log2e_raw()}" in text
    assert f"#define SCALE_RAW {int(prec.t('scale').quantize(SPEC.scale))}" in text
    act = prec.t("act")
    assert f"typedef {act.cpp} act_t;" in text
    for name, value in (("TOKENS", 9), ("EMBED", 32), ("HEADS", 2), ("HEAD_DIM", 16), ("MLP_HIDDEN", 64),
                        ("NUM_EXPERTS", 4), ("EXPERT_HIDDEN", 32), ("TOP_K", 2), ("DEPTH", 4),
                        ("PATCH_DIM", 768), ("NUM_TASKS", 2), ("ENGINE_IN", 16), ("ENGINE_OUT", 16),
                        ("ATTN_ROWS", 4), ("AXI_BITS", 256)):
        assert re.search(rf"#define {name} {value}\b", text), name
    assert "IS_MOE[DEPTH] = {\n    0, 1, 0, 1\n}" in text
    d = scale_deltas(SPEC, prec)
    for name, values in d.items():
        assert _header_array(text, name) == values
    if pname == "w16a32":
        assert "#define RESCALE_SPAN 0" in text
        assert all(v == 0 for vs in d.values() for v in vs)
    else:
        assert d["D_LN1"][0] == 6 - 5 and d["D_QKV"][1] == 5 - 4 and d["D_ATTN_OUT"][1] == 3 - 5


def test_config_rejects_overrides_that_change_width():
    prec = base_precision("w8a8").with_overrides({"backbone.blocks.0.attn.qkv": FixedType(16, 5, True, "AP_RND", "AP_SAT")})
    with pytest.raises(EdgeMoeError, match="qkv"):
        render_config(SPEC, prec, DESIGN)


def test_design_points_and_validation():
    assert get_design("edge-moe") == Design()
    assert (DESIGNS["edge-moe"].engine_in, DESIGNS["edge-moe"].engine_out, DESIGNS["edge-moe"].attn_rows,
            DESIGNS["edge-moe"].axi_bits) == (16, 16, 4, 256)
    assert board_default(None).name == "edge-moe"
    for board in ("zcu104", "zcu102", "kv260"):  # each board has its own default, valid for every preset
        d = board_default(board)
        assert d.name == board
        for preset in ("micro", "m3vit-tiny-edge", "m3vit-small"):
            d.validate(get_preset(preset))
    for preset in ("micro", "m3vit-tiny-edge", "m3vit-small"):
        DESIGN.validate(get_preset(preset))
    with pytest.raises(EdgeMoeError, match=r"embed = 200 .*engine_in = 16.*nearest valid: 192 or 208"):
        DESIGN.validate(SPEC.with_(embed=200, heads=2))
    with pytest.raises(EdgeMoeError, match="mlp_hidden = 72"):
        DESIGN.validate(SPEC.with_(mlp_hidden=72))
    with pytest.raises(EdgeMoeError, match="axi_bits"):
        Design(axi_bits=100)
    with pytest.raises(EdgeMoeError, match="unknown design point"):
        get_design("nope")


# ------------------------------------------------------------------------------------------------
# units on random and edge-case inputs
# ------------------------------------------------------------------------------------------------
def test_gelu(lib):
    prec = lib.prec
    gi = prec.t("gelu_in")
    rng = _rng(1)
    lsb = 2.0 ** -gi.F
    edges = gi.quantize([0.0, GELU_RANGE, -GELU_RANGE, GELU_RANGE - lsb, -GELU_RANGE + lsb, 6.0, -6.0,
                         100.0, -100.0, 1.0 / 32, -1.0 / 32, 0.75])
    grid = gi.quantize(np.arange(-200, 200) / 32.0)
    x = np.concatenate([rand_raw(rng, gi, 4000), rand_raw(rng, gi, 4000, 3.0), grid, edges,
                        [gi.min_raw, gi.max_raw, gi.min_raw + 1, -1, 1]])
    for d in sorted(set(lib.deltas["D_HIDDEN"])):
        out_t = FixedType(prec.types["ln_out"].W, prec.types["ln_out"].I - d, True,
                          prec.types["ln_out"].Q, prec.types["ln_out"].O)
        want = gelu.gelu_fixed(Fx(x, gi), prec, out_t=out_t).raw
        assert_same(lib.gelu(x, d), want, f"gelu d_hidden={d}")


@pytest.mark.parametrize("gate", [False, True])
def test_softmax_rows(lib, gate):
    prec = lib.prec
    st = prec.t("gate_logit") if gate else prec.t("score")
    out_t = prec.t("gate_score") if gate else prec.t("prob")
    rng = _rng(2 + gate)
    nmax = lib.sizes["sm_max_len"]
    cases = []
    for n in sorted({1, 2, 3, 4, nmax}):
        rows = rand_raw(rng, st, (6, n), 2.0)
        rows[1] = rand_raw(rng, st, n)                 # whole range: huge differences, exp -> 0
        rows[2] = rows[2, 0]                           # all equal
        rows[3, :] = st.max_raw
        rows[3, n // 2] = st.min_raw                   # saturated extremes
        rows[4] = np.sort(rows[4])                     # increasing: the max moves at every step
        starts = np.arange(6) % n
        cases.append((rows, starts))
    for rows, starts in cases:
        got = lib.softmax(rows, starts, gate=gate)
        want = softmax.softmax_fixed(Fx(rows, st), prec, start=starts, out_t=out_t).raw
        assert_same(got, want, f"softmax n={rows.shape[1]}")
    one = lib.softmax(np.array([[st.quantize(1.5)]]), [0], gate=gate)
    assert one[0, 0] == min(1 << out_t.F, out_t.max_raw)  # a row of one element: p = 1 (saturated)


def test_rsqrt_mantissa_exponent(lib):
    sq = lib.prec.t("ln_sq_acc")
    v = np.unique(np.concatenate([np.arange(1, 300), 2 ** np.arange(0, sq.W - 1), 3 * 2 ** np.arange(0, sq.W - 3),
                                  _rng(4).integers(1, 2 ** (sq.W - 2), 3000)])).astype(np.int64)
    y, k = lib.rsqrt(v)
    wy, wk = rsqrt_fixed(v, sq.F)
    assert_same(y, wy, "rsqrt mantissa")
    assert_same(k, wk, "rsqrt exponent")


def test_layernorm(lib):
    _check_layernorm(lib, SPEC)


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


@pytest.mark.parametrize("preset,rows,lanes,pname", [
    ("micro", 3, 4, "w16a32"), ("micro", 3, 16, "w8a8"), ("micro", 16, 8, "w8a8"), ("micro", 1, 16, "w16a32"),
    ("m3vit-tiny-edge", 4, 8, "w16a32")])
def test_attention_and_route_rows_and_lanes(tmp_path_factory, preset, rows, lanes, pname):
    """Other row groups (ATTN_ROWS, more rows than tokens included) and K/V chunk widths
    (ATTN_LANES, one chunk per head included): attention and the MoE gate stay bit-exact."""
    spec = get_preset(preset)
    design = DESIGN.with_(attn_rows=rows, attn_lanes=lanes)
    lib = build_unit_library(spec, PRECS[pname], design, out_dir=tmp_path_factory.mktemp("attn"))
    text = render_config(spec, PRECS[pname], design)
    assert re.search(rf"#define ATTN_ROWS {rows}\b", text) and re.search(rf"#define ATTN_LANES {lanes}\b", text)
    n_toks = (1, 2, rows + 1, spec.tokens) if preset == "micro" else (spec.tokens,)
    _check_attention(lib, spec, sorted(set(n_toks) & set(range(1, spec.tokens + 1))), seed=rows * 31 + lanes)
    prec = lib.prec
    d, t = block_types(lib, 1)
    rng = _rng(rows + lanes)
    x = rand_raw(rng, t["ln2"], (spec.tokens, spec.embed), 1.0)
    wg = rand_raw(rng, t["gate_w"], (spec.num_experts, spec.embed), 0.5)
    r = lib.moe_route(x, wg, d["D_LN2"], d["D_GATE_W"])
    R = moe_route.route_fixed(Fx(x, t["ln2"]), Fx(wg, t["gate_w"]), prec, spec.top_k)
    assert_same(r["logits"], R.logits.raw, "gate logits")
    assert_same(r["probs"], R.probs.raw, "gate probs")
    assert_same(r["topk_idx"], R.topk_idx, "top-k index")
    _check_route_logits(lib, spec, seed=rows + lanes)


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


def test_route_interleaved_softmax(lib):
    """The route's softmax runs ROUTE_GROUP tokens interleaved (expert-major, token-minor): every token
    count (whole and partial groups) gives the golden probabilities, top-k and queues bit for bit."""
    _check_route_logits(lib, SPEC)


def test_patch_embed(lib):
    prec = lib.prec
    px, pw, bt = prec.t("pixel"), prec.t("patch_w"), prec.t("bias")
    rng = _rng(40)
    P, D = SPEC.num_patches, SPEC.embed
    pix = rand_raw(rng, px, (P, SPEC.patch_dim))
    pix[0] = px.max_raw
    w = rand_raw(rng, pw, (D, SPEC.patch_dim), 0.05)
    w[1] = pw.max_raw                                    # saturating output for patch 0
    b, cls = rand_raw(rng, bt, D, 0.1), rand_raw(rng, bt, D)
    pos = rand_raw(rng, bt, (SPEC.tokens, D))
    got = lib.patch_embed(pix, w, b, cls, pos)
    want = patch_embed.patch_embed_fixed(Fx(pix, px), Fx(w, pw), Fx(b, bt), Fx(cls, bt), Fx(pos, bt), prec).raw
    assert_same(got, want, "patch embed")


def test_residual(lib):
    _check_residual(lib)


def test_residual_combines_the_moe_slots_in_expert_order(lib):
    """x += act(...act(slot 0 + slot 1)...): the golden model's out = act(out + contribution) over a
    token's experts in expert order, at saturating / wrapping edges too; slot 0 gets the sum back."""
    prec = lib.prec
    act = prec.t("act")
    rng = _rng(51)
    n = lib.sizes["tokens"] * lib.sizes["embed"]
    k = lib.sizes["slots"]
    x = rand_raw(rng, act, n)
    ys = rand_raw(rng, act, (k, n))
    ys[:, :3] = [[act.max_raw] * 3] * k
    ys[0, 3] = act.min_raw
    x2, comb = lib.residual_slots(x, ys)
    out = Fx(np.zeros(n, np.int64), act)
    for s in range(k):
        out = (out + Fx(ys[s], act)).cast(act)
    assert_same(comb, out.raw, "combined slots")
    assert_same(x2, (Fx(x, act) + out).cast(act).raw, "residual of the combination")


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


@pytest.mark.parametrize("preset,vec_lanes,pname", [
    ("micro", 8, "w8a8"), ("micro", 32, "w16a32"),
    ("m3vit-tiny-edge", 8, "w16a32"), ("m3vit-tiny-edge", 16, "w8a8"), ("m3vit-tiny-edge", 32, "w16a32")])
def test_layernorm_and_residual_lanes(tmp_path_factory, preset, vec_lanes, pname):
    """LayerNorm and the residual add at other values per cycle (VEC_LANES), on the micro preset and
    on the tiny model's rows (129 tokens x 192): the lane split and adder trees change no bit."""
    spec = get_preset(preset)
    design = DESIGN.with_(vec_lanes=vec_lanes)
    lib = build_unit_library(spec, PRECS[pname], design, out_dir=tmp_path_factory.mktemp("lanes"))
    assert re.search(rf"#define VEC_LANES {vec_lanes}\b", render_config(spec, PRECS[pname], design))
    _check_layernorm(lib, spec, seed=vec_lanes)
    _check_residual(lib, seed=vec_lanes + 1)


# ------------------------------------------------------------------------------------------------
# the whole micro encoder, unit by unit, against the golden fixed model's taps
# ------------------------------------------------------------------------------------------------
def _micro_params(seed=0) -> dict:
    rng = np.random.default_rng(seed)
    s, d = SPEC, SPEC.embed
    n = lambda *shape, std=0.05: rng.normal(0, std, shape)  # noqa: E731
    p = {"backbone.patch_embed.proj.weight": n(d, s.in_chans, s.patch, s.patch, std=0.02),
         "backbone.patch_embed.proj.bias": n(d, std=0.02), "backbone.cls_token": n(1, 1, d, std=0.5),
         "backbone.pos_embed": n(1, s.tokens, d, std=0.5)}
    for i in range(s.depth):
        k = f"backbone.blocks.{i}."
        for ln in ("norm1", "norm2"):
            p[k + ln + ".weight"] = 1 + n(d, std=0.1)
            p[k + ln + ".bias"] = n(d, std=0.1)
        p[k + "attn.qkv.weight"], p[k + "attn.qkv.bias"] = n(3 * d, d, std=0.3), n(3 * d, std=0.1)
        p[k + "attn.proj.weight"], p[k + "attn.proj.bias"] = n(d, d, std=0.2), n(d, std=0.05)
        if s.is_moe(i):
            e, h = s.num_experts, s.expert_hidden
            p[k + "mlp.experts.htoh4.weight"], p[k + "mlp.experts.htoh4.bias"] = n(e, h, d, std=0.2), n(e, h)
            p[k + "mlp.experts.h4toh.weight"], p[k + "mlp.experts.h4toh.bias"] = n(e, d, h, std=0.2), n(e, d)
            for task in range(s.num_tasks):
                p[k + f"mlp.gate.{task}.w_gate"] = n(d, e, std=0.3)
        else:
            h = s.mlp_hidden
            p[k + "mlp.fc1.weight"], p[k + "mlp.fc1.bias"] = n(h, d, std=0.2), n(h)
            p[k + "mlp.fc2.weight"], p[k + "mlp.fc2.bias"] = n(d, h, std=0.2), n(d)
    return p


def _merge_heads(x: Fx) -> np.ndarray:
    h, t, hd = x.shape
    return x.raw.transpose(1, 0, 2).reshape(t, h * hd)


@pytest.mark.parametrize("task", [0, 1])
def test_micro_encoder_through_the_units(lib, task):
    _encoder_through_the_units(lib, task)


def test_small_design_point(tmp_path):
    """Another tiling (8x8 engine) and skew (2 attention rows): still bit-exact end to end."""
    small = get_design("small")
    lib = build_unit_library(SPEC, PRECS["w8a8"], small, out_dir=tmp_path)
    assert (lib.sizes["engine_in"], lib.sizes["attn_rows"]) == (8, 2)
    _encoder_through_the_units(lib, 1)


def _encoder_through_the_units(lib, task):
    spec, prec = SPEC, lib.prec
    # the overrides narrow some weight types on purpose (binary points that move): clamp, never wrap
    model = FixedM3ViT(spec, prec, _micro_params(), attn_rows=lib.design.attn_rows, saturate_params=True, warn=False)
    image = np.random.default_rng(7 + task).random(spec.input_shape)
    taps = {}
    final = model.encode(image, task, taps)
    q = {k: (v.raw if isinstance(v, Fx) else v) for k, v in model.q.items()}
    pix = model.quantize_image(image).raw
    x = lib.patch_embed(pix, q["patch_w"], q["patch_b"], q["cls"], q["pos"])
    assert_same(x, taps["patch_embed"].raw, "patch_embed")
    for i in range(spec.depth):
        d = lib.block_deltas(i)
        k = lambda n, i=i: f"backbone.blocks.{i}.{n}"  # noqa: E731
        p = f"blocks.{i}."
        ln1 = lib.layernorm(x, q[k("norm1.weight")], q[k("norm1.bias")], d["D_LN1"])
        assert_same(ln1, taps[p + "ln1"].raw, p + "ln1")
        qkv = lib.linear(LIN_QKV, ln1, q[k("attn.qkv.weight")], q[k("attn.qkv.bias")], bias_kind=BIAS_QKV,
                         d_x=d["D_LN1"], d_w=d["D_W_QKV"], d_y=d["D_QKV"])
        assert_same(qkv, np.concatenate([_merge_heads(taps[p + n]) for n in "qkv"], 1), p + "qkv")
        at = lib.attention(qkv, d["D_QKV"], d["D_ATTN_OUT"])
        assert_same(at, taps[p + "attn_out"].raw, p + "attn_out")
        proj = lib.linear(LIN_ACT, at, q[k("attn.proj.weight")], q[k("attn.proj.bias")],
                          d_x=d["D_ATTN_OUT"], d_w=d["D_W_PROJ"])
        assert_same(proj, taps[p + "proj"].raw, p + "proj")
        x = lib.residual(x, proj)
        assert_same(x, taps[p + "res1"].raw, p + "res1")
        ln2 = lib.layernorm(x, q[k("norm2.weight")], q[k("norm2.bias")], d["D_LN2"])
        assert_same(ln2, taps[p + "ln2"].raw, p + "ln2")
        if spec.is_moe(i):
            r = lib.moe_route(ln2, q[k(f"mlp.gate.{task}.w_gate")], d["D_LN2"], d["D_GATE_W"])
            assert_same(r["logits"], taps[p + "gate_logits"].raw, p + "gate_logits")
            assert_same(r["probs"], taps[p + "gate_probs"].raw, p + "gate_probs")
            assert_same(r["topk_idx"], taps[p + "topk_idx"], p + "topk_idx")
            assert_same(r["topk_score"], taps[p + "topk_score"].raw, p + "topk_score")
            assert_same(r["queue_len"], taps[p + "expert_load"], p + "expert_load")
            w1, b1 = q[k("mlp.experts.htoh4.weight")], q[k("mlp.experts.htoh4.bias")]
            w2, b2 = q[k("mlp.experts.h4toh.weight")], q[k("mlp.experts.h4toh.bias")]
            y = _run_experts(lib, d, ln2, w1, b1, w2, b2, r["queues"], np.zeros_like(x))
        else:
            h = lib.linear(LIN_GELU, ln2, q[k("mlp.fc1.weight")], q[k("mlp.fc1.bias")],
                           d_x=d["D_LN2"], d_w=d["D_W_FC1"], d_y=d["D_HIDDEN"])
            assert_same(h, taps[p + "fc1"].raw, p + "fc1")
            y = lib.linear(LIN_ACT, h, q[k("mlp.fc2.weight")], q[k("mlp.fc2.bias")],
                           d_x=d["D_HIDDEN"], d_w=d["D_W_FC2"])
        assert_same(y, taps[p + "mlp_out"].raw, p + "mlp_out")
        x = lib.residual(x, y)
        assert_same(x, taps[p + "out"].raw, p + "out")
    assert_same(x, final.raw, "encoder output")
