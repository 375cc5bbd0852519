"""The residual add: golden (the fixed model's act_t(x + y), golden/fixed_model.py), hls/include/residual.h
(residual_unit, one shared instance), no RTL unit.

Here: its C++'s cycle model (:func:`residual_cycles`) and its harness entries.
"""
from __future__ import annotations

from ._cycles import DEPTH_MEM, stream_cycles

# its C++ (hls/include/) and its extern "C" wrappers in the unit test harness (csim/unit_harness.cpp.j2)
HLS_HEADER = "residual.h"
HARNESS_ENTRIES = ("em_residual", "em_residual_slots")


def residual_cycles(values: int, lanes: int, slots: int = 1) -> int:
    """residual_unit on ``values`` activations, ``lanes`` per cycle: the MLP (or attention) output added to
    the residual stream; a MoE block's experts wrote ``slots`` (TOP_K) output slots, no read-modify-write,
    which the same pass adds first (a word of every slot per cycle; each slot's add deepens the pipeline)."""
    return stream_cycles(values, lanes, DEPTH_MEM + 1 + (slots - 1))


__all__ = ["HLS_HEADER", "HARNESS_ENTRIES", "residual_cycles"]
