"""The on-chip buffers of the generated kernel: one list that the config header, the top template,
the probe registration and the resource estimate all read.

Lane-word storage: a buffer that units read or write several values of per cycle at run-time
offsets is stored as words of ``lanes`` consecutive values, ``T buf[words][lanes / group][group]``.
Dimension 2 is partitioned completely (its banks), dimension 3 is partitioned completely too in
block RAM (one bank per lane) or reshaped into one wide word in UltraRAM (``group`` lanes per
UltraRAM bank, the smallest number of lanes any unit writes at once, so every write is a whole
UltraRAM word).  Every access names its lane with a compile-time index (an unrolled loop variable),
and every run-time offset is a whole number of words, so the bank of each access is known to Vitis
by construction.  ``lanes`` is a multiple of every access width of the buffer: the units' lanes,
the values of one AXI word where the buffer is loaded from or written to memory, and the debug
taps' 32-bit values per AXI word.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import gcd

from edgemoe.errors import EdgeMoeError
from edgemoe.golden.channel_scales import WSH_TYPE
from edgemoe.design import Design, _lw, row_checks  # noqa: F401  (row_checks re-exported)
from edgemoe.kernel_interface import TAP_BITS, storage_bits  # noqa: F401  (re-exported for the estimate and packing)



# macro prefixes that would collide with other names of the config / layout headers
_MACROS = {"g_pix": "PIXEL", "g_ln": "LNP"}


@dataclass(frozen=True)
class Buffer:
    """One on-chip buffer of the top kernel."""
    name: str            # the C++ variable (g_x, ...)
    unit: str            # the unit whose resources it counts against
    ctype: str           # the element type's name in edgemoe_config.h
    values: int          # elements
    bits: int            # element width
    lanes: int           # values per word (1: a plain array)
    group: int           # lanes per UltraRAM bank (lanes // group banks); block RAM: one bank per lane
    uram_ok: bool        # may be bound to UltraRAM (design.uram_buffers)
    parts: int = 1       # separate memories of values / parts each (g_tmp: one per top-k slot)
    parted: bool = False # declared with a leading [PARTS] dimension (even when parts is 1)

    @property
    def words(self) -> int:
        """Words of one part."""
        return -(-self.values // (self.lanes * self.parts))

    @property
    def macro(self) -> str:
        """Prefix of its size macros in edgemoe_config.h (<P>_WORDS, _LANES, _BANKS, _GROUP, _PARTS)."""
        return _MACROS.get(self.name, self.name[2:].upper())




def _gcd(*counts) -> int:
    g = 0
    for c in counts:
        g = gcd(g, int(c))
    return g


def act_lanes(prec, design: Design) -> int:
    """Values per word of the activation buffers (and of the positions, CLS and patch bias that the
    patch embedding combines with them word by word): every unit's lanes, the values of one AXI word
    of act_t and bias_t, and the taps' values per AXI word."""
    t = prec.types
    axi = design.axi_bits
    return _lw(design.act_partition, axi // storage_bits(t["act"].W), axi // storage_bits(t["bias"].W),
               axi // TAP_BITS)


def kernel_buffers(spec, prec, design: Design) -> list:
    """The top kernel's on-chip buffers for ``spec`` at ``prec`` on ``design``."""
    t = prec.types
    d, T, B = spec.embed, spec.tokens, design.batch
    ei, eo, al, vl = design.engine_in, design.engine_out, design.attn_lanes, design.vec_lanes
    axi = design.axi_bits
    per = lambda role: axi // storage_bits(t[role].W)   # noqa: E731  values of one AXI word
    tap = axi // TAP_BITS
    A = act_lanes(prec, design)
    dense = len(spec.moe_blocks) < spec.depth
    hid = max(spec.mlp_hidden if dense else 0, spec.expert_hidden if spec.moe_blocks else 0)
    slots = spec.top_k if spec.moe_blocks else 1
    gate_rows = -(-spec.num_experts // eo) * eo
    total_b = sum(d + (spec.num_experts * (spec.expert_hidden + d) if spec.is_moe(i) else spec.mlp_hidden + d)
                  for i in range(spec.depth))
    lin = t["ln_out"].W
    for what, value, fname, factor in row_checks(spec, design, t["act"].W, max(t["bias"].W, t["b"].W), t["pixel"].W):
        if value % factor:
            raise EdgeMoeError(f"model {spec.name!r}: {what} = {value} is not a multiple of {fname} "
                               f"({factor} values) of design {design.name!r}")
    bufs = [
        # the residual streams of the batch: written by the patch embedding (engine, CLS row) and the
        # residual adds, read by LayerNorm, the output words and the taps
        Buffer("g_x", "residual", "act_t", B * T * d, t["act"].W, A, _gcd(eo, vl), True),
        Buffer("g_lnb", "layernorm", "lin_in_t", B * T * d, lin, A, vl, True),
        Buffer("g_qkv", "linear", "qkv_t", T * 3 * d, t["qkv"].W, A, eo, True),
        Buffer("g_att", "attention", "lin_in_t", T * d, lin, A, al, True),
        # the MLP output: one part per top-k slot (a token's experts in expert order), so that the
        # experts' scatter only writes; dense blocks use slot 0; the residual add writes slot 0 back
        Buffer("g_tmp", "residual", "act_t", slots * B * T * d, t["act"].W, A, _gcd(eo, vl), True, parts=slots,
               parted=True),
        Buffer("g_hid", "linear", "lin_in_t", T * hid, lin, A, eo, True),
        Buffer("g_pos", "patch_embed", "bias_t", T * d, t["bias"].W, A, per("bias"), True),
        Buffer("g_cls", "patch_embed", "bias_t", d, t["bias"].W, A, per("bias"), False),
        Buffer("g_pe_b", "patch_embed", "bias_t", d, t["bias"].W, A, per("bias"), False),
        Buffer("g_bias", "linear", "b_t", total_b, t["b"].W, _lw(eo, per("b")), per("b"), True),
        Buffer("g_qkv_b", "linear", "qkv_b_t", spec.depth * 3 * d, t["qkv_b"].W, _lw(eo, per("qkv_b")),
               per("qkv_b"), False),
        Buffer("g_pix", "patch_embed", "pixel_t", spec.num_patches * spec.patch_dim, t["pixel"].W,
               _lw(ei, per("pixel")), per("pixel"), False),
        Buffer("g_ln", "layernorm", "ln_param_t", spec.depth * 4 * d, t["ln_param"].W, _lw(vl, per("ln_param")),
               per("ln_param"), False),
    ]
    if "per-channel" in prec.options:
        # the per-channel weight scales, laid out as the biases they sit beside (golden/channel_scales.py)
        sh_per = axi // storage_bits(WSH_TYPE.W)
        bufs += [Buffer("g_wsh", "linear", "wsh_t", total_b, WSH_TYPE.W, _lw(eo, sh_per), sh_per, True),
                 Buffer("g_qkv_wsh", "linear", "wsh_t", spec.depth * 3 * d, WSH_TYPE.W, _lw(eo, sh_per), sh_per, False)]
    # the routing's buffers (declared for every model: the engine's code refers to them)
    tok_bits = max(1, (B * T).bit_length())
    E, K = spec.num_experts, spec.top_k
    bufs += [
        Buffer("g_logits", "moe_route", "gate_logit_t", T * gate_rows, t["gate_logit"].W, _lw(eo, tap), eo, False),
        # the route's outputs as the taps read them (one AXI word of 32-bit values per cycle)
        Buffer("g_lgtap", "moe_route", "gate_logit_t", T * E, t["gate_logit"].W, tap, 1, False),
        Buffer("g_probs", "moe_route", "gate_score_t", T * E, t["gate_score"].W, tap, 1, False),
        Buffer("g_topk_idx", "moe_route", "expert_idx_t", T * K, max(1, (max(E - 1, 1)).bit_length()), tap, 1,
               False),
        Buffer("g_topk_score", "moe_route", "gate_score_t", T * K, t["gate_score"].W, tap, 1, False),
        # the batch's expert queues: token row, top-k slot and score of every entry (one per cycle)
        Buffer("g_qtok", "moe_route", "tok_idx_t", E * B * T, tok_bits, 1, 1, False),
        Buffer("g_qslot", "moe_route", "slot_idx_t", E * B * T, max(1, (max(K - 1, 1)).bit_length()), 1, 1, False),
        Buffer("g_qscore", "moe_route", "gate_score_t", E * B * T, t["gate_score"].W, 1, 1, False),
    ]
    return bufs


def buffer_context(spec, prec, design: Design) -> list:
    """The buffers as the templates use them: as bound on ``design`` (``uram``; ``group``: lanes per
    memory, 1 in block RAM; ``banks``: memories per word)."""
    out = []
    for b in kernel_buffers(spec, prec, design):
        uram = b.name in design.uram_buffers
        group = b.group if uram else 1
        out.append(dict(name=b.name, macro=b.macro, ctype=b.ctype, lanes=b.lanes, group=group, banks=b.lanes // group,
                        words=b.words, parts=b.parts, parted=b.parted, uram=uram))
    return out


def declarations(spec, prec, design: Design) -> list:
    """The C++ declarations of the kernel's buffers (the top and the unit test harness use them)."""
    out = []
    for b in kernel_buffers(spec, prec, design):
        if b.lanes > 1:
            parts = f"[{b.macro}_PARTS]" if b.parted else ""
            out.append(f"static {b.ctype} {b.name}{parts}[{b.macro}_WORDS][{b.macro}_BANKS][{b.macro}_GROUP];")
        else:
            out.append(f"static {b.ctype} {b.name}[{b.macro}_WORDS];")
    out.append("static tok_idx_t g_qlen[NUM_EXPERTS];")
    return out


__all__ = ["Buffer", "kernel_buffers", "buffer_context", "declarations", "act_lanes", "row_checks", "storage_bits", "TAP_BITS"]
