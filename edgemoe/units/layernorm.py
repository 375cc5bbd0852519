"""The LayerNorm unit (Edge-MoE unit 1): golden/units/layernorm.py, hls/include/layernorm.h,
hls/rtl/layernorm.v.j2, sim/benches/layernorm.py.

Here: its pipeline depths and the latencies of its divider and rsqrt, the RTL render context
(:func:`rtl_context`), its HLS unit top's headers and ports, the cycle models of the C++
(:func:`layernorm_cycles`) and of the RTL unit (:func:`rtl_cycles`), and its rate for ``edgemoe sim``.
"""
from __future__ import annotations

import math

from edgemoe.errors import EdgeMoeError
from edgemoe.golden.apfixed import FixedType, add_type, mul_type
from edgemoe.kernel_interface import storage_bits

from ._cycles import DEPTH_MEM, DEPTH_MUL, HANDSHAKE, clog2, stream_cycles
from ._rtl import _bits, cast_params, stream_bits

# pipeline depths of the RTL datapath in registered stages (one value per cycle, never stalls): the
# template is written with this many stages; its comments, the bench's workload and the cycle model read them here
LN_SQUARE_DEPTH = 1        # layernorm.v.j2: the squares' register before the variance sum
LN_NORM_DEPTH = 4          # layernorm.v.j2: pass C's stages c1..c4 (normalise, shift, scale, cast)
# the C++ (layernorm.h)
DEPTH_RSQRT = 60           # LayerNorm row: two divisions by EMBED, bit length, seed table, 2 Newton steps
                           # of 3 dependent 64-bit products

# its C++ (hls/include/) and its extern "C" wrappers in the unit test harness (csim/unit_harness.cpp.j2)
HLS_HEADER = "layernorm.h"
HARNESS_ENTRIES = ("em_layernorm", "em_rsqrt")
ITEM = "value"                     # what an item of the RTL unit's rate is (a vector is a row of embed values)
HLS_TOP_HEADERS = ["layernorm.h"]  # unit headers its HLS top includes (beyond edgemoe_config.h, edgemoe_fixed.h)


def cdiv_latency(nw: int, d: int | None) -> int:
    """Cycles of layernorm.v.j2's ``_cdiv`` (floor(n / D) of an ``nw``-bit n): one when D > 1 is a power
    of two (a shift), else a stage in, ``nw + 1`` quotient stages and a stage out (``d=None``: the latter)."""
    return 1 if d is not None and d > 1 and d & (d - 1) == 0 else nw + 3


def rsqrt_latency(steps: int) -> int:
    """Cycles of layernorm.v.j2's ``_rsqrt``: max(v, 1), normalise, seed, then three stages per Newton step."""
    return 3 + 3 * steps


