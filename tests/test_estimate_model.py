"""Issue 11, the model side: the estimate counts what the kernel builds (FF, m_axi FIFOs, ROM copies,
one engine for every layer), the DDR and PS ports as the block design configures them, and explore
keeps to the utilisation caps while meeting the zcu104 goals."""
from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys

import pytest

from edgemoe.board_facts import BUNDLES, DDR_PORT_OF, get_board
from edgemoe import design as design_mod
from edgemoe.codegen.bandwidth import Bandwidth
from edgemoe.codegen.caps import UTIL_CAPS, parse_max_util
from edgemoe.design import Design, get_design
from edgemoe.codegen.estimate import estimate
from edgemoe.codegen.estimate_resources import memories, memory_cost, resources
from edgemoe.codegen.explore import explore
from edgemoe.codegen.model_common import Widths, engine_sum_depth
from edgemoe.errors import EdgeMoeError
from edgemoe.golden.precision import base_precision
from edgemoe.spec import get_preset

TINY = "m3vit-tiny-edge"


def _est(prec="w16a32", design="edge-moe", board="zcu102", **kw):
    d = get_design(design) if isinstance(design, str) else design
    return estimate(get_preset(TINY), base_precision(prec), d, get_board(board), **kw)


def _mem(design, name, prec="w16a32"):
    return next(m for m in memories(get_preset(TINY), base_precision(prec), design) if m.name == name)


# ---- resources --------------------------------------------------------------------------------
def test_ff_is_counted_per_unit_and_in_total():
    e = _est()
    d = e.to_dict()
    assert d["ff"] == e.resources["ff"] == sum(u["ff"] for u in e.by_unit_resources.values())
    assert all(u["ff"] > 0 for u in e.by_unit_resources.values()), e.by_unit_resources
    # the engine's weight registers (2 tiles of raw weights) are FF, not memory
    regs = _mem(get_design("edge-moe"), "wregs")
    assert regs.kind == "reg" and memory_cost(regs) == (0, 0, 0, 2 * 16 * 16 * 16)
    # wider engine, more FF
    wider = _est(design=get_design("edge-moe").with_(engine_in=32))
    assert wider.by_unit_resources["linear"]["ff"] > e.by_unit_resources["linear"]["ff"]
    # FF takes part in the fit: a board with few FF does not fit
    small = dataclasses.replace(get_board("zcu102"), resources=dataclasses.replace(get_board("zcu102").resources, ff=1000))
    tight = estimate(get_preset(TINY), base_precision("w16a32"), get_design("edge-moe"), small)
    assert not tight.fits and "ff" in tight.over_budget()


def test_maxi_fifos_follow_outstanding_and_burst_length(monkeypatch):
    d = get_design("edge-moe")
    channels = 3 + d.weight_ports          # act read + write, scratch write, one read per weight port
    fifos = [m for m in memories(get_preset(TINY), base_precision("w16a32"), d) if m.unit == "interfaces"]
    assert len(fifos) == channels and all((m.depth, m.width) == (32 * 4, 256) for m in fifos)
    base = resources(get_preset(TINY), base_precision("w16a32"), d)["interfaces"]["bram36"]
    assert base == 4 * channels            # 128 x 256 bits: width-bound, 4 BRAM36 each
    monkeypatch.setattr(design_mod, "MAXI_OUTSTANDING", 16)
    monkeypatch.setattr(design_mod, "MAXI_BURST_BEATS", 64)
    more = resources(get_preset(TINY), base_precision("w16a32"), d)["interfaces"]["bram36"]
    # 1024 x 256 bits: 15 RAMB18 of 1K x 18 (7.5 BRAM36) each
    assert more == math.ceil(7.5 * channels) and more > base
    # more weight ports, more read channels
    wp4 = resources(get_preset(TINY), base_precision("w16a32"), d.with_(weight_ports=4))["interfaces"]["bram36"]
    assert wp4 == math.ceil(7.5 * (3 + 4))


def test_gelu_rom_copies_one_per_engine_output_lane():
    for eo in (8, 16, 32):
        d = get_design("edge-moe").with_(engine_out=eo)
        rom = _mem(d, "gelu_roms")
        assert rom.kind == "rom" and rom.banks == eo and rom.depth == 177
        assert rom.width == base_precision("w16a32").types["gelu_tab"].W
    lut = [resources(get_preset(TINY), base_precision("w16a32"), get_design("edge-moe").with_(engine_out=eo))["linear"]["lut"]
           for eo in (8, 16, 32)]
    assert lut[0] < lut[1] < lut[2]
    # the attention's exp ROMs: one per (head, row)
    d = get_design("edge-moe").with_(attn_rows=8)
    assert _mem(d, "exp_roms").banks == get_preset(TINY).heads * 8


