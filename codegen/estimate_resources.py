"""Resources of the kernel that ``edgemoe generate`` writes: DSP48E2, BRAM36, URAM, LUT and FF per unit.

* DSP: every multiplier array that exists: the one linear engine (every linear layer, the gate logits
  and the patch embedding), its epilogue lanes, the attention rows, LayerNorm's lanes and rsqrt, the
  route's softmax.
* Memories: the top's buffers (codegen/buffers.py: block RAM, one bank per lane, or UltraRAM words of
  ``group`` lanes), the units' own arrays, the ROM copies (GELU per engine output lane, exp per
  attention (head, row), the route's exp, LayerNorm's rsqrt seed), the engine's weight FIFO and the
  m_axi adapters' FIFOs (outstanding x burst beats x AXI word per channel).
* FF: a coarse count of what the C++ holds in registers (see ``_ff``); LUT: likewise coarse (adder
  trees, accumulators, multiplexers, control). Both are for ranking design points and for the caps,
  not a substitute for a Vitis report.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from edgemoe import design as _design
from .buffers import kernel_buffers, storage_bits
from .model_common import (DEPTH_EXP, DEPTH_GELU, DEPTH_MEM, DEPTH_MUL, DEPTH_RECIP, DEPTH_RSQRT, EXP2_TABLE_SIZE,
                           GELU_TABLE_SIZE, ROUTE_GROUP, RSQRT_SEED_SIZE, Widths, clog2, dsp_per_mult, engine_dsp,
                           engine_pack_chunk, engine_packed, packed_int8)
from .word_packing import tile_words

URAM_DEPTH, URAM_WIDTH = 4096, 72
LUTRAM_BITS = 2048         # banks at most this big live in LUTRAM / registers, not block RAM
ROM_LUT_BITS = 4096        # ROMs at most this big are LUT ROMs (a LUT6 is a 64 x 1 ROM)
SHALLOW_FIFO = 64          # FIFOs at most this deep are LUTRAM (RAM32M16 / RAM64M8), not block RAM
# one m_axi adapter (Vitis's bundle logic: address generation, burst split, AXI handshakes and register
# slices): an ASSUMPTION of about 1.5k FF and 2k LUT per bundle, plus a register per channel of the
# word's width each way; replace with a csynth report's figure when one exists
MAXI_BUNDLE_FF, MAXI_BUNDLE_LUT = 1500, 2000
TOP_CONTROL_FF, TOP_CONTROL_LUT = 2000, 1500
RESOURCE_KEYS = ("dsp", "bram36", "uram", "lut", "ff")


class Memory(NamedTuple):
    """One on-chip memory: ``banks`` banks of ``depth`` x ``width`` bits each."""
    unit: str
    name: str
    values: int               # elements it holds (ROM copies: entries of every copy)
    bits: int                 # element width
    banks: int
    depth: int
    width: int
    kind: str                 # bram | uram | rom | fifo | reg


# ---- memory costs -----------------------------------------------------------------------------
def _bram_halves(depth: int, width: int) -> int:
    """RAMB18 halves of one depth x width bank: the cheapest of the RAMB36 and RAMB18 aspect ratios."""
    b36 = min(math.ceil(width / w) * math.ceil(depth / dd) for dd, w in
              ((512, 72), (1024, 36), (2048, 18), (4096, 9), (8192, 4), (16384, 2), (32768, 1)))
    b18 = min(math.ceil(width / w) * math.ceil(depth / dd) for dd, w in
              ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)))
    return min(2 * b36, b18)


def _bank_cost(depth: int, width: int, uram: bool) -> tuple:
    """(bram36, uram, lut) of one memory bank of ``depth`` x ``width`` bits (bram36 in halves: RAMB18)."""
    if depth * width <= LUTRAM_BITS:
        return 0, 0, math.ceil(depth * width / 64)          # LUTRAM: 64 bits per LUT
    if uram:
        return 0, math.ceil(width / URAM_WIDTH) * math.ceil(depth / URAM_DEPTH), 0
    return _bram_halves(depth, width) / 2, 0, 0


def _rom_cost(depth: int, width: int) -> tuple:
    """A dual-port ROM copy: LUT ROM when small (two read ports: two LUT trees), else block RAM."""
    if depth * width <= ROM_LUT_BITS:
        return 0, 0, 2 * width * math.ceil(depth / 64) * 5 // 4       # + the 64:1 muxes
    return _bram_halves(depth, width) / 2, 0, 0


def _fifo_cost(depth: int, width: int) -> tuple:
    """A FIFO: LUTRAM when shallow (RAM32M16: 32 x 14 bits per 8 LUTs; RAM64M8: 64 x 7), else block RAM."""
    if depth <= 32:
        return 0, 0, math.ceil(width / 14) * 8
    if depth <= SHALLOW_FIFO:
        return 0, 0, math.ceil(width / 7) * 8
    return _bank_cost(depth, width, False)


def memory_cost(m: Memory) -> tuple:
    """(bram36, uram, lut, ff) of every bank of ``m`` together."""
    if m.kind == "reg":
        return 0, 0, 0, m.values * m.bits
    if m.kind == "rom":
        b, u, lut = _rom_cost(m.depth, m.width)
    elif m.kind == "fifo":
        b, u, lut = _fifo_cost(m.depth, m.width)
    else:
        b, u, lut = _bank_cost(m.depth, m.width, m.kind == "uram")
    return b * m.banks, u * m.banks, lut * m.banks, 0


# ---- the m_axi adapters -----------------------------------------------------------------------
def maxi_channels(design) -> list:
    """(bundle, direction) of every m_axi channel: gmem_act reads pixels and writes outputs, gmem_scratch
    writes the debug taps, gmem_w (and gmem_w1..3) read weights."""
    ch = [("gmem_act", "read"), ("gmem_act", "write"), ("gmem_scratch", "write")]
    return ch + [(b, "read") for b in ("gmem_w", "gmem_w1", "gmem_w2", "gmem_w3")[:design.weight_ports]]


def maxi_fifo(design) -> tuple:
    """(depth, width) of one channel's FIFO: MAXI_OUTSTANDING bursts of MAXI_BURST_BEATS AXI words."""
    return _design.MAXI_OUTSTANDING * _design.MAXI_BURST_BEATS, design.axi_bits


