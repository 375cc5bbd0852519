"""`edgemoe vitis-check` and the check `edgemoe build` runs after HLS, on log and report excerpts
written from the documented message formats (UG1448 burst-inference failures 214-224..234, 214-115,
200-1470 / SCHED 204-61, 200-880 / 885 / 448; csynth.xml RTLDesignHierarchy and loop summary;
csynth.rpt Instance tables): every check catches its failure and names the port / loop / instance and
the source line, a clean run passes, the CLI's exit codes and one-line errors, and `build()` with a
fake v++ failing on a 214-232 and passing when clean."""
from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from edgemoe.cli import main
from edgemoe.codegen.vitis_check import vitis_check
from edgemoe.errors import EdgeMoeError

from test_boards import project  # noqa: F401  (the session's generated micro/zcu104 project)

TOP = "edgemoe_top"
SYS_PATH = "/usr/bin:/bin"

# what a clean run of the kernel logs: bursts inferred on the weight and activation bundles, II 1 met
CLEAN_LOG = """\
INFO: [HLS 200-111] Finished File checks and directory preparation: CPU user time: 0.1 seconds.
INFO: [HLS 214-115] Multiple burst reads of length 256 and bit width 256 in loop 'LOAD_W'(src/linear.h:160:5) \
has been inferred on bundle 'gmem_w'. These burst requests might be further partitioned into multiple requests \
during RTL generation, based on max_read_burst_length or max_write_burst_length settings. (src/linear.h:160:5)
INFO: [HLS 214-115] Burst read of variable length and bit width 256 has been inferred on port 'gmem_act' \
(src/edgemoe_top.cpp:40:17)
INFO: [HLS 204-61] Pipelining loop 'ENGINE_MAC'.
INFO: [HLS 200-1470] Pipelining result : Target II = 1, Final II = 1, Depth = 9, loop 'ENGINE_MAC'
INFO: [HLS 204-61] Pipelining loop 'LN_NORM'.
INFO: [HLS 200-1470] Pipelining result : Target II = 1, Final II = 1, Depth = 14, loop 'LN_NORM'
INFO: [HLS 200-789] **** Estimated Fmax: 310.2 MHz
"""

# one line per burst-inference failure of UG1448 ("Burst Inference Failure 2..12"): (line, port, file, line)
BURST_FAILURES = [
    ("WARNING: [HLS 214-224] Inferred burst reverted due to conflict with other on weights (src/linear.h:168:21)",
     "weights", "src/linear.h", 168),
    ("WARNING: [HLS 214-225] Bursting on weights1 may be impacted by pragma dependence (src/linear.h:169:11)",
     "weights1", "src/linear.h", 169),
    ("WARNING: [HLS 214-226] Non byte size access on pixels (src/patch_embed.h:30:9)", "pixels", "src/patch_embed.h", 30),
    ("WARNING: [HLS 214-229] Could not analyze pattern on scratch (src/edgemoe_top.cpp:88:13)",
     "scratch", "src/edgemoe_top.cpp", 88),
    ("WARNING: [HLS 214-230] Stride is incompatible (addr={(64 * %n),+,32}<nsw><%for.body>) on weights "
     "(src/linear.h:170:9)", "weights", "src/linear.h", 170),
    ("WARNING: [HLS 214-231] Access is clobbered by other on out (src/edgemoe_top.cpp:120:5)", "out", "src/edgemoe_top.cpp", 120),
    ("WARNING: [HLS 214-232] Access on weights is in the conditional branch (src/linear.h:171:9)",
     "weights", "src/linear.h", 171),
    ("WARNING: [HLS 214-234] Sequential access on weights2. Length is not divisible by 2 (src/linear.h:172:9)",
     "weights2", "src/linear.h", 172),
]


