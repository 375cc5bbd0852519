"""`edgemoe hls-check`: every rule catches its seeded defect in a small C++ kernel, look-alikes pass, the
recorder of the instrumented simulation counts what it must, and the command's JSON and exit codes."""
from __future__ import annotations

import json

import pytest

from edgemoe.cli import main
from edgemoe.codegen.hls_check import JSON_KEYS, check_kernel, hls_check
from edgemoe.codegen.probe import ProbeLib, build_probe_library, probe_violations
from edgemoe.codegen.render import INCLUDE_DIR

from hls_check_cases import BANK_CASES, BANK_KERNEL, GOOD_TOP, MINI_H, PROBE_CASES, PROBE_KERNEL, write_mini_project


def _check(tmp_path, top_src, cfg=None):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "mini.h").write_text(MINI_H)
    (src / "edgemoe_top.cpp").write_text(top_src)
    if cfg:
        for name, text in cfg.items():
            (tmp_path / name).write_text(text)
    return check_kernel(src / "edgemoe_top.cpp", src, tmp_path, "edgemoe_top", [src, INCLUDE_DIR],
                        workdir=tmp_path / "work")


def _rules(res):
    return {v["rule"] for v in res["violations"]}


def test_good_kernel_passes(tmp_path):
    """A burst loop, two ports in one loop, a distance-true DEPENDENCE, a plain shared function under an
    allocation pragma (called twice), a template inlined into it, a constant condition: all pass."""
    res = _check(tmp_path, GOOD_TOP)
    assert res["violations"] == [], json.dumps(res["violations"], indent=1)
    assert res["engine_instances"] == 1
    assert res["instances"] == {"linear_engine": 1, "layernorm_unit": 1, "residual_unit": 1}
    assert res["build"]["compiled"] and "SYNTHESIS" in res["build"]["synthesis"]


READ = "const axi_word_t v = axi_rd(w, off + i);"
# case: (rule, [(old, new), ...]): one seeded defect in GOOD_TOP each
DEFECTS = {
    "strided read": ("maxi", [("axi_rd(w, off + i)", "axi_rd(w, 2 * (off + i))")]),
    "conditional read": ("maxi", [(READ, "axi_word_t v = 0;\n        if (i % 2 == 0) v = axi_rd(w, off + i);")]),
    "ternary read": ("maxi", [(READ, "const axi_word_t v = i > 2 ? axi_rd(w, off + i) : axi_word_t(0);")]),
    "hand-advanced index": ("maxi", [("engine_read:\n", "    long k = off;\nengine_read:\n"),
                                     (READ, "const axi_word_t v = axi_rd(w, k);\n        k++;")]),
    "second access to a port": ("maxi", [("axi_wr(out, long(i) + 0, a);",
                                          "axi_wr(out, long(i) + 0, a);\n        axi_wr(out, long(i) + 1, a);")]),
    "strided read in a callee": ("maxi", [("if (PORTS > 1) a = axi_rd(pixels, long(i));", "a = read_pair(pixels, i);")]),
    "second engine instantiation": ("instances", [("    residual_unit(acc_out);",
                                                   "    residual_unit(acc_out);\n    extra_engine(weights);")]),
    "engine call outside the allocation scope": ("instances", [("    linear_engine(weights, N, N, 0);",
                                                                "    extra_engine(weights);")]),
    "engine as a template": ("instances", [("void linear_engine(const axi_word_t *w,",
                                            "template <class T>\nvoid linear_engine(const T *w,")]),
    "engine missing": ("instances", [("linear_engine(", "lin_engine(")]),
    "shared unit without INLINE off": ("instances", [("void residual_unit(int x[4]) {\n#pragma HLS INLINE off\n",
                                                      "void residual_unit(int x[4]) {\n")]),
    "allocation names a template": ("allocation", [("instances=linear_engine", "instances=mac")]),
    "allocation names nothing": ("allocation", [("instances=residual_unit", "instances=no_such_unit")]),
    "INLINE off in a template": ("allocation", [("#pragma HLS INLINE\n    return a * M",
                                                 "#pragma HLS INLINE off\n    return a * M")]),
    "false dependence": ("dependence", [("inter distance=4 true", "inter false")]),
    # the lanes never collide (the probe cannot see it), but no bank is provable: every lane may hit any bank
    "run-time bank offset": ("bank", [("(b + 4 * bo) % 4;", "(b + bo) % 4;")]),
    "several lanes on one bank": ("bank", [("(b + 4 * bo) % 4;", "(b / 2) % 4;")]),
    "dependent=false": ("dependence", [("inter distance=4 true", "inter dependent=false")]),
    "no EM_ITER": ("probe", [('        EM_ITER("two_ports", i);\n', "")]),
    "EM_ITER label mismatch": ("probe", [('EM_ITER("two_ports", i)', 'EM_ITER("two_port", i)')]),
    "unlabelled pipelined loop": ("probe", [("two_ports:\n", "")]),
    "heap (synth_check)": ("heap", [("    residual_unit(acc_out);", "    int *h = new int[4];\n    residual_unit(h);")]),
}


