"""The linear unit (the unified compute unit's MAC engine): golden/units/linear.py, hls/include/linear.h,
hls/rtl/linear.v.j2 (its control registers axilite.v.j2, its GELU epilogue gelu_core.v.j2),
sim/benches/linear.py.

Here: its control registers and mode codes, its pipeline depth, the RTL render context
(:func:`rtl_context`), its HLS unit top's headers and ports, the cycle models of the kernel's engine
(:func:`engine_cycles`, :func:`engine_load_steps`) and of the RTL unit (:func:`linear_cycles`,
:func:`rtl_cycles`), and its rate for ``edgemoe sim`` (engine_in * engine_out MACs per cycle).
"""
from __future__ import annotations

import math

from edgemoe import design as _design
from edgemoe.errors import EdgeMoeError
from edgemoe.golden.apfixed import FixedType, mul_type
from edgemoe.kernel_interface import storage_bits

from ._cycles import HANDSHAKE, MAXI_READ_LATENCY
from ._rtl import _bits, cast_params
from .gelu import gelu_ctx

# the linear engine's s_axi_control: its argument registers at the offsets Vitis HLS gives the scalar
# arguments of a top (ap_ctrl_none: nothing at 0x00..0x0C; one 8-byte slot per 32-bit argument).  The RTL
# (linear.v.j2, axilite.v.j2), the HLS unit top (unit_tops/linear_top.cpp.j2) and the bench read them here.
# Its `mode` register: the output kind in bits [LIN_MODE_BITS-1:0], the bias kind in the bit above
# (the RTL unit's own encoding; the HLS kernel's engine modes are ENG_* of edgemoe_config.h).
LIN_MODE_BITS = 2
LIN_MODE_QKV, LIN_MODE_ACT, LIN_MODE_GELU, LIN_MODE_SCORE = 0, 1, 2, 3
LIN_BIAS_QKV_BIT = 1 << LIN_MODE_BITS
LIN_REGS = (("n_rows", 0x10, "rows of the call"),
            ("n_in_tiles", 0x18, "in_dim / ENGINE_IN"),
            ("mode", 0x20, f"[{LIN_MODE_BITS - 1}:0] output kind, [{LIN_MODE_BITS}] qkv bias"))

# pipeline depth of the RTL datapath in registered stages (one value per cycle, never stalls): the
# template is written with this many stages; its comments, the bench's workload and the cycle model read it here
LIN_CORE_DEPTH = 4         # linear.v.j2: stages A (row), B (products), C (sums), D (accumulator); then
                           # stage E, the output casts beside the GELU core (gelu.GELU_CORE_DEPTH)

# its C++ (hls/include/) and its extern "C" wrappers in the unit test harness (csim/unit_harness.cpp.j2)
HLS_HEADER = "linear.h"
HARNESS_ENTRIES = ("em_linear",)
ITEM = "MAC"                       # what an item of the RTL unit's rate is
HLS_TOP_HEADERS = ["linear.h"]     # unit headers its HLS top includes (beyond edgemoe_config.h, edgemoe_fixed.h)