# ---- fixtures: a fake generated project and Vitis runs in it -------------------------------------
@pytest.fixture
def prj(tmp_path):
    """A project folder with the manifest a generated project has (all vitis-check reads of it)."""
    from edgemoe.board_facts import get_board
    from edgemoe.design import board_default
    from edgemoe.golden.precision import base_precision
    from edgemoe.spec import get_preset
    d = tmp_path / "prj"
    (d / "data").mkdir(parents=True)
    b = get_board("zcu104")
    man = dict(top=TOP, spec=get_preset("micro").to_dict(), precision=base_precision("w16a32").to_dict(),
               design=board_default("zcu104").to_dict(), board=dict(name=b.name, part=b.part))
    (d / "data" / "manifest.json").write_text(json.dumps(man))
    return d


def _estimate(project_dir) -> dict:
    from edgemoe.codegen.estimate import estimate
    from edgemoe.codegen.perf_commands import resolve_target
    return dict(estimate(*resolve_target(project=project_dir)).resources)


def _inst(inst, module, children=()):
    return (inst, module, list(children))


CLEAN_TREE = [_inst("grp_linear_engine_fu_412", "linear_engine",
                    [_inst("grp_linear_engine_Pipeline_ENGINE_MAC_fu_30", "linear_engine_Pipeline_ENGINE_MAC")]),
              _inst("grp_layernorm_unit_fu_520", "layernorm_unit",
                    [_inst("grp_layernorm_unit_Pipeline_LN_NORM_fu_12", "layernorm_unit_Pipeline_LN_NORM")]),
              _inst("grp_residual_unit_fu_610", "residual_unit"),
              _inst("gmem_w_m_axi_U", "gmem_w_m_axi")]


def _tree_xml(instances) -> str:
    if not instances:
        return "<InstancesList/>"
    parts = []
    for inst, module, children in instances:
        parts.append(f"<Instance><InstName>{inst}</InstName><ModuleName>{module}</ModuleName>"
                     f"<IsCompInst>true</IsCompInst><ID>1</ID>{_tree_xml(children) if children else ''}</Instance>")
    return "<InstancesList>" + "".join(parts) + "</InstancesList>"


def csynth_xml(res: dict, loops=(), tree=CLEAN_TREE, top=TOP) -> str:
    """A <top>_csynth.xml: resources (dsp, bram36, uram, lut, ff), loops (name, II[, target II tag]) and
    the RTLDesignHierarchy (None: a report without it, as before Vitis 2021)."""
    loop_xml = ""
    for lp in loops:
        name, ii = lp[0], lp[1]
        target = f"<TargetII>{lp[2]}</TargetII>" if len(lp) > 2 else ""
        loop_xml += (f"<{name}><Name>{name}</Name><Slack>0.5</Slack><TripCount>64</TripCount><Latency>140</Latency>"
                     f"<PipelineII>{ii}</PipelineII>{target}<PipelineDepth>9</PipelineDepth><PipelineType>yes</PipelineType>"
                     f"<InstanceList/></{name}>")
    hier = "" if tree is None else (f'<RTLDesignHierarchy><TopModule MAX_DEPTH="3"><ModuleName>{top}</ModuleName>'
                                    f"{_tree_xml(tree)}</TopModule></RTLDesignHierarchy>")
    r = {k: res.get(k, 0) for k in ("dsp", "bram36", "uram", "lut", "ff")}
    return f"""<profile>
  <ReportVersion><Version>2023.2</Version></ReportVersion>
  <UserAssignments><unit>ns</unit><Part>xczu7ev-ffvc1156-2-e</Part><TopModelName>{top}</TopModelName>
    <TargetClockPeriod>3.33</TargetClockPeriod><FlowTarget>vivado</FlowTarget></UserAssignments>
  <PerformanceEstimates><PipelineType>no</PipelineType>
    <SummaryOfTimingAnalysis><unit>ns</unit><EstimatedClockPeriod>2.914</EstimatedClockPeriod></SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency><unit>clock cycles</unit><Best-caseLatency>91000</Best-caseLatency>
      <Worst-caseLatency>98000</Worst-caseLatency><Interval-min>91001</Interval-min><Interval-max>98001</Interval-max>
    </SummaryOfOverallLatency>
    <SummaryOfLoopLatency>{loop_xml}</SummaryOfLoopLatency>
  </PerformanceEstimates>
  <AreaEstimates>
    <Resources><BRAM_18K>{int(r['bram36'] * 2)}</BRAM_18K><DSP>{r['dsp']}</DSP><FF>{r['ff']}</FF><LUT>{r['lut']}</LUT>
      <URAM>{r['uram']}</URAM></Resources>
    <AvailableResources><BRAM_18K>624</BRAM_18K><DSP>1728</DSP><FF>460800</FF><LUT>230400</LUT><URAM>96</URAM>
    </AvailableResources>
  </AreaEstimates>
  {hier}
</profile>
"""