def mutate(case: str) -> str:
    from hls_check_cases import DYNAMIC_DEFECTS
    top = GOOD_TOP
    for old, new in DEFECTS[case][1] if case in DEFECTS else DYNAMIC_DEFECTS[case]:
        assert old in top, (case, old)
        top = top.replace(old, new, -1 if case == "engine missing" else 1)
    return top


@pytest.mark.parametrize("case", sorted(DEFECTS))
def test_seeded_defect_is_caught(tmp_path, case):
    rule = DEFECTS[case][0]
    res = _check(tmp_path, mutate(case))
    found = [v for v in res["violations"] if v["rule"] == rule]
    assert found, (case, res["violations"])
    for v in found:
        assert v["file"] in ("src/edgemoe_top.cpp", "src/mini.h") and v["line"] >= 0, v
    if rule == "maxi":
        assert all("loop engine_read" in v["message"] or "loop two_ports" in v["message"] for v in found), found
        assert found[0]["line"] > 0
    if case == "second engine instantiation":
        assert res["engine_instances"] == 2
        assert "extra_engine" in found[0]["message"]
    if case == "engine missing":
        assert res["engine_instances"] == 0


@pytest.mark.parametrize("index,kind", [
    ("i", "ok"), ("base + i", "ok"), ("long(i) + off", "ok"), ("(long)i + 3 * m", "ok"), ("i * 2", "stride"),
    ("K * i + 3", "stride"), ("i / 4", "stride"), ("i >> 1", "stride"), ("base", "none"), ("tab[i]", "indirect"),
    ("k", "advanced"), ("k + i", "advanced")])
def test_index_stride(index, kind):
    from edgemoe.codegen.hls_expr import index_stride
    assert index_stride(index, "i", "1", {"k": "k (advanced by hand)"})[0] == kind


def test_directives_of_the_config_files(tmp_path):
    cfg = {"hls_config.cfg": "[hls]\nsyn.top=edgemoe_top\nsyn.directive.allocation=limit=1 type=function edgemoe_top ghost\n"
                             "syn.directive.inline=off linear_engine\n",
           "run_hls.tcl": "set_directive_inline -off phantom\nset_directive_allocation -limit 1 -type function "
                          "edgemoe_top residual_unit\nset_directive_dependence -variable acc -dependent false edgemoe_top\n"}
    res = _check(tmp_path, GOOD_TOP, cfg)
    got = {(v["file"], v["line"], v["rule"]) for v in res["violations"]}
    assert got == {("hls_config.cfg", 3, "allocation"), ("run_hls.tcl", 1, "allocation"),
                   ("run_hls.tcl", 3, "dependence")}, res["violations"]


# ---- the recorder ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def probe_lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    (d / "k.cpp").write_text(PROBE_KERNEL)
    return ProbeLib(build_probe_library([d / "k.cpp"], d / "k.so", [], axi_bits=64, flags=["-Wno-unused-label"]))


@pytest.mark.parametrize("case", sorted(PROBE_CASES))
def test_recorder(probe_lib, case):
    which, rule, check = PROBE_CASES[case]
    probe_lib.reset()
    probe_lib.lib.run_case(which)
    rep = probe_lib.report()
    assert rep["unregistered"] == {"mem": 0, "rom": 0, "maxi": 0}
    assert check(rep), rep
    rules = {v.rule for v in probe_violations(rep, lambda label: ("k.cpp", 1))}
    assert rules == ({rule} if rule else set()), (case, rep)


def test_recorder_counts_loops_and_invocations(probe_lib):
    probe_lib.reset()
    probe_lib.lib.run_case(0)
    rep = probe_lib.report()
    assert rep["loops"] == {"burst_loop": {"iterations": 16, "invocations": 1},
                            "again_loop": {"iterations": 16, "invocations": 2}}
    assert rep["bursts"]["p"]["loops"] == ["burst_loop", "again_loop"] and rep["word_bytes"] == 8