def rtl_context(spec, prec, design) -> dict:
    """The unit's part of its template context (edgemoe.units.unit_context adds the common part)."""
    from edgemoe.golden.precision import RSQRT_IDX_BITS, RSQRT_MANT_F, RSQRT_NEWTON_STEPS
    from edgemoe.golden.units.layernorm import SEED_F, eps_raw, rsqrt_table
    xt, pt = prec.t("act"), prec.t("ln_param")
    dt, qt, nt, ot = prec.t("ln_diff"), prec.t("ln_sq_acc"), prec.t("ln_norm"), prec.t("ln_out")
    if nt.O != "AP_WRAP" or qt.O != "AP_WRAP":
        raise EdgeMoeError("the RTL LayerNorm expects wrapping ln_norm and ln_sq_acc types")
    d = spec.embed
    sub_t = add_type(xt, xt)
    sub_t = FixedType(sub_t.W, sub_t.I, True)
    prod_t = mul_type(nt, pt)
    sum_t = add_type(prod_t, pt)
    vw = qt.W + 1                                   # var + eps
    if vw - 1 < RSQRT_MANT_F + 2:
        raise EdgeMoeError("the RTL rsqrt needs ln_sq_acc wider than RSQRT_MANT_F + 2 bits")
    sumw = xt.W + _bits(d) + 1
    div_lat_mean = cdiv_latency(sumw, None)        # the FIFOs are sized for the divider, D a power of two or not
    div_lat_var = cdiv_latency(qt.W, None)
    rs_lat = rsqrt_latency(RSQRT_NEWTON_STEPS) + 1
    # a row's cycles after its last value is in, beyond its two further passes over D values (the
    # bench reports them; rtl_cycles adds them up)
    latency = dict(mean_div=cdiv_latency(sumw, d), square=LN_SQUARE_DEPTH, var_div=cdiv_latency(qt.W, d),
                   rsqrt=rsqrt_latency(RSQRT_NEWTON_STEPS), norm=LN_NORM_DEPTH)
    aw_a = max(4, math.ceil(math.log2(2 * d + div_lat_mean + 16)))
    aw_b = max(4, math.ceil(math.log2(2 * d + div_lat_var + rs_lat + 16)))
    xl, gl = storage_bits(xt.W), storage_bits(pt.W)
    return dict(
        D=d, DRW=d.bit_length() + 1, xw=xt.W, pw=pt.W, xl=xl, gl=gl, in_sb=xl + 2 * gl,
        out_sb=storage_bits(ot.W), ow=ot.W, out_signed=int(ot.signed), sumw=sumw, subw=sub_t.W,
        dw=dt.W, qw=qt.W, vw=vw, vf=qt.F, nw=nt.W, sqs=2 * dt.F - qt.F,
        cast_diff=cast_params(sub_t, dt), eps=eps_raw(qt, spec.ln_eps),
        mant_f=RSQRT_MANT_F, idx_bits=RSQRT_IDX_BITS, seed_f=SEED_F, steps=RSQRT_NEWTON_STEPS,
        table=[int(v) for v in rsqrt_table()], nsh0=nt.F - dt.F - RSQRT_MANT_F,
        prodw=prod_t.W, sumtw=sum_t.W, prod_sh=sum_t.F - prod_t.F, beta_sh=sum_t.F - pt.F,
        cast_out=cast_params(sum_t, ot), aw_a=aw_a, aw_b=aw_b, latency=latency,
        x_cpp=xt.cpp, p_cpp=pt.cpp, d_cpp=dt.cpp, q_cpp=qt.cpp, n_cpp=nt.cpp, o_cpp=ot.cpp,
        x_t=xt, p_t=pt, out_t=ot)


def hls_top_streams(ctx: dict) -> list:
    """Widths of the HLS unit top's AXI-Stream words."""
    return stream_bits(ctx)


def hls_top_context(ctx: dict) -> dict:
    """The HLS unit top's own values beyond the RTL context."""
    return {}


def layernorm_cycles(n_rows: int, embed: int, lanes: int) -> int:
    """One flattened pipeline of (n_rows + 2) steps of EMBED / lanes iterations, each step summing row t,
    squaring row t-1 and normalising row t-2 (gamma and beta read from the parameter buffer in the same
    iterations); the divisions and the rsqrt chain only deepen that pipeline (paid once per call)."""
    steps = math.ceil(embed / lanes)
    depth = DEPTH_MEM + 2 * (clog2(lanes) + 1) + 2 * DEPTH_MUL + DEPTH_RSQRT
    return (n_rows + 2) * steps + depth


def rtl_cycles(w: dict) -> int:
    """Cycles of the RTL unit's throughput phase from its bench's workload: one value per cycle."""
    # the row's sum, its squares and its outputs overlap with the neighbouring rows; the last row
    # then waits for its mean, runs its second pass (squares), waits for its variance and rsqrt and
    # runs its third pass (outputs): the stages' cycles are the RTL's (rtl_context, via the bench)
    fill = 2 * w["width"] + sum(w["stages"].values()) + HANDSHAKE
    return stream_cycles(w["rows"] * w["width"], 1, fill)


def rate(design) -> float:
    """Full rate of the RTL unit in items (values) per cycle."""
    return 1.0


__all__ = ["HLS_HEADER", "HARNESS_ENTRIES", "LN_SQUARE_DEPTH", "LN_NORM_DEPTH", "DEPTH_RSQRT", "ITEM",
           "HLS_TOP_HEADERS", "cdiv_latency", "rsqrt_latency", "rtl_context", "hls_top_streams", "hls_top_context",
           "layernorm_cycles", "rtl_cycles", "rate"]