def write_run(run: Path, log: str | None = None, xml: str | None = None, log_path: Path | None = None) -> Path:
    """A Vitis run folder: <run>/syn/report/<top>_csynth.xml and its log (default <run>/hls.log)."""
    rep = run / "syn" / "report"
    rep.mkdir(parents=True, exist_ok=True)
    if xml is not None:
        (rep / f"{TOP}_csynth.xml").write_text(xml)
    if log is not None:
        lp = log_path or run / "hls.log"
        lp.parent.mkdir(parents=True, exist_ok=True)
        lp.write_text(log)
    return run


@pytest.fixture
def clean(prj):
    """(project, v++ work run) of a run that holds everything the kernel claims."""
    run = write_run(prj / "hls_work" / "hls", CLEAN_LOG, csynth_xml(_estimate(prj)))
    return prj, run


def _fails(res, check=None):
    return [f for f in res["findings"] if f["severity"] == "failure" and (check is None or f["check"] == check)]


# ---- a clean run ---------------------------------------------------------------------------------
def test_clean_run_passes_with_every_key(clean, capsys, tmp_path):
    prj, run = clean
    res = vitis_check(prj)
    assert res["ok"] is True and res["failures"] == 0 and _fails(res) == []
    assert set(res) >= {"project", "run", "log", "csynth", "findings", "failures", "bursts_inferred",
                        "engine_instances", "resources", "ok"}
    assert Path(res["run"]) == run and Path(res["log"]) == run / "hls.log"
    assert Path(res["csynth"]) == run / "syn" / "report" / f"{TOP}_csynth.xml"
    assert [(b["bundle"], b["direction"], b["length"], b["loop"]) for b in res["bursts_inferred"]] == \
        [("gmem_w", "read", 256, "LOAD_W"), ("gmem_act", "read", None, None)]
    assert res["engine_instances"] == 1 and res["instances"]["linear_engine"] == ["grp_linear_engine_fu_412"]
    ratios = {k: r["ratio"] for k, r in res["resources"].items() if k != "ff"}
    assert ratios == pytest.approx({"dsp": 1.0, "bram36": 1.0, "uram": 1.0, "lut": 1.0}, abs=0.02)
    for f in res["findings"]:
        assert set(f) == {"check", "severity", "where", "file", "line", "message"}
    out_json = tmp_path / "r.json"
    assert main(["vitis-check", str(prj), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "no failures" in out and "gmem_w" in out
    assert json.loads(out_json.read_text())["failures"] == 0


# ---- burst -------------------------------------------------------------------------------------
@pytest.mark.parametrize("line,port,file,lineno", BURST_FAILURES, ids=[b[0][15:22] for b in BURST_FAILURES])
def test_each_burst_failure_is_named(clean, capsys, line, port, file, lineno):
    prj, run = clean
    (run / "hls.log").write_text(CLEAN_LOG + line + "\nResolution: For help on HLS 214-2xx see docs.xilinx.com/...\n")
    res = vitis_check(prj)
    fails = _fails(res)
    assert len(fails) == 1 and res["failures"] == 1 and res["ok"] is False
    f = fails[0]
    assert (f["check"], f["where"], f["file"], f["line"]) == ("burst", port, file, lineno)
    assert line.split("] ")[0].split("[")[1] in f["message"]           # the code, e.g. HLS 214-232
    assert main(["vitis-check", str(prj)]) == 1
    failure_line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("FAILURE"))
    assert port in failure_line and f"{file}:{lineno}" in failure_line


def test_burst_failures_come_first_and_duplicates_merge(clean, capsys):
    prj, run = clean
    dup = BURST_FAILURES[6][0]
    log = ("INFO: [HLS 204-61] Pipelining loop 'HIST'.\nWARNING: [HLS 200-448] Lower bound of II is 2 due to multiple "
           "'load' operation 32 bit ('h_load', src/moe_route.h:95) on array 'hist' accessing core:RAM:hist\n"
           "INFO: [HLS 200-1470] Pipelining result : Target II = NA, Final II = 2, Depth = 4, loop 'HIST'\n")
    (run / "hls.log").write_text(log + CLEAN_LOG + dup + "\n" + dup + "\n")
    res = vitis_check(prj)
    assert len(_fails(res, "burst")) == 1
    assert [f["severity"] for f in res["findings"]][:2] == ["failure", "warning"]   # failures first
    assert main(["vitis-check", str(prj)]) == 1
    rows = [ln.split()[0] for ln in capsys.readouterr().out.splitlines() if ln.startswith(("FAILURE", "WARNING"))]
    assert rows == sorted(rows)  # FAILURE before WARNING


# ---- II ----------------------------------------------------------------------------------------
II_LOG = """\
INFO: [HLS 204-61] Pipelining loop 'ENGINE_MAC'.
WARNING: [HLS 200-880] The II Violation in module 'linear_engine_Pipeline_ENGINE_MAC' (loop 'ENGINE_MAC'): Unable to \
enforce a carried dependence constraint (II = 1, distance = 1, offset = 1) between 'store' operation 0 bit \
('acc_addr_write_ln175', src/linear.h:175) of variable 'sum', src/linear.h:174 on array 'acc' and 'load' operation 48 bit \
('acc_load', src/linear.h:174) on array 'acc'.
Resolution: For help on HLS 200-880 see docs.xilinx.com/access/sources/dita/topic?resourceid=200-880.html
WARNING: [HLS 200-885] The II Violation in module 'linear_engine_Pipeline_ENGINE_MAC' (loop 'ENGINE_MAC'): Unable to \
schedule bus request operation ('gmem_w_load_1_req', src/linear.h:168) on port 'gmem_w' (src/linear.h:168) due to limited \
memory ports (II = 1). Please consider using a memory core with more ports or partitioning the array.
WARNING: [HLS 200-885] The II Violation in module 'linear_engine_Pipeline_ENGINE_MAC' (loop 'ENGINE_MAC'): Unable to \
schedule bus request operation ('gmem_w_load_2_req', src/linear.h:168) on port 'gmem_w' (src/linear.h:168) due to limited \
memory ports (II = 2). Please consider using a memory core with more ports or partitioning the array.
INFO: [HLS 200-1470] Pipelining result : Target II = 1, Final II = 3, Depth = 12, loop 'ENGINE_MAC'
INFO: [HLS 204-61] Pipelining loop 'SM_EXP'.
WARNING: [HLS 200-448] Lower bound of II is 2 due to multiple 'load' operation 32 bit ('t_load', src/softmax.h:140) on \
array 'exp_table', 'load' operation 32 bit ('t_load_1', src/softmax.h:140) on array 'exp_table' accessing core:RAM:exp_table
INFO: [HLS 200-1470] Pipelining result : Target II = 1, Final II = 2, Depth = 6, loop 'SM_EXP'
INFO: [SCHED 204-61] Pipelining loop 'OLD_ROWS'.
INFO: [SCHED 204-61] Pipelining result: Target II: 1, Final II: 2, Depth: 3.
"""


def test_ii_violations_from_the_log_name_loop_cause_and_line(clean):
    prj, run = clean
    (run / "hls.log").write_text(CLEAN_LOG + II_LOG)
    res = vitis_check(prj)
    fails = _fails(res, "ii")
    by = {(f["where"], f["message"].split("]")[0] if f["message"].startswith("[") else "result"): f for f in fails}
    # the 200-1470 results that miss the pragma, new and old (SCHED) form
    assert {w for w, k in by if k == "result"} == {"ENGINE_MAC", "SM_EXP", "OLD_ROWS"}
    assert "Final II = 3" in by[("ENGINE_MAC", "result")]["message"]
    # the causes: array / port and source line; 200-885 repeated per tried II is one finding at the highest II
    dep = by[("ENGINE_MAC", "[HLS 200-880")]
    assert "'acc'" in dep["message"] and (dep["file"], dep["line"]) == ("src/linear.h", 175)
    ports = [f for f in fails if "200-885" in f["message"]]
    assert len(ports) == 1 and "'gmem_w'" in ports[0]["message"] and "at II 2" in ports[0]["message"]
    assert ports[0]["line"] == 168
    low = by[("SM_EXP", "[HLS 200-448")]
    assert "exp_table" in low["message"] and low["file"] == "src/softmax.h"
    assert res["failures"] == len(fails) == 6


def test_ii_cause_without_a_pragma_is_a_warning(clean):
    prj, run = clean
    log = ("INFO: [HLS 204-61] Pipelining loop 'HIST'.\n"
           "WARNING: [HLS 200-880] The II Violation in module 'moe_route_Pipeline_HIST' (loop 'HIST'): Unable to enforce a "
           "carried dependence constraint (II = 1, distance = 2, offset = 1) between 'store' operation ('h_addr_write', "
           "src/moe_route.h:96) on array 'hist' and 'load' operation ('h_load', src/moe_route.h:95) on array 'hist'.\n"
           "INFO: [HLS 200-1470] Pipelining result : Target II = NA, Final II = 2, Depth = 4, loop 'HIST'\n")
    (run / "hls.log").write_text(CLEAN_LOG + log)
    res = vitis_check(prj)
    assert res["ok"] and res["failures"] == 0
    warn = [f for f in res["findings"] if f["check"] == "ii"]
    assert len(warn) == 1 and warn[0]["severity"] == "warning" and warn[0]["where"] == "HIST"


def test_ii_from_the_csynth_loop_table(clean):
    prj, run = clean
    est = _estimate(prj)
    xml = run / "syn" / "report" / f"{TOP}_csynth.xml"
    # a stated target missed, and an II above 1 that the log knows nothing about: failures
    xml.write_text(csynth_xml(est, loops=[("ATT_QK", 2, 1), ("GELU_LANES", 4), ("ENGINE_MAC", 1, 1)]))
    res = vitis_check(prj)
    assert {f["where"] for f in _fails(res, "ii")} == {"ATT_QK", "GELU_LANES"}
    assert "II 2 > target 1" in next(f for f in _fails(res) if f["where"] == "ATT_QK")["message"]
    # a loop Vitis pipelined without a pragma (Target II = NA in the log): a warning only
    (run / "hls.log").write_text(CLEAN_LOG + "INFO: [HLS 200-1470] Pipelining result : Target II = NA, Final II = 4, "
                                             "Depth = 5, loop 'GELU_LANES'\n")
    res = vitis_check(prj)
    assert [f["where"] for f in _fails(res)] == ["ATT_QK"]
    assert any(f["where"] == "GELU_LANES" and f["severity"] == "warning" for f in res["findings"])


# ---- engine --------------------------------------------------------------------------------------
def test_two_engine_instances_fail_and_pipeline_submodules_do_not_count(clean, capsys):
    prj, run = clean
    est = _estimate(prj)
    xml = run / "syn" / "report" / f"{TOP}_csynth.xml"
    tree = CLEAN_TREE + [_inst("grp_moe_experts_fu_700", "moe_experts",
                               [_inst("grp_linear_engine_1_fu_88", "linear_engine_1",
                                      [_inst("grp_linear_engine_1_Pipeline_ENGINE_MAC_fu_9",
                                             "linear_engine_1_Pipeline_ENGINE_MAC")])])]
    xml.write_text(csynth_xml(est, tree=tree))
    res = vitis_check(prj)
    fails = _fails(res)
    assert len(fails) == 1 and fails[0]["check"] == "engine" and fails[0]["where"] == "linear_engine"
    assert "grp_linear_engine_fu_412" in fails[0]["message"]
    assert "grp_moe_experts_fu_700/grp_linear_engine_1_fu_88" in fails[0]["message"]
    assert res["engine_instances"] == 2
    assert main(["vitis-check", str(prj)]) == 1
    assert "2 instances of linear_engine" in capsys.readouterr().out


def test_engine_inlined_is_a_warning(clean):
    prj, run = clean
    tree = [t for t in CLEAN_TREE if t[1] != "linear_engine"]
    (run / "syn" / "report" / f"{TOP}_csynth.xml").write_text(csynth_xml(_estimate(prj), tree=tree))
    res = vitis_check(prj)
    assert res["ok"] and res["engine_instances"] == 0
    warn = [f for f in res["findings"] if f["check"] == "engine"]
    assert len(warn) == 1 and warn[0]["severity"] == "warning" and "inlined or renamed" in warn[0]["message"]


def _rpt(module: str, rows) -> str:
    body = "\n".join(f"        |{inst:<40s}|{mod:<30s}|       42|       42|  0.140 us|  0.140 us|   42|   42|       no|"
                     for inst, mod in rows) or "        N/A"
    table = ("        +----------------------------------------+------------------------------+---------+\n"
             "        |                                        |                              |  Latency (cycles) |\n"
             "        |                Instance                |            Module            |   min   |   max   |\n"
             "        +----------------------------------------+------------------------------+---------+\n"
             f"{body}\n"
             "        +----------------------------------------+------------------------------+---------+\n")
    return (f"\n\n================================================================\n== Vitis HLS Report for '{module}'\n"
            "================================================================\n* Date:           Mon Jan  6 10:00:00 2025\n\n"
            "+ Latency: \n    * Summary: \n    (table)\n\n    + Detail: \n        * Instance: \n" + table +
            "\n        * Loop: \n        N/A\n\n\n== Utilization Estimates\n* Summary: \n+ Detail: \n    * Instance: \n" +
            table.replace("        ", "    ") + "\n    * DSP: \n    N/A\n")


def test_engine_count_from_the_rpt_instance_tables(clean):
    """Without a hierarchy in the XML, the *_csynth.rpt Instance tables are expanded from the top: one
    linear_engine inside a module instantiated twice is two engines."""
    prj, run = clean
    rep = run / "syn" / "report"
    (rep / f"{TOP}_csynth.xml").write_text(csynth_xml(_estimate(prj), tree=None))
    (rep / f"{TOP}_csynth.rpt").write_text(_rpt(TOP, [("grp_moe_block_fu_10", "moe_block"), ("grp_moe_block_fu_20", "moe_block"),
                                                      ("grp_layernorm_unit_fu_5", "layernorm_unit"),
                                                      ("grp_residual_unit_fu_6", "residual_unit"),
                                                      ("control_s_axi_U", "control_s_axi")]))
    (rep / "moe_block_csynth.rpt").write_text(_rpt("moe_block", [("grp_linear_engine_fu_7", "linear_engine"),
                                                                 ("grp_linear_engine_Pipeline_MAC_fu_3",
                                                                  "linear_engine_Pipeline_MAC")]))
    res = vitis_check(prj)
    assert res["engine_instances"] == 2
    f = _fails(res, "engine")
    assert len(f) == 1 and "grp_moe_block_fu_10/grp_linear_engine_fu_7" in f[0]["message"] \
        and "grp_moe_block_fu_20/grp_linear_engine_fu_7" in f[0]["message"]
    # the same tables with one moe_block: one engine, no failure
    (rep / f"{TOP}_csynth.rpt").write_text(_rpt(TOP, [("grp_moe_block_fu_10", "moe_block"),
                                                      ("grp_layernorm_unit_fu_5", "layernorm_unit"),
                                                      ("grp_residual_unit_fu_6", "residual_unit")]))
    res = vitis_check(prj)
    assert res["engine_instances"] == 1 and res["ok"]


# ---- resources ---------------------------------------------------------------------------------
def test_resources_more_than_10_percent_above_the_estimate(clean, capsys):
    prj, run = clean
    est = _estimate(prj)
    xml = run / "syn" / "report" / f"{TOP}_csynth.xml"
    xml.write_text(csynth_xml(dict(est, dsp=int(est["dsp"] * 1.2), lut=int(est["lut"] * 1.09))))
    res = vitis_check(prj)
    fails = _fails(res)
    assert [(f["check"], f["where"]) for f in fails] == [("resources", "dsp")]       # LUT at 1.09x passes
    msg = fails[0]["message"]
    assert str(int(est["dsp"] * 1.2)) in msg and str(est["dsp"]) in msg and "1.20x" in msg
    assert res["resources"]["dsp"] == dict(estimate=est["dsp"], vitis=int(est["dsp"] * 1.2), ratio=pytest.approx(1.2, abs=2e-3))
    assert 1.08 < res["resources"]["lut"]["ratio"] < 1.1
    assert main(["vitis-check", str(prj)]) == 1
    assert "dsp" in next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("FAILURE"))


