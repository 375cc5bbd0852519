"""Every hardware number written once (issue 13): a constant that the generated ``edgemoe_config.h``
defines, or one of the unit constants below, never appears again as a literal in a template, a bench
or a formula.

The header's names are collected from the header itself (``#define NAME value`` and
``static const ... NAME = value``, for micro at w16a32 and at w8a8), so a constant added to the
header is covered without touching this file.  A *redefinition* is ``#define NAME <number>``,
``NAME = <number>`` (a C++ ``static const``, an ``enum`` entry, a Verilog ``localparam``, a jinja
``set``), or in Python an assignment, keyword argument or dict entry of a number to NAME; a *use* of
NAME is fine.  C++ inside Python strings (the unit test harness) is scanned as C++.  Comments are
not code and are skipped (the register-offset check below reads them too).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import edgemoe.codegen
from edgemoe.codegen.config_header import ENGINE_MODE, ENGINE_MODES, render_config
from edgemoe.design import get_design
from edgemoe.golden.precision import base_precision
from edgemoe.sim import rtl
from edgemoe.spec import get_preset
from edgemoe.units import gelu, linear

ROOT = Path(edgemoe.codegen.__file__).resolve().parent.parent
# where templates, benches and formulas live
SCAN_DIRS = ("hls/templates", "hls/include", "hls/rtl", "sim/benches")
SCAN_GLOBS = ("codegen/unit_*.py", "codegen/estimate*.py", "codegen/model_common.py", "sim/rtl.py", "sim/units.py",
              "edgemoe/units/*.py")
HEADER_POINTS = (("micro", "w16a32", "edge-moe"), ("micro", "w8a8", "edge-moe"))

# constants that have one source outside the header: name -> the one file allowed to give it a number
# (None: no file; the name is an alias or a copy that was removed and must not come back)
UNIT_CONSTANTS = {
    # the RTL linear unit: s_axi_control registers and its `mode` field (edgemoe/units/linear.py)
    **{n: "edgemoe/units/linear.py" for n in ("LIN_REGS", "LIN_MODE_BITS", "LIN_MODE_QKV", "LIN_MODE_ACT", "LIN_MODE_GELU",
                                              "LIN_MODE_SCORE", "LIN_BIAS_QKV_BIT")},
    # pipeline depths of the RTL datapaths (edgemoe/units/<unit>.py): templates, benches and the cycle model read them
    "GELU_CORE_DEPTH": "edgemoe/units/gelu.py", "EXP_CORE_DEPTH": "edgemoe/units/softmax.py",
    "LIN_CORE_DEPTH": "edgemoe/units/linear.py",
    **{n: "edgemoe/units/layernorm.py" for n in ("LN_SQUARE_DEPTH", "LN_NORM_DEPTH")},
    # the kernel engine's modes (codegen/config_header.py, the header's ENG_*); the harness's calls are them
    "ENGINE_MODES": "codegen/config_header.py",
    **{n: None for n in ("LIN_QKV", "LIN_ACT", "LIN_GELU", "LIN_SCATTER")},
    # the copies that were removed: benches' depths, the workload keys they report, the model's fits
    **{n: None for n in ("CORE_DEPTH", "EXP_DEPTH", "PIPELINE_DEPTH", "exp_depth", "pipeline_depth",
                         "divider_steps", "stages", "RSQRT_RTL_STEPS", "PACKED_CHUNK", "ENGINE_MIN_ITER",
                         "offset")},
}
# known literals that are not copies (keep short; say why)
ALLOWED: set = set()

NUM = r"\(?\s*-?\s*(?:0[xX][0-9a-fA-F]+|\d+)[uUlL]*\b"


def _files() -> list:
    out = [p for d in SCAN_DIRS for p in sorted((ROOT / d).rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    out += [p for g in SCAN_GLOBS for p in sorted(ROOT.glob(g))]
    assert out and all(p.is_file() for p in out)
    return out


def _rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


def _strip_comments(text: str) -> str:
    """C++ / Verilog / jinja comments blanked (line numbers kept)."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    text = re.sub(r"\{#.*?#\}", blank, text, flags=re.S)
    text = re.sub(r"/\*.*?\*/", blank, text, flags=re.S)
    return re.sub(r"//[^\n]*", blank, text)


def _c_defs(text: str, names: set) -> list:
    """[(line, name, source line)] of ``#define NAME <num>`` / ``NAME = <num>`` in C-like text."""
    code = _strip_comments(text)
    hits = []
    for m in re.finditer(rf"#\s*define\s+(\w+)\s+{NUM}|\b(\w+)\s*(?<![=!<>])=(?!=)\s*{NUM}", code):
        name = m.group(1) or m.group(2)
        if name in names:
            line = code.count("\n", 0, m.start()) + 1
            hits.append((line, name, text.splitlines()[line - 1].strip()))
    return hits


def _has_number(v) -> bool:
    if isinstance(v, (tuple, list, set)):
        return any(_has_number(e) for e in v)
    if isinstance(v, dict):
        return any(_has_number(e) for e in v.values())
    return type(v) in (int, float)


def _is_number(node) -> bool:
    """A literal (numbers, or tuples / lists / dicts of literals) holding a number."""
    try:
        return _has_number(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def _py_defs(text: str, names: set) -> list:
    """Python: NAME = <num> (tuples too), f(NAME=<num>), {"NAME": <num>}; C++ in string constants."""
    tree = ast.parse(text)
    hits = []

    def hit(node, name):
        if name in names:
            hits.append((node.lineno, name, text.splitlines()[node.lineno - 1].strip()))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                elts = t.elts if isinstance(t, ast.Tuple) else [t]
                vals = node.value.elts if isinstance(t, ast.Tuple) and isinstance(node.value, ast.Tuple) else [node.value]
                for e, v in zip(elts, vals if len(vals) == len(elts) else [node.value] * len(elts)):
                    if isinstance(e, ast.Name) and _is_number(v):
                        hit(node, e.id)
        elif isinstance(node, ast.keyword) and node.arg and _is_number(node.value):
            hit(node.value, node.arg)
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and isinstance(k.value, str) and _is_number(v):
                    hit(k, k.value)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "\n" in node.value:
            for line, name, src in _c_defs(node.value, names):      # C++ written in a Python string
                hits.append((node.lineno + line - 1, name, src))
    return sorted(hits)


def _defs(path: Path, names: set) -> list:
    text = path.read_text()
    return _py_defs(text, names) if path.suffix == ".py" else _c_defs(text, names)


def _header_constants() -> dict:
    out = {}
    for preset, prec, design in HEADER_POINTS:
        text = render_config(get_preset(preset), base_precision(prec), get_design(design))
        for m in re.finditer(r"^#define\s+(\w+)\s+(.*?)\s*(?://.*)?$", text, re.M):
            out[m.group(1)] = m.group(2)
        for m in re.finditer(r"^static const [^=;]*?\b(\w+)\s*(?:\[[^\]]*\])*\s*=\s*([^;]*);", text, re.M):
            out[m.group(1)] = m.group(2)
    return out


@pytest.fixture(scope="module")
def header() -> dict:
    h = _header_constants()
    # the collection works: sizes, design factors, approximation constants, engine modes, tables
    for n in ("EMBED", "ENGINE_IN", "ENGINE_ACC_DISTANCE", "ROUTE_GROUP", "GELU_LIMIT_RAW", "GELU_TABLE_SIZE",
              "EXP2_SEG_LOG2", "RSQRT_NEWTON_STEPS", "MAX_IMAGES", "ENG_SUM_DEPTH", "ENG_QKV", "ENG_POS", "D_LN1"):
        assert n in h, n
    return h


def test_header_constants_are_not_redefined_with_a_literal(header):
    names = set(header)
    bad = [f"{_rel(p)}:{line}: {name} (the header's {name} = {header[name]}): {src}"
           for p in _files() for line, name, src in _defs(p, names) if (_rel(p), name) not in ALLOWED]
    assert not bad, "a constant of edgemoe_config.h written again as a literal:\n" + "\n".join(bad)


def _assigned(path: Path) -> set:
    tree = ast.parse(path.read_text())
    return {e.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
            for e in (t.elts if isinstance(t, ast.Tuple) else [t]) if isinstance(e, ast.Name)}


def test_unit_constants_have_one_source():
    for name, home in UNIT_CONSTANTS.items():
        if home is not None:
            assert name in _assigned(ROOT / home), f"{name}: no longer defined in {home} (update UNIT_CONSTANTS)"
    names = set(UNIT_CONSTANTS)
    bad = [f"{_rel(p)}:{line}: {name} (one source: {UNIT_CONSTANTS[name] or 'none, it is derived'}): {src}"
           for p in _files() for line, name, src in _defs(p, names)
           if UNIT_CONSTANTS[name] != _rel(p) and (_rel(p), name) not in ALLOWED]
    assert not bad, "a unit constant written a second time:\n" + "\n".join(bad)


def test_the_scanner_finds_redefinitions():
    names = {"ENGINE_IN", "ENG_QKV", "CORE_DEPTH", "offset", "exp_depth"}
    cpp = ("enum { ENG_QKV = 0 };\n#define ENGINE_IN 16\nlocalparam integer ENGINE_IN = 16;\n"
           "#pragma HLS INTERFACE mode=s_axilite port=n bundle=control offset=0x10\n"
           "// ENGINE_IN = 16 in a comment\nif (ENGINE_IN == 16) x = ENGINE_IN;\n")
    assert [n for _, n, _ in _c_defs(cpp, names)] == ["ENG_QKV", "ENGINE_IN", "ENGINE_IN", "offset"]
    py = ('CORE_DEPTH = 4\nA, ENG_QKV = 1, 0\nw = dict(exp_depth=4)\nv = {"exp_depth": 4}\nok = dict(exp_depth=e)\n'
          'S = """\n#define ENGINE_IN 16\n"""\noffset = (("a", 0x10),)\nCORE_DEPTH = some_function()\n')
    assert [n for _, n, _ in _py_defs(py, names)] == ["CORE_DEPTH", "ENG_QKV", "exp_depth", "exp_depth", "ENGINE_IN",
                                                      "offset"]


# ---- the linear unit's interface: its register offsets and mode codes only in edgemoe/units/linear.py -
LINEAR_FILES = ("hls/rtl/linear.v.j2", "hls/rtl/axilite.v.j2", "hls/templates/unit_tops/linear_top.cpp.j2",
                "hls/templates/scripts/README.md.j2", "sim/benches/linear.py", "codegen/unit_tops.py")


@pytest.mark.parametrize("path", LINEAR_FILES)
def test_linear_register_offsets_and_modes_are_not_literals(path):
    text = (ROOT / path).read_text()
    offs = [off for _, off, _ in linear.LIN_REGS]
    found = [m.group(0) for m in re.finditer(r"\b0[xX]0*([0-9a-fA-F]+)\b", text) if int(m.group(1), 16) in offs]
    assert not found, f"{path}: register offsets {found} typed in (edgemoe.units.linear.LIN_REGS)"
    code = _strip_comments(text)
    modes = re.findall(r"\b(?:mode|kind)\s*(?:==|!=|&)\s*(?:\d+'[dhb])?\d+", code)
    assert not modes, f"{path}: mode codes typed in: {modes} (edgemoe.units.linear.LIN_MODE_*)"
    assert not re.search(r"write_dword\(\s*(?:0[xX][0-9a-fA-F]+|\d+)", code), path


def test_rendered_linear_unit_follows_its_constants():
    from edgemoe.codegen.render import render_template
    from edgemoe.codegen.unit_tops import UNIT_TOP_TEMPLATES, unit_top_contexts
    spec, prec, des = get_preset("micro"), base_precision("w16a32"), get_design("edge-moe")
    ctx = rtl.unit_context("linear", spec, prec, des)
    assert [(r["name"], r["offset"]) for r in ctx["regs"]] == [(n, o) for n, o, _ in linear.LIN_REGS]
    assert ctx["L"]["depth"] == linear.LIN_CORE_DEPTH + gelu.GELU_CORE_DEPTH
    assert ctx["M"]["bias_qkv"] == linear.LIN_BIAS_QKV_BIT == 1 << linear.LIN_MODE_BITS
    top = render_template(UNIT_TOP_TEMPLATES["linear"], **unit_top_contexts(spec, "w16a32", des)["linear"])
    pragmas = dict(re.findall(r"mode=s_axilite port=(\w+) bundle=control offset=(0x[0-9A-Fa-f]+)", top))
    assert {k: int(v, 16) for k, v in pragmas.items()} == {n: o for n, o, _ in linear.LIN_REGS}
    v = rtl.environment().get_template("linear.v.j2").render(**ctx)
    aw = ctx["reg_aw"]
    assert sorted(int(x, 16) for x in set(re.findall(rf"{aw}'h([0-9A-F]+): \w+ <= wmerge", v))) == \
        [o for _, o, _ in linear.LIN_REGS]
    assert f"mode == {linear.LIN_MODE_BITS}'d{linear.LIN_MODE_GELU}" in v


def test_engine_modes_in_header_and_harness():
    from edgemoe.codegen import unit_harness as uh
    text = render_config(get_preset("micro"), base_precision("w16a32"), get_design("edge-moe"))
    for name, code, _ in ENGINE_MODES:
        assert re.search(rf"^#define {name} {code}\b", text, re.M), name
    assert (uh.LIN_QKV, uh.LIN_ACT, uh.LIN_GELU, uh.LIN_SCATTER) == \
        tuple(ENGINE_MODE[n] for n in ("ENG_QKV", "ENG_ACT", "ENG_GELU", "ENG_SCATTER"))
    assert len({c for _, c, _ in ENGINE_MODES}) == len(ENGINE_MODES)


def test_cpp_storage_bits_is_the_kernel_interfaces(tmp_path):
    """edgemoe_fixed.h's storage_bits<W> (the C++ side of the one rule, which a header cannot import)
    gives edgemoe.kernel_interface.storage_bits(W) for every width: compiled from the header's own text."""
    import subprocess

    from edgemoe.codegen.aptypes import compile_cpp
    from edgemoe.kernel_interface import STORAGE_WIDTHS, storage_bits
    text = (ROOT / "hls" / "include" / "edgemoe_fixed.h").read_text()
    m = re.search(r"template <int W> struct storage_bits \{.*?\n\};", text, re.S)
    assert m, "storage_bits<W> not found in edgemoe_fixed.h"
    widths = range(1, STORAGE_WIDTHS[-1] + 1)
    body = "".join(f'    std::printf("%d\\n", storage_bits<{w}>::value);\n' for w in widths)
    src = tmp_path / "sb.cpp"
    src.write_text(f"#include <cstdio>\n{m.group(0)}\nint main() {{\n{body}    return 0;\n}}\n")
    exe = compile_cpp(src, tmp_path / "sb", flags=["-O0"])
    got = [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True, timeout=60).stdout.split()]
    assert got == [storage_bits(w) for w in widths]
