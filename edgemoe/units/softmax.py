"""The softmax unit (Edge-MoE unit 3): golden/units/softmax.py, hls/include/softmax.h, hls/rtl/softmax.v.j2
(its exp core exp_core.v.j2 and divider divider.v.j2, also in the router), sim/benches/softmax.py.

Here: its pipeline depths, the RTL render context (:func:`exp_ctx` and :func:`softmax_core_ctx`, shared
with moe_route, and the unit's :func:`rtl_context`), its HLS unit top's headers, ports and row bound,
the cycle model of the RTL unit and its rate for ``edgemoe sim``.
"""
from __future__ import annotations

import math

from edgemoe.errors import EdgeMoeError
from edgemoe.golden.apfixed import FixedType, mul_type
from edgemoe.golden.precision import EXP2_SEG_LOG2, Precision
from edgemoe.golden.units.softmax import LOG2E_T, check_exp_arg, exp2_table, log2e_raw
from edgemoe.kernel_interface import storage_bits

from ._cycles import HANDSHAKE, stream_cycles
from ._rtl import _bits, _modes, stream_bits

# pipeline depth of the RTL exp core in registered stages (one value per cycle, never stalls): the template
# is written with this many stages; its comments, the benches' workloads and the cycle model read it here
EXP_CORE_DEPTH = 4         # exp_core.v.j2: d * log2(e), table entries, interpolation, shift
# the C++ (softmax.h, attention.h, moe_route.h)
DEPTH_EXP = 10             # sm_exp_neg: d * log2(e), table read, interpolation multiply, shift
DEPTH_RECIP = 40           # one integer division per softmax row (a pipelined divider's latency)
II_SOFTMAX = 4             # the running sum S = floor(S * e) + 1 is carried from key to key through a
                           # multiply and an add, so the single-pass softmax loops cannot reach II=1

# its C++ (hls/include/) and its extern "C" wrappers in the unit test harness (csim/unit_harness.cpp.j2)
HLS_HEADER = "softmax.h"
HARNESS_ENTRIES = ("em_softmax",)
ITEM = "score"                     # what an item of the RTL unit's rate is
HLS_TOP_HEADERS = ["softmax.h"]    # unit headers its HLS top includes (beyond edgemoe_config.h, edgemoe_fixed.h)


def exp_ctx(prec: Precision, score_t: FixedType) -> dict:
    """exp(d), d = s - m <= 0 of two ``score_t`` values (golden softmax.exp_neg_fixed)."""
    arg_t, tab_t, exp_t = prec.t("exp_arg"), prec.t("exp2_tab"), prec.t("exp")
    d_t = FixedType(score_t.W + 1, score_t.I + 1)
    prod_t = FixedType(d_t.W + LOG2E_T.W, d_t.I + LOG2E_T.I)
    check_exp_arg(arg_t)
    # the most negative d times log2(e) must not wrap in exp_arg (the RTL assumes n <= 0)
    lowest = d_t.min_raw * log2e_raw() / 2.0 ** prod_t.F
    if lowest < -(2.0 ** (arg_t.I - 1)):
        raise EdgeMoeError(f"(s - m) * log2(e) of {score_t.cpp} scores wraps in exp_arg {arg_t.cpp}")
    table = [int(v) for v in exp2_table(prec)]
    shift0 = exp_t.F - tab_t.F
    # p = t0 + floor((t1 - t0) r / 2^sb) < t1 <= max(table) (the table increases)
    if ((max(table) - 1) << max(shift0, 0)) >= (1 << exp_t.W) or exp_t.signed:
        raise EdgeMoeError(f"2^f at the exp type {exp_t.cpp} does not fit its width")
    rnd, sat = _modes(arg_t)
    return dict(d_w=d_t.W, d_f=d_t.F, prod_w=prod_t.W, prod_f=prod_t.F, l2e_w=LOG2E_T.W,
                l2e=log2e_raw(), arg_w=arg_t.W, arg_f=arg_t.F, arg_rnd=rnd, arg_sat=sat,
                arg_cpp=arg_t.cpp, seg_log2=EXP2_SEG_LOG2, sb=arg_t.F - EXP2_SEG_LOG2,
                tab_w=tab_t.W, tab_cpp=tab_t.cpp, table=table, n=len(table), shift_l=max(shift0, 0),
                shift_r=max(-shift0, 0), exp_w=exp_t.W, exp_cpp=exp_t.cpp,
                nw=_bits(arg_t.W) + 1, depth=EXP_CORE_DEPTH)


