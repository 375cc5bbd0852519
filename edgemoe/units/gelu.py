"""The GELU unit (Edge-MoE unit 4): golden/units/gelu.py, hls/include/gelu.h, hls/rtl/gelu.v.j2 (its
core gelu_core.v.j2, also in the linear engine's epilogue), sim/benches/gelu.py.

Here: its pipeline depths, the RTL render context (the core's :func:`gelu_ctx` and the unit's
:func:`rtl_context`), its HLS unit top's headers and ports, the cycle model of the RTL unit and its
rate for ``edgemoe sim``.
"""
from __future__ import annotations

from edgemoe.errors import EdgeMoeError
from edgemoe.golden.apfixed import FixedType, add_type
from edgemoe.golden.precision import GELU_RANGE, GELU_STEPS_LOG2, Precision
from edgemoe.golden.units.gelu import gelu_limit_raw, gelu_table
from edgemoe.kernel_interface import storage_bits

from ._cycles import HANDSHAKE, stream_cycles
from ._rtl import _bits, _modes, stream_bits

# pipeline depths in registered stages (one value per cycle, never stalls): the template is written with
# this many stages; its comments, the bench's workload and the cycle model read it here
GELU_CORE_DEPTH = 4        # gelu_core.v.j2: |x| and index, table entries, interpolation, relu - d and cast
DEPTH_GELU = 8             # the C++ (gelu.h): table read, interpolation multiply, ReLU minus d(a)

# its C++ (hls/include/) and its extern "C" wrappers in the unit test harness (csim/unit_harness.cpp.j2)
HLS_HEADER = "gelu.h"
HARNESS_ENTRIES = ("em_gelu",)
ITEM = "value"                     # what an item of the RTL unit's rate is
HLS_TOP_HEADERS = ["gelu.h"]       # unit headers its HLS top includes (beyond edgemoe_config.h, edgemoe_fixed.h)


def gelu_ctx(prec: Precision, lut_mul: bool = False) -> dict:
    gi, gt, out = prec.t("gelu_in"), prec.t("gelu_tab"), prec.t("hidden")
    if gt.signed:
        raise EdgeMoeError("the GELU table type must be unsigned")
    f = gi.F
    table = [int(v) for v in gelu_table(prec)]
    limit = gelu_limit_raw(f)
    sb = f - GELU_STEPS_LOG2
    sub = add_type(gi, gt)
    sub = FixedType(sub.W, sub.I, True)
    rnd, sat = _modes(out)
    return dict(n=len(table), range=GELU_RANGE, steps_log2=GELU_STEPS_LOG2, in_cpp=gi.cpp,
                tab_cpp=gt.cpp, out_cpp=out.cpp, gw=gi.W, tw=gt.W, sb=sb, sbp=max(sb, 0),
                rw=max(sb, 1), ixw=_bits(len(table) - 1), table=table, limit=limit,
                sub_w=sub.W, sub_f=sub.F, sub_cpp=sub.cpp, relu_shift=sub.F - gi.F,
                d_shift=sub.F - gt.F, ow=out.W, out_f=out.F, out_signed=int(out.signed),
                out_rnd=rnd, out_sat=sat, lut_mul=lut_mul, in_t=gi, out_t=out, depth=GELU_CORE_DEPTH)


def rtl_context(spec, prec, design) -> dict:
    """The unit's part of its template context (edgemoe.units.unit_context adds the common part)."""
    g = gelu_ctx(prec)
    return dict(g=g, in_sb=storage_bits(g["gw"]), out_sb=storage_bits(g["ow"]))


def hls_top_streams(ctx: dict) -> list:
    """Widths of the HLS unit top's AXI-Stream words."""
    return stream_bits(ctx)


def hls_top_context(ctx: dict) -> dict:
    """The HLS unit top's own values beyond the RTL context."""
    return {}


def rtl_cycles(w: dict) -> int:
    """Cycles of the RTL unit's throughput phase from its bench's workload: one value per cycle."""
    return stream_cycles(w["values"], 1, w["pipeline_depth"] + HANDSHAKE)


def rate(design) -> float:
    """Full rate of the RTL unit in items (values) per cycle."""
    return 1.0


__all__ = ["HLS_HEADER", "HARNESS_ENTRIES", "GELU_CORE_DEPTH", "DEPTH_GELU", "ITEM", "HLS_TOP_HEADERS", "gelu_ctx",
           "rtl_context", "hls_top_streams", "hls_top_context", "rtl_cycles", "rate"]