def weight_fifo(design, wd: Widths) -> tuple:
    """(depth, width) of the engine's weight FIFO: 2 x LW words of weight_ports AXI words."""
    tw = tile_words(design.engine_out, design.engine_in, storage_bits(wd.ew), design.axi_bits)
    lw = math.ceil(tw / design.weight_ports)
    return max(2, 2 * lw), design.weight_ports * design.axi_bits


# ---- the memories -----------------------------------------------------------------------------
def memories(spec, prec, design) -> list:
    """Every on-chip memory of the generated kernel (:class:`Memory`)."""
    wd = Widths.of(prec)
    d, T, H = spec.embed, spec.tokens, spec.heads
    ei, eo, r, al, vl = design.engine_in, design.engine_out, design.attn_rows, design.attn_lanes, design.vec_lanes
    out = []
    for b in kernel_buffers(spec, prec, design):
        if b.name in design.uram_buffers:
            # reshaped, not partitioned: lanes / group banks, each word a group of lanes
            out.append(Memory(b.unit, b.name, b.values, b.bits, b.lanes // b.group, b.words, b.group * b.bits, "uram"))
        else:
            out.append(Memory(b.unit, b.name, b.values, b.bits, b.lanes, b.words, b.bits, "bram"))

    def mem(unit, name, banks, depth, bits, kind="bram"):
        out.append(Memory(unit, name, banks * depth, bits, banks, depth, bits, kind))
    # the engine: acc[TOKENS][ENGINE_OUT] (a call runs at most TOKENS rows), two tiles of raw weights
    # in registers, the fetch loop's FIFO, one GELU table per output lane (both ports: one GELU
    # interpolates between two entries)
    mem("linear", "acc", eo, T, wd.eacc)
    mem("linear", "wregs", 1, 2 * ei * eo, storage_bits(wd.ew), "reg")
    fd, fw = weight_fifo(design, wd)
    out.append(Memory("linear", "wfifo", fd * fw, 1, 1, fd, fw, "fifo"))
    mem("linear", "gelu_roms", eo, GELU_TABLE_SIZE, wd.gelu_tab, "rom")
    # attention: the group's scores, Q rows and A.V accumulators; one 2^f table per (head, row)
    mem("attention", "sbuf", H * r, T, wd.score)
    mem("attention", "qbuf", r * al, math.ceil(d / al), wd.qkv)
    mem("attention", "oacc", r * al, math.ceil(d / al), wd.av_acc)
    mem("attention", "exp_roms", H * r, EXP2_TABLE_SIZE, wd.exp2_tab, "rom")
    # LayerNorm's row and its differences (VEC_LANES banks each; gamma and beta are read from g_ln); the
    # rsqrt seed
    for name, bits in (("ln_row", wd.act), ("ln_diff", wd.ln_diff)):
        mem("layernorm", name, vl, math.ceil(d / vl), bits)
    mem("layernorm", "rsqrt_seed", 1, RSQRT_SEED_SIZE, 16, "rom")
    if spec.moe_blocks:
        # a group's logits and probabilities in registers; one exp table
        E = spec.num_experts
        mem("moe_route", "route_regs", 1, ROUTE_GROUP * E, wd.gate_logit + wd.gate_score, "reg")
        mem("moe_route", "route_exp_rom", 1, EXP2_TABLE_SIZE, wd.exp2_tab, "rom")
    depth, width = maxi_fifo(design)
    for bundle, direction in maxi_channels(design):
        out.append(Memory("interfaces", f"{bundle}.{direction}_fifo", depth * width, 1, 1, depth, width, "fifo"))
    return out


# ---- DSP, LUT, FF of the logic ----------------------------------------------------------------
def _dsp(spec, wd, design) -> dict:
    r, lanes, H = design.attn_rows, design.attn_lanes, spec.heads
    eo, vec = design.engine_out, design.vec_lanes
    rows2 = r % 2 == 0
    qk = r * lanes // 2 if rows2 and packed_int8(wd.qkv, wd.qkv) else r * lanes * dsp_per_mult(wd.qkv, wd.qkv)
    av = r * lanes // 2 if rows2 and packed_int8(wd.prob, wd.qkv) else r * lanes * dsp_per_mult(wd.prob, wd.qkv)
    return {
        # the MAC array, plus per output lane: the GELU interpolation and the score weighting
        "linear": engine_dsp(wd, design) + eo * (1 + dsp_per_mult(wd.gate_score, wd.act)),
        "attention": qk + av
        + r * dsp_per_mult(wd.qk, 16)                                       # the scale (qk x scale)
        + H * r * (dsp_per_mult(wd.score + 1, 18) + 1 + dsp_per_mult(wd.sm_sum, wd.exp))   # softmax updates
        + r * (dsp_per_mult(wd.score + 1, 18) + 1 + dsp_per_mult(wd.exp, 18)),          # p on the fly
        # per lane: the square, diff x rsqrt mantissa (32 bits), norm x gamma; once: the rsqrt's Newton
        # steps (2 x 3 products of 34 bits); one instance serves every LayerNorm
        "layernorm": vec * (dsp_per_mult(wd.ln_diff, wd.ln_diff) + dsp_per_mult(wd.ln_diff, 32)
                            + dsp_per_mult(32, wd.ln_param)) + 6 * dsp_per_mult(34, 34),
        # the gate's dot products run on the engine; per token: the softmax update and the probability
        "moe_route": 2 * dsp_per_mult(wd.score + 1, 18) + dsp_per_mult(wd.sm_sum, wd.exp) + 1
        if spec.moe_blocks else 0,
        "patch_embed": 0,            # the engine's
        "residual": 0,
        "interfaces": 0,
    }


def dsp_count(spec, wd, design) -> int:
    """The design's DSP48E2 total (explore checks it before counting the memories)."""
    return sum(_dsp(spec, wd, design).values())


def _lut(spec, wd, design) -> dict:
    """Adder trees and accumulators of the MACs, partition multiplexers, control (coarse)."""
    ei, eo, r, lanes, H, vec = (design.engine_in, design.engine_out, design.attn_rows, design.attn_lanes,
                                spec.heads, design.vec_lanes)
    psum = wd.x + wd.ew + clog2(ei)
    n_bundles = 2 + design.weight_ports
    return {
        # the adder trees (packed: the chains add in the DSP cascade; the split and the chain sums in fabric);
        # per output lane the accumulator add, GELU, casts and the mode select
        "linear": (ei * eo * (psum // 2) if not engine_packed(wd, design) else eo * (ei // 2) * psum)
        + eo * (wd.eacc + 200) + 3000,
        "attention": r * lanes * 2 * 40 + H * r * 350 + 4000,
        "layernorm": vec * 250 + 3000,
        "moe_route": spec.num_experts * 120 + 2500 if spec.moe_blocks else 0,
        "patch_embed": 800,
        "residual": vec * (wd.act + 8) + 500,
        "interfaces": MAXI_BUNDLE_LUT * n_bundles + TOP_CONTROL_LUT,
    }


# precisions whose per-block types (D_* tables) are not known without a model (a named w8a8 / w16a32-fit):
# the runtime rescale span assumed for them (measured: 5-8 on the presets' random and outlier models)
ASSUMED_RESCALE_SPAN = 6


def rescale_span_of(spec, prec) -> int:
    """RESCALE_SPAN of the kernel (edgemoe_config.h): from the per-block types when ``prec`` has them,
    :data:`ASSUMED_RESCALE_SPAN` for a model-derived precision named without a model, 0 otherwise."""
    if prec.overrides:
        from .config_header import rescale_span
        return rescale_span(spec, prec)
    from edgemoe.spec import DERIVED_PRECISIONS
    if prec.base not in DERIVED_PRECISIONS:
        return 0
    # per-channel weight scales widen the engine's rescales by the largest channel shift
    from edgemoe.golden.channel_scales import CHANNEL_SHIFT_MAX
    return ASSUMED_RESCALE_SPAN + (CHANNEL_SHIFT_MAX if "per-channel" in prec.options else 0)


def rescale_lut(spec, wd, design, span: int) -> dict:
    """LUTs of the runtime rescales (edgemoe_fixed.h ``rescale<T>(v, delta)``): with RESCALE_SPAN > 0
    every rescale site is a barrel shifter of W(v) + 2 * span bits over 2 * span + 1 positions (a LUT6
    is a 4:1 mux: one LUT per bit per two levels); with span 0 they are plain casts (no LUT here).
    Sites: the engine's bias, output and GELU-output rescales per output lane, the attention's score and
    probability per row and its output per lane, LayerNorm's output per vector lane."""
    if span <= 0:
        return {}
    per_bit = math.ceil(clog2(2 * span + 1) / 2)

    def sh(bits: int) -> int:
        return (bits + 2 * span) * per_bit
    return {
        "linear": design.engine_out * (sh(wd.bias) + sh(wd.acc) + sh(wd.gelu_in)),
        "attention": design.attn_rows * (sh(wd.av_acc) + sh(wd.exp + wd.recip)) + design.attn_lanes * sh(wd.av_acc),
        "layernorm": design.vec_lanes * sh(wd.act + wd.ln_param),
    }


def _ff(spec, wd, design) -> dict:
    """Registers the C++ holds or its pipelines need, coarsely: operand and partial-sum registers of
    each pipeline stage (bits x lanes x stages); a DSP48E2's own A/B/M/P registers are not fabric FF."""
    ei, eo, r, lanes, H, vec = (design.engine_in, design.engine_out, design.attn_rows, design.attn_lanes,
                                spec.heads, design.vec_lanes)
    psum = wd.x + wd.ew + clog2(ei)
    # the engine's summing stage: every level of an adder tree is registered (about ei partial sums per
    # output); packed chains add inside the DSPs, so only the chain sums' split and tree are fabric
    tree = eo * ei * psum if not engine_packed(wd, design) else eo * math.ceil(ei / engine_pack_chunk(wd, design)) * 2 * psum
    engine = (ei * wd.x * DEPTH_MUL                                # x broadcast to the multipliers
              + tree
              + eo * wd.eacc * 2 * DEPTH_MEM                       # accumulator read and write registers
              + eo * wd.act * (DEPTH_GELU + DEPTH_MUL + 1)         # epilogue lanes: GELU, score, casts
              + design.weight_ports * design.axi_bits              # the FIFO's output word
              + 2000)                                              # call control, tile counters
    sm = wd.score + wd.sm_sum + wd.exp
    attention = (r * lanes * 2 * wd.qkv                            # Q operands and K / V lanes
                 + r * lanes * 2 * wd.av_acc                       # Q.K^T partial sums, A.V accumulator lanes
                 + H * r * sm * (DEPTH_EXP + DEPTH_MUL)            # the softmax updates of every (head, row)
                 + r * 2 * wd.sm_sum * DEPTH_RECIP // 4            # the dividers (1/S)
                 + 3000)
    layernorm = vec * (wd.act + 2 * wd.ln_diff + wd.ln_sq) * 4 + 64 * DEPTH_RSQRT + 1500
    route = (2 * 64 * (DEPTH_EXP + DEPTH_MUL) + 64 * DEPTH_RECIP // 4 + spec.num_experts * 2 * 16 + 1500
             if spec.moe_blocks else 0)
    channels = len(maxi_channels(design))
    return {
        "linear": engine,
        "attention": attention,
        "layernorm": layernorm,
        "moe_route": route,
        "patch_embed": ei * wd.pixel * 2 + 500,
        "residual": vec * wd.act * 3 * DEPTH_MEM + 500,
        "interfaces": MAXI_BUNDLE_FF * (2 + design.weight_ports) + 2 * design.axi_bits * channels + TOP_CONTROL_FF,
    }


def resources(spec, prec, design) -> dict:
    """unit -> {dsp, bram36, uram, lut, ff}; the buffers in ``design.uram_buffers`` are bound to UltraRAM."""
    wd = Widths.of(prec)
    dsp, lut, ff = _dsp(spec, wd, design), _lut(spec, wd, design), _ff(spec, wd, design)
    for u, n in rescale_lut(spec, wd, design, rescale_span_of(spec, prec)).items():
        lut[u] += n
    out = {u: dict(dsp=dsp[u], bram36=0.0, uram=0, lut=lut[u], ff=ff[u]) for u in dsp}
    for m in memories(spec, prec, design):
        b, u, l, f = memory_cost(m)
        r = out[m.unit]
        r["bram36"] += b
        r["uram"] += u
        r["lut"] += l
        r["ff"] += f
    for r in out.values():
        r["bram36"] = math.ceil(r["bram36"])      # RAMB18 halves: a unit's odd half takes a whole BRAM36
    return out


def totals(by_unit: dict) -> dict:
    return {k: sum(u[k] for u in by_unit.values()) for k in RESOURCE_KEYS}


__all__ = ["Memory", "dsp_count", "memories", "memory_cost", "resources", "totals", "maxi_channels", "maxi_fifo",
           "weight_fifo", "RESOURCE_KEYS", "rescale_lut", "rescale_span_of", "ASSUMED_RESCALE_SPAN", "URAM_DEPTH",
           "URAM_WIDTH", "LUTRAM_BITS"]
