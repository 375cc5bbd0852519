"""What the units' cycle models share: the pipeline depths of the generated C++ common to every unit,
the AXI read latency, the RTL units' handshake and a pipelined pass over a stream.

Pipeline depths (cycles from the first read to the last write of one pipelined loop), paid each time
the loop starts. They follow the operator chains of the C++: AXI / BRAM read 2, a DSP multiply 3-4
(a 32x32 product 6), an adder tree log2(n), the casts 1.  A unit's own depths are in its module
(gelu.DEPTH_GELU, softmax.DEPTH_EXP / DEPTH_RECIP / II_SOFTMAX, layernorm.DEPTH_RSQRT).
"""
from __future__ import annotations

import math

DEPTH_MEM = 2
DEPTH_MUL = 4
MAXI_READ_LATENCY = 64     # Vitis's default m_axi read latency assumption (UG1399): the first word of a burst

# ---- the RTL units (hls/rtl): the same shapes at their own rates, for the check against cocotb ----
HANDSHAKE = 2              # registered TVALID / TREADY on the way in and out of an RTL unit


def clog2(n: int) -> int:
    return max(int(n - 1).bit_length(), 0)


def stream_cycles(items: int, lanes: int, depth: int, calls: int = 1) -> int:
    """A pipelined pass over ``items`` values, ``lanes`` per cycle, started ``calls`` times."""
    return math.ceil(items / lanes) + depth * calls


__all__ = ["DEPTH_MEM", "DEPTH_MUL", "MAXI_READ_LATENCY", "HANDSHAKE", "clog2", "stream_cycles"]
