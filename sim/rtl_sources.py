"""Verilog sources from a folder (``edgemoe sim --rtl-dir``): which file defines which module, and the
files of each unit top (Vitis writes one folder per top)."""
from __future__ import annotations

import re
from pathlib import Path

from edgemoe.errors import EdgeMoeError

HDL_SUFFIXES = (".v", ".sv")
_MODULE_RE = re.compile(r"^\s*module\s+([A-Za-z_][A-Za-z0-9_$]*)", re.M)


def scan_modules(rtl_dir) -> dict:
    """{module name: [files defining it]} for every .v/.sv under rtl_dir (recursively)."""
    found: dict = {}
    for f in sorted(Path(rtl_dir).rglob("*")):
        if f.suffix in HDL_SUFFIXES and f.is_file():
            text = f.read_text(errors="replace")
            text = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)
            for m in _MODULE_RE.finditer(text):
                found.setdefault(m.group(1), []).append(f)
    return found


def check_rtl_dir(rtl_dir, tops) -> dict:
    """{top: [Verilog files]} for each top in ``tops``, taken from a folder of (Vitis) RTL.

    A top's files are every .v/.sv in the folder that defines it (Vitis writes one folder per top).
    Raises EdgeMoeError naming what was found and what is missing.
    """
    rtl_dir = Path(rtl_dir)
    if not rtl_dir.is_dir():
        raise EdgeMoeError(f"--rtl-dir {rtl_dir} is not a folder")
    mods = scan_modules(rtl_dir)
    tops = list(tops)
    missing = [t for t in tops if t not in mods]
    if missing:
        present = [t for t in tops if t in mods]
        others = sorted(m for m in mods if m not in tops)
        shown = ", ".join(others[:12]) + (f", ... ({len(others)} in all)" if len(others) > 12 else "")
        raise EdgeMoeError(
            f"{rtl_dir}: missing Verilog top module(s) {', '.join(missing)}; found unit tops: "
            f"{', '.join(present) or 'none'}; other modules found: {shown or 'none'} "
            "(expected the Vitis RTL of the standalone unit tops, e.g. <solution>/impl/verilog)")
    out = {}
    for t in tops:
        if len(mods[t]) > 1:
            raise EdgeMoeError(f"{rtl_dir}: module {t} is defined in several files: "
                               + ", ".join(str(f) for f in mods[t]))
        d = mods[t][0].parent
        out[t] = sorted(f for f in d.iterdir() if f.suffix in HDL_SUFFIXES and f.is_file())
    return out


__all__ = ["scan_modules", "check_rtl_dir", "HDL_SUFFIXES"]
