"""The cycle / resource model (`edgemoe estimate`), the search (`edgemoe explore`), Vitis report
parsing and `edgemoe report`."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgemoe.board_facts import get_board
from edgemoe.codegen.csynth import parse_csynth
from edgemoe.design import get_design
from edgemoe.codegen.estimate import engine_cycles, estimate, linear_cycles
from edgemoe.codegen.explore import explore, pareto
from edgemoe.errors import EdgeMoeError
from edgemoe.golden.precision import base_precision
from edgemoe.spec import get_preset

JSON_KEYS = {"latency_ms", "gops", "dsp", "bram36", "uram", "lut", "ff", "board", "clock_mhz", "compute_floor_ms",
             "ddr_floor_ms", "limiting_resource", "limiting_unit", "caps", "within_caps", "ddr"}
EDGE_MOE_MS = 34.64


@pytest.fixture
def run_cli():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "edgemoe.cli", *map(str, args)], capture_output=True,
                              text=True, timeout=600)
    return run


@pytest.fixture
def micro_project(tmp_path):
    from edgemoe.codegen.generate import generate
    return generate(tmp_path / "proj", preset="micro", board="zcu102", design="edge-moe")


def _est(preset="m3vit-tiny-edge", prec="w16a32", design="edge-moe", board="zcu102", **kw):
    return estimate(get_preset(preset), base_precision(prec), get_design(design), get_board(board), **kw)


def test_edge_moe_point_lands_within_25_percent_of_the_published_latency():
    """The model's unit rates and bandwidths, scheduled the way the published kernel runs them
    (activations through DDR, weights loaded before each layer computes), land within 25% of the
    published 34.64 ms; the generated kernel at the same parallelism (activations on chip, weight
    loads under the MACs) is faster."""
    from edgemoe.codegen.estimate import published_latency_ms
    spec, prec, des, board = get_preset("m3vit-tiny-edge"), base_precision("w16a32"), get_design("edge-moe"), get_board("zcu102")
    published = published_latency_ms(spec, prec, des, board)
    assert abs(published / EDGE_MOE_MS - 1) <= 0.25, published
    e = _est()
    assert e.fits and e.latency_ms < published
    assert e.to_dict()["published_schedule_ms"] == pytest.approx(published, abs=1e-3)
    # the linear engine and attention carry the frame, as in the reference design
    by = e.by_unit_cycles()
    assert by["linear"] + by["attention"] > 0.85 * e.cycles


def test_estimate_counts_every_mac_of_the_encoder():
    spec = get_preset("m3vit-tiny-edge")
    e = _est()
    assert e.macs == spec.encoder_macs()
    assert e.gops == pytest.approx(2 * e.macs / (e.latency_ms * 1e-3) / 1e9)
    assert 0 < e.compute_floor_ms < e.latency_ms and 0 < e.ddr_floor_ms < e.latency_ms


def test_more_macs_or_ports_never_slow_the_kernel_down():
    base = _est()
    wider = estimate(get_preset("m3vit-tiny-edge"), base_precision("w16a32"),
                     get_design("edge-moe").with_(engine_in=32), get_board("zcu102"))
    ports = estimate(get_preset("m3vit-tiny-edge"), base_precision("w16a32"),
                     get_design("edge-moe").with_(weight_ports=3), get_board("zcu102"))
    assert wider.latency_ms < base.latency_ms and wider.resources["dsp"] > base.resources["dsp"]
    assert ports.latency_ms < base.latency_ms


def test_linear_cycles_are_load_or_compute_bound():
    # the RTL unit: 129 rows per tile hide a 16-word load; 4 rows do not
    assert linear_cycles(129, 2, 3, 16, 10) == 16 + 6 * 129 + 10
    assert linear_cycles(4, 2, 3, 16, 10) == 16 + 6 * 16 + 10


def test_engine_call_pays_the_read_latency_the_load_and_the_accumulator_distance():
    """The HLS engine per call: m_axi read latency + tile 0's load + per tile max(rows, load, accumulator
    distance) + depth; a one-token expert queue is held to ENGINE_ACC_DISTANCE iterations per tile."""
    from edgemoe.design import ENGINE_ACC_DISTANCE
    from edgemoe.codegen.model_common import MAXI_READ_LATENCY
    assert MAXI_READ_LATENCY == 64 and ENGINE_ACC_DISTANCE == 4
    assert engine_cycles(129, 6, 16, 10) == 64 + 16 + 6 * 129 + 10
    assert engine_cycles(4, 6, 16, 10) == 64 + 16 + 6 * 16 + 10
    assert engine_cycles(1, 6, 2, 10) == 64 + 2 + 6 * ENGINE_ACC_DISTANCE + 10


def test_estimate_cli_writes_the_json_contract(tmp_path, run_cli):
    j = tmp_path / "e.json"
    r = run_cli("estimate", "--preset", "m3vit-tiny-edge", "--board", "zcu102", "--design", "edge-moe", "--json", str(j))
    assert r.returncode == 0, r.stderr
    d = json.loads(j.read_text())
    assert JSON_KEYS <= set(d)
    assert d["board"] == "zcu102" and d["clock_mhz"] == 300.0
    assert "linear" in r.stdout and "floors" in r.stdout
    # the resource table's FF column, the limits, the DDR assumed
    head = next(line for line in r.stdout.splitlines() if line.startswith("resources"))
    assert head.split()[1:] == ["DSP", "BRAM36", "URAM", "LUT", "FF"]
    assert d["ff"] > 0 and "limiting resource:" in r.stdout and "limiting unit:" in r.stdout
    assert "DDR4-2133 assumed" in r.stdout and "75% of peak" in r.stdout


def test_estimate_of_a_generated_project_matches_the_options(tmp_path, run_cli, micro_project):
    j = tmp_path / "p.json"
    r = run_cli("estimate", str(micro_project.path), "--json", str(j))
    assert r.returncode in (0, 2), r.stderr
    d = json.loads(j.read_text())
    man = micro_project.manifest
    assert d["preset"] == man["spec"]["name"] and d["design"]["name"] == man["design"]["name"]


def test_a_spec_that_cannot_fit_names_the_resource_and_how_much(tmp_path, run_cli):
    r = run_cli("estimate", "--preset", "m3vit-small", "--board", "zcu104")
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()[-1]
    assert "does not fit zcu104" in err and "bram36" in err and "over" in err


@pytest.mark.parametrize("args, words", [
    (("--preset", "micro", "--board", "zcu999"), ["unknown board", "zcu104", "zcu102", "kv260"]),
    (("--preset", "micro", "--board", "zcu104", "--clock", "900"), ["clock 900", "zcu104 300"]),
    (("--preset", "micro", "--board", "zcu104", "--design", "nope"), ["unknown design point", "edge-moe"]),
    (("--preset", "micro"), ["--board"]),
])
def test_estimate_bad_input_is_one_line(run_cli, args, words):
    r = run_cli("estimate", *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), r.stderr


CSYNTH = """<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <UserAssignments><Part>xczu7ev-ffvc1156-2-e</Part><TopModelName>edgemoe_top</TopModelName>
    <TargetClockPeriod>3.33</TargetClockPeriod></UserAssignments>
  <PerformanceEstimates>
    <SummaryOfTimingAnalysis><EstimatedClockPeriod>3.10</EstimatedClockPeriod></SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency><Best-caseLatency>4000000</Best-caseLatency><Worst-caseLatency>{worst}</Worst-caseLatency>
    </SummaryOfOverallLatency>
    <SummaryOfLoopLatency><images><TripCount>1</TripCount><Latency>3990000</Latency><PipelineII>-</PipelineII></images>
    </SummaryOfLoopLatency>
  </PerformanceEstimates>
  <AreaEstimates>
    <Resources><BRAM_18K>600</BRAM_18K><DSP>1100</DSP><FF>90000</FF><LUT>70000</LUT><URAM>0</URAM></Resources>
    <AvailableResources><BRAM_18K>624</BRAM_18K><DSP>1728</DSP><FF>460800</FF><LUT>230400</LUT><URAM>96</URAM></AvailableResources>
  </AreaEstimates>
