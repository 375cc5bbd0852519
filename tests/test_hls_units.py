"""The HLS units (hls/include/*.h) together against the golden Python units, bit for bit: the config
header they compile with, the design points, the units at other row groups and lane counts, and the
micro preset's whole encoder chained through the units, compared with the golden fixed model's taps.
Each unit's own tests are in test_unit_<unit>.py (``pytest tests -k <unit>``).

One shared library per precision (the ``lib`` fixture of conftest.py; the set-up in hls_unit_lib.py):
w16a32, and w8a8 with per-tensor overrides so that the runtime scale offsets (D_* tables, ``rescale``)
are exercised with nonzero values.  Inputs: random raw codes over each type's whole range (saturation),
realistic values, and edge cases.  No skips: without g++ or the ap_types headers the fixtures fail with
the ToolMissingError text.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from edgemoe.codegen.config_header import render_config, scale_deltas
from edgemoe.design import DESIGNS, Design, board_default, get_design
from edgemoe.codegen.unit_harness import BIAS_QKV, LIN_ACT, LIN_GELU, LIN_QKV, build_unit_library
from edgemoe.errors import EdgeMoeError
from edgemoe.golden.apfixed import FixedType, Fx
from edgemoe.golden.fixed_model import FixedM3ViT
from edgemoe.golden.precision import base_precision
from edgemoe.golden.units import gelu, moe_route
from edgemoe.golden.units.layernorm import rsqrt_table
from edgemoe.golden.units.softmax import exp2_table, log2e_raw
from edgemoe.spec import get_preset

from hls_unit_lib import (SPEC, DESIGN, PRECS, _rng, rand_raw, assert_same, block_types,
                          _check_layernorm, _run_experts, _check_attention, _check_route_logits, _check_residual)


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
# units at other row groups and lane counts
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset,rows,lanes,pname", [
    ("micro", 3, 4, "w16a32"), ("micro", 3, 16, "w8a8"), ("micro", 16, 8, "w8a8"), ("micro", 1, 16, "w16a32"),
    ("m3vit-tiny-edge", 4, 8, "w16a32")])
def test_attention_and_moe_route_rows_and_lanes(tmp_path_factory, preset, rows, lanes, pname):
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
