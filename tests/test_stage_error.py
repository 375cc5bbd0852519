"""Issue 14: checkpoints with trained-ViT-like outliers, and the fixed model's error at every stage tap
(golden --fixed --stages, csim --json "stages", the report's plot)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgemoe.cli import main
from edgemoe.golden.apfixed import FixedType, Fx
from edgemoe.golden.calibrate import precision_for
from edgemoe.golden.checkpoint import load_model
from edgemoe.golden.model import build_model, params_numpy, sample_image
from edgemoe.golden.outlier_checkpoint import outlier_model, outlier_plan, save_outlier_checkpoint
from edgemoe.golden.stage_error import (INDEX_TAPS, format_stage_table, run_stage_errors, stage_row, summary_line,
                                        weakest)
from edgemoe.spec import get_preset

MICRO = get_preset("micro")


@pytest.fixture(scope="module")
def outliers():
    return outlier_model(MICRO, seed=0)


def _table(model, precision):
    params = params_numpy(model)
    prec = precision_for(precision, MICRO, model, params)
    return run_stage_errors(model, MICRO, prec, params, sample_image(MICRO, seed=0), 0, saturate_params=True)


def _taps(model, image_seed=0, task=0):
    taps = {}
    with torch.no_grad():
        model.encode(torch.from_numpy(sample_image(MICRO, seed=image_seed))[None], task, taps=taps)
    return taps


# ---- the outlier checkpoint --------------------------------------------------------------------------
def test_outlier_weights_have_the_promised_ranges(outliers):
    sd = outliers.state_dict()
    gammas = torch.cat([v for k, v in sd.items() if k.startswith("backbone.") and k.endswith(("norm1.weight", "norm2.weight"))])
    betas = torch.cat([v for k, v in sd.items() if k.startswith("backbone.") and k.endswith(("norm1.bias", "norm2.bias"))])
    assert 19.5 <= float(gammas.max()) <= 20.0 and int((gammas >= 8).sum()) >= 2 * MICRO.depth
    assert 14.5 <= float(betas.abs().max()) <= 15.0 and int((betas.abs() >= 5).sum()) >= 2 * MICRO.depth
    pos = sd["backbone.pos_embed"].abs()
    assert 7.0 <= float(pos.max()) <= 10.5
    assert float(pos.median()) < 1.0


@pytest.mark.parametrize("image_seed", [0, 3])
def test_outlier_residual_stream_has_massive_channels(outliers, image_seed):
    plan = outlier_plan(MICRO, seed=0)
    taps = _taps(outliers, image_seed)
    out = taps[f"blocks.{MICRO.depth - 1}.out"][0].numpy()
    per_channel = np.abs(out).max(0)
    big = sorted(np.flatnonzero(per_channel > 10).tolist())
    assert big == list(plan.massive)                       # a few channels, the planned ones
    assert all(30 <= per_channel[c] <= 40 for c in big)
    rest = np.delete(out, big, axis=1)
    assert np.mean(np.abs(rest) < 1) > 0.9                 # most values below 1
    # attention: peaked, the largest score of every block in the promised range (calibration image: 0)
    tops = [float(taps[f"blocks.{i}.scores"].abs().max()) for i in range(MICRO.depth)]
    lo, hi = (7.0, 18.0) if image_seed == 0 else (5.0, 22.0)
    assert all(lo * 0.97 <= t <= hi * 1.03 for t in tops), tops


def test_outlier_weights_are_seeded():
    a, b, c = (outlier_model(MICRO, seed=s).state_dict() for s in (5, 5, 6))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["backbone.pos_embed"], c["backbone.pos_embed"])


def test_outlier_checkpoint_loads_through_the_checkpoint_path(outliers, tmp_path):
    folder = save_outlier_checkpoint(MICRO, tmp_path / "ck", seed=0, ranks=2)
    assert sorted(f.name for f in folder.iterdir()) == ["0.pth", "1.pth"]
    loaded = load_model("micro", checkpoint=folder, seed=7).state_dict()
    want = outliers.state_dict()
    assert loaded.keys() == want.keys()
    assert all(torch.equal(loaded[k], want[k]) for k in want)


# ---- the per-stage table -----------------------------------------------------------------------------
def test_stage_row_counts_saturated_and_zero_values():
    t = FixedType.parse("ap_fixed<8,3,AP_RND,AP_SAT>")      # range [-4, 3.96875], lsb 1/32
    flt = np.array([0.001, 100.0, -100.0, 1.0, 0.0, 3.0])
    row = stage_row("x", Fx(t.quantize(flt), t), flt)
    assert row["saturated"] == pytest.approx(2 / 6) and row["zero"] == pytest.approx(1 / 6)
    assert row["max_err"] == pytest.approx(100 - 3.96875) and row["max_err_rel"] == pytest.approx(0.9603125)
    wrap = FixedType.parse("ap_fixed<8,3>")                  # wraps: the float value out of range still counts
    assert stage_row("x", Fx(wrap.quantize(flt), wrap), flt)["saturated"] == pytest.approx(2 / 6)


def test_table_covers_every_stage_tap_and_w16a32_is_close():
    model = build_model(MICRO, seed=0)
    rows = _table(model, "w16a32")
    from edgemoe.golden.fixed_model import FixedM3ViT
    taps = {}
    FixedM3ViT(MICRO, precision_for("w16a32", MICRO), params_numpy(model)).encode(sample_image(MICRO, 0), 0, taps)
    want = [n for n in taps if n.rsplit(".", 1)[-1] not in INDEX_TAPS]
    assert [r["stage"] for r in rows] == want
    assert want[0] == "patch_embed" and want[-1] == f"blocks.{MICRO.depth - 1}.out"
    for i in range(MICRO.depth):
        for s in ("ln1", "q", "k", "v", "scores", "attn_probs", "attn_out", "proj", "res1", "ln2", "mlp_out", "out"):
            assert f"blocks.{i}.{s}" in want
        assert (f"blocks.{i}.gate_logits" in want) == MICRO.is_moe(i) == (f"blocks.{i}.fc1" not in want)
    assert all(r["cosine"] > 0.999 for r in rows), [(r["stage"], r["cosine"]) for r in rows if r["cosine"] <= 0.999]
    assert all(r["saturated"] == 0 and r["params_clamped"] == 0 for r in rows)


def test_outlier_w8a8_shows_its_weakest_stage(outliers):
    r16, r8 = _table(outliers, "w16a32"), _table(outliers, "w8a8")
    w16, w8 = weakest(r16), weakest(r8)
    assert w8["cosine"] < w16["cosine"] and 1 - w8["cosine"] > 2 * (1 - w16["cosine"])
    assert w8["cosine"] < 0.99
    assert weakest(_table(build_model(MICRO, seed=0), "w8a8"))["cosine"] > w8["cosine"] + 0.02
    text = format_stage_table(r8)
    assert f"weakest stage {w8['stage']} (cosine {w8['cosine']:.6f}" in text.splitlines()[-1]
    assert [line for line in text.splitlines() if line.endswith("<- weakest")][0].startswith(w8["stage"] + " ")
    # the gammas above 16 do not fit w16a32's ap_fixed<16,5>: clamped, and named at their LayerNorm stage;
    # w8a8 moves its LayerNorm-parameter type's binary point instead (golden/calibrate.py): nothing clamped
    assert sum(r["params_clamped"] for r in r16) == 3 and "3 parameter values clamped" in summary_line(r16)
    assert all(r["stage"].endswith((".ln1", ".ln2")) for r in r16 if r["params_clamped"])
    assert not any(r.get("params_clamped") for r in r8)


# ---- the command line --------------------------------------------------------------------------------
def test_cli_golden_fixed_stages(tmp_path, capsys):
    np.save(tmp_path / "x.npy", sample_image(MICRO, seed=0))
    args = ["golden", "--preset", "micro", "--task", "0", "--input", str(tmp_path / "x.npy"), "--fixed"]
    assert main(args + ["--output", str(tmp_path / "a.npy")]) == 0
    plain = capsys.readouterr().out
    assert main(args + ["--output", str(tmp_path / "b.npy"), "--stages"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == plain.splitlines()[0].replace("a.npy", "b.npy")       # the existing line unchanged
    assert out[1].split()[:3] == ["stage", "type", "cosine"]
    rows = [line.split()[0] for line in out if line.startswith(("patch_embed ", "blocks."))]
    assert rows == [r["stage"] for r in _table(build_model(MICRO, seed=0), "w16a32")]
    assert out[-1].startswith("per-stage error vs float: weakest stage blocks.")
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    assert main(["golden", "--preset", "micro", "--task", "0", "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "c.npy"), "--stages"]) == 2
    assert "--stages compares the fixed-point model with the float one: give --fixed too" in capsys.readouterr().err


def test_cli_golden_stages_on_an_outlier_checkpoint(tmp_path, capsys):
    save_outlier_checkpoint(MICRO, tmp_path / "ck", seed=0)
    np.save(tmp_path / "x.npy", sample_image(MICRO, seed=0))
    args = ["golden", "--preset", "micro", "--checkpoint", str(tmp_path / "ck"), "--task", "0", "--input",
            str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"), "--fixed", "--stages", "--precision"]
    assert main(args + ["w16a32"]) == 2                     # gammas of 20 do not fit ap_fixed<16,5>
    assert "norm" in capsys.readouterr().err
    assert main(args + ["w16a32", "--saturate"]) == 0
    out = capsys.readouterr().out
    assert "<- weakest" in out and "parameter values clamped" in out
    assert main(args + ["w8a8"]) == 0                       # w8a8's parameter types follow the model's values
    out = capsys.readouterr().out
    assert "<- weakest" in out and "parameter values clamped" not in out


# ---- csim --json and the report ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from edgemoe.codegen.generate import generate
    p = generate(tmp_path_factory.mktemp("stages") / "p", preset="micro", board="zcu104", precision="w16a32")
    p.compile()
    return p


def test_csim_json_has_the_stages_and_the_report_plots_them(project, tmp_path, capsys):
    from edgemoe.codegen.report import write_report
    from edgemoe.codegen.results_schema import load_results
    js = tmp_path / "c.json"
    assert main(["csim", str(project.path), "--json", str(js), "--stages"]) == 0
    out = capsys.readouterr().out
    assert "<- weakest" in out and out.rstrip().splitlines()[-1].startswith("per-stage error vs float: weakest stage")
    doc = load_results(js, "csim")                          # the schema takes the key
    stages = doc["stages"]
    assert stages[0]["stage"] == "patch_embed" and stages[-1]["stage"] == f"blocks.{MICRO.depth - 1}.out"
    for r in stages:
        assert {"stage", "cosine", "max_err", "max_err_rel", "saturated", "zero"} <= set(r)
        assert r["cosine"] > 0.999
    bad = dict(doc, stages=[dict(stages[0], saturated=2.0)])
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    from edgemoe.errors import EdgeMoeError
    with pytest.raises(EdgeMoeError, match=r"key 'stages\[0\].saturated' is 2.0"):
        load_results(tmp_path / "bad.json", "csim")
    write_report(project.path, tmp_path / "rep", run_csim=False, csim_json=[js], say=lambda m: None)
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Error per stage" in md and "![](stages.png)" in md and (tmp_path / "rep" / "stages.png").stat().st_size
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["stages"][0]["stages"] == stages
    # without csim results the report computes the table itself, every task
    write_report(project.path, tmp_path / "rep2", run_csim=True, say=lambda m: None)
    rep = json.loads((tmp_path / "rep2" / "report.json").read_text())
    assert [s["label"] for s in rep["stages"]] == ["task 0 (semseg)", "task 1 (depth)"]
    assert rep["stages"][0]["stages"] == stages
