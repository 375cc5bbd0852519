"""Spec objects are passed, not rebuilt (issue 13): any ModelSpec (not only a preset's) reaches the RTL
unit benches as data, a project's calibrated precision is the one RTL simulation uses (no second
calibration on a fresh model), and the checkpoint key map is written once (edgemoe.spec)."""
from __future__ import annotations

import argparse
import json

import pytest

from edgemoe.design import get_design
from edgemoe.errors import EdgeMoeError
from edgemoe.golden.precision import Precision, base_precision
from edgemoe.sim.bench_config import bench_files, config_objects, resolve_config
from edgemoe.sim.tools import find_simulators
from edgemoe.spec import block_key, get_preset, mlp_tensor

# not a preset: other sizes and a name no preset has
CUSTOM = get_preset("micro").with_(name="my-custom-vit", embed=48, heads=3, mlp_hidden=96, expert_hidden=48,
                                   num_experts=3, moe_blocks=(0, 2), depth=3)


def _project(tmp_path, spec, prec: Precision, design="edge-moe"):
    """A folder with what RTL simulation reads of a generated project: data/manifest.json."""
    (tmp_path / "data").mkdir(parents=True)
    manifest = dict(spec=spec.to_dict(), precision=prec.to_dict(), design=get_design(design).to_dict())
    (tmp_path / "data" / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def _bench_env(tmp_path, cfg, spec, prec, design) -> dict:
    """What the runner hands the bench: the run folder's files and the variables naming them."""
    env, files = bench_files(cfg, spec, prec, design)
    run = tmp_path / "run"
    run.mkdir()
    for name, text in files.items():
        (run / name).write_text(text)
    return {k: v.replace("{run}", str(run)) for k, v in env.items()}


def test_block_key_and_mlp_tensors_are_the_checkpoint_names():
    from edgemoe.golden.model import build_model, params_numpy
    spec = get_preset("micro")
    params = params_numpy(build_model(spec, seed=0))
    assert block_key(3, "norm1.weight") == "backbone.blocks.3.norm1.weight"
    for i in range(spec.depth):
        for part in ("fc1", "fc2"):
            assert block_key(i, mlp_tensor(part, spec.is_moe(i))) + ".weight" in params
    assert mlp_tensor("hidden", True) == "mlp.experts" and mlp_tensor("hidden", False) == "mlp"


def test_custom_spec_reaches_the_bench(tmp_path, monkeypatch):
    prec = base_precision("w16a32")
    project = _project(tmp_path / "proj", CUSTOM, prec)
    cfg = resolve_config(None, project=project)
    assert cfg["preset"] == CUSTOM.name and cfg["project"] == str(project.resolve())
    spec, prec2, design = config_objects(cfg)
    assert spec == CUSTOM and prec2.to_dict() == prec.to_dict()
    environ = _bench_env(tmp_path, cfg, spec, prec2, design)
    assert {"EDGEMOE_CONFIG", "EDGEMOE_SPEC", "EDGEMOE_PRECISION", "EDGEMOE_DESIGN"} <= set(environ)
    from edgemoe.sim.benches._util import Env, bench_objects
    cfg_b, spec_b, prec_b, design_b = bench_objects(environ)
    assert spec_b == CUSTOM and prec_b.to_dict() == prec.to_dict() and design_b == design
    assert cfg_b["project"] == cfg["project"]
    # the bench's own context (what its golden and its stimulus are built from)
    for k, v in environ.items():
        monkeypatch.setenv(k, v)
    env = Env("layernorm")
    assert env.spec == CUSTOM and env.ctx is not None
    with pytest.raises(EdgeMoeError):
        get_preset(CUSTOM.name)          # the bench never looked the spec up by name


def test_custom_spec_without_a_project(tmp_path):
    """Any ModelSpec given to the bench files travels too (not only a project's)."""
    cfg = resolve_config(("micro", "w16a32", "edge-moe"))
    environ = _bench_env(tmp_path, cfg, CUSTOM, base_precision("w16a32"), get_design("edge-moe"))
    from edgemoe.sim.benches._util import bench_objects
    assert bench_objects(environ)[1] == CUSTOM


@pytest.fixture(scope="module")
def fresh_w8a8():
    """w8a8 calibrated on a fresh seed-0 micro model (what `edgemoe sim` uses without a project)."""
    from edgemoe.golden.calibrate import precision_for
    from edgemoe.golden.model import build_model
    spec = get_preset("micro")
    return precision_for("w8a8", spec, build_model(spec, seed=0))


def test_project_precision_is_the_manifests(tmp_path, monkeypatch, fresh_w8a8):
    spec = get_preset("micro")
    ln1 = block_key(0, "ln1.ln_out")
    t = fresh_w8a8.overrides[ln1]
    other = type(t)(t.W, t.I + 2, t.signed, t.Q, t.O)      # a range the fresh calibration did not give
    theirs = fresh_w8a8.with_overrides({ln1: other})
    project = _project(tmp_path / "proj", spec, theirs)
    import edgemoe.golden.calibrate as calibrate

    def no_calibration(*a, **k):
        raise AssertionError("RTL simulation of a project recalibrated the precision")
    monkeypatch.setattr(calibrate, "precision_for", no_calibration)
    cfg = resolve_config(dict(precision="w8a8"), project=project)
    assert cfg["block"] == 0 and "project" in cfg["calibrated_on"] and str(project.resolve()) in cfg["calibrated_on"]
    _, prec, _ = config_objects(cfg)
    assert prec.t("ln_out") == other != fresh_w8a8.t("ln_out", tensor=block_key(0, "ln1"))
    # the bench reads that precision, not a recalibrated one
    from edgemoe.sim.benches._util import bench_objects
    environ = _bench_env(tmp_path, cfg, spec, prec, get_design("edge-moe"))
    assert bench_objects(environ)[2].t("ln_out") == other
    # `edgemoe sim --project`: the project's names; a different --precision is an error
    from edgemoe.sim.cli_sim import sim_config
    monkeypatch.delenv("EDGEMOE_SIM_PRECISION", raising=False)
    monkeypatch.delenv("EDGEMOE_SIM_BLOCK", raising=False)
    ns = lambda **kw: argparse.Namespace(**{"precision": None, "block": None, "rtl_dir": None, **kw})  # noqa: E731
    got = sim_config(ns(project=str(project), block="1"))
    assert (got["precision"], got["block"], got["project"]) == ("w8a8", 1, str(project.resolve()))
    with pytest.raises(EdgeMoeError, match="w8a8"):
        sim_config(ns(project=str(project), precision="w16a32"))


def test_without_a_project_the_config_says_what_w8a8_was_calibrated_on():
    cfg = resolve_config(("micro", "w8a8", "edge-moe"))
    assert "seed-0 random model of preset micro" in cfg["calibrated_on"]
    assert "calibrated_on" not in resolve_config(("micro", "w16a32", "edge-moe"))


def test_missing_manifest_is_one_line(tmp_path):
    with pytest.raises(EdgeMoeError, match="manifest.json"):
        resolve_config(None, project=tmp_path)


@pytest.mark.skipif("icarus" not in find_simulators(), reason="needs Icarus Verilog")
def test_custom_spec_project_runs_on_the_rtl(tmp_path):
    """End to end (Icarus, a few vectors): the LayerNorm unit rendered and checked at the custom embed."""
    from edgemoe.sim.runner import run_unit
    project = _project(tmp_path / "proj", CUSTOM, base_precision("w16a32"))
    r = run_unit("layernorm", "icarus", vectors=6, seed=1, project=project, build_dir=tmp_path / "build")
    assert r["mismatches"] == 0, r["log"]
    assert r["config"]["project"] == str(project.resolve()) and r["config"]["preset"] == CUSTOM.name
    assert r["throughput_workload"]["width"] == CUSTOM.embed
