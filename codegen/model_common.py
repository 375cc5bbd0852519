"""What the cycle model (estimate.py) and the resource model (estimate_resources.py) share: the bit
widths of the spec, pipeline depths, the DSP arithmetic and the linear engine's shape."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .design import ROUTE_GROUP  # noqa: F401  (re-exported; one source, generated into the config header)

# Pipeline depths (cycles from the first read to the last write of one pipelined loop), paid each
# time the loop starts. They follow the operator chains of the C++: AXI / BRAM read 2, a DSP
# multiply 3-4 (a 32x32 product 6), an adder tree log2(n), the casts 1.
DEPTH_MEM = 2
DEPTH_MUL = 4
DEPTH_EXP = 10             # sm_exp_neg: d * log2(e), table read, interpolation multiply, shift
DEPTH_GELU = 8             # table read, interpolation multiply, ReLU minus d(a)
DEPTH_RECIP = 40           # one integer division per softmax row (a pipelined divider's latency)
DEPTH_RSQRT = 60           # LayerNorm row: two divisions by EMBED, bit length, seed table, 2 Newton steps
                           # of 3 dependent 64-bit products
DEPTH_AXI_READ = 20        # first beat of a burst read after its address (the published schedule's figure)
MAXI_READ_LATENCY = 64     # Vitis's default m_axi read latency assumption (UG1399): the first word of a burst
II_SOFTMAX = 4             # the running sum S = floor(S * e) + 1 is carried from key to key through a
                           # multiply and an add, so the single-pass softmax loops cannot reach II=1
PACKED_CHUNK = 4           # terms per packed int8 chain of the engine (u8 pixels and s8 codes alike)
GELU_TABLE_SIZE = 177      # GELU d(a) entries over [0, 5.5], step 1/32 (golden/precision.py)
EXP2_TABLE_SIZE = 257      # 2^f entries on [0, 1]
RSQRT_SEED_SIZE = 96       # LayerNorm's 1/sqrt seed table


def clog2(n: int) -> int:
    return max(int(n - 1).bit_length(), 0)


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
    bias: int
    gelu_tab: int
    exp2_tab: int
    ln_sq: int
    av_acc: int
    x: int                    # the engine's x operand: the raw code of its widest input
    ew: int                   # the engine's weight operand (linear, gate and patch weights)

    @classmethod
    def of(cls, prec) -> "Widths":
        t = prec.types
        # the engine takes LayerNorm / attention / GELU outputs and the pixels as raw codes: an unsigned
        # pixel needs a sign bit more (u8 -> 9 bits)
        lin_in = max(t[r].W for r in ("ln_out", "attn_out", "hidden"))
        pix = t["pixel"].W + (0 if t["pixel"].signed else 1)
        return cls(lin_in=t["ln_out"].W, w=t["w"].W, act=t["act"].W, qkv=t["qkv"].W, prob=t["prob"].W,
                   score=t["score"].W, hidden=t["hidden"].W, gelu_in=t["gelu_in"].W, ln_diff=t["ln_diff"].W,
                   ln_param=t["ln_param"].W, gate_w=t["gate_w"].W, gate_score=t["gate_score"].W,
                   gate_logit=t["gate_logit"].W, pixel=t["pixel"].W, patch_w=t["patch_w"].W, acc=t["acc"].W,
                   eacc=max(t["acc"].W, t["patch_acc"].W),
                   sm_sum=t["sm_sum"].W, exp=t["exp"].W, bias=t["b"].W, gelu_tab=t["gelu_tab"].W,
                   exp2_tab=t["exp2_tab"].W, ln_sq=t["ln_sq_acc"].W, av_acc=t["av_acc"].W,
                   x=max(lin_in, pix), ew=max(t["w"].W, t["gate_w"].W, t["patch_w"].W))


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


def _chain_depth(n: int, chunk: int) -> int:
    c = min(chunk, n)
    return c + 1 + clog2(math.ceil(n / c))


def engine_sum_depth(wd: Widths, design) -> int:
    """Cycles of the engine's summing stage: an adder tree, or with int8 packing chains of
    ``PACKED_CHUNK`` packed products (one DSP stage per term), a split and a tree over the chains."""
    ei = design.engine_in
    return _chain_depth(ei, PACKED_CHUNK) if engine_packed(wd, design) else clog2(ei)


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
           "engine_sum_depth", "engine_depth", "engine_dsp", "engine_epilogue_depth"]
