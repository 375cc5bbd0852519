"""What the host and the generated kernel agree on, written once (bottom layer: imports nothing of
edgemoe above edgemoe.errors, ships with the host runtime to the board).

The config and layout headers are generated from these values (codegen/config_header.py, pack.py),
the host runtime and the emulator read them from here, so no side types them again.
"""
from __future__ import annotations

from .errors import EdgeMoeError

MAX_IMAGES = 64       # images per kernel call at most (the kernel's MAX_IMAGES, the host's buffers)
TAP_NONE = -1         # tap_id: run, dump nothing
TAP_ALL = -2          # tap_id: run and dump every stage to scratch

TAP_BITS = 32         # a debug tap's value in scratch (the kernel writes, pack.py lays out, the host reads)

HEADS_NPZ = "heads.npz"   # the task heads' weights (codegen/pack_heads.py writes PROJECT/data/, the host reads the package's)

STORAGE_WIDTHS = (8, 16, 32, 64)   # bits a value takes in memory, AXI words and stream lanes (edgemoe_fixed.h)


def storage_bits(width: int) -> int:
    """Bits a value of ``width`` bits takes in memory and in AXI words: a power of two, at least 8."""
    for b in STORAGE_WIDTHS:
        if width <= b:
            return b
    raise EdgeMoeError(f"no storage for a {width}-bit value (at most {STORAGE_WIDTHS[-1]} bits)")


__all__ = ["MAX_IMAGES", "TAP_NONE", "TAP_ALL", "TAP_BITS", "HEADS_NPZ", "STORAGE_WIDTHS", "storage_bits"]
