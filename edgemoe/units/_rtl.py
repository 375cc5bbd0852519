"""What the units' RTL render contexts share: the casts' parameters, the modes of a cast, bit counts.

The RTL is bit-exact with the golden units called with the precision's types, which must have no
per-tensor overrides: w16a32 has none; for w8a8 and w16a32-fit ``edgemoe.sim.rtl.block_precision`` folds one
block's calibrated (fitted) types into the types (see :data:`LIMITATIONS`).
"""
from __future__ import annotations

from edgemoe.errors import EdgeMoeError
from edgemoe.golden.apfixed import FixedType
from edgemoe.kernel_interface import storage_bits

LIMITATIONS = ("w8a8 and w16a32-fit: one RTL build has the calibrated (fitted) types of one block (block_precision); "
               "the HLS kernel's run-time fraction-bit offsets (D_* tables), which switch between blocks, are not "
               "in the RTL.")


def _modes(t: FixedType) -> tuple:
    if t.Q not in ("AP_TRN", "AP_RND") or t.O not in ("AP_WRAP", "AP_SAT"):
        raise EdgeMoeError(f"RTL casts support AP_TRN/AP_RND and AP_WRAP/AP_SAT, not {t.cpp}")
    return int(t.Q == "AP_RND"), int(t.O == "AP_SAT")


def cast_params(src: FixedType, dst: FixedType) -> str:
    """Parameter list of ``<prefix>_cast`` for ``dst = src``."""
    rnd, sat = _modes(dst)
    return (f".SW({src.W}), .SS({int(src.signed)}), .SF({src.F}), .DW({dst.W}), .DS({int(dst.signed)}), "
            f".DF({dst.F}), .RND({rnd}), .SAT({sat})")


def _bits(n: int) -> int:
    return max(1, int(n).bit_length())


def stream_bits(ctx: dict) -> list:
    """Widths of a one-in, one-out unit's AXI-Stream words (its HLS top's ports): in, out."""
    return [ctx["in_sb"], ctx["out_sb"]]


__all__ = ["LIMITATIONS", "cast_params", "stream_bits", "storage_bits"]
