"""`edgemoe hls-check` on generated projects: defects seeded into a micro / zcu104 project's kernel are each
caught by their rule (the command exits 1) while the kernel still compiles and runs, the unmutated project
passes, and every generated design (each board's default and edge-moe, both precisions, batch 1 and 4)
passes with one linear engine and contiguous m_axi bursts.  About 15 s per checked project."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from edgemoe.cli import main
from edgemoe.codegen.generate import generate
from edgemoe.codegen.hls_check import hls_check

ENGINE_AGAIN = """// seeded defect: a second scope that calls the engine (INLINE off: an instance of its own)
static void engine_again(const engine_cmd c, const axi_word_t *weights WPORTS_PARAMS(weights), ENGINE_BUFFER_PARAMS) {
#pragma HLS INLINE off
    linear_engine(c, weights WPORTS_FWD(weights, 0), ENGINE_BUFFER_NAMES);
}
#define ENGINE_AGAIN(cmd) engine_again((cmd), weights WPORTS_FWD(weights, 0), ENGINE_BUFFER_ARGS)
"""
READ = "s.range(AXI_BITS - 1, 0) = axi_rd(w, base0 + i);"
# name: ([(file in src/, old, new)], the rules hls-check must report: exactly these)
MUTATIONS = {
    # steps of -1 / +3 words, every address inside the port's range (a tile's steps are even)
    "strided weight read": ([("linear.h", "axi_rd(w, base0 + i)", "axi_rd(w, base0 + (i ^ 1))")], {"maxi", "burst"}),
    "conditional weight read": ([("linear.h", READ, "if (i % 2 == 0) " + READ)], {"maxi", "burst"}),
    "second engine instance": ([("edgemoe_top.cpp", "#define ENGINE(cmd)", ENGINE_AGAIN + "#define ENGINE(cmd)"),
                                ("edgemoe_top.cpp", "ENGINE(engine_call(ENG_POS", "ENGINE_AGAIN(engine_call(ENG_POS")],
                               {"instances"}),
    "false dependence": ([("linear.h", "inter RAW distance=ENGINE_ACC_DISTANCE true", "inter false")], {"dependence"}),
    # LayerNorm's row[] is cyclic by VEC_LANES: a run-time offset leaves every lane's bank unknown
    "run-time bank offset": ([("layernorm.h", "ln_diff_t dv = row[c] - mean;", "ln_diff_t dv = row[(c + t) % EMBED] - mean;")],
                             {"bank"}),
    # every output lane's GELU on copy 0 of the table (the static rule sees it too)
    "one GELU ROM for every lane": ([("linear.h", "GELU_ROM[o]);", "GELU_ROM[0]);")], {"rom-ports", "bank"}),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The micro / zcu104 project every seeded defect starts from (generated once)."""
    prj = tmp_path_factory.mktemp("hls_check_project") / "micro_zcu104"
    generate(prj, preset="micro", board="zcu104")
    return prj


@pytest.fixture(scope="module")
def project_result(project, tmp_path_factory):
    """(exit code, JSON) of `edgemoe hls-check` on the unmutated project (checked once)."""
    j = tmp_path_factory.mktemp("hls_check_json") / "r.json"
    code = main(["hls-check", str(project), "--json", str(j)])
    return code, json.loads(j.read_text())


def _run_cli(prj, tmp_path) -> tuple:
    j = tmp_path / "r.json"
    code = main(["hls-check", str(prj), "--json", str(j)])
    return code, json.loads(j.read_text())


def _mutated(project, dst, edits):
    shutil.copytree(project, dst, ignore=shutil.ignore_patterns("build"))
    for name, old, new in edits:
        f = dst / "src" / name
        text = f.read_text()
        assert text.count(old) == 1, (name, old)
        f.write_text(text.replace(old, new))
    return dst


def _engine_out(prj) -> int:
    return int(re.search(r"#define ENGINE_OUT (\d+)", (prj / "src" / "edgemoe_config.h").read_text()).group(1))