# ---- a whole (tiny) project: static + instrumented simulation, the command line ----------------------

def test_mini_project_passes_and_cli_json(tmp_path, capsys):
    prj = write_mini_project(tmp_path / "prj", GOOD_TOP)
    j = tmp_path / "r.json"
    assert main(["hls-check", str(prj), "--json", str(j)]) == 0, capsys.readouterr().out
    res = json.loads(j.read_text())
    for k in JSON_KEYS:
        assert k in res, k
    assert res["violations"] == [] and res["engine_instances"] == 1
    assert res["probe"]["ran"], res["probe"]
    assert res["bursts"]["weights"]["contiguous"] and res["bursts"]["weights"]["loops"] == ["engine_read"]
    assert res["bursts"]["pixels"]["contiguous"] and res["bursts"]["out"]["contiguous"]
    assert res["bank_conflicts"] == [] and res["rom_oversubscribed"] == []
    assert "no violations" in capsys.readouterr().out


@pytest.mark.parametrize("case,rules", [
    ("strided read", {"maxi", "burst"}),
    ("conditional read", {"maxi", "burst"}),
    ("rom read 16 times", {"rom-ports"}),
    ("runtime bank offset", {"bank-conflict"}),
])
def test_mini_project_dynamic_defects(tmp_path, capsys, case, rules):
    prj = write_mini_project(tmp_path / "prj", mutate(case))
    j = tmp_path / "r.json"
    assert main(["hls-check", str(prj), "--json", str(j)]) == 1
    res = json.loads(j.read_text())
    got = {v["rule"] for v in res["violations"]}
    assert rules <= got, res["violations"]
    dyn = [v for v in res["violations"] if v["rule"] in ("burst", "rom-ports", "bank-conflict")]
    assert dyn and all(v["file"] == "src/edgemoe_top.cpp" and v["line"] > 0 for v in dyn), dyn
    assert all("loop engine_read" in v["message"] for v in dyn), dyn
    out = capsys.readouterr().out
    assert f"[{sorted(rules)[0]}]" in out


def test_missing_project_is_one_line_error(tmp_path, capsys):
    assert main(["hls-check", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgemoe: error:") and len(err.strip().splitlines()) == 1


# ---- a generated project: the report is complete (whether the kernel passes is the kernel's business) --

def test_generated_project_report_is_complete(tmp_path):
    from edgemoe.design import SHARED_FUNCTIONS
    from edgemoe.codegen.generate import generate
    generate(tmp_path / "p", preset="micro", board="zcu104")
    res = hls_check(tmp_path / "p")
    for k in JSON_KEYS:
        assert k in res, k
    assert isinstance(res["engine_instances"], int)
    assert set(SHARED_FUNCTIONS) <= set(res["instances"])
    assert res["build"]["compiled"]
    assert res["probe"]["ran"] or res["probe"]["reason"]
    if res["probe"]["ran"]:
        assert "loops" in res["probe"]["report"]
    for v in res["violations"]:
        assert set(v) == {"rule", "file", "line", "message"} and v["message"]


# ---- the static bank rule on small kernels ----------------------------------------------------------

@pytest.mark.parametrize("case", sorted(BANK_CASES))
def test_bank_rule(tmp_path, case):
    import shutil
    from edgemoe.codegen.hls_arrays import macro_table
    from edgemoe.codegen.hls_banks import check_banks
    from edgemoe.codegen.hls_source import preprocess
    body, flagged = BANK_CASES[case]
    src = tmp_path / "src"
    src.mkdir()
    for h in ("edgemoe_mem.h", "edgemoe_probe.h"):
        shutil.copyfile(INCLUDE_DIR / h, src / h)
    top = src / "k.cpp"
    top.write_text(BANK_KERNEL.replace("BODY", body))
    unit = preprocess(top, [src], [src], tmp_path, [])
    found, _ = check_banks(unit, "k", macro_table(top, [src], []))
    assert bool(found) == flagged, (case, found)
    for v in found:
        assert v.rule == "bank" and v.file == "src/k.cpp" and "loop lanes:" in v.message, v
    if case == "run-time offset inside the word":
        assert "moves with off" in found[0].message and "cyc" in found[0].message, found
