"""Board definitions and the generated Vivado/HLS-IP scripts (content checks, Tcl syntax, and a dry
run of build_bd.tcl in tclsh with the Vivado commands stubbed, recording the block design it builds)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edgemoe.board_facts import BOARDS, BUNDLES, KERNEL_BASE_ADDRESS, PS_SLAVE_PORTS, get_board
from edgemoe.codegen.vivado_files import hls_ip_config, write_vivado_files
from edgemoe.errors import EdgeMoeError
from edgemoe.kernel_interface import kernel_record, register_map
from edgemoe.project_files import kernel_interface

TCLSH = shutil.which("tclsh")

# Vivado stand-in for tclsh: every Vivado command goes to `unknown`, which records it (one line per
# command, into $EDGEMOE_STUB_CALLS) and returns what the script needs (names, run progress, the
# paths where Vivado would leave the bitstream and the hardware handoff, which it creates).
VIVADO_STUB_TCL = r"""
set script [lindex $argv 0]
set argv [lrange $argv 1 end]
set argc [llength $argv]
set ::stub_out [file normalize [lindex $argv 1]]
set ::stub_impl [file join $::stub_out vivado edgemoe_prj.runs impl_1]
set ::stub_log [open $::env(EDGEMOE_STUB_CALLS) a]
proc stub_touch {path text} { file mkdir [file dirname $path]; set f [open $path w]; puts $f $text; close $f }
proc stub_opt {args name} { set i [lsearch -exact $args $name]; if {$i < 0} { return "" }; return [lindex $args [expr {$i + 1}]] }
proc unknown {cmd args} {
    puts $::stub_log [join [concat [list $cmd] $args] " "]
    flush $::stub_log
    switch -- $cmd {
        get_ipdefs { return "xilinx.com:hls:edgemoe_top:1.0" }
        current_project - current_fileset { return $cmd }
        create_bd_cell - get_bd_pins - get_bd_intf_pins - get_bd_addr_segs - get_bd_addr_spaces - get_files - get_runs {
            return [lindex $args end]
        }
        make_wrapper { return [file join $::stub_out vivado edgemoe_wrapper.v] }
        generate_target {
            stub_touch [file join $::stub_out vivado edgemoe_prj.gen sources_1 bd edgemoe hw_handoff edgemoe.hwh] "<hwh/>"
        }
        launch_runs {
            if {[lindex $args 0] eq "impl_1"} { stub_touch [file join $::stub_impl edgemoe_wrapper.bit] "bit" }
        }
        get_property {
            switch -- [lindex $args 0] {
                PROGRESS {
                    if {[lindex $args 1] eq "impl_1" && [info exists ::env(EDGEMOE_STUB_IMPL_PROGRESS)]} {
                        return $::env(EDGEMOE_STUB_IMPL_PROGRESS)
                    }
                    return "100%"
                }
                DIRECTORY { return $::stub_impl }
                STATS.WNS { return 0.125 }
            }
        }
        write_hw_platform - report_utilization - report_timing_summary {
            stub_touch [stub_opt $args -file] "report"
        }
    }
    return ""
}
source $script
"""


@pytest.fixture(scope="session")
def project(tmp_path_factory):
    """One generated project (micro, zcu104) shared by the board and build/package tests."""
    from edgemoe.codegen.generate import generate
    d = tmp_path_factory.mktemp("boards") / "proj"
    generate(d, preset="micro", board="zcu104")
    return d


@pytest.fixture(scope="session")
def tcl_stub(tmp_path_factory):
    p = tmp_path_factory.mktemp("stub") / "vivado_stub.tcl"
    p.write_text(VIVADO_STUB_TCL)
    return p

EXPECTED = {
    "zcu104": ("xczu7ev-ffvc1156-2-e", "xilinx.com:zcu104:part0:1.1", (1728, 230400, 460800, 312, 96)),
    "zcu102": ("xczu9eg-ffvb1156-2-e", "xilinx.com:zcu102:part0:3.4", (2520, 274080, 548160, 912, 0)),
    "kv260": ("xck26-sfvc784-2LV-c", "xilinx.com:kv260_som:part0:1.4", (1248, 117120, 234240, 144, 64)),
}
# the weight bundles on PS ports with a DDR controller port of their own; act and scratch share HP1/HP2's
PORTS = {"gmem_act": "S_AXI_HP1_FPD", "gmem_scratch": "S_AXI_HP2_FPD", "gmem_w": "S_AXI_HP0_FPD",
         "gmem_w1": "S_AXI_HP3_FPD", "gmem_w2": "S_AXI_HPC0_FPD", "gmem_w3": "S_AXI_HPC1_FPD"}


# ---- board definitions ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_board_definition(name):
    b = get_board(name)
    part, board_part, res = EXPECTED[name]
    assert (b.name, b.part, b.board_part) == (name, part, board_part)
    r = b.resources
    assert (r.dsp, r.lut, r.ff, r.bram36, r.uram) == res
    assert b.clock_mhz > 0 and b.ddr.size_gb >= 2 and b.ddr.peak_gbps > 10
    for bundle in BUNDLES:
        assert b.port_of(bundle) == PORTS[bundle]
    assert b.control_port == "M_AXI_HPM0_FPD"
    assert b.base_address == KERNEL_BASE_ADDRESS == 0xA000_0000
    d = b.to_dict()
    assert d["base_address"] == "0xA0000000" and d["resources"]["dsp"] == res[0]
    json.dumps(d)


def test_board_lookup_case_and_unknown():
    assert get_board("ZCU104") is BOARDS["zcu104"]
    with pytest.raises(EdgeMoeError) as e:
        get_board("pynq-z2")
    msg = str(e.value)
    assert "\n" not in msg and "pynq-z2" in msg
    for n in BOARDS:
        assert n in msg
    with pytest.raises(EdgeMoeError, match="no PS port"):
        get_board("zcu104").port_of("gmem_nope")


def test_cli_unknown_board_one_line(capsys):
    from edgemoe.cli import main
    assert main(["generate", "--preset", "micro", "--board", "nope", "-o", "/nonexistent/x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "zcu104" in err and "kv260" in err


# ---- kernel interface and register map -----------------------------------------------------------
def test_kernel_interface_and_register_map(project):
    iface = kernel_interface(project, "edgemoe_top")
    # zcu104's default design has four weight ports: weights1..3 come last, each on its own bundle
    assert iface["bundles"] == ["gmem_act", "gmem_scratch", "gmem_w", "gmem_w1", "gmem_w2", "gmem_w3"]
    names = [a["name"] for a in iface["args"]]
    assert names == ["pixels", "weights", "scratch", "out", "n_images", "task", "reload", "tap_id", "kernel_id",
                     "weights1", "weights2", "weights3"]
    regs = {r["name"]: r["offset"] for r in register_map(iface["args"])}
    # Vitis HLS layout: pointers 0x10/0x14 + reserved 0x18, scalars data + reserved, the output
    # scalar kernel_id data + its ap_vld control word
    assert regs == dict(pixels=0x10, weights=0x1C, scratch=0x28, out=0x34, n_images=0x40, task=0x48,
                        reload=0x50, tap_id=0x58, kernel_id=0x60, weights1=0x68, weights2=0x74, weights3=0x80)
    assert {r["name"]: r["kind"] for r in register_map(iface["args"])}["kernel_id"] == "output"
    rec = kernel_record(get_board("zcu104"), iface)
    assert rec["base_address"] == "0xA0000000" and rec["control"]["ap_ctrl"] == "0x00"
    assert rec["bundles"] == PORTS


def test_hls_ip_config():
    cfg = "# c\npart=x\n\n[hls]\nsyn.top=t\npackage.output.format=xo\npackage.output.syn=true\n"
    out = hls_ip_config(cfg)
    assert "package.output.format=ip_catalog" in out and "format=xo" not in out
    assert "part=x" in out and "syn.top=t" in out
    assert "package.output.format=ip_catalog" in hls_ip_config("part=x\n[hls]\nsyn.top=t\n")


# ---- generated scripts ---------------------------------------------------------------------------
def _board_project(project, tmp_path, name):
    """A copy of the generated project retargeted at ``name`` (manifest board), scripts rewritten."""
    d = tmp_path / name
    shutil.copytree(project, d, ignore=shutil.ignore_patterns("build", "data"))
    (d / "data").mkdir()
    m = json.loads((project / "data" / "manifest.json").read_text())
    m["board"] = dict(name=name, part=get_board(name).part)
    m["clock_mhz"] = get_board(name).clock_mhz
    (d / "data" / "manifest.json").write_text(json.dumps(m))
    write_vivado_files(d)
    return d


def test_generate_writes_vivado_scripts(project):
    for rel in ("vivado/build_bd.tcl", "vivado/hls_ip.tcl", "hls_config_ip.cfg"):
        assert (project / rel).is_file(), rel
    cfg = (project / "hls_config_ip.cfg").read_text()
    assert "package.output.format=ip_catalog" in cfg and "syn.top=edgemoe_top" in cfg
    assert "part=xczu7ev-ffvc1156-2-e" in cfg
    tcl = (project / "vivado" / "hls_ip.tcl").read_text()
    assert "export_design -format ip_catalog" in tcl and "set_part {xczu7ev-ffvc1156-2-e}" in tcl
    assert "-period 3.333" in tcl


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_build_bd_tcl_content(project, tmp_path, name):
    d = _board_project(project, tmp_path, name)
    tcl = (d / "vivado" / "build_bd.tcl").read_text()
    b = get_board(name)
    assert f"set part {{{b.part}}}" in tcl
    assert f"set board_part {{{b.board_part}}}" in tcl
    assert "apply_board_preset \"1\"" in tcl
    assert f"CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {{{b.clock_mhz:g}}}" in tcl
    # zcu104's default design reads its weights through four ports: every PS slave port is used
    for bundle, port in PORTS.items():
        gp = PS_SLAVE_PORTS[port][0]
        assert f"[get_bd_intf_pins $kernel/m_axi_{bundle}] [get_bd_intf_pins $sc/S00_AXI]" in tcl
        assert f"smartconnect_{bundle}]" in tcl
        assert f"[get_bd_intf_pins $sc/M00_AXI] [get_bd_intf_pins $ps/{port}]" in tcl
        assert f"CONFIG.PSU__USE__S_AXI_GP{gp} {{1}}" in tcl
    assert "[get_bd_intf_pins $ps/M_AXI_HPM0_FPD] [get_bd_intf_pins $sc_ctrl/S00_AXI]" in tcl
    assert "[get_bd_intf_pins $kernel/s_axi_control]" in tcl
    assert "CONFIG.PSU__USE__M_AXI_GP0 {1}" in tcl and "CONFIG.PSU__USE__M_AXI_GP1 {0}" in tcl
    assert "xilinx.com:ip:proc_sys_reset" in tcl and "peripheral_aresetn" in tcl
    assert "set base_address 0xA0000000" in tcl and "-offset $base_address" in tcl
    assert "launch_runs synth_1" in tcl and "launch_runs impl_1 -to_step write_bitstream" in tcl
    assert "write_hw_platform" in tcl and "hw_handoff" in tcl
    assert "ip_repo_paths" in tcl


@pytest.mark.skipif(TCLSH is None, reason="tclsh not installed")
def test_tcl_syntax_complete(project):
    for rel in ("vivado/build_bd.tcl", "vivado/hls_ip.tcl", "run_hls.tcl"):
        script = f'set f [open {{{project / rel}}}]; puts [info complete [read $f]]'
        r = subprocess.run([TCLSH], input=script, capture_output=True, text=True, timeout=30)
        assert r.stdout.strip() == "1", (rel, r.stderr)


def run_stubbed(stub: Path, script: Path, ip_repo: Path, out: Path, env_extra=None) -> subprocess.CompletedProcess:
    """Run a build_bd.tcl in tclsh with every Vivado command stubbed (VIVADO_STUB_TCL)."""
    import os
    env = dict(os.environ, EDGEMOE_STUB_CALLS=str(out / "calls.txt"), **(env_extra or {}))
    return subprocess.run([TCLSH, str(stub), str(script), str(ip_repo), str(out), "2"], capture_output=True,
                          text=True, timeout=60, env=env)


def _calls(out: Path) -> list:
    return [ln for ln in (out / "calls.txt").read_text().splitlines() if ln]


@pytest.mark.skipif(TCLSH is None, reason="tclsh not installed")
@pytest.mark.parametrize("name", ["zcu104", "kv260"])
def test_build_bd_tcl_dry_run(project, tcl_stub, tmp_path, name):
    d = _board_project(project, tmp_path, name)
    ip, out = tmp_path / "ip", tmp_path / "out"
    ip.mkdir()
    out.mkdir()
    r = run_stubbed(tcl_stub, d / "vivado" / "build_bd.tcl", ip, out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "EDGEMOE_BUILD_OK" in r.stdout
    assert (out / "edgemoe.bit").is_file() and (out / "edgemoe.hwh").is_file() and (out / "edgemoe.xsa").is_file()
    assert not list(out.glob("*.partial"))
    calls = _calls(out)
    b = get_board(name)
    assert any(c.startswith(f"create_project -force edgemoe_prj {out}/vivado -part {b.part}") for c in calls)
    assert f"set_property board_part {b.board_part} current_project" in calls
    intf = [c.split()[1:] for c in calls if c.startswith("connect_bd_intf_net")]
    for bundle, port in PORTS.items():
        assert [f"edgemoe_top_0/m_axi_{bundle}", f"smartconnect_{bundle}/S00_AXI"] in intf
        assert [f"smartconnect_{bundle}/M00_AXI", f"zynq_ultra_ps_e_0/{port}"] in intf
    assert ["zynq_ultra_ps_e_0/M_AXI_HPM0_FPD", "smartconnect_ctrl/S00_AXI"] in intf
    assert ["smartconnect_ctrl/M00_AXI", "edgemoe_top_0/s_axi_control"] in intf
    nets = [c.split()[1:] for c in calls if c.startswith("connect_bd_net")]
    clocked = {p for n in nets if n[0] == "zynq_ultra_ps_e_0/pl_clk0" for p in n[1:]}
    for pin in ("edgemoe_top_0/ap_clk", "proc_sys_reset_0/slowest_sync_clk", "zynq_ultra_ps_e_0/maxihpm0_fpd_aclk",
                "zynq_ultra_ps_e_0/saxihp0_fpd_aclk", "zynq_ultra_ps_e_0/saxihp1_fpd_aclk",
                "zynq_ultra_ps_e_0/saxihp2_fpd_aclk", "smartconnect_gmem_w/aclk"):
        assert pin in clocked, pin
    assert ["proc_sys_reset_0/peripheral_aresetn", "edgemoe_top_0/ap_rst_n"] in nets
    addr = [c for c in calls if c.startswith("assign_bd_address -target_address_space")]
    assert addr and "-offset 0xA0000000 -range 64K" in addr[0] and "edgemoe_top_0/s_axi_control/Reg" in addr[0]
    ps_cfg = next(c for c in calls if c.startswith("set_property -dict") and "PSU__CRL_APB" in c)
    assert f"CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {b.clock_mhz:g}" in ps_cfg
    order = [c.split()[0] for c in calls]
    assert order.index("validate_bd_design") < order.index("launch_runs") < order.index("write_hw_platform")
    assert any(c.startswith("launch_runs impl_1 -to_step write_bitstream") for c in calls)
    assert (out / "reports" / "timing.txt").read_text().startswith("wns_ns=")


@pytest.mark.skipif(TCLSH is None, reason="tclsh not installed")
def test_build_bd_tcl_dry_run_failures(project, tcl_stub, tmp_path):
    ip, out = tmp_path / "ip", tmp_path / "out"
    out.mkdir()
    # no IP repository
    r = run_stubbed(tcl_stub, project / "vivado" / "build_bd.tcl", ip, out)
    assert r.returncode == 1 and "EDGEMOE_ERROR" in r.stderr and "IP repository" in r.stderr
    ip.mkdir()
    # implementation does not reach 100%: no bit/hwh written
    r = run_stubbed(tcl_stub, project / "vivado" / "build_bd.tcl", ip, out, {"EDGEMOE_STUB_IMPL_PROGRESS": "40%"})
    assert r.returncode == 1 and "implementation" in r.stderr
    assert not (out / "edgemoe.bit").exists() and not (out / "edgemoe.hwh").exists()
    # usage
    r = subprocess.run([TCLSH, str(tcl_stub), str(project / "vivado" / "build_bd.tcl")], capture_output=True,
                       text=True, timeout=30, env=dict(__import__("os").environ, EDGEMOE_STUB_CALLS=str(out / "c.txt")))
    assert r.returncode == 1 and "usage" in r.stderr


def test_board_part_override_documented(project):
    tcl = (project / "vivado" / "build_bd.tcl").read_text()
    assert re.search(r"::env\(EDGEMOE_BOARD_PART\)", tcl)
