"""The kernel's C++ as Vitis HLS reads it, for the lexical rules of ``edgemoe hls-check``.

:func:`preprocess` runs the preprocessor on the top file with the synthesis branch selected
(``__SYNTHESIS__``), keeps only the lines of the kernel's own files (the line markers map every line
back to its file and line) and returns a :class:`Unit`: macros expanded, ``#if`` branches resolved,
pragmas kept.  Its functions and loops come from the lexical model of hls_syntax.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from edgemoe.errors import EdgeMoeError

from .aptypes import CXX_STD, find_ap_types, find_cxx
from .hls_syntax import find_functions, find_loops
from .synth_check import strip_comments

# the open ap_types refuse __SYNTHESIS__; included first, their guards keep them out afterwards
PRELUDE = "#include <ap_fixed.h>\n#include <ap_int.h>\n#include <hls_stream.h>\n#define __SYNTHESIS__ 1\n"
_MARKER_RE = re.compile(r'^#\s+(\d+)\s+"((?:[^"\\]|\\.)*)"')


@dataclass
class Unit:
    """The kernel's own lines as one text; ``code`` has comments and literals blanked (same offsets)."""
    text: str
    origin: list            # line index -> (file, line)
    code: str = field(init=False)

    def __post_init__(self):
        self.code = strip_comments(self.text)
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        self._functions = None
        self._loops = None

    def where(self, pos: int) -> tuple:
        import bisect
        i = bisect.bisect_right(self._line_starts, pos) - 1
        return self.origin[i] if 0 <= i < len(self.origin) else ("?", 0)

    def functions(self) -> list:
        if self._functions is None:
            self._functions = find_functions(self.code)
        return self._functions

    def loops(self) -> list:
        if self._loops is None:
            self._loops = find_loops(self.code, self.functions())
        return self._loops

    def function_at(self, pos: int):
        best = None
        for f in self.functions():
            if f.open <= pos < f.end and (best is None or f.open > best.open):
                best = f
        return best


def _run_cpp(cmd: list) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise EdgeMoeError(f"preprocessing {cmd[-1]} timed out") from None


def synthesis_flags(prelude_path: Path, top: Path, include_dirs, defines=()) -> tuple:
    """(flags, how): the flags that select the synthesis branch of ``top``: plain ``-D__SYNTHESIS__``
    when the ap_types accept it (Vitis's own headers), else the prelude that includes the open ap_types
    first and defines ``__SYNTHESIS__`` after them."""
    base = [find_cxx(), f"-std={CXX_STD}", "-E", "-P", "-isystem", str(find_ap_types())]
    base += [f"-I{d}" for d in include_dirs] + [f"-D{d}" for d in defines]
    res = _run_cpp(base + ["-D__SYNTHESIS__", str(top), "-o", os.devnull])
    if res.returncode == 0:
        return ["-D__SYNTHESIS__"], "-D__SYNTHESIS__ (ap_types accept synthesis)"
    prelude_path.write_text(PRELUDE)
    return (["-include", str(prelude_path)],
            "prelude: ap_types included first, then __SYNTHESIS__ defined (the open ap_types refuse -D__SYNTHESIS__)")


def preprocess(top: Path, include_dirs, own_dirs, root: Path, syn_flags: list, defines=()) -> Unit:
    """The preprocessed kernel: only lines from files under ``own_dirs``, file names relative to ``root``."""
    cmd = [find_cxx(), f"-std={CXX_STD}", "-E", "-isystem", str(find_ap_types())]
    cmd += [f"-I{d}" for d in include_dirs] + [f"-D{d}" for d in defines] + list(syn_flags) + [str(top)]
    res = _run_cpp(cmd)
    if res.returncode != 0:
        first = next((ln for ln in res.stderr.splitlines() if "error" in ln), res.stderr.strip()[:200])
        raise EdgeMoeError(f"preprocessing {top.name} failed: {first}")
    own = [str(Path(d).resolve()) + os.sep for d in own_dirs]
    names = {}
    lines, origin = [], []
    cur, keep, lineno = "", False, 0
    for ln in res.stdout.split("\n"):
        m = _MARKER_RE.match(ln)
        if m:
            lineno, cur = int(m.group(1)), m.group(2)
            if cur not in names:
                p = Path(cur)
                rp = str(p.resolve()) if not cur.startswith("<") else cur
                keep_p = any(rp.startswith(o) for o in own)
                names[cur] = (keep_p, os.path.relpath(rp, root) if keep_p else cur)
            keep = names[cur][0]
            continue
        if keep:
            lines.append(ln)
            origin.append((names[cur][1], lineno))
        lineno += 1
    return Unit("\n".join(lines), origin)


def unit_from_files(files, root: Path) -> Unit:
    """The raw sources concatenated (the fallback when the preprocessor fails)."""
    lines, origin = [], []
    for f in files:
        f = Path(f)
        for i, ln in enumerate(f.read_text().split("\n")):
            lines.append(ln)
            origin.append((os.path.relpath(f.resolve(), root), i + 1))
    return Unit("\n".join(lines), origin)


__all__ = ["PRELUDE", "Unit", "preprocess", "unit_from_files", "synthesis_flags"]
