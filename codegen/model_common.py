"""What the cycle model (estimate.py) and the resource model (estimate_resources.py) share: the bit
widths of the spec, pipeline depths, the DSP arithmetic and the linear engine's shape."""
from __future__ import annotations

import math
from dataclasses import dataclass

from edgemoe.golden.precision import EXP2_SEG_LOG2
from edgemoe.golden.units.gelu import table_size as _gelu_table_size
from edgemoe.golden.units.layernorm import rsqrt_table as _rsqrt_table

from edgemoe.design import ROUTE_GROUP  # noqa: F401  (re-exported; one source, generated into the config header)

# Pipeline depths (cycles from the first read to the last write of one pipelined loop), paid each
# time the loop starts: with their units in the units layer (edgemoe/units/_cycles.py and the unit
# modules), re-exported here for the cycle and resource models
from edgemoe.units._cycles import DEPTH_MEM, DEPTH_MUL, MAXI_READ_LATENCY, clog2  # noqa: F401
from edgemoe.units.gelu import DEPTH_GELU
from edgemoe.units.layernorm import DEPTH_RSQRT  # noqa: F401
from edgemoe.units.softmax import DEPTH_EXP, DEPTH_RECIP, II_SOFTMAX  # noqa: F401

DEPTH_AXI_READ = 20        # first beat of a burst read after its address (the published schedule's figure)
# the ROMs' entries, from the golden model's tables (the config header's GELU_TABLE_SIZE, EXP2_TABLE_SIZE,
# RSQRT_TABLE_SIZE)
GELU_TABLE_SIZE = _gelu_table_size()                   # GELU d(a) over [0, GELU_RANGE]
EXP2_TABLE_SIZE = (1 << EXP2_SEG_LOG2) + 1             # 2^f on [0, 1]
RSQRT_SEED_SIZE = len(_rsqrt_table())                  # LayerNorm's 1/sqrt seeds
# DSP48E2 ports (hls/include/pack2.h's PACK2_DSP_*): the pre-adder / A input and the B input
DSP_A_BITS, DSP_B_BITS = 27, 18


def dsp_per_mult(a_bits: int, b_bits: int) -> int:
    """DSP48E2 slices of one a x b-bit signed product (27 x 18 per slice, wider ones split)."""
    if min(a_bits, b_bits) <= 4:
        return 0                                  # tiny products go to LUTs
    return min(math.ceil(a_bits / 27) * math.ceil(b_bits / 18), math.ceil(b_bits / 27) * math.ceil(a_bits / 18))


def macs_per_dsp_best(a_bits: int, b_bits: int) -> float:
    """The most MACs one DSP48E2 can do per cycle for these operands (two 8-bit MACs with packing)."""
    if max(a_bits, b_bits) <= 8:
        return 2.0
    return 1.0 / dsp_per_mult(a_bits, b_bits)


def packed_int8(a_bits: int, b_bits: int) -> bool:
    """pack2.h applies: two 8-bit products share one DSP48E2 (the shared operand times a packed pair)."""
    return max(a_bits, b_bits) <= 8


@dataclass(frozen=True)
class Widths:
    """Bit widths of the operands the model counts (from the precision's base types)."""
    lin_in: int
    w: int
    act: int
    qkv: int
    prob: int
    qk: int                   # q.k before the scale (the attention's scale multiply operand)
    score: int
    hidden: int
    gelu_in: int
    ln_diff: int
    ln_param: int
    gate_w: int
    gate_score: int
    gate_logit: int
    pixel: int
    patch_w: int
    acc: int
    eacc: int                 # the engine's accumulator: the widest exact sum it keeps (linear, patch)
    sm_sum: int
    exp: int
    recip: int                # softmax's 1 / S (a probability is exp x recip before its rescale)
    bias: int
    gelu_tab: int
    exp2_tab: int
    ln_sq: int
    av_acc: int
    x: int                    # the engine's x operand: the raw code of its widest input
    ew: int                   # the engine's weight operand (linear, gate and patch weights)
    ew_signed: bool = True    # ... and its sign (linear.h's eng_w_t: the raw code of w_t)

    @classmethod
    def of(cls, prec) -> "Widths":
        t = prec.types
        # the engine takes LayerNorm / attention / GELU outputs and the pixels as raw codes: an unsigned
        # pixel needs a sign bit more (u8 -> 9 bits)
        lin_in = max(t[r].W for r in ("ln_out", "attn_out", "hidden"))
        pix = t["pixel"].W + (0 if t["pixel"].signed else 1)
        return cls(lin_in=t["ln_out"].W, w=t["w"].W, act=t["act"].W, qkv=t["qkv"].W, prob=t["prob"].W,
                   qk=t["qk"].W, score=t["score"].W, hidden=t["hidden"].W, gelu_in=t["gelu_in"].W, ln_diff=t["ln_diff"].W,
                   ln_param=t["ln_param"].W, gate_w=t["gate_w"].W, gate_score=t["gate_score"].W,
                   gate_logit=t["gate_logit"].W, pixel=t["pixel"].W, patch_w=t["patch_w"].W, acc=t["acc"].W,
                   eacc=max(t["acc"].W, t["patch_acc"].W),
                   sm_sum=t["sm_sum"].W, exp=t["exp"].W, recip=t["recip"].W, bias=t["b"].W, gelu_tab=t["gelu_tab"].W,
                   exp2_tab=t["exp2_tab"].W, ln_sq=t["ln_sq_acc"].W, av_acc=t["av_acc"].W,
                   x=max(lin_in, pix), ew=max(t["w"].W, t["gate_w"].W, t["patch_w"].W), ew_signed=t["w"].signed)


