"""The HLS sources keep to the synthesizable subset (edgemoe.codegen.synth_check), and the checker
flags each kind of violation on small bad snippets (and leaves look-alikes alone)."""
from __future__ import annotations

import pytest

from edgemoe.codegen.aptypes import compile_cpp
from edgemoe.codegen.config_header import CONFIG_NAME, render_config
from edgemoe.design import get_design
from edgemoe.codegen.render import INCLUDE_DIR
from edgemoe.codegen.synth_check import check_hls_sources, check_source, hls_sources, strip_comments
from edgemoe.codegen.unit_harness import CXX_FLAGS, UNIT_HEADERS
from edgemoe.golden.precision import base_precision
from edgemoe.spec import get_preset

UNITS = ("patch_embed", "layernorm", "linear", "attention", "softmax", "gelu", "moe_route", "residual")


def test_one_header_per_unit():
    names = {p.name for p in hls_sources()}
    for unit in UNITS:
        assert f"{unit}.h" in names, unit
    assert set(UNIT_HEADERS) == {f"{u}.h" for u in UNITS}


def test_real_sources_pass():
    violations = check_hls_sources()
    assert not violations, "\n".join(map(str, violations))


@pytest.mark.parametrize("pname", ["w16a32", "w8a8"])
def test_generated_config_passes(tmp_path, pname):
    text = render_config(get_preset("m3vit-tiny-edge"), base_precision(pname), get_design("edge-moe"))
    assert not check_source(text, CONFIG_NAME)


def test_every_loop_in_the_units_is_bounded():
    """Each unit has loops, and every loop with a run-time bound carries a tripcount pragma."""
    import re
    for p in hls_sources():
        if p.suffix != ".h" or p.name in ("edgemoe_fixed.h", "edgemoe_probe.h"):
            continue
        code = strip_comments(p.read_text())
        assert re.search(r"\bfor\s*\(", code), p.name
        assert "#pragma HLS" in code, p.name


BAD = {
    "heap": [
        "void f(int n) { int *p = new int[n]; p[0] = 1; }",
        "void f(int *p) { delete p; }",
        "void f() { float *p = (float *)malloc(64); p[0] = 0; }",
        "void f(void *p) { free(p); }",
        "void f() { void *p = calloc(4, 4); (void)p; }",
    ],
    "stl": [
        "#include <vector>\nvoid f() {}",
        "void f() { std::vector<int> v(4); (void)v; }",
        "void f() { std::map<int, int> m; (void)m; }",
        "void f() { std::string s; (void)s; }",
        "void f() { std::unique_ptr<int> p; (void)p; }",
    ],
    "exceptions": [
        "void f(int x) { if (x < 0) throw 1; }",
        "void f() { try { g(); } catch (...) { } }",
    ],
    "recursion": [
        "int fact(int n) { return n <= 1 ? 1 : n * fact(n - 1); }",
        "template <int N> int sum(const int *a, int n) { return n == 0 ? 0 : a[0] + sum<N>(a + 1, n - 1); }",
        "int is_odd(int n);\nint is_even(int n) { return n == 0 ? 1 : is_odd(n - 1); }\n"
        "int is_odd(int n) { return n == 0 ? 0 : is_even(n - 1); }",
    ],
    "loop-bound": [
        "void f(int *a, int n) {\n  for (int i = 0; i < n; i++) {\n    a[i] = 0;\n  }\n}",
        "void f(int *a, int n) { for (int i = 0; i < n; i++) a[i] = 0; }",
        "void f(int *a, int n) { int i = 0; while (i < n) { a[i] = 0; i++; } }",
        "void f(int *a, int n) { int i = 0; do { a[i] = 0; i++; } while (i < n); }",
        # the pragma belongs to the inner loop only
        "void f(int *a, int n) { for (int i = 0; i < n; i++) { for (int j = 0; j < 4; j++) {\n"
        "#pragma HLS loop_tripcount max=4\n a[i * 4 + j] = 0; } } }",
        "void f(int *a, int n, int m) { for (int i = m; n > i; i++) a[i] = 0; }",
    ],
}

