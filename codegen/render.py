"""The jinja2 environment that renders the HLS templates under ``edgemoe/hls/templates``.

Strict (an undefined name is an error, not an empty string), no autoescape (the output is C++),
block tags trimmed so that templates read like the C++ they produce.  Filters for C++ literals:
``c_array`` (an integer list as a brace initialiser, wrapped), ``c_int_type`` (the narrowest C
integer type of a list of values), ``c_bool``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

HLS_DIR = Path(__file__).resolve().parent.parent / "hls"
TEMPLATE_DIR = HLS_DIR / "templates"
INCLUDE_DIR = HLS_DIR / "include"

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


def environment():
    """The shared jinja2 environment (created on first use; jinja2 is imported lazily)."""
    global _env
    if _env is None:
        import jinja2
        _env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
            undefined=jinja2.StrictUndefined, autoescape=False,
            trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
        _env.filters.update(c_array=c_array, c_int_type=c_int_type, c_bool=c_bool, c_literal=c_literal)
    return _env


def render_template(name: str, **context) -> str:
    return environment().get_template(name).render(**context)


__all__ = ["HLS_DIR", "TEMPLATE_DIR", "INCLUDE_DIR", "environment", "render_template",
           "c_array", "c_int_type", "c_bool", "c_literal"]