@dataclass
class Layer:
    """One call of a unit in the schedule."""
    name: str                 # e.g. "block3.qkv"
    unit: str                 # linear | attention | layernorm | residual | moe_route | patch_embed | io
    cycles: int
    macs: int = 0
    weight_bytes: int = 0
    block: int = -1
    engine_slots: int = 0     # MAC slots of the linear engine during this call (cycles x MACs per cycle)


# ---- the linear engine --------------------------------------------------------------------------
def engine_packed(wd: Widths, design) -> bool:
    """Two MACs per DSP48E2 (pack2.h): 8-bit weights times a shared x of at most 9 bits (s8 codes and
    u8 pixels), output lanes in pairs."""
    return design.engine_out % 2 == 0 and wd.ew <= 8 and wd.x <= 9


def _int_range(bits: int, signed: bool) -> tuple:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _sbits(lo: int, hi: int) -> int:
    """The smallest W whose signed range holds [lo, hi] (pack2_sbits)."""
    w = 1
    while not (lo >= -(1 << (w - 1)) and hi <= (1 << (w - 1)) - 1) and w < 63:
        w += 1
    return w


def pack2_dsp_shift(b_lo: int, b_hi: int) -> int:
    """The widest field S (at most 24) whose packed operand b1 * 2^S + b0 fits the DSP's pre-adder (pack2_dsp_shift)."""
    s = 24
    while s > 1 and _sbits(b_lo * (1 << s) + b_lo, b_hi * (1 << s) + b_hi) > DSP_A_BITS:
        s -= 1
    return s


def pack2_max_terms(a: tuple, b: tuple, s: int) -> int:
    """The most products a * b (ranges ``a``, ``b``) whose sum fits a low field of ``s`` bits under the
    bias split (pack2_max_terms<TA, TB, S, PACK2_BIAS>)."""
    prods = [x * y for x in a for y in b]
    span = max(prods) - min(prods)
    return (2 * (1 << (s - 1)) - 1) // span if span > 0 else 65536


def engine_pack_chunk(wd: Widths, design) -> int:
    """Terms per packed chain of the engine (linear.h's eng_pack_info<true>::CHUNK): the most the field
    of the widest packed weight operand holds, at most ENGINE_IN (4 for 9-bit x times s8 weights)."""
    w = _int_range(wd.ew, wd.ew_signed)
    return min(pack2_max_terms(_int_range(wd.x, True), w, pack2_dsp_shift(*w)), design.engine_in)


def _chain_depth(n: int, chunk: int) -> int:
    c = min(chunk, n)
    return c + 1 + clog2(math.ceil(n / c))


def engine_sum_depth(wd: Widths, design) -> int:
    """Cycles of the engine's summing stage (the config header's ENG_SUM_DEPTH, checked in linear.h
    against pack2.h): an adder tree, or with int8 packing chains of :func:`engine_pack_chunk` packed
    products (one DSP stage per term), a split and a tree over the chains."""
    ei = design.engine_in
    return _chain_depth(ei, engine_pack_chunk(wd, design)) if engine_packed(wd, design) else clog2(ei)


def engine_epilogue_depth() -> int:
    """Every epilogue path (GELU, score weighting, plain cast) sits in the one pipeline (the mode is a
    run-time select), so each call pays the deepest plus the select."""
    return max(DEPTH_GELU, DEPTH_MUL + 1, 1) + 1


def engine_depth(design, wd: Widths) -> int:
    """The compute loop's pipeline: weight FIFO / accumulator read, multiply, sum, accumulate, epilogue."""
    return DEPTH_MEM + DEPTH_MUL + engine_sum_depth(wd, design) + 1 + engine_epilogue_depth()


def engine_dsp(wd: Widths, design) -> int:
    """DSP48E2 slices of the engine's multiplier array (one array serves every layer)."""
    ei, eo = design.engine_in, design.engine_out
    return ei * eo // 2 if engine_packed(wd, design) else ei * eo * dsp_per_mult(wd.x, wd.ew)


__all__ = ["Layer", "Widths", "clog2", "dsp_per_mult", "macs_per_dsp_best", "packed_int8", "engine_packed",
           "engine_sum_depth", "engine_depth", "engine_dsp", "engine_epilogue_depth", "engine_pack_chunk",
           "pack2_max_terms", "pack2_dsp_shift"]