def test_one_engine_for_every_layer_and_the_patch_embedding():
    w8 = _est("w8a8")
    assert w8.by_unit_resources["patch_embed"]["dsp"] == 0
    # w8a8: the x operand is the widest raw code, 9 bits (u8 pixels); still packed two MACs per DSP,
    # in chains of 4 terms for every layer
    wd = Widths.of(base_precision("w8a8"))
    assert (wd.x, wd.ew) == (9, 8)
    d = get_design("edge-moe")
    assert engine_sum_depth(wd, d) == 4 + 1 + math.ceil(math.log2(16 / 4))
    assert w8.by_unit_resources["linear"]["dsp"] == 16 * 16 // 2 + 16 * 2
    # w16a32: 32 x 16 products, two DSPs per MAC
    assert _est().by_unit_resources["linear"]["dsp"] == 16 * 16 * 2 + 16 * 3


def test_moe_slots_are_combined_in_the_residual_pass_not_cleared():
    """The experts write TOP_K output slots, so no clear pass; residual_unit adds the slots while it
    adds the MLP output: one pass per block as in dense blocks, a deeper pipeline."""
    e = _est()
    spec = get_preset(TINY)
    names = [l.name for l in e.layers]
    assert not any(n.endswith(".clear") for n in names)
    cyc = {l.name: l.cycles for l in e.layers}
    assert sum(n.startswith("block1.res") for n in names) == 2
    assert cyc["block1.res2"] == cyc["block0.res2"] + spec.top_k - 1


# ---- DDR and PS ports -------------------------------------------------------------------------
@pytest.mark.parametrize("board, mts", [("zcu104", 2133), ("zcu102", 2133), ("kv260", 2400)])
def test_ddr_rate_is_stated_and_used(board, mts):
    b = get_board(board)
    assert b.ddr.mts == mts and b.ddr.source
    assert b.ddr.peak_gbps == pytest.approx(mts * 8 / 1000)
    e = _est(board=board, design="edge-moe")
    assert e.ddr["mts"] == mts and e.ddr["efficiency"] == 0.75
    assert any(f"DDR4-{mts} assumed" in n for n in e.notes)
    assert e.to_dict()["ddr"]["sustained_gbps"] == pytest.approx(0.75 * mts * 8 / 1000, abs=1e-3)
    # the DDR bounds the weight stream: 4 ports of 0.375 words (256 bits) per cycle would be 1.5
    bw = Bandwidth.of(get_design("edge-moe").with_(weight_ports=4), b, 300.0)
    assert bw.ddr == pytest.approx(0.75 * mts * 8e6 / (32 * 300e6))
    assert bw.weights == pytest.approx(min(1.5, bw.ddr))
    if board == "zcu104":
        assert bw.weights < 1.5          # DDR4-2133: 1.333 words per cycle


def test_hp1_hp2_share_one_ddr_port_and_the_default_map_avoids_it():
    b = get_board("zcu104")
    assert DDR_PORT_OF["S_AXI_HP1_FPD"] == DDR_PORT_OF["S_AXI_HP2_FPD"]
    d = get_design("edge-moe").with_(weight_ports=2)
    weight_ports = [b.ports[x] for x in ("gmem_w", "gmem_w1", "gmem_w2", "gmem_w3")]
    assert not {"S_AXI_HP1_FPD", "S_AXI_HP2_FPD"} & set(weight_ports)
    assert {b.ports["gmem_act"], b.ports["gmem_scratch"]} == {"S_AXI_HP1_FPD", "S_AXI_HP2_FPD"}
    assert len(set(b.ports.values())) == len(BUNDLES)          # one PS port per bundle
    good = Bandwidth.of(d, b, 300.0)
    shared = dataclasses.replace(b, ports=dict(b.ports, gmem_w="S_AXI_HP1_FPD", gmem_w1="S_AXI_HP2_FPD"))
    bad = Bandwidth.of(d, shared, 300.0)
    assert good.shared == () and bad.shared == ("gmem_w", "gmem_w1")
    assert bad.weights == pytest.approx(good.weights / 2)
    slow = estimate(get_preset(TINY), base_precision("w8a8"), d, shared)
    fast = estimate(get_preset(TINY), base_precision("w8a8"), d, b)
    assert slow.latency_ms > fast.latency_ms


# ---- caps and limits --------------------------------------------------------------------------
def test_limiting_resource_and_unit():
    e = _est(board="zcu104", design="zcu104")
    d = e.to_dict()
    lim, lu = d["limiting_resource"], d["limiting_unit"]
    use = e.utilization()
    assert lim["name"] == max(UTIL_CAPS, key=lambda k: use[k] / UTIL_CAPS[k]) and lim["cap"] == UTIL_CAPS[lim["name"]]
    assert lim["use"] == pytest.approx(use[lim["name"]], abs=1e-4)
    by = e.by_unit_cycles()
    assert lu["name"] == max(by, key=by.get) and lu["share"] == pytest.approx(by[lu["name"]] / e.cycles, abs=1e-4)


