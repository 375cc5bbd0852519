"""The MoE router: golden/units/moe_route.py, hls/include/moe_route.h (its HLS unit top includes
softmax.h), hls/rtl/moe_route.v.j2 (with the softmax unit's exp core and divider), sim/benches/moe_route.py.

Here: the RTL render context (:func:`rtl_context`), its HLS unit top's headers, ports and queue bound,
the cycle models of the C++ (:func:`moe_route_cycles`) and of the RTL unit (:func:`rtl_cycles`), and its
rate for ``edgemoe sim``.
"""
from __future__ import annotations

import math

from edgemoe.design import ROUTE_GROUP
from edgemoe.errors import EdgeMoeError
from edgemoe.kernel_interface import storage_bits

from ._cycles import DEPTH_MUL, HANDSHAKE, stream_cycles
from ._rtl import _bits, stream_bits
from .softmax import DEPTH_EXP, DEPTH_RECIP, EXP_CORE_DEPTH, exp_ctx, softmax_core_ctx

# its C++ (hls/include/) and its extern "C" wrappers in the unit test harness (csim/unit_harness.cpp.j2)
HLS_HEADER = "moe_route.h"
HARNESS_ENTRIES = ("em_moe_route", "em_route_logits")
ITEM = "token"                     # what an item of the RTL unit's rate is (a vector is a token: its E gate logits)
HLS_TOP_HEADERS = ["softmax.h"]    # unit headers its HLS top includes (beyond edgemoe_config.h, edgemoe_fixed.h)


def rtl_context(spec, prec, design) -> dict:
    """The unit's part of its template context (edgemoe.units.unit_context adds the common part)."""
    lt, st = prec.t("gate_logit"), prec.t("gate_score")
    n_exp, k = spec.num_experts, spec.top_k
    if n_exp < 2:
        raise EdgeMoeError("the RTL router needs at least two experts")
    e = exp_ctx(prec, lt)
    s = softmax_core_ctx(prec, lt, st)
    max_t = spec.tokens
    tw = _bits(max_t)                              # token index and queue length
    ew = _bits(n_exp - 1)
    lane_bits = 1 + tw + st.W
    out_lane = storage_bits(lane_bits)
    lat = 1 + EXP_CORE_DEPTH + 1 + s["div_steps"] + EXP_CORE_DEPTH + 2   # p0, exp, S, 1/S, exp, score and queue
    return dict(E=n_exp, K=k, max_t=max_t, tw=tw, ew=ew, lw=lt.W, in_lane=storage_bits(lt.W),
                in_sb=n_exp * storage_bits(lt.W), scw=st.W, out_lane=out_lane, out_sb=n_exp * out_lane,
                rf_aw=max(4, math.ceil(math.log2(lat + 8))), e=e, s=s, logit_t=lt, score_t=st,
                logit_cpp=lt.cpp, score_cpp=st.cpp)


def hls_top_streams(ctx: dict) -> list:
    """Widths of the HLS unit top's AXI-Stream words."""
    return stream_bits(ctx)


def hls_top_context(ctx: dict) -> dict:
    """The HLS unit top's own values beyond the RTL context: the longest queue it holds."""
    return dict(q_max=2 ** ctx["tw"] - 1)


def moe_route_cycles(n_tok: int, experts: int, top_k: int) -> int:
    """moe_route.h after the gate logits (which run on the engine): groups of ROUTE_GROUP tokens; per
    group the softmax over experts and the probabilities (experts x G iterations each, II=1), one
    divider per token, then top-k (an unrolled argmax per k, about two cycles) and the queue writes."""
    g = ROUTE_GROUP
    per_group = (2 * experts * g + g + g * top_k * 2
                 + (DEPTH_EXP + DEPTH_MUL) + DEPTH_RECIP + (DEPTH_EXP + DEPTH_MUL))
    return math.ceil(n_tok / g) * per_group


def rtl_cycles(w: dict) -> int:
    """Cycles of the RTL unit's throughput phase from its bench's workload: one token per cycle."""
    return stream_cycles(sum(w["tokens"]), 1, w["exp_depth"] + w["divider_steps"] + w["experts"] + HANDSHAKE)


def rate(design) -> float:
    """Full rate of the RTL unit in items (tokens) per cycle."""
    return 1.0


__all__ = ["HLS_HEADER", "HARNESS_ENTRIES", "ITEM", "HLS_TOP_HEADERS", "rtl_context", "hls_top_streams",
           "hls_top_context", "moe_route_cycles", "rtl_cycles", "rate"]
