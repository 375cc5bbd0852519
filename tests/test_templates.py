"""One jinja2 environment (issue 13): edgemoe/templates.py builds the only jinja2.Environment of the source
tree, strict, finding the hls/templates and hls/rtl templates by their names; the hls folder's paths are
computed there only; the unit test harness is a template of it that renders and compiles."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import edgemoe.codegen
from edgemoe import templates
from edgemoe.codegen import render, unit_harness
from edgemoe.codegen.unit_lib import HARNESS_SIZES
from edgemoe.design import get_design
from edgemoe.golden.precision import base_precision
from edgemoe.sim import rtl
from edgemoe.spec import get_preset

jinja2 = pytest.importorskip("jinja2")

ROOT = Path(edgemoe.codegen.__file__).resolve().parent.parent
SOURCE_DIRS = ("edgemoe", "golden", "codegen", "sim", "boards", "host", "hls")


def _sources() -> list:
    out = [p for d in SOURCE_DIRS for p in sorted((ROOT / d).rglob("*.py")) if "__pycache__" not in p.parts]
    assert len(out) > 50
    return out


def _callee(node: ast.Call) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def test_one_environment_constructed_in_the_source_tree():
    calls, texts = [], []
    for p in _sources():
        text = p.read_text()
        rel = p.relative_to(ROOT).as_posix()
        calls += [f"{rel}:{n.lineno}" for n in ast.walk(ast.parse(text, rel)) if isinstance(n, ast.Call)
                  and (_callee(n).endswith("Environment") or _callee(n) == "Template" and "jinja2" in text)]
        texts += [f"{rel}:{text.count(chr(10), 0, m.start()) + 1}" for m in re.finditer(r"\bEnvironment\(", text)]
    assert len(calls) == 1 and calls[0].startswith("edgemoe/templates.py:"), calls
    assert len(texts) == 1 and texts[0].startswith("edgemoe/templates.py:"), texts


def test_the_environment_is_strict_and_shared():
    env = templates.environment()
    assert env.undefined is jinja2.StrictUndefined
    assert (env.autoescape, env.trim_blocks, env.lstrip_blocks, env.keep_trailing_newline) == (False, True, True, True)
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ nothing }}").render()
    assert render.environment() is env and rtl.environment() is env
    assert {"c_array", "c_int_type", "c_bool", "c_literal"} <= set(env.filters) and env.globals["ext"] is templates.ext_expr


def test_templates_found_by_their_names_in_one_folder_only():
    names = templates.template_names()
    clashes = {n: [d.name for d in ds] for n, ds in names.items() if len(ds) > 1}
    assert not clashes, f"a template name in two search folders (the first one wins): {clashes}"
    rtl_names = {n for n, ds in names.items() if ds == [templates.RTL_DIR]}
    assert {f"{u}.v.j2" for u in rtl.UNIT_NAMES} <= rtl_names
    for n in ("csim/tb.cpp.j2", unit_harness.HARNESS_TEMPLATE, "vivado/build_bd.tcl.j2", "edgemoe_top.cpp.j2",
              "linear.v.j2", "common.v.j2"):
        assert n in names
        assert Path(templates.environment().get_template(n).filename).resolve() == names[n][0] / n


def test_hls_paths_computed_once():
    assert templates.HLS_DIR.is_dir() and (templates.HLS_DIR / "__init__.py").is_file()
    for d in (templates.TEMPLATE_DIR, templates.RTL_DIR, templates.INCLUDE_DIR):
        assert d.is_dir() and d.parent == templates.HLS_DIR
    assert (render.HLS_DIR, render.TEMPLATE_DIR, render.INCLUDE_DIR) == \
        (templates.HLS_DIR, templates.TEMPLATE_DIR, templates.INCLUDE_DIR)
    bad = [f"{p.relative_to(ROOT)}:{i}" for p in _sources() if p.name != "templates.py" or p.parent.name != "edgemoe"
           for i, line in enumerate(p.read_text().splitlines(), 1) if "__file__" in line and '"hls"' in line]
    assert not bad, f"the hls folder's path computed again (edgemoe/templates.py has it): {bad}"


def test_templates_module_is_bottom_layer():
    tree = ast.parse(Path(templates.__file__).read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert mods <= {"__future__", "importlib", "pathlib", "typing", "jinja2"}, mods


@pytest.mark.parametrize("prec", ["w16a32", "w8a8"])
def test_harness_renders(prec):
    spec, des = get_preset("micro"), get_design("edge-moe")
    src = unit_harness.harness_source(spec, base_precision(prec), des)
    assert "%(" not in src and "%%" not in src and "{{" not in src and "{%" not in src
    for h in unit_harness.UNIT_HEADERS:
        assert f'#include "{h}"\n' in src
    sizes = re.search(r"const long long v\[\] = \{([^}]*)\};", src).group(1)
    assert [s.strip() for s in sizes.split(",")] == list(HARNESS_SIZES.values())
    assert src.count("bias_kind == %d" % unit_harness.BIAS_QKV) == 2
    with pytest.raises(jinja2.UndefinedError):
        templates.render_template(unit_harness.HARNESS_TEMPLATE, **{k: v for k, v in unit_harness.harness_context(
            spec, base_precision(prec), des).items() if k != "pad_logit"})


def test_harness_compiles_and_reports_its_sizes(tmp_path):
    """The harness compiled (-Wall -Wextra -Werror) and loaded; em_sizes in HARNESS_SIZES order."""
    spec, prec, des = get_preset("micro"), base_precision("w16a32"), get_design("edge-moe")
    lib = unit_harness.build_unit_library(spec, prec, des, out_dir=tmp_path)
    assert list(lib.sizes) == list(HARNESS_SIZES)
    assert (lib.sizes["tokens"], lib.sizes["embed"], lib.sizes["heads"], lib.sizes["depth"], lib.sizes["top_k"]) == \
        (spec.tokens, spec.embed, spec.heads, spec.depth, spec.top_k)
