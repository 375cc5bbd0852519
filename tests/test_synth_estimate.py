"""Yosys resource estimate (synth_xilinx -family xcup) of the RTL units and `edgemoe synth-estimate`."""
from __future__ import annotations

import json
import shutil

import pytest

from edgemoe.design import Design
from edgemoe.golden.precision import base_precision
from edgemoe.spec import get_preset

needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed (apt-get install yosys)")
T4 = Design("t4", 4, 4, 2, 128)          # small engine: yosys stays fast


@needs_yosys
def test_linear_dsp_count_is_the_mac_array():
    from edgemoe.sim.synth_estimate import estimate_unit
    r = estimate_unit("linear", get_preset("micro"), base_precision("w8a8"), T4)
    assert r["dsp"] == T4.engine_in * T4.engine_out       # one DSP48E2 per 8x8 MAC, none elsewhere
    assert r["lut"] > 0 and r["ff"] > 0 and r["carry"] > 0


@needs_yosys
def test_cli_table_and_json(tmp_path, capsys):
    from edgemoe.cli import main
    j = tmp_path / "est.json"
    assert main(["synth-estimate", "--unit", "gelu", "--json", str(j)]) == 0
    out = capsys.readouterr().out
    assert "DSP48E2" in out and "gelu" in out
    data = json.loads(j.read_text())
    assert set(data["units"]["gelu"]) == {"lut", "ff", "dsp", "bram", "carry"}
    assert data["units"]["gelu"]["lut"] > 0


def test_missing_yosys_is_one_line(monkeypatch, capsys):
    from edgemoe.cli import main
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    assert main(["synth-estimate"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "apt-get install yosys" in err


def test_unknown_unit(capsys):
    from edgemoe.cli import main
    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed")
    assert main(["synth-estimate", "--unit", "nope"]) != 0
    assert "unknown RTL unit" in capsys.readouterr().err
