"""The attention unit: golden/units/attention.py, hls/include/attention.h (no RTL unit).

Here: the cycle model of the C++ (:func:`attention_cycles`).
"""
from __future__ import annotations

import math

from ._cycles import DEPTH_MEM, DEPTH_MUL
from .softmax import DEPTH_EXP, DEPTH_RECIP, II_SOFTMAX


# its C++ (hls/include/) and its extern "C" wrappers in the unit test harness (csim/unit_harness.cpp.j2)
HLS_HEADER = "attention.h"
HARNESS_ENTRIES = ("em_attention",)
def attention_cycles(n_tok: int, embed: int, heads: int, design) -> int:
    r, lanes = design.attn_rows, design.attn_lanes
    chunks = embed // lanes
    groups = math.ceil(n_tok / r)
    per_group = (r * chunks + DEPTH_MEM                          # load the group's Q rows
                 + n_tok * chunks + DEPTH_MEM + DEPTH_MUL + 2    # Q.K^T, ATTN_LANES per row per cycle
                 + n_tok * II_SOFTMAX + DEPTH_EXP + DEPTH_MUL    # single-pass softmax (S carried)
                 + heads + DEPTH_RECIP                           # 1/S per (head, row), R per cycle
                 + n_tok * chunks + DEPTH_MEM + DEPTH_EXP + DEPTH_MUL  # A.V with p on the fly
                 + r * chunks + DEPTH_MEM)                       # write the group's rows
    return groups * per_group


__all__ = ["HLS_HEADER", "HARNESS_ENTRIES", "attention_cycles"]