@pytest.mark.parametrize("text, want", [
    (None, UTIL_CAPS), ("0.9", {k: 0.9 for k in UTIL_CAPS}),
    ("dsp=0.85,lut=0.75", dict(UTIL_CAPS, dsp=0.85, lut=0.75)), ("bram=1", dict(UTIL_CAPS, bram36=1.0))])
def test_max_util_spec(text, want):
    assert parse_max_util(text) == want


@pytest.mark.parametrize("text", ["1.5", "0", "dsp=2", "cpu=0.5", "dsp=abc", "x"])
def test_bad_max_util_is_one_line(text):
    with pytest.raises(EdgeMoeError) as e:
        parse_max_util(text)
    msg = str(e.value)
    assert "\n" not in msg and "dsp, bram36, uram, lut, ff" in msg and "(0, 1]" in msg


def test_explore_keeps_to_the_caps_and_max_util_one_is_no_slower():
    spec, prec, board = get_preset(TINY), base_precision("w16a32"), get_board("zcu104")
    budget = board.resources.to_dict()
    best, front, points = explore(spec, prec, board, batches=(1,))
    for p in points:
        tot = dict(dsp=p.dsp, bram36=p.bram36, uram=p.uram, lut=p.lut, ff=p.ff)
        assert all(tot[k] <= UTIL_CAPS[k] * budget[k] for k in UTIL_CAPS), (p.design.name, tot)
    free, _, free_points = explore(spec, prec, board, batches=(1,), caps=parse_max_util("1.0"))
    assert free.latency_ms <= best.latency_ms and len(free_points) > len(points)
    # some point the caps rule out is faster than the capped best
    assert any(p.latency_ms < best.latency_ms and any(p.estimate.utilization()[k] > UTIL_CAPS[k] for k in UTIL_CAPS)
               for p in free_points)
    with pytest.raises(EdgeMoeError, match="within the utilisation caps.*--max-util"):
        explore(spec, prec, board, batches=(1,), caps=parse_max_util("0.05"))


def test_explore_command_takes_max_util(tmp_path, capsys):
    from edgemoe.cli import main
    j = tmp_path / "x.json"
    assert main(["explore", "--preset", "micro", "--board", "kv260", "--json", str(j), "--top", "5",
                 "--max-util", "dsp=0.5,lut=0.6"]) == 0
    d = json.loads(j.read_text())
    assert d["caps"]["dsp"] == 0.5 and d["caps"]["lut"] == 0.6 and d["caps"]["ff"] == UTIL_CAPS["ff"]
    assert d["estimate"]["dsp"] <= 0.5 * 1248 and "ff" in d["estimate"] and all("ff" in p for p in d["pareto"])
    assert d["estimate"]["limiting_resource"]["name"] in UTIL_CAPS
    out = capsys.readouterr().out
    assert "limiting resource" in out and " FF " in out


def test_bad_max_util_on_the_command_line_is_one_line(capsys):
    from edgemoe.cli import main
    assert main(["explore", "--preset", "micro", "--board", "kv260", "--max-util", "sram=0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--max-util" in err[0] and "bram36" in err[0]


def test_estimate_over_a_cap_fits_but_warns(tmp_path):
    # the old zcu104 default: 95% of the DSPs
    d = Design("hot", 32, 16, 4, 256, 300.0, attn_lanes=16, vec_lanes=8, weight_ports=4,
               uram_buffers=("g_hid", "g_qkv", "g_lnb", "g_att", "g_tmp"))
    f = tmp_path / "hot.json"
    f.write_text(json.dumps(d.to_dict()))
    r = subprocess.run([sys.executable, "-m", "edgemoe.cli", "estimate", "--preset", TINY, "--board", "zcu104",
                        "--design", str(f), "--json", str(tmp_path / "e.json")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and "timing-closure cap" in err[0] and "dsp" in err[0]
    e = json.loads((tmp_path / "e.json").read_text())
    assert e["fits"] and not e["within_caps"] and "dsp" in e["over_caps"]
    assert e["limiting_resource"]["name"] == "dsp" and e["limiting_resource"]["use"] > 0.9


# ---- the published check and the goals --------------------------------------------------------
def test_published_edge_moe_schedule_within_25_percent():
    from edgemoe.codegen.estimate import published_latency_ms
    pub = published_latency_ms(get_preset(TINY), base_precision("w16a32"), get_design("edge-moe"), get_board("zcu102"))
    assert abs(pub / 34.64 - 1) <= 0.25, pub


@pytest.mark.parametrize("prec, limit, batches", [("w16a32", 15.0, (1,)), ("w8a8", 5.0, (4,))])
def test_zcu104_goals_within_the_caps(prec, limit, batches):
    best, _, _ = explore(get_preset(TINY), base_precision(prec), get_board("zcu104"), batches=batches)
    e = best.estimate
    assert e.within_caps and e.fits and e.batch <= 4
    assert e.latency_ms <= limit, (e.latency_ms, best.design.summary())
    assert e.limiting_resource()["name"] in UTIL_CAPS and e.limiting_unit()["name"] in e.by_unit_cycles()