# ---- finding the run ---------------------------------------------------------------------------
def test_legacy_vitis_hls_layout_and_the_newest_run(prj):
    est = _estimate(prj)
    # vitis_hls -f run_hls.tcl: DIR/hls_prj/solution1/syn/report, vitis_hls.log where it ran (DIR)
    legacy = write_run(prj / "hls_prj" / "solution1", CLEAN_LOG + BURST_FAILURES[6][0] + "\n", csynth_xml(est),
                       log_path=prj / "vitis_hls.log")
    res = vitis_check(prj)
    assert Path(res["run"]) == legacy and Path(res["log"]) == prj / "vitis_hls.log" and res["failures"] == 1
    # edgemoe build's run (newer): DIR/build/hls/hls/syn/report with the log in DIR/build/logs/hls.log
    time.sleep(0.02)
    built = write_run(prj / "build" / "hls" / "hls", CLEAN_LOG, csynth_xml(est), log_path=prj / "build" / "logs" / "hls.log")
    # a staging folder of an unfinished build is never a run
    write_run(prj / "build" / ".staging-x" / "hls" / "hls", BURST_FAILURES[0][0], csynth_xml(est))
    res = vitis_check(prj)
    assert Path(res["run"]) == built and Path(res["log"]) == prj / "build" / "logs" / "hls.log" and res["ok"]
    assert res["other_runs"] == [str(legacy)]
    # --run picks one explicitly
    assert vitis_check(prj, run_dir=prj / "hls_prj")["failures"] == 1
    assert vitis_check(prj, run_dir=prj / "build" / "hls")["ok"]


