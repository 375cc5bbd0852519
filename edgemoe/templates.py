"""The one jinja2 environment of the project, and where the ``hls`` data folder is.

Every generated text (the kernel C++, the unit test harness, the HLS unit tops, the project scripts,
the Vivado Tcl, the RTL units' Verilog) is rendered by :func:`environment`, whose loader searches
``hls/templates`` (names like ``csim/tb.cpp.j2``, ``vivado/build_bd.tcl.j2``) and then ``hls/rtl``
(``linear.v.j2``, ...).  Strict (an undefined name is an error, not an empty string), no autoescape
(the output is C++, Verilog, Tcl), block tags trimmed so that templates read like the text they produce.

Filters for C++ literals: ``c_array`` (an integer list as a brace initialiser, wrapped), ``c_int_type``
(the narrowest C integer type of a list of values), ``c_bool``, ``c_literal``; the global ``ext``
(:func:`ext_expr`: a Verilog sign or zero extension).

Bottom layer: the standard library and jinja2 only (jinja2, a toolkit dependency, imported on first use).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Iterable


def _hls_dir() -> Path:
    # the data package edgemoe.hls: <repo>/hls in the source tree (and an editable install), edgemoe/hls installed
    spec = importlib.util.find_spec("edgemoe.hls")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(__file__).resolve().parent.parent / "hls"


HLS_DIR = _hls_dir()
TEMPLATE_DIR = HLS_DIR / "templates"     # C++ kernel, harnesses, unit tops, scripts, Vivado Tcl
RTL_DIR = HLS_DIR / "rtl"                # the RTL units' Verilog
INCLUDE_DIR = HLS_DIR / "include"        # the unit headers (copied, not rendered)
SEARCH_PATH = (TEMPLATE_DIR, RTL_DIR)    # the loader's folders, in order; a name is in one of them only

_env = None


def c_int_type(values: Iterable[int]) -> str:
    """Narrowest C integer type holding every value (a ROM of that width in hardware)."""
    vals = [int(v) for v in values] or [0]
    lo, hi = min(vals), max(vals)
    for ctype, bits in (("signed char", 8), ("short", 16), ("int", 32)):
        if -(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1)):
            return ctype
    return "long long"


def c_literal(v: int) -> str:
    v = int(v)
    if -(1 << 31) <= v < (1 << 31):
        return str(v)
    return f"{v}LL"


def c_array(values: Iterable[int], per_line: int = 12, indent: str = "    ") -> str:
    vals = [c_literal(v) for v in values]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    return "{\n" + ",\n".join(indent + ln for ln in lines) + "\n}"


def c_bool(v) -> str:
    return "true" if v else "false"


def ext_expr(w: int, to: int, signed, sig: str) -> str:
    """Verilog expression: ``sig`` ([w-1:0]) sign- or zero-extended to ``to`` bits."""
    if to == w:
        return sig
    fill = f"{sig}[{w - 1}]" if int(signed) else "1'b0"
    return f"{{{{{to - w}{{{fill}}}}}, {sig}}}"


def template_names() -> dict:
    """{template name: [search folders holding it]} of every ``*.j2`` under the search path."""
    out: dict = {}
    for d in SEARCH_PATH:
        for p in sorted(d.rglob("*.j2")):
            out.setdefault(p.relative_to(d).as_posix(), []).append(d)
    return out


def environment():
    """The shared jinja2 environment (created on first use; jinja2 is imported lazily)."""
    global _env
    if _env is None:
        import jinja2
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in SEARCH_PATH]),
            undefined=jinja2.StrictUndefined, autoescape=False,
            trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
        env.filters.update(c_array=c_array, c_int_type=c_int_type, c_bool=c_bool, c_literal=c_literal)
        env.globals.update(ext=ext_expr)
        _env = env
    return _env


def render_template(name: str, **context) -> str:
    """Template ``name`` (e.g. ``csim/tb.cpp.j2``, ``linear.v.j2``) rendered with ``context``."""
    return environment().get_template(name).render(**context)


__all__ = ["HLS_DIR", "TEMPLATE_DIR", "RTL_DIR", "INCLUDE_DIR", "SEARCH_PATH", "environment", "render_template",
           "template_names", "c_array", "c_int_type", "c_bool", "c_literal", "ext_expr"]