GOOD = [
    "void f(int *a, int n) {\n  for (int i = 0; i < n; i++) {\n#pragma HLS loop_tripcount min=1 max=64\n"
    "    a[i] = 0;\n  }\n}",
    "#define N 16\nvoid f(int *a) { for (int i = 0; i < N * 2 + 1; i++) a[i] = 0; }",
    "template <int LEN> void f(int *a) { for (int i = 0; i < LEN; i++) a[i] = 0; }",
    "void f(int *a) { for (int i = 0; i < 8; ++i) a[i] = 0; }",
    "void f(int *a) { for (int i = 7; 0 <= i; i--) a[i] = 0; }",
    "void f(int *a, int n) { int i = 0; do {\n#pragma HLS loop_tripcount max=4\n a[i++] = 0; } while (i < n); }",
    # look-alikes: words inside identifiers, comments and strings
    "// new, delete, throw, std::vector, recursion f()\n"
    "int renew_count(int malloc_size) { const char *s = \"throw new std::vector\"; return malloc_size + s[0]; }",
    "/* for (;;) while (1) */ int g(int x) { return x + 1; }\nint h(int x) { return g(x) * 2; }",
    "struct S { int v; };\nint get(const S &s) { return s.v; }",
]


@pytest.mark.parametrize("rule,snippet", [(r, s) for r, ss in BAD.items() for s in ss])
def test_bad_snippets_are_flagged(rule, snippet):
    found = check_source(snippet, "bad.cpp")
    assert any(v.rule == rule for v in found), (rule, snippet, [str(v) for v in found])
    assert all(v.file == "bad.cpp" and v.line >= 1 for v in found)


@pytest.mark.parametrize("snippet", GOOD)
def test_good_snippets_pass(snippet):
    found = check_source(snippet, "good.cpp")
    assert not found, [str(v) for v in found]


def test_violation_names_the_line():
    src = "void f(int *a, int n) {\n  a[0] = 1;\n  for (int i = 0; i < n; i++) a[i] = 0;\n}\n"
    (v,) = check_source(src, "x.h")
    assert (v.file, v.line, v.rule) == ("x.h", 3, "loop-bound")
    assert "i < n" in str(v)


@pytest.mark.parametrize("preset,design,pname", [("m3vit-tiny-edge", "edge-moe", "w16a32"),
                                                 ("m3vit-small", "small", "w8a8")])
def test_headers_compile_for_other_models_and_designs(tmp_path, preset, design, pname):
    """Every unit header compiles (-Wall -Wextra -Werror) against other sizes and design points, on the
    kernel's buffers declared as the top declares them."""
    from edgemoe.codegen.buffers import declarations
    spec, prec, des = get_preset(preset), base_precision(pname), get_design(design)
    (tmp_path / CONFIG_NAME).write_text(render_config(spec, prec, des))
    src = tmp_path / "all_units.cpp"
    src.write_text("".join(f'#include "{h}"\n' for h in UNIT_HEADERS) + "\n".join(declarations(spec, prec, des)) + r"""
void top(const axi_word_t *w) {
    layernorm_unit(g_x, 0, g_ln, 0, EMBED / LNP_LANES, g_lnb, 0, TOKENS, D_LN1[0]);
    linear_engine(engine_call(ENG_QKV, ENG_SRC_LNB, TOKENS, EMBED, QKV_DIM, 0, 0, 0, 0, 0, 0), w WPORTS_SAME(w),
                  ENGINE_BUFFER_ARGS);
    attention_unit(g_qkv, g_att, TOKENS, D_QKV[0], D_ATTN_OUT[0]);
    moe_route_unit(g_logits, TOKENS, g_probs, g_topk_idx, g_topk_score, g_qtok, g_qslot, g_qscore, g_qlen, 0,
                   BATCH_ROWS, false);
    gate_logits_tap(g_logits, g_lgtap, TOKENS);
    patch_embed_cls(g_x, g_cls, g_pos, 0);
    residual_unit(g_x, g_tmp, 0, 0, NUM_SLOTS);
}
""")
    compile_cpp(src, tmp_path / "all_units.o", flags=list(CXX_FLAGS) + ["-c", "-fsyntax-only"],
                include_dirs=[tmp_path, INCLUDE_DIR])