</profile>
"""


def test_csynth_report_is_parsed_into_the_estimate_table(tmp_path, run_cli, micro_project):
    rep_dir = micro_project.path / "hls_work" / "hls" / "syn" / "report"
    rep_dir.mkdir(parents=True)
    (rep_dir / "edgemoe_top_csynth.xml").write_text(CSYNTH.format(worst="undef"))
    (rep_dir / "linear_unit_csynth.xml").write_text(CSYNTH.format(worst="1234").replace("edgemoe_top", "linear_unit"))
    rep = parse_csynth(rep_dir / "edgemoe_top_csynth.xml")
    assert rep.latency_best == 4000000 and rep.latency_worst is None       # "undef" stays unknown
    assert rep.resources["bram36"] == 300 and rep.resources["dsp"] == 1100
    assert rep.loops[0]["name"] == "images" and rep.modules[0]["name"] == "linear_unit"
    j = tmp_path / "e.json"
    r = run_cli("estimate", str(micro_project.path), "--json", str(j))
    d = json.loads(j.read_text())
    assert {row["what"] for row in d["csynth"]["compare"]} >= {"cycles per frame", "dsp", "bram36"}
    assert "against Vitis" in r.stdout


@pytest.mark.parametrize("content, words", [
    (None, ["not found"]), ("<profile><oops", ["malformed XML"]), ("<profile/>", ["not a Vitis csynth.xml"])])
def test_bad_csynth_names_the_file(tmp_path, content, words):
    p = tmp_path / "top_csynth.xml"
    if content is not None:
        p.write_text(content)
    with pytest.raises(EdgeMoeError) as e:
        parse_csynth(p)
    assert str(p) in str(e.value) and all(w in str(e.value) for w in words)


def test_explore_finds_a_fitting_point_no_slower_than_the_board_default():
    spec, prec, board = get_preset("m3vit-tiny-edge"), base_precision("w16a32"), get_board("zcu102")
    best, front, points = explore(spec, prec, board)
    assert best.estimate.fits and best.estimate.within_caps and best in front
    assert all(p.latency_ms >= best.latency_ms * 0.995 for p in points)
    ref = estimate(spec, prec, get_design("edge-moe"), board)
    assert best.latency_ms <= ref.latency_ms
    # the front: nothing on it is beaten in every axis by another point
    for p in front:
        assert not any(q.latency_ms < p.latency_ms and q.dsp <= p.dsp and q.bram36 <= p.bram36 for q in points)
    assert pareto(front) == front


def test_explore_cli_best_point_feeds_generate(tmp_path, run_cli):
    j = tmp_path / "best.json"
    r = run_cli("explore", "--preset", "micro", "--board", "kv260", "--json", str(j))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "best.png").stat().st_size > 1000
    d = json.loads(j.read_text())
    assert JSON_KEYS <= set(d["estimate"]) and d["estimate"]["fits"]
    assert "Pareto front" in r.stdout
    # the best point is a design `generate --design` takes, and the project's estimate is the same
    r = run_cli("generate", "--preset", "micro", "--board", "kv260", "--design", str(j), "-o", str(tmp_path / "p"))
    assert r.returncode == 0, r.stderr
    r = run_cli("estimate", str(tmp_path / "p"), "--json", str(tmp_path / "pe.json"))
    assert json.loads((tmp_path / "pe.json").read_text())["latency_ms"] == d["estimate"]["latency_ms"]


def test_report_writes_html_and_markdown_with_the_ladder(tmp_path, run_cli, micro_project):
    sim = tmp_path / "sim.json"
    from edgemoe.sim.cli_sim import sim_document
    doc = sim_document([{"unit": "gelu", "simulator": "verilator", "vectors": 100, "mismatches": 0, "cycles": 120,
                         "items_per_cycle": 0.99}], {"preset": "micro", "precision": "w16a32", "design": "edge-moe"},
                       100, 0, {"verilator": "5.0"})
    sim.write_text(json.dumps(doc))
    out = tmp_path / "rep"
    r = run_cli("report", str(micro_project.path), "--output", str(out), "--sim-json", str(sim))
    assert r.returncode == 0, r.stderr
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    for section in ("Spec", "Resources against the board", "Latency per layer", "Accuracy ladder", "Error per stage",
                    "Vitis report"):
        assert section in html and section in md
    assert html.count("data:image/png;base64,") == 4   # resources, layers, errors, stages (csim ran here)
    ladder = json.loads((out / "report.json").read_text())["ladder"]
    assert [r["rung"] for r in ladder] == ["float", "fixed", "csim", "RTL", "board"]
    assert ladder[2]["mismatches"] == 0 and ladder[3]["mismatches"] == 0
    r = run_cli("report", str(micro_project.path), "--output", str(tmp_path / "r2"), "--board-json", str(tmp_path / "no.json"))
    assert r.returncode == 2 and "no.json" in r.stderr and not (tmp_path / "r2").exists()


def test_unit_cycle_model_within_10_percent_of_the_cocotb_benches(tmp_path, run_cli):
    """Every RTL unit's throughput phase, measured in cocotb, against the model's cycles for the same
    workload (the shapes the kernel model uses: streams, and the engine's tile loop)."""
    from edgemoe.codegen.estimate import rtl_unit_cycles
    j = tmp_path / "sim.json"
    r = run_cli("sim", "--simulator", "icarus", "--vectors", "400", "--json", str(j))
    assert r.returncode == 0, r.stdout + r.stderr
    units = json.loads(j.read_text())["units"]
    assert set(units) == {"gelu", "softmax", "layernorm", "linear", "moe_route"}
    for name, u in units.items():
        model = rtl_unit_cycles(name, u["throughput_workload"])
        assert abs(model / u["throughput_cycles"] - 1) <= 0.10, (name, model, u["throughput_cycles"])


@pytest.mark.parametrize("board", ["zcu104", "zcu102", "kv260"])
def test_board_default_designs_fit_their_board(board):
    from edgemoe.design import board_default
    for prec in ("w16a32", "w8a8"):
        e = estimate(get_preset("m3vit-tiny-edge"), base_precision(prec), board_default(board), get_board(board))
        assert e.fits and e.within_caps, (prec, e.over_budget(), e.over_caps())
