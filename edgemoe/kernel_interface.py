"""What the host and the generated kernel agree on, written once (bottom layer: imports nothing of
edgemoe above edgemoe.errors, ships with the host runtime to the board).

The config and layout headers are generated from these values (codegen/config_header.py, pack.py),
the host runtime and the emulator read them from here, so no side types them again.
"""
from __future__ import annotations

import re

from .errors import EdgeMoeError

MAX_IMAGES = 64       # images per kernel call at most (the kernel's MAX_IMAGES, the host's buffers)
TAP_NONE = -1         # tap_id: run, dump nothing
TAP_ALL = -2          # tap_id: run and dump every stage to scratch

TAP_BITS = 32         # a debug tap's value in scratch (the kernel writes, pack.py lays out, the host reads)

HEADS_NPZ = "heads.npz"   # the task heads' weights (codegen/pack_heads.py writes PROJECT/data/, the host reads the package's)

# the kernel's identity: the config header (codegen/config_header.py renders it) defines KERNEL_ID_MACRO, the
# value the kernel writes to its read-only ``kernel_id`` register; the host compares it with the package's
CONFIG_NAME = "edgemoe_config.h"
KERNEL_ID_MACRO = "EDGEMOE_KERNEL_ID"
_ID_VALUE = re.compile(r"^#define " + KERNEL_ID_MACRO + r"\s+0x([0-9A-Fa-f]{8})u\b", re.M)

# the kernel's s_axilite control registers and bits as Vitis HLS lays them out (recorded in build and
# package manifests, read by the host runtime)
CTRL_REGS = dict(ap_ctrl=0x00, gie=0x04, ier=0x08, isr=0x0C)
CONTROL_BITS = dict(ap_start=0, ap_done=1, ap_idle=2, ap_ready=3, auto_restart=7)

STORAGE_WIDTHS = (8, 16, 32, 64)   # bits a value takes in memory, AXI words and stream lanes (edgemoe_fixed.h)


def storage_bits(width: int) -> int:
    """Bits a value of ``width`` bits takes in memory and in AXI words: a power of two, at least 8."""
    for b in STORAGE_WIDTHS:
        if width <= b:
            return b
    raise EdgeMoeError(f"no storage for a {width}-bit value (at most {STORAGE_WIDTHS[-1]} bits)")


def kernel_id_of(hash16: str) -> int:
    """The 32-bit kernel ID of a config hash (its first 8 hex digits)."""
    return int(str(hash16)[:8], 16)


def read_kernel_id(config_text: str) -> int | None:
    """EDGEMOE_KERNEL_ID as written in an ``edgemoe_config.h`` (None when it has none)."""
    m = _ID_VALUE.search(config_text)
    return int(m.group(1), 16) if m else None


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


def kernel_record(board, iface: dict) -> dict:
    """What a host needs to drive the kernel without a .hwh (recorded in build and package manifests):
    ``board`` an :class:`edgemoe.board_facts.Board`, ``iface`` the top's interface
    (:func:`edgemoe.project_files.kernel_interface`)."""
    return dict(top=iface["top"], instance=f"{iface['top']}_0", base_address=f"0x{board.base_address:08X}",
                address_range=f"0x{board.address_range:X}", control_port=board.control_port,
                control={k: f"0x{v:02X}" for k, v in CTRL_REGS.items()},
                control_bits=dict(CONTROL_BITS),
                args=register_map(iface["args"]),
                bundles={b: board.port_of(b) for b in iface["bundles"]})


__all__ = ["MAX_IMAGES", "TAP_NONE", "TAP_ALL", "TAP_BITS", "HEADS_NPZ", "STORAGE_WIDTHS", "storage_bits",
           "CONFIG_NAME", "KERNEL_ID_MACRO", "kernel_id_of", "read_kernel_id", "CTRL_REGS", "CONTROL_BITS",
           "register_map", "kernel_record"]
