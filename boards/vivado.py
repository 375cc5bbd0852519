"""Vivado (and Vitis HLS IP export) scripts of a generated project.

``write_vivado_files(DIR)`` writes, from the project's manifest and its top kernel's C++:

* ``vivado/build_bd.tcl``: block design (PS with the board preset, the kernel IP, one smartconnect
  per PS port its ``m_axi`` bundles use, control from HPM0, pl_clk0 at the kernel clock,
  proc_sys_reset, the control registers at the board's recorded base address), synthesis,
  implementation, bitstream, reports, ``edgemoe.bit`` + ``edgemoe.hwh`` (+ ``edgemoe.xsa``);
* ``hls_config_ip.cfg``: the project's ``hls_config.cfg`` with ``package.output.format=ip_catalog``
  (beside it, so that its relative paths mean the same), for ``v++ -c --mode hls`` (2023.2+);
* ``vivado/hls_ip.tcl``: the same export for ``vitis_hls -f`` (older Vitis).
"""
from __future__ import annotations

import re
from pathlib import Path

from edgemoe.errors import EdgeMoeError
from edgemoe.io import read_json

from edgemoe.board_facts import PS_MASTER_PORTS, PS_PORT_MAX_BITS, PS_SLAVE_PORTS, Board, get_board

BD_NAME = "edgemoe"           # block design name: build outputs are edgemoe.bit / edgemoe.hwh
VIVADO_DIR = "vivado"
BD_TCL = "build_bd.tcl"
HLS_IP_TCL = "hls_ip.tcl"
HLS_IP_CFG = "hls_config_ip.cfg"
CTRL_REGS = dict(ap_ctrl=0x00, gie=0x04, ier=0x08, isr=0x0C)

_PRAGMA_MAXI = re.compile(r"#pragma\s+HLS\s+INTERFACE\s+m_axi\b[^\n]*?\bport\s*=\s*(\w+)[^\n]*?\bbundle\s*=\s*(\w+)")


def read_manifest(project_dir) -> dict:
    mf = Path(project_dir) / "data" / "manifest.json"
    if not mf.is_file():
        raise EdgeMoeError(f"{project_dir} is not a generated project (no data/manifest.json)")
    return read_json(mf, "manifest")


def kernel_interface(project_dir, top: str) -> dict:
    """The top kernel's arguments (in order, pointer or 32-bit scalar) and its m_axi bundles, read
    from ``src/{top}.cpp`` (so the scripts follow the kernel, not a copy of its signature). A pointer
    without an m_axi bundle (``unsigned int *kernel_id``) is an output scalar on s_axilite: a
    read-only register (``output``: True, ``pointer``: False)."""
    src = Path(project_dir) / "src" / f"{top}.cpp"
    if not src.is_file():
        raise EdgeMoeError(f"{src} not found: is {project_dir} a generated project?")
    text = src.read_text()
    m = re.search(r'extern\s+"C"\s+void\s+' + re.escape(top) + r"\s*\(([^)]*)\)", text)
    if not m:
        raise EdgeMoeError(f"{src}: no extern \"C\" void {top}(...) found")
    args = []
    for a in m.group(1).split(","):
        a = " ".join(a.split())
        name = re.findall(r"(\w+)\s*$", a)
        if not name:
            continue
        args.append(dict(name=name[0], pointer="*" in a, decl=a))
    bundles, port_bundle = [], {}
    for port, bundle in _PRAGMA_MAXI.findall(text):
        port_bundle[port] = bundle
        if bundle not in bundles:
            bundles.append(bundle)
    if not bundles:
        raise EdgeMoeError(f"{src}: no m_axi bundle found in the INTERFACE pragmas")
    for a in args:
        a["bundle"] = port_bundle.get(a["name"])
        if a["pointer"] and a["bundle"] is None:
            a.update(pointer=False, output=True)
    return dict(top=top, args=args, bundles=bundles)


def register_map(args) -> list:
    """s_axilite offsets as Vitis HLS lays them out (control at 0x00..0x0C, arguments from 0x10; a
    64-bit pointer takes two data words plus a reserved one, a 32-bit scalar one plus a reserved
    one, a 32-bit output scalar one plus its control word (bit 0 ap_vld): kind "output", read-only).
    The .hwh of a build is the authority; this is what a package without one relies on."""
    off, regs = 0x10, []
    for a in args:
        words = 2 if a["pointer"] else 1
        kind = "pointer" if a["pointer"] else "output" if a.get("output") else "int32"
        regs.append(dict(name=a["name"], offset=off, hex=f"0x{off:02X}", words=words, kind=kind,
                         bundle=a.get("bundle")))
        off += 4 * (words + 1)
    return regs