def test_log_only_run_is_checked(prj):
    """A run whose csynth did not finish (no report): the log's burst failures still fail it."""
    log = prj / "build" / "last_failed" / "logs" / "hls.log"
    log.parent.mkdir(parents=True)
    log.write_text(CLEAN_LOG + BURST_FAILURES[6][0] + "\n")
    res = vitis_check(prj)
    assert Path(res["log"]) == log and res["csynth"] is None and res["engine_instances"] is None
    assert [f["where"] for f in _fails(res)] == ["weights"]
    assert any(f["severity"] == "warning" and "no csynth report" in f["message"] for f in res["findings"])


# ---- command line ------------------------------------------------------------------------------
def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("edgemoe: error: ") and "Traceback" not in err
    return err


def test_cli_errors_are_one_line(prj, tmp_path, capsys):
    assert main(["vitis-check", str(prj)]) == 2
    err = _one_line_error(capsys)
    assert "no Vitis run found" in err and f"edgemoe build {prj} --until hls" in err
    assert main(["vitis-check", str(tmp_path / "nothing")]) == 2
    assert "not a generated project" in _one_line_error(capsys)
    assert main(["vitis-check", str(prj), "--run", str(tmp_path / "nope")]) == 2
    assert "--run" in _one_line_error(capsys)
    (tmp_path / "empty_run").mkdir()
    assert main(["vitis-check", str(prj), "--run", str(tmp_path / "empty_run")]) == 2
    assert "no Vitis run found" in _one_line_error(capsys)
    with pytest.raises(EdgeMoeError):
        vitis_check(prj)