def softmax_core_ctx(prec: Precision, score_t: FixedType, prob_t: FixedType) -> dict:
    sum_t, exp_t, recip_t = prec.t("sm_sum"), prec.t("exp"), prec.t("recip")
    if sum_t.signed or recip_t.signed or sum_t.O != "AP_WRAP" or recip_t.O != "AP_WRAP":
        raise EdgeMoeError("the RTL softmax expects unsigned wrapping sm_sum and recip types")
    pe_t = mul_type(exp_t, recip_t)
    rnd, sat = _modes(prob_t)
    nb = recip_t.F + sum_t.F
    return dict(sum_w=sum_t.W, sum_f=sum_t.F, exp_f=exp_t.F, recip_w=recip_t.W, nb=nb,
                div_steps=nb + 1, pe_w=pe_t.W, pe_f=pe_t.F, prob_w=prob_t.W, prob_f=prob_t.F,
                prob_signed=int(prob_t.signed), prob_rnd=rnd, prob_sat=sat, sum_cpp=sum_t.cpp,
                recip_cpp=recip_t.cpp, prob_cpp=prob_t.cpp, score_cpp=score_t.cpp,
                score_w=score_t.W, score_f=score_t.F)


def rtl_context(spec, prec, design) -> dict:
    """The unit's part of its template context (edgemoe.units.unit_context adds the common part)."""
    score_t, prob_t = prec.t("score"), prec.t("prob")
    e = exp_ctx(prec, score_t)
    s = softmax_core_ctx(prec, score_t, prob_t)
    max_len = max(spec.tokens, spec.num_experts)
    lat = 2 * EXP_CORE_DEPTH + s["div_steps"]     # first pass + divider, roughly
    depth_log2 = max(4, math.ceil(math.log2(2 * max_len + lat + 8)))
    return dict(e=e, s=s, max_len=max_len, fifo_aw=depth_log2,
                in_sb=storage_bits(score_t.W), out_sb=storage_bits(prob_t.W))


def hls_top_streams(ctx: dict) -> list:
    """Widths of the HLS unit top's AXI-Stream words."""
    return stream_bits(ctx)


def hls_top_context(ctx: dict) -> dict:
    """The HLS unit top's own values beyond the RTL context: the longest row it buffers."""
    return dict(row_max=2 ** ctx["fifo_aw"])


def rtl_cycles(w: dict) -> int:
    """Cycles of the RTL unit's throughput phase from its bench's workload: one score per cycle."""
    lens = w["row_len"] if isinstance(w["row_len"], list) else [w["row_len"]] * w["rows"]
    # pass 2 of a row overlaps pass 1 of the next; the last row waits for its exp and 1/S
    return stream_cycles(sum(lens), 1, w["exp_depth"] + w["divider_steps"] + HANDSHAKE)


def rate(design) -> float:
    """Full rate of the RTL unit in items (scores) per cycle."""
    return 1.0


__all__ = ["HLS_HEADER", "HARNESS_ENTRIES", "EXP_CORE_DEPTH", "DEPTH_EXP", "DEPTH_RECIP", "II_SOFTMAX", "ITEM",
           "HLS_TOP_HEADERS", "exp_ctx", "softmax_core_ctx", "rtl_context", "hls_top_streams", "hls_top_context",
           "rtl_cycles", "rate"]