def rtl_context(spec, prec, design) -> dict:
    """The unit's part of its template context (edgemoe.units.unit_context adds the common part)."""
    xt, wt = prec.t("ln_out"), prec.t("w")
    acc = prec.acc_for("acc", xt, wt)
    bt, qbt = prec.t("b"), prec.t("qkv_b")
    qt, at, git, sct = prec.t("qkv"), prec.t("act"), prec.t("gelu_in"), prec.t("gate_score")
    g = gelu_ctx(prec, lut_mul=True)
    ht = g["out_t"]
    if bt.W != qbt.W:
        raise EdgeMoeError("the RTL linear engine expects b and qkv_b of one width")
    prod = mul_type(xt, wt)
    pw = prod.W
    if pw >= acc.W:
        p2a = "b_p[(oc*EI+ic)*PW +: ACCW]"
    else:
        p2a = "{{(ACCW-PW){b_p[(oc*EI+ic)*PW+PW-1]}}, b_p[(oc*EI+ic)*PW +: PW]}"
    c_t = mul_type(sct, at)
    ob = storage_bits(max(qt.W, at.W, ht.W))
    ei, eo = design.engine_in, design.engine_out
    L = dict(xw=xt.W, xb=storage_bits(xt.W), ww=wt.W, wb=storage_bits(wt.W), bw=bt.W,
             bb=storage_bits(bt.W), scw=sct.W, scb=storage_bits(sct.W), accw=acc.W, ob=ob,
             tok_w=_bits(max(spec.tokens - 1, 1)), max_rows=spec.tokens,
             qw=qt.W, aw=at.W, giw=git.W, hw=ht.W, q_signed=int(qt.signed), h_signed=int(ht.signed),
             prod_to_acc=p2a, g=g,
             cast_b=cast_params(bt, acc), cast_qb=cast_params(qbt, acc), cast_q=cast_params(acc, qt),
             cast_a=cast_params(acc, at), cast_gi=cast_params(acc, git),
             cast_c=cast_params(FixedType(sct.W + at.W, c_t.I, True), at),
             acc_cpp=acc.cpp, w_cpp=wt.cpp, b_cpp=bt.cpp, qb_cpp=qbt.cpp, x_cpp=xt.cpp, sc_cpp=sct.cpp,
             qkv_cpp=qt.cpp, act_cpp=at.cpp, gi_cpp=git.cpp, hid_cpp=ht.cpp,
             x_t=xt, w_t=wt, b_t=bt, qb_t=qbt, acc_t=acc, q_t=qt, a_t=at, gi_t=git, h_t=ht, sc_t=sct)
    # weight stream: a beat carries w_rows whole weight rows of the tile (EI weights + that output's
    # bias each), w_beats = EO / w_rows beats per tile.  Rows per beat: the most that keep the beat
    # <= 1024 bits, more if the tile load (w_beats cycles, hidden behind the previous tile's n_rows
    # cycles of compute) would outlast a full call's rows; never over Vitis's 4096-bit ap_uint limit.
    # per-channel weight scales (w8a8+per-channel, golden/channel_scales.py): each weight row also carries its
    # output's shift s (a lane of SHB bits after the bias); the accumulator then has s more fraction bits.
    # Both casts go through the accumulator widened by CHANNEL_SHIFT_MAX fraction bits: the bias is cast
    # into it and shifted right by CHANNEL_SHIFT_MAX - s (floor: the accumulator's AP_TRN), the output
    # casts read the accumulator shifted left by CHANNEL_SHIFT_MAX - s (exact)
    pc = "per-channel" in prec.options
    from edgemoe.golden.channel_scales import CHANNEL_SHIFT_BITS, CHANNEL_SHIFT_MAX
    L.update(per_channel=int(pc), shw=CHANNEL_SHIFT_BITS, shb=storage_bits(CHANNEL_SHIFT_BITS) if pc else 0,
             sh_max=CHANNEL_SHIFT_MAX)
    if pc:
        wide = FixedType(acc.W + CHANNEL_SHIFT_MAX, acc.I, True)
        L.update(accw_wide=wide.W, cast_b_w=cast_params(bt, wide), cast_qb_w=cast_params(qbt, wide),
                 cast_q_w=cast_params(wide, qt), cast_a_w=cast_params(wide, at), cast_gi_w=cast_params(wide, git))
    row_bits = ei * L["wb"] + L["bb"] + L["shb"]
    divs = [r for r in range(1, eo + 1) if eo % r == 0]
    rows = max([r for r in divs if r * row_bits <= 1024] or [1])
    if eo // rows > spec.tokens:
        fit = [r for r in divs if r * row_bits <= 4096]
        rows = min([r for r in fit if eo // r <= spec.tokens] or [max(fit or [1])])
    L.update(pw=pw, w_row_bits=row_bits, w_rows=rows, w_beats=eo // rows, w_bits=rows * row_bits)
    L["x_bits"] = ei * L["xb"] + L["scb"]
    L["o_bits"] = eo * ob
    L["depth"] = LIN_CORE_DEPTH + g["depth"]        # a row's stages from x_r to the output queue
    reset = dict(n_rows=spec.tokens, n_in_tiles=spec.embed // ei, mode=0)
    valid = dict(n_rows=f"1..{spec.tokens}", n_in_tiles=">= 1", mode="")   # documented values
    regs = [dict(name=n, offset=off, reset=reset[n], doc=doc, valid=valid[n]) for n, off, doc in LIN_REGS]
    reg_aw = (max(off for _, off, _ in LIN_REGS) + 3).bit_length()    # byte address of a register's last byte
    M = dict(bits=LIN_MODE_BITS, mask=(1 << LIN_MODE_BITS) - 1, qkv=LIN_MODE_QKV, act=LIN_MODE_ACT,
             gelu=LIN_MODE_GELU, score=LIN_MODE_SCORE, bias_bit=LIN_MODE_BITS, bias_qkv=LIN_BIAS_QKV_BIT)
    return dict(L=L, EI=ei, EO=eo, regs=regs, reg_aw=reg_aw, M=M)


def hls_top_streams(ctx: dict) -> list:
    """Widths of the HLS unit top's AXI-Stream words: weights, x, out."""
    L = ctx["L"]
    return [L["w_bits"], L["x_bits"], L["o_bits"]]


def hls_top_context(ctx: dict) -> dict:
    """The HLS unit top's own values beyond the RTL context."""
    return {}


# ---- cycle models ---------------------------------------------------------------------------------
def engine_cycles(n_rows: int, n_tiles: int, lw: int, depth: int) -> int:
    """One call of the linear engine (a DATAFLOW of the weight fetch loop and the compute loop): the
    fetch's first word after ``MAXI_READ_LATENCY``, tile 0's ``lw`` steps (LW' = max(LW, the tile's words
    over the weight bandwidth)), then ``max(n_rows, lw, ENGINE_ACC_DISTANCE)`` iterations per weight
    tile (the next tile streams in while the rows compute; a row's accumulator is never touched twice
    within ENGINE_ACC_DISTANCE iterations), and the compute pipeline's depth once."""
    per_tile = max(n_rows, lw, _design.ENGINE_ACC_DISTANCE)
    return MAXI_READ_LATENCY + lw + n_tiles * per_tile + depth


def engine_load_steps(tile_words: int, weight_ports: int, weights_bw: float) -> int:
    """LW': the fetch loop's steps per tile: LW = ceil(tile words / ports) at one word per port per
    cycle, or fewer words per cycle when the PS ports / DDR cannot keep up."""
    return max(math.ceil(tile_words / weight_ports), math.ceil(tile_words / weights_bw - 1e-9))


def linear_cycles(n_rows: int, n_out_tiles: int, n_in_tiles: int, tile_load: float, depth: int) -> int:
    """The RTL linear unit (hls/rtl): a prologue loads the first weight tile; then max(n_rows, tile
    load) cycles per (output tile, input tile), computing the rows while the next tile loads."""
    tl = math.ceil(tile_load)
    return tl + n_out_tiles * n_in_tiles * max(n_rows, tl) + depth


def rtl_cycles(w: dict) -> int:
    """Cycles of the RTL unit's throughput phase from its bench's workload: a MAC tile per cycle."""
    return linear_cycles(w["rows"], w["out_tiles"], w["in_tiles"], w["w_beats_per_tile"], 0) \
        + w["pipeline_depth"] + HANDSHAKE


def rate(design) -> float:
    """Full rate of the RTL unit in items (MACs) per cycle at ``design``."""
    return float(design.engine_in * design.engine_out)


__all__ = ["HLS_HEADER", "HARNESS_ENTRIES", "LIN_REGS", "LIN_MODE_BITS", "LIN_MODE_QKV", "LIN_MODE_ACT",
           "LIN_MODE_GELU", "LIN_MODE_SCORE", "LIN_BIAS_QKV_BIT", "LIN_CORE_DEPTH", "ITEM", "HLS_TOP_HEADERS",
           "rtl_context", "hls_top_streams", "hls_top_context", "engine_cycles", "engine_load_steps", "linear_cycles",
           "rtl_cycles", "rate"]