def test_help():
    from edgemoe.cli import build_parser
    args = build_parser().parse_args(["vitis-check", "x", "--run", "r"])
    assert args.run == "r" and args.json is None and args.project == "x"
    with pytest.raises(SystemExit) as e:
        main(["vitis-check", "--help"])
    assert e.value.code == 0


# ---- edgemoe build -------------------------------------------------------------------------------
FAKE_VPP = r"""#!/bin/sh
# fake v++: an IP export under --work_dir, the run's csynth report from $FAKE_CSYNTH, the log from $FAKE_HLS_LOG
work=""
while [ $# -gt 0 ]; do
    case "$1" in --work_dir) work="$2"; shift ;; esac
    shift
done
mkdir -p "$work/hls/impl/ip" "$work/hls/syn/report"
[ -n "$FAKE_CSYNTH" ] && cp "$FAKE_CSYNTH" "$work/hls/syn/report/edgemoe_top_csynth.xml"
cat "$FAKE_HLS_LOG"
echo '<spirit:component/>' > "$work/hls/impl/ip/component.xml"
"""


@pytest.fixture
def built(project, tmp_path, monkeypatch):  # noqa: F811
    """(project copy, set_log(text)): a fake v++ on PATH that logs what set_log wrote."""
    d = tmp_path / "proj"
    shutil.copytree(project, d, ignore=shutil.ignore_patterns("build"))
    b = tmp_path / "bin"
    b.mkdir()
    (b / "v++").write_text(FAKE_VPP)
    (b / "v++").chmod((b / "v++").stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{b}:{SYS_PATH}")
    xml = tmp_path / "csynth.xml"
    xml.write_text(csynth_xml(_estimate(d)))
    monkeypatch.setenv("FAKE_CSYNTH", str(xml))
    log = tmp_path / "fake_hls.log"
    monkeypatch.setenv("FAKE_HLS_LOG", str(log))
    return d, log.write_text


def test_build_fails_on_a_conditional_burst(built, capsys):
    d, set_log = built
    set_log(CLEAN_LOG + BURST_FAILURES[6][0] + "\n")
    assert main(["build", str(d), "--until", "hls"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgemoe: error: vitis-check: 1 failure") and "Traceback" not in err
    assert "weights" in err and "src/linear.h:171" in err and "214-232" in err
    assert str(d / "build" / "last_failed") in err
    b = d / "build"
    assert not (b / "build_info.json").exists() and (b / "last_failed" / "FAILED.txt").is_file()
    rec = json.loads((b / "last_failed" / "logs" / "vitis_check.json").read_text())
    assert rec["failures"] == 1 and rec["findings"][0]["where"] == "weights" and rec["log"] == "logs/hls.log"
    assert rec["csynth"] == "hls/hls/syn/report/edgemoe_top_csynth.xml"


def test_build_passes_when_clean_and_without_the_hook(built, capsys):
    d, set_log = built
    set_log(CLEAN_LOG)
    assert main(["build", str(d), "--until", "hls"]) == 0, capsys.readouterr().err
    b = d / "build"
    info = json.loads((b / "build_info.json").read_text())
    assert info["after_hls"] == dict(check="vitis-check", failures=0, warnings=0, report="logs/vitis_check.json")
    rec = json.loads((b / "logs" / "vitis_check.json").read_text())
    assert rec["ok"] and rec["engine_instances"] == 1 and rec["bursts_inferred"]
    # build() itself keeps its behaviour without a hook: the same failing log builds
    from edgemoe.boards.build import build
    set_log(CLEAN_LOG + BURST_FAILURES[6][0] + "\n")
    info = build(d, until="hls", path=os.environ["PATH"])
    assert "after_hls" not in info and not (b / "logs" / "vitis_check.json").exists()


def test_generated_readme_says_what_to_look_at(project):  # noqa: F811
    text = (project / "README.md").read_text()
    sec = text.split("## After C synthesis", 1)[1].split("\n## ", 1)[0]
    for needle in ("214-115", "214-2xx", "Pipelining result", "linear_engine", "edgemoe estimate", "edgemoe vitis-check ."):
        assert needle in sec, needle