@pytest.mark.parametrize("case", list(MUTATIONS))
def test_seeded_defect_in_a_project(project, tmp_path, capsys, case):
    edits, rules = MUTATIONS[case]
    prj = _mutated(project, tmp_path / "p", edits)
    code, res = _run_cli(prj, tmp_path)
    got = {v["rule"] for v in res["violations"]}
    assert code == 1 and got == rules, (case, res["violations"])
    # the mutated kernel still compiles (synthesis branch) and runs (the instrumented simulation)
    assert res["build"]["compiled"] and res["probe"]["ran"], (res["build"], res["probe"].get("reason"))
    assert all(v["line"] > 0 and v["file"].startswith("src/") for v in res["violations"]), res["violations"]
    msgs = {r: [v["message"] for v in res["violations"] if v["rule"] == r] for r in got}
    w = res["bursts"]["weights"]
    if case == "strided weight read":
        assert any("eng_fetch" in m and "strided" in m for m in msgs["maxi"]), msgs
        assert not w["contiguous"] and {p["kind"] for p in w["problems"]} == {"non-contiguous"}, w
    elif case == "conditional weight read":
        assert any("eng_fetch" in m and "conditional" in m for m in msgs["maxi"]), msgs
        assert not w["contiguous"] and "conditional" in {p["kind"] for p in w["problems"]}, w
    elif case == "second engine instance":
        assert res["engine_instances"] == 2 and "engine_again" in msgs["instances"][0], msgs
    elif case == "false dependence":
        assert [v["file"] for v in res["violations"]] == ["src/linear.h"] and "inter false" in msgs["dependence"][0]
    elif case == "run-time bank offset":
        (m,) = msgs["bank"]
        assert "loop ln_pipe" in m and "row[(c + t) % 32]" in m and "moves with t" in m, m
        assert res["bank_conflicts"] == [], "the probe trusts the reported banks: only the static rule sees this"
    else:
        n = 2 * _engine_out(prj)
        assert res["rom_oversubscribed"] and all(r["rom"] == "GELU_ROM" and r["copy"] == 0 and r["max_reads"] == n
                                                 for r in res["rom_oversubscribed"]), res["rom_oversubscribed"]
        assert any("GELU_ROM" in m and f"{n} read(s)" in m for m in msgs["bank"]), msgs
    assert "violation(s)" in capsys.readouterr().out


def test_unmutated_project_passes(project_result):
    code, res = project_result
    assert code == 0 and res["violations"] == [], res["violations"]


# (board, design (None: the board's default), precision, batch)
DESIGNS = [(b, None, p, 1) for b in ("zcu104", "zcu102", "kv260") for p in ("w16a32", "w8a8")] + \
          [("zcu102", "edge-moe", p, 1) for p in ("w16a32", "w8a8")] + \
          [("zcu104", None, "w8a8", 4), ("zcu102", "edge-moe", "w16a32", 4)]


@pytest.mark.parametrize("board,design,precision,batch", DESIGNS,
                         ids=[f"{b}-{d or 'default'}-{p}-b{n}" for b, d, p, n in DESIGNS])
def test_every_design_passes(project_result, tmp_path, board, design, precision, batch):
    if (board, design, precision, batch) == ("zcu104", None, "w16a32", 1):
        res = project_result[1]   # the seeded defects' base project
    else:
        generate(tmp_path / "p", preset="micro", board=board, design=design, precision=precision, batch=batch)
        res = hls_check(tmp_path / "p")
    assert res["violations"] == [], json.dumps(res["violations"], indent=1)
    assert res["engine_instances"] == 1
    assert res["probe"]["ran"], res["probe"].get("reason")
    assert res["bursts"] and all(b["contiguous"] for b in res["bursts"].values()), res["bursts"]
    assert all(b["within_ports"] for b in res["banks"]), res["banks"]