def kernel_record(board: Board, iface: dict) -> dict:
    """What a host needs to drive the kernel without a .hwh (recorded in build and package manifests)."""
    return dict(top=iface["top"], instance=f"{iface['top']}_0", base_address=f"0x{board.base_address:08X}",
                address_range=f"0x{board.address_range:X}", control_port=board.control_port,
                control={k: f"0x{v:02X}" for k, v in CTRL_REGS.items()},
                control_bits=dict(ap_start=0, ap_done=1, ap_idle=2, ap_ready=3, auto_restart=7),
                args=register_map(iface["args"]),
                bundles={b: board.port_of(b) for b in iface["bundles"]})


def _ctx(project_dir) -> dict:
    m = read_manifest(project_dir)
    board = get_board(m["board"]["name"])
    top = m.get("top", "edgemoe_top")
    iface = kernel_interface(project_dir, top)
    clock = float(m.get("clock_mhz") or board.clock_mhz)
    axi_bits = int(m.get("axi_bits", 256))
    width = min(axi_bits, PS_PORT_MAX_BITS)
    groups: dict = {}
    for b in iface["bundles"]:
        groups.setdefault(board.port_of(b), []).append(b)
    port_groups = [dict(port=p, name="_".join(bs), bundles=bs, clock_pin=PS_SLAVE_PORTS[p][1])
                   for p, bs in groups.items()]
    slaves = sorted({PS_SLAVE_PORTS[p][0] for p in groups})
    masters = [dict(index=i, use=1 if name == board.control_port else 0) for name, (i, _) in PS_MASTER_PORTS.items()]
    return dict(
        board=board, top=top, bd_name=BD_NAME, clock_mhz=f"{clock:g}", clock_ns=f"{1000.0 / clock:.4g}",
        axi_bits=axi_bits, bundles=[dict(bundle=b, port=board.port_of(b)) for b in iface["bundles"]],
        port_groups=port_groups, slaves=[dict(index=i, width=width) for i in slaves], masters=masters,
        control_clock_pin=PS_MASTER_PORTS[board.control_port][1],
        base_address=f"0x{board.base_address:08X}", address_range=f"0x{board.address_range:X}",
        address_range_tcl=f"{board.address_range // 1024}K",
        generated_by=f"edgemoe {__import__('edgemoe').__version__}", iface=iface)


def hls_ip_config(cfg_text: str) -> str:
    """``hls_config.cfg`` turned into the IP export config: package.output.format=ip_catalog."""
    out, seen = [], False
    for line in cfg_text.splitlines():
        s = line.strip()
        if s.startswith("package.output.format"):
            line, seen = "package.output.format=ip_catalog", True
        elif s.startswith("#"):
            continue
        out.append(line)
    if not seen:
        if not any(ln.strip() == "[hls]" for ln in out):
            out.append("[hls]")
        out.append("package.output.format=ip_catalog")
    head = ("# hls_config_ip.cfg -- GENERATED by edgemoe from hls_config.cfg: the kernel as a Vivado IP for\n"
            "# vivado/build_bd.tcl.  v++ -c --mode hls --config hls_config_ip.cfg --work_dir build/hls\n")
    return head + "\n".join(out) + "\n"


def write_vivado_files(project_dir) -> dict:
    """Write vivado/build_bd.tcl, vivado/hls_ip.tcl and hls_config_ip.cfg into a project folder;
    returns {role: path}."""
    from edgemoe.codegen.render import render_template
    root = Path(project_dir)
    ctx = _ctx(root)
    vdir = root / VIVADO_DIR
    vdir.mkdir(exist_ok=True)
    paths = dict(bd_tcl=vdir / BD_TCL, hls_tcl=vdir / HLS_IP_TCL, hls_cfg=root / HLS_IP_CFG)
    paths["bd_tcl"].write_text(render_template("vivado/build_bd.tcl.j2", **ctx))
    paths["hls_tcl"].write_text(render_template("vivado/hls_ip.tcl.j2", **ctx))
    cfg = root / "hls_config.cfg"
    if not cfg.is_file():
        raise EdgeMoeError(f"{cfg} not found: is {root} a generated project?")
    paths["hls_cfg"].write_text(hls_ip_config(cfg.read_text()))
    return paths


__all__ = ["BD_NAME", "BD_TCL", "HLS_IP_TCL", "HLS_IP_CFG", "VIVADO_DIR", "kernel_interface", "register_map",
           "kernel_record", "hls_ip_config", "write_vivado_files", "read_manifest"]
