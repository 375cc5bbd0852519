"""RTL units at w8a8: bit-exact with the golden at a calibrated block's types, the block / precision
selection of `edgemoe sim`, and the throughput workload each bench reports for cycle models."""
from __future__ import annotations

import argparse

import pytest

from edgemoe.errors import EdgeMoeError
from edgemoe.sim.runner import config_objects, resolve_config, run_unit
from edgemoe.sim.tools import find_simulators

SIMS = find_simulators()
W8 = dict(preset="micro", precision="w8a8", design="edge-moe")
# small but covering: every linear layer kind (qkv, proj, fc1 + GELU, fc2, expert fc2 x score)
W8_VECTORS = {"linear": 120, "layernorm": 120, "gelu": 600, "softmax": 150, "moe_route": 300}
needs_verilator = pytest.mark.skipif("verilator" not in SIMS, reason="Verilator not installed")


def test_block_precision_folds_one_block():
    from edgemoe.sim.rtl import block_precision, unit_context
    spec, prec, design = config_objects(resolve_config(W8))          # block 0 by default
    assert not prec.overrides
    from edgemoe.golden.calibrate import precision_for
    from edgemoe.golden.model import build_model
    cal = precision_for("w8a8", spec, build_model(spec, seed=0))
    assert prec.t("ln_out") == cal.t("ln_out", tensor="backbone.blocks.0.ln1")
    assert prec.t("hidden") == cal.t("hidden", tensor="backbone.blocks.0.mlp")
    assert prec.t("act") == cal.types["act"]
    moe = block_precision(spec, cal, 1)
    assert moe.t("hidden") == cal.t("hidden", tensor="backbone.blocks.1.mlp.experts")
    assert block_precision(spec, cal, None).types == cal.types
    with pytest.raises(EdgeMoeError, match="not a block"):
        block_precision(spec, cal, spec.depth)
    with pytest.raises(EdgeMoeError, match="overrides"):            # overrides would be ignored silently
        unit_context("gelu", spec, cal, design)


def test_sim_config_precision_and_block(monkeypatch):
    from edgemoe.sim.cli_sim import sim_config
    ns = lambda **kw: argparse.Namespace(**{"precision": None, "block": None, "rtl_dir": None, **kw})  # noqa: E731
    monkeypatch.delenv("EDGEMOE_SIM_PRECISION", raising=False)
    monkeypatch.delenv("EDGEMOE_SIM_BLOCK", raising=False)
    assert "block" not in sim_config(ns()) and sim_config(ns())["precision"] == "w16a32"
    assert sim_config(ns(precision="w8a8"))["block"] == 0
    assert sim_config(ns(precision="w8a8", block="3"))["block"] == 3
    assert sim_config(ns(precision="w8a8", rtl_dir="x"))["block"] is None     # Vitis tops: offsets 0
    monkeypatch.setenv("EDGEMOE_SIM_PRECISION", "w8a8")
    monkeypatch.setenv("EDGEMOE_SIM_BLOCK", "nominal")
    assert sim_config(argparse.Namespace())["block"] is None
    with pytest.raises(EdgeMoeError):
        sim_config(ns(precision="w4a4"))


def _check_workload(unit: str, r: dict):
    w = r["throughput_workload"]
    assert w["latency_cycles"] > 0
    if unit == "linear":
        assert w["rows"] * w["in_dim"] * w["out_dim"] == r["throughput_items"]
        assert w["in_tiles"] * w["engine_in"] == w["in_dim"] and w["out_tiles"] * w["engine_out"] == w["out_dim"]
        assert w["w_beats_per_tile"] * w["w_rows_per_beat"] == w["engine_out"]
    elif unit == "gelu":
        assert w["values"] == r["throughput_items"]
    elif unit == "softmax":
        lens = w["row_len"] if isinstance(w["row_len"], list) else [w["row_len"]] * w["rows"]
        assert sum(lens) == r["throughput_items"] and len(lens) == w["rows"]
    elif unit == "layernorm":
        assert w["rows"] * w["width"] == r["throughput_items"]
    elif unit == "moe_route":
        assert len(w["tokens"]) == w["calls"] == len(w["out_beats"]) and sum(w["tokens"]) == r["throughput_items"]
        assert all(0 < b <= t for b, t in zip(w["out_beats"], w["tokens"]))
    # the throughput phase cannot beat its own latency plus one item per cycle of the slowest stream
    assert r["throughput_cycles"] >= w["latency_cycles"]


@needs_verilator
@pytest.mark.parametrize("unit", ["linear", "layernorm"])
def test_unit_w8a8_verilator(unit):
    r = run_unit(unit, "verilator", vectors=W8_VECTORS[unit], seed=3, config=W8)
    assert r["mismatches"] == 0, f"{unit} at w8a8: {r['mismatches']} mismatches ({r['log']})"
    assert r["config"]["block"] == 0
    _check_workload(unit, r)


@pytest.mark.skipif(not SIMS, reason="no HDL simulator")
@pytest.mark.parametrize("unit", ["gelu", "softmax", "moe_route"])
def test_unit_w8a8_quick(unit):
    sim = "icarus" if "icarus" in SIMS else next(iter(SIMS))
    r = run_unit(unit, sim, vectors=W8_VECTORS[unit], seed=3, config=W8)
    assert r["mismatches"] == 0, f"{unit} at w8a8 on {sim}: {r['mismatches']} mismatches ({r['log']})"
    _check_workload(unit, r)


@needs_verilator
def test_linear_with_per_channel_weight_scales_verilator():
    """w8a8+per-channel: every weight row carries its output's shift; the RTL engine shifts the bias and the
    output casts by it, bit-exact with golden linear_fixed(wsh=...) over random shifts 0..7."""
    cfg = dict(W8, precision="w8a8+per-channel")
    r = run_unit("linear", "verilator", vectors=W8_VECTORS["linear"], seed=5, config=cfg)
    assert r["mismatches"] == 0, f"linear at w8a8+per-channel: {r['mismatches']} mismatches ({r['log']})"
    assert r["config"]["precision"] == "w8a8+per-channel"
    _check_workload("linear", r)
