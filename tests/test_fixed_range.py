"""Fixed-point range: parameters that do not fit their types fail (or saturate on request, never wrap),
and the fixed golden counts the activation values that its casts saturate or wrap, per stage."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from edgemoe.cli import main
from edgemoe.errors import EdgeMoeError
from edgemoe.golden.apfixed import FixedType, Fx
from edgemoe.golden.exact_matmul import fx_matmul
from edgemoe.golden.calibrate import precision_for
from edgemoe.golden.checkpoint import load_model, save_checkpoint
from edgemoe.golden.fixed_model import FixedM3ViT, quantize_params
from edgemoe.golden.model import build_model, params_numpy, sample_image
from edgemoe.golden.precision import Precision, base_precision
from edgemoe.golden.range_counts import count_range, range_prefix, range_stage, range_summary, range_total
from edgemoe.spec import get_preset

MICRO = get_preset("micro")
OUTLIER_TENSOR = "backbone.blocks.3.norm1.weight"   # micro has blocks 0..3; block 3 is MoE
LN_T = "ap_fixed<16,5>"                               # w16a32's LayerNorm parameter type: [-16, 15.9995]


def clamped_codes(x, f: int = 11, lo: int = -(1 << 15), hi: int = (1 << 15) - 1) -> np.ndarray:
    """Reference: x rounded to nearest (half up, AP_RND) at 2^-f, clamped to the 16-bit codes."""
    return np.clip(np.floor(np.asarray(x, np.float64) * 2.0 ** f + 0.5), lo, hi).astype(np.int64)


def outlier_model(seed: int = 0):
    """The micro model with trained-ViT-like LayerNorm gammas: a few channels of about 20 (seeded).
    Returns (model, {tensor: number of outlier values})."""
    model = build_model(MICRO, seed=0)
    rng = np.random.default_rng(seed)
    sd = model.state_dict()
    outliers = {}
    with torch.no_grad():
        for name, n in ((OUTLIER_TENSOR, 3), ("backbone.blocks.1.norm2.weight", 2)):
            ch = rng.choice(MICRO.embed, n, replace=False)
            vals = rng.uniform(18.0, 22.0, n) * rng.choice([-1.0, 1.0], n)
            sd[name][torch.from_numpy(ch)] = torch.from_numpy(vals).float()
            outliers[name] = n
    return model, outliers


@pytest.fixture(scope="module")
def outliers():
    model, counts = outlier_model()
    return model, params_numpy(model), counts


# ---- the casts' counts ---------------------------------------------------------------------------
def test_cast_counts_values_out_of_range_exactly():
    wrap_t = FixedType.parse("ap_fixed<8,2>")                       # [-2, 1.984375]
    sat_t = FixedType.parse("ap_fixed<8,2,AP_TRN,AP_SAT>")
    x = Fx.from_float([-3.0, -2.0, -0.5, 0.0, 1.98, 1.99, 2.5, 7.0], FixedType.parse("ap_fixed<16,4>"))
    with count_range() as rc:
        range_prefix("blocks.0.")
        range_stage("a")
        y = x.cast(wrap_t)
        range_stage("b")
        z = x.cast(sat_t)
        x.cast(FixedType.parse("ap_fixed<16,8>"))                    # everything fits
    # -3, 2.5, 7 do not fit (1.99 truncates to 1.984375, -2 is the minimum)
    assert rc.stages == {"blocks.0.a": {"saturated": 0, "wrapped": 3, "values": 8},
                         "blocks.0.b": {"saturated": 3, "wrapped": 0, "values": 16}}
    assert y.to_float()[-1] == -1.0 and z.to_float()[-1] == sat_t.to_float(sat_t.max_raw)  # wrapped / clamped
    # no counting (and no cost beyond one lookup) outside count_range
    x.cast(wrap_t)
    assert len(rc.stages) == 2
    # a wrapping accumulator and overflow() count too
    a = Fx(np.full((1, 4), 127), FixedType(8, 8))
    with count_range() as rc2:
        fx_matmul(a, a.T, FixedType(16, 16))                       # 4 * 127^2 = 64516 >= 2^15: wraps
        FixedType(8, 4).overflow(np.array([200, 3]))
        FixedType(8, 4).overflow(np.array([200, 3]), record=False)  # a tap conversion: not counted
    assert rc2.stages == {"other": {"saturated": 0, "wrapped": 2, "values": 3}}


def test_quantize_clamped_never_wraps():
    t = FixedType.parse("ap_fixed<8,2>")                            # AP_WRAP: quantize() would wrap
    raw, out = t.quantize_clamped([-5.0, -2.0, 0.3, 1.99, 2.0, 100.0])
    assert list(out) == [True, False, False, False, True, True]
    assert list(raw[[0, 4, 5]]) == [t.min_raw, t.max_raw, t.max_raw]
    assert list(raw[1:4]) == list(t.quantize([-2.0, 0.3, 1.99]))
    r = FixedType.parse("ap_fixed<8,2,AP_RND>")
    # rounding decides (lsb 1/64, top code 1.984375): 1.995 rounds to 2.0 (out of range), 1.99 to the top code
    _, out = r.quantize_clamped([1.995, 1.99])
    assert list(out) == [True, False]


# ---- parameters ----------------------------------------------------------------------------------
def test_outlier_gamma_is_one_clear_error(outliers):
    model, params, counts = outliers
    prec = precision_for("w16a32", MICRO, model, params)
    with pytest.raises(EdgeMoeError) as e:
        FixedM3ViT(MICRO, prec, params)
    msg = str(e.value)
    assert "\n" not in msg
    # the first tensor in model order is named with its value range, the type and its range
    assert msg.startswith("parameter backbone.blocks.1.norm2.weight does not fit")
    x = params["backbone.blocks.1.norm2.weight"]
    assert f"values in [{x.min():.6g}, {x.max():.6g}]" in msg and np.abs(x).max() > 16
    assert f"2 of {MICRO.embed} values outside {LN_T}'s range [-16, 15.9995]" in msg
    assert f"1 more tensor with 3 values out of range: {OUTLIER_TENSOR}" in msg
    assert "--saturate" in msg and "saturate_params=True" in msg


def test_saturate_clamps_and_warns_once(outliers, capsys):
    model, params, counts = outliers
    prec = precision_for("w16a32", MICRO, model, params)
    fm = FixedM3ViT(MICRO, prec, params, saturate_params=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    n = sum(counts.values())
    assert err[0].startswith(f"edgemoe: warning: {n} parameter values in {len(counts)} tensors saturate")
    assert OUTLIER_TENSOR in err[0]
    assert {r.name: r.count for r in fm.param_range} == counts
    t = prec.t("ln_param")
    for name in counts:
        x = params[name]
        raw = fm.q[name].raw
        assert np.array_equal(raw, clamped_codes(x))
        assert set(raw[np.abs(x) > 16]) <= {t.min_raw, t.max_raw}          # clamped, not wrapped
    y = fm.encode(sample_image(MICRO, 0), 0)
    assert y.shape == MICRO.output_shape


def test_cli_golden_fixed_on_outlier_checkpoint(outliers, tmp_path, capsys):
    model, params, counts = outliers
    ck = tmp_path / "ck"
    save_checkpoint(model, ck, ranks=2)
    x = tmp_path / "x.npy"
    np.save(x, sample_image(MICRO, 0))
    args = ["golden", "--preset", "micro", "--checkpoint", str(ck), "--fixed", "--task", "0", "--input", str(x),
            "--output", str(tmp_path / "y.npy")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgemoe: error: parameter backbone.blocks.1.norm2.weight")
    assert LN_T in err[0] and "--saturate" in err[0]
    assert not (tmp_path / "y.npy").exists()
    assert main(args + ["--saturate"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"edgemoe: warning: {sum(counts.values())} parameter values in 2 tensors saturate")
    assert err[1] == "fixed-point range: 0 values out of range at 50 stages"
    # the checkpoint loads back to the same floats: the fixed model of the outlier model
    y = np.load(tmp_path / "y.npy")
    want = FixedM3ViT(MICRO, base_precision("w16a32"), params_numpy(load_model("micro", checkpoint=ck)),
                      saturate_params=True, warn=False).encode(sample_image(MICRO, 0), 0).to_float()
    assert np.array_equal(y, want.astype(np.float32))


_models = {}


@pytest.mark.parametrize("preset", ["micro", "m3vit-tiny-edge"])
@pytest.mark.parametrize("precision", ["w16a32", "w8a8"])
def test_presets_fit_their_types(preset, precision):
    """Seeded presets: every parameter fits (w8a8's calibrated types by construction) and no
    activation of the sample images leaves its type's range."""
    if preset not in _models:
        _models[preset] = build_model(get_preset(preset), seed=0)
    model = _models[preset]
    spec, params = model.spec, params_numpy(model)
    prec = precision_for(precision, spec, model, params)
    report = []
    quantize_params(spec, prec, params, report=report)
    assert report == []
    # calibrated types clamp (an activation beyond its calibrated range saturates, never wraps)
    assert all(t.O != "AP_WRAP" for t in prec.overrides.values())
    if precision == "w8a8":
        assert prec.overrides and prec.types["act"].O == prec.types["patch_w"].O == "AP_SAT"
    fm = FixedM3ViT(spec, prec, params)
    for seed, task in ((0, 0), (1, spec.num_tasks - 1)):
        fm.encode(sample_image(spec, seed), task)
        assert range_total(fm.range_counts) == 0, range_summary(fm.range_counts)
    stages = set(fm.range_counts)
    last = spec.depth - 1
    assert {"pixels", "patch_embed", f"blocks.{last}.ln1", f"blocks.{last}.qkv", f"blocks.{last}.scores",
            f"blocks.{last}.attn_probs", f"blocks.{last}.attn_out", f"blocks.{last}.proj", f"blocks.{last}.res1",
            f"blocks.{last}.ln2", f"blocks.{last}.fc1", f"blocks.{last}.mlp_out", f"blocks.{last}.out"} <= stages
    moe = spec.moe_blocks[0]
    assert {f"blocks.{moe}.gate_logits", f"blocks.{moe}.gate_probs"} <= stages
    assert "other" not in stages   # every cast belongs to a named stage
    assert range_summary(fm.range_counts) == f"fixed-point range: 0 values out of range at {len(stages)} stages"


def test_w8a8_calibrated_weight_types_hold_outliers():
    """A weight outlier moves w8a8's calibrated weight type up (no error); so does a LayerNorm gamma outlier
    its LayerNorm-parameter type (w16a32's ap_fixed<16,5> unless a value needs more: golden/calibrate.py),
    while w16a32 (the reference design's exact types) still refuses it."""
    model = build_model(MICRO, seed=0)
    with torch.no_grad():
        model.state_dict()["backbone.blocks.0.attn.qkv.weight"][3, 5] = 37.0
    params = params_numpy(model)
    prec = precision_for("w8a8", MICRO, model, params)
    t = prec.t("w", tensor="backbone.blocks.0.attn.qkv")
    assert t.to_float(t.max_raw) >= 37.0 and t.O == "AP_SAT"
    fm = FixedM3ViT(MICRO, prec, params)
    assert fm.param_range == []
    assert fm.q["backbone.blocks.0.attn.qkv.weight"].to_float()[3, 5] == 37.0
    model, _ = outlier_model()
    params = params_numpy(model)
    with pytest.raises(EdgeMoeError, match=re.escape(LN_T)):
        FixedM3ViT(MICRO, precision_for("w16a32", MICRO, model, params), params)
    prec = precision_for("w8a8", MICRO, model, params)
    assert prec.types["ln_param"].cpp.startswith("ap_fixed<16, 6") and FixedM3ViT(MICRO, prec, params).param_range == []


# ---- activations ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["AP_WRAP", "AP_SAT"])
def test_activation_counts_when_a_stage_overflows(mode):
    model = build_model(MICRO, seed=0)
    params = params_numpy(model)
    base = base_precision("w16a32")
    image = sample_image(MICRO, 0)
    ref, t_ref = {}, {}
    FixedM3ViT(MICRO, base, params).encode(image, 0, t_ref, ref)
    assert range_total(ref) == 0
    # LayerNorm outputs (up to |3.7| here) in 2 integer bits: every ln1 / ln2 stage overflows
    narrow = Precision(base.name, {**base.types, "ln_out": FixedType(32, 2, True, "AP_TRN", mode)})
    fm = FixedM3ViT(MICRO, narrow, params)
    counts = {}
    fm.encode(image, 0, None, counts)
    assert counts == fm.range_counts
    kind, other = ("wrapped", "saturated") if mode == "AP_WRAP" else ("saturated", "wrapped")
    assert sum(c[other] for c in counts.values()) == 0
    assert counts["pixels"][kind] == counts["patch_embed"][kind] == 0
    # block 0's LayerNorm sees the same input as with the full type: the count is exactly the values
    # of the full-range output outside [-2, 2) (the cast truncates: -2 fits, 2 does not)
    v = t_ref["blocks.0.ln1"].to_float()
    assert counts["blocks.0.ln1"][kind] == int(np.count_nonzero((v >= 2) | (v < -2))) > 0
    assert counts["blocks.0.ln1"]["values"] == ref["blocks.0.ln1"]["values"] > v.size  # (with its inner casts)
    assert all(counts[f"blocks.{i}.{n}"][kind] > 0 for i in range(MICRO.depth) for n in ("ln1", "ln2"))
    line = range_summary(counts)
    assert line.startswith(f"fixed-point range: warning: {range_total(counts)} values out of range at ")
    worst = max(counts, key=lambda s: counts[s][kind])
    assert f"{worst} {counts[worst][kind]} {kind} of {counts[worst]['values']}" in line


# ---- packing and projects ------------------------------------------------------------------------
def test_packed_weights_hold_the_clamped_values(outliers):
    from edgemoe.design import get_design
    from edgemoe.codegen.pack import Layout
    model, params, counts = outliers
    prec, dsg = base_precision("w16a32"), get_design("edge-moe")
    with pytest.raises(EdgeMoeError, match="does not fit"):
        Layout(MICRO, prec, dsg).fill(params)
    lay = Layout(MICRO, prec, dsg)
    lay.fill(params, saturate_params=True)
    t = prec.t("ln_param")
    ln = lay.buffers["ln_params"].raw                     # [depth, (n1.w, n1.b, n2.w, n2.b), d]
    for (blk, slot), name in {(3, 0): OUTLIER_TENSOR, (1, 2): "backbone.blocks.1.norm2.weight"}.items():
        x = params[name]
        assert np.array_equal(ln[blk, slot], clamped_codes(x))
        assert np.count_nonzero(np.isin(ln[blk, slot], [t.min_raw, t.max_raw])) == counts[name]
    # the bytes hold them too, and the golden rebuilt from the bytes is the saturated golden
    blob = b"".join(b.to_bytes(dsg.axi_bits) for b in lay.buffers.values())
    assert np.array_equal(lay.buffer_raw(blob, "ln_params"), ln)
    back = lay.params_from_weights(blob)
    a = FixedM3ViT(MICRO, prec, back)                      # in range now: no saturation needed
    b = FixedM3ViT(MICRO, prec, params, saturate_params=True, warn=False)
    assert all(np.array_equal(a.q[k].raw, b.q[k].raw) for k in a.q)


def test_generate_saturate_is_recorded_and_csim_bit_exact(outliers, tmp_path, capsys):
    from edgemoe.codegen.csim import run_csim
    from edgemoe.codegen.generate import generate
    model, params, counts = outliers
    with pytest.raises(EdgeMoeError, match="does not fit.*--saturate"):
        generate(tmp_path / "no", model=model, board="zcu104")
    capsys.readouterr()
    project = generate(tmp_path / "p", model=model, board="zcu104", saturate_params=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"edgemoe: warning: {sum(counts.values())} parameter values")
    manifest = json.loads((tmp_path / "p" / "data" / "manifest.json").read_text())
    assert manifest["saturate"] is True
    assert set(manifest["range"]) == {"0", "1"} and range_total(manifest["range"]["0"]) == 0
    assert project.fixed_model().param_range == []          # weights.bin holds in-range (clamped) codes
    res = run_csim(tmp_path / "p", task=1, taps="all", json_path=tmp_path / "r.json")
    assert res["mismatches"] == 0
    out = capsys.readouterr()
    assert "fixed-point range: 0 values out of range at 50 stages" in out.err
    rj = json.loads((tmp_path / "r.json").read_text())["range"]
    assert rj["out_of_range"] == 0 and rj["summary"].startswith("fixed-point range: 0 values")
    assert rj["stages"]["blocks.3.ln1"]["values"] > 0
    # without a golden run (the project's input), the range comes from generate's record
    assert run_csim(tmp_path / "p", task=0, quiet=True)["range"]["stages"] == manifest["range"]["0"]
