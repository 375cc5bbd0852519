"""Locating the Xilinx ap_types headers and a C++ compiler, and compiling C++ against them.

The headers (``ap_fixed.h``, ``ap_int.h``, ``hls_stream.h``, ...) come from a Vitis HLS install
(``$XILINX_HLS/include``) or, without one, from the open copy shipped inside the hls4ml wheel
(``pip install --no-deps hls4ml==1.3.0``).  hls4ml itself is never imported: it pulls in
TensorFlow and friends; only the location of its package folder is looked up.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterable, Sequence, Union

from edgemoe.errors import EdgeMoeError, ToolMissingError

PathLike = Union[str, "os.PathLike[str]"]

HLS4ML_PIN = "hls4ml==1.3.0"
#: where the ap_types headers sit inside the hls4ml package
HLS4ML_AP_TYPES = ("templates", "vivado", "ap_types")
CXX_STD = "c++14"

_HOW_TO_GET = f"pip install --no-deps {HLS4ML_PIN} or set XILINX_HLS to a Vitis HLS install"


def _has_headers(d: Path) -> bool:
    return (d / "ap_fixed.h").is_file()


def _hls4ml_dirs() -> list[Path]:
    """Candidate ap_types folders of an installed hls4ml, found without importing it."""
    try:
        spec = importlib.util.find_spec("hls4ml")
    except (ImportError, ValueError):  # a broken install or a stub module in sys.modules
        return []
    if spec is None:
        return []
    roots = [Path(p) for p in (spec.submodule_search_locations or [])]
    if not roots and spec.origin:
        roots = [Path(spec.origin).parent]
    return [root.joinpath(*HLS4ML_AP_TYPES) for root in roots]


def find_ap_types() -> Path:
    """The include folder holding ``ap_fixed.h``: ``$XILINX_HLS/include``, else hls4ml's copy."""
    tried = []
    xilinx = os.environ.get("XILINX_HLS")
    if xilinx:
        d = Path(xilinx) / "include"
        if _has_headers(d):
            return d
        tried.append(f"$XILINX_HLS/include ({d})")
    for d in _hls4ml_dirs():
        if _has_headers(d):
            return d
        tried.append(str(d))
    where = f" (looked in {', '.join(tried)})" if tried else ""
    raise ToolMissingError(f"ap_types headers (ap_fixed.h, ap_int.h) not found{where}: {_HOW_TO_GET}")


def find_cxx() -> str:
    """Path of the C++ compiler: ``$CXX`` if set, else ``g++`` on PATH."""
    cxx = os.environ.get("CXX")
    if cxx:
        found = shutil.which(cxx)
        if found:
            return found
        raise ToolMissingError(f"CXX={cxx} not found: apt-get install g++ or fix CXX")
    found = shutil.which("g++")
    if not found:
        raise ToolMissingError("g++ not found: apt-get install g++")
    return found


def _first_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if "error" in ln.lower():
            return ln
    return lines[0] if lines else "(no compiler output)"


def compile_cpp(sources: Union[PathLike, Sequence[PathLike]], output: PathLike, *,
                flags: Iterable[str] = (), include_dirs: Iterable[PathLike] = (),
                shared: bool = False, timeout: float = 300) -> Path:
    """Compile ``sources`` into ``output`` (an executable, or a shared library when ``shared``).

    Runs ``g++ -std=c++14 -O2`` with the ap_types headers on ``-isystem`` (so their own warnings
    stay quiet); ``include_dirs`` are added with ``-I`` and ``flags`` go last (they can override
    the defaults, e.g. ``-O0`` or ``-std=c++17``).  Raises :class:`EdgeMoeError` with the first
    compiler error line when the build fails.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    sources = [Path(s) for s in sources]
    if not sources:
        raise EdgeMoeError("compile_cpp: no source files given")
    for s in sources:
        if not s.is_file():
            raise EdgeMoeError(f"C++ source {s} does not exist")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    cmd = [find_cxx(), f"-std={CXX_STD}", "-O2", "-isystem", str(find_ap_types())]
    cmd += [f"-I{d}" for d in include_dirs]
    if shared:
        cmd += ["-shared", "-fPIC"]
    cmd += [str(s) for s in sources]
    cmd += ["-o", str(output)]
    cmd += list(flags)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EdgeMoeError(f"C++ compile of {sources[0].name} timed out after {timeout:g} s") from None
    if res.returncode != 0:
        raise EdgeMoeError(f"C++ compile of {sources[0].name} failed: "
                           f"{_first_error_line(res.stderr or res.stdout)}")
    return output
