"""``edgemoe_config.h``: every size, type, table and design factor the HLS units are compiled with.

Everything here is computed from the spec (model sizes), the :class:`Precision` (types) and the
:class:`Design` (parallelism); the approximation tables are the golden model's own functions'
output, emitted as raw integers, never retyped.

Per-tensor calibrated types (w8a8) are served by ONE kernel: every calibrated tensor is stored in a
single *nominal* C++ type per role (same width, sign and modes as every calibrated variant) and the
kernel carries, per block, the difference of fraction bits ``D_* = F(actual) - F(nominal)``.  Raw
bits are the same whatever the scale (products and exact accumulators are scale free); only the
casts move, and they go through ``rescale<T>(v, delta)`` (edgemoe_fixed.h), which shifts into a
static wide type and casts with ap_fixed's own rounding/overflow.  ``RESCALE_SPAN`` bounds |delta|
(0 for w16a32, where rescale is a plain cast).

The three tensors that feed the linear engine (``ln_out``, ``attn_out``, ``hidden``) share one
nominal type ``lin_in_t`` so that one engine serves every layer.

Kernel identity: ``EDGEMOE_KERNEL_ID`` (the value of the kernel's read-only ``kernel_id`` register) is
the first 8 hex digits of the *config hash*: sha256 of this header's text without its ID line, then
of ``edgemoe_layout.h`` (:func:`config_hash`).  The two generated headers hold every size, type,
table, scale offset and weight offset the kernel is compiled with; the other kernel sources are the
same for every model of one edgemoe version.  The board, the clock and the weights' values are not
in it (they do not change what the kernel computes on given weights); the project manifest's
``identity`` records them beside the hash.
"""
from __future__ import annotations

import hashlib
import re

from edgemoe.errors import EdgeMoeError
from edgemoe.golden.apfixed import FixedType
from edgemoe.golden.block_types import BLOCK_TABLES, block_types
from edgemoe.golden.channel_scales import CHANNEL_SHIFT_MAX, WSH_TYPE
from edgemoe.golden.precision import (EXP2_SEG_LOG2, GELU_RANGE, GELU_STEPS_LOG2, RSQRT_IDX_BITS,
                                      RSQRT_MANT_F, RSQRT_NEWTON_STEPS, Precision)
from edgemoe.golden.units.gelu import gelu_limit_raw, gelu_table
from edgemoe.golden.units.layernorm import SEED_F, eps_raw, rsqrt_table
from edgemoe.golden.units.softmax import LOG2E_T, check_exp_arg, exp2_table, log2e_raw
from edgemoe.kernel_interface import CONFIG_NAME, KERNEL_ID_MACRO, MAX_IMAGES, kernel_id_of, read_kernel_id
from edgemoe.design import ENGINE_ACC_DISTANCE, MAXI_BURST_BEATS, MAXI_OUTSTANDING, ROUTE_GROUP, Design

from .buffers import act_lanes, buffer_context, storage_bits
from .model_common import Widths, engine_sum_depth
from .render import render_template


# storage-only roles: quantised once in Python, never cast into by the kernel (declared without modes)
PARAM_ROLES = ("pixel", "patch_w", "bias", "ln_param", "w", "qkv_b", "b", "scale", "exp2_tab",
               "gelu_tab", "gate_w")
# roles that feed the linear engine: one nominal C++ type
ENGINE_INPUT_ROLES = ("ln_out", "attn_out", "hidden")
# static roles emitted as typedefs of their own base type
STATIC_ROLES = ("pixel", "patch_w", "bias", "act", "ln_param", "ln_sum", "ln_diff", "ln_sq_acc",
                "ln_rstd", "ln_norm", "w", "qkv_b", "b", "qkv", "qk", "scale", "score",
                "exp_arg", "exp2_tab", "exp", "sm_sum", "recip", "prob", "gelu_in", "gelu_tab", "gate_w",
                "gate_logit", "gate_score")
# per-block scale offsets, in the order of the data flow: (C++ name, role, nominal role, description), of
# golden/block_types.py's tables
DELTA_TABLES = tuple((name, role, nominal, desc) for name, role, nominal, _, desc in BLOCK_TABLES)

# the linear engine's modes (engine_cmd.mode, hls/include/linear.h): what a call adds as bias, its
# epilogue and its destination.  #defines of the config header; the unit test harness
# (codegen/unit_harness.py) calls the engine with these codes.
ENGINE_MODES = (
    ("ENG_QKV", 0, "y = qkv_t(acc) -> g_qkv (bias qkv_b)"),
    ("ENG_ACT", 1, "y = act_t(acc) -> g_tmp slot 0 (proj, dense fc2)"),
    ("ENG_GATE", 2, "y = gate_logit_t(acc) -> g_logits (no bias: the MoE gate)"),
    ("ENG_GELU", 3, "y = gelu(gelu_in_t(acc)) -> g_hid (fc1, expert fc1)"),
    ("ENG_SCATTER", 4, "y = act_t(score * act_t(acc)) -> g_tmp slot of the queue entry"),
    ("ENG_POS", 5, "y = act_t(patch_acc) + pos[t + 1] -> g_x (the patch embedding)"),
)
ENGINE_MODE = {name: code for name, code, _ in ENGINE_MODES}


def _cpp(t: FixedType, modes: bool = True) -> str:
    """The C++ spelling (FixedType.cpp), optionally without the modes (storage-only types)."""
    return t.cpp if modes else FixedType(t.W, t.I, t.signed).cpp


def _exact_acc(prec: Precision, role: str, a: FixedType, b: FixedType) -> FixedType:
    return prec.acc_for(role, a, b)


def _same_format(a: FixedType, b: FixedType) -> bool:
    return (a.W, a.signed, a.Q, a.O) == (b.W, b.signed, b.Q, b.O)


def scale_deltas(spec, prec: Precision) -> dict:
    """``{table name: [F(actual) - F(nominal) per block]}``; raises if a calibrated type differs from
    its nominal type in anything but the position of the binary point."""
    types = block_types(spec, prec)
    for r in ENGINE_INPUT_ROLES[1:]:
        if not _same_format(prec.types[r], prec.types["ln_out"]):
            raise EdgeMoeError(
                f"precision {prec.name!r}: {r} {prec.types[r].cpp} and ln_out {prec.types['ln_out'].cpp} feed the "
                "same linear engine and must have the same width, sign and modes")
    out = {}
    for name, role, nominal_role, _ in DELTA_TABLES:
        nominal = prec.types[nominal_role]
        ds = []
        for i, t in enumerate(types[name]):
            if not _same_format(t, nominal):
                raise EdgeMoeError(
                    f"precision {prec.name!r}: block {i} {role} type {t.cpp} differs from the kernel's "
                    f"{nominal_role} type {nominal.cpp} in more than its integer bits")
            ds.append(t.F - nominal.F)
        out[name] = ds
    return out


def rescale_sites(spec, prec: Precision) -> dict:
    """Every runtime ``rescale`` delta the kernel uses, per site and block."""
    d = scale_deltas(spec, prec)
    sites = {}
    for i in range(spec.depth):
        g = {k: v[i] for k, v in d.items()}
        s = {
            "ln1_out": -g["D_LN1"], "ln2_out": -g["D_LN2"],
            "qkv_bias": -(g["D_LN1"] + g["D_W_QKV"]), "qkv_out": g["D_LN1"] + g["D_W_QKV"] - g["D_QKV"],
            "qk_score": 2 * g["D_QKV"], "prob_out": -g["D_PROB"],
            "av_out": g["D_QKV"] + g["D_PROB"] - g["D_ATTN_OUT"],
            "proj_bias": -(g["D_ATTN_OUT"] + g["D_W_PROJ"]), "proj_out": g["D_ATTN_OUT"] + g["D_W_PROJ"],
            "fc1_bias": -(g["D_LN2"] + g["D_W_FC1"]), "fc1_out": g["D_LN2"] + g["D_W_FC1"],
            "gelu_out": -g["D_HIDDEN"],
            "fc2_bias": -(g["D_HIDDEN"] + g["D_W_FC2"]), "fc2_out": g["D_HIDDEN"] + g["D_W_FC2"],
        }
        if spec.is_moe(i):
            s["gate_out"] = g["D_LN2"] + g["D_GATE_W"]
        if "per-channel" in prec.options:
            # an output lane's weight scale adds 0 .. CHANNEL_SHIFT_MAX fraction bits to its accumulator
            for layer in ("qkv", "proj", "fc1", "fc2"):
                s[layer + "_bias_ch"] = s[layer + "_bias"] - CHANNEL_SHIFT_MAX
                s[layer + "_out_ch"] = s[layer + "_out"] + CHANNEL_SHIFT_MAX
        for k, v in s.items():
            sites.setdefault(k, []).append(v)
    return sites


def rescale_span(spec, prec: Precision) -> int:
    sites = rescale_sites(spec, prec)
    return max((abs(v) for vs in sites.values() for v in vs), default=0)


def _tok_bits(n: int) -> int:
    return max(1, (n).bit_length())


def config_context(spec, prec: Precision, design: Design) -> dict:
    design.validate(spec)
    t = prec.types
    lin_in = t["ln_out"]
    deltas = scale_deltas(spec, prec)
    typedefs = []

    def td(name, ftype, comment="", modes=True):
        typedefs.append((name, _cpp(ftype, modes), comment))

    for role in STATIC_ROLES:
        td(f"{role}_t", t[role], "", modes=role not in PARAM_ROLES)
    td("lin_in_t", lin_in, "linear-engine input: ln_out, attn_out and hidden share it (scales in D_*)")
    acc = _exact_acc(prec, "acc", lin_in, t["w"])
    gate_acc = _exact_acc(prec, "gate_acc", lin_in, t["gate_w"])
    qk_acc = _exact_acc(prec, "qk_acc", t["qkv"], t["qkv"])
    av_acc = _exact_acc(prec, "av_acc", t["prob"], t["qkv"])
    patch_acc = _exact_acc(prec, "patch_acc", t["pixel"], t["patch_w"])
    accs = [("acc_t", acc, "lin_in x w, exact"), ("gate_acc_t", gate_acc, "lin_in x gate_w, exact"),
            ("qk_acc_t", qk_acc, "qkv x qkv, exact"), ("av_acc_t", av_acc, "prob x qkv, exact"),
            ("patch_acc_t", patch_acc, "pixel x patch_w, exact")]
    for name, ft, c in accs:
        td(name, ft, c)
    per_channel = "per-channel" in prec.options
    if per_channel:
        td("wsh_t", WSH_TYPE, "per-channel weight scale of an output lane (fraction bits added to its accumulator)",
           modes=False)

    gelu_limit = gelu_limit_raw(t["gelu_in"].F)
    check_exp_arg(t["exp_arg"], f"precision {prec.name!r}: ")
    scale_raw = int(t["scale"].quantize(spec.scale))
    tables = {
        "GELU_TABLE": [int(v) for v in gelu_table(prec)],
        "EXP2_TABLE": [int(v) for v in exp2_table(prec)],
        "RSQRT_TABLE": [int(v) for v in rsqrt_table()],
    }
    # one 2^f ROM copy per exp unit of the attention softmax step (attention.h)
    exp2_attn_copies = spec.heads * design.attn_rows
    sizes = [
        ("IN_CHANS", spec.in_chans, "image channels"),
        ("IMG_H", spec.img_h, ""), ("IMG_W", spec.img_w, ""),
        ("PATCH", spec.patch, "patch size"),
        ("PATCH_DIM", spec.patch_dim, "in_chans * patch * patch"),
        ("NUM_PATCHES", spec.num_patches, ""),
        ("TOKENS", spec.tokens, "patches + CLS"),
        ("EMBED", spec.embed, ""),
        ("HEADS", spec.heads, ""),
        ("HEAD_DIM", spec.head_dim, ""),
        ("QKV_DIM", 3 * spec.embed, "Q, K, V rows stacked"),
        ("MLP_HIDDEN", spec.mlp_hidden, "dense MLP hidden"),
        ("NUM_EXPERTS", spec.num_experts, ""),
        ("EXPERT_HIDDEN", spec.expert_hidden, ""),
        ("TOP_K", spec.top_k, ""),
        ("DEPTH", spec.depth, "encoder blocks"),
        ("NUM_MOE_BLOCKS", len(spec.moe_blocks), ""),
        ("NUM_TASKS", spec.num_tasks, ""),
    ]
    hidden_dims = [spec.embed] + ([spec.mlp_hidden] if len(spec.moe_blocks) < spec.depth else []) + \
        ([spec.expert_hidden] if spec.moe_blocks else [])
    # the engine's weight tiles: AXI words per tile, load steps over the weight ports
    w_per = design.axi_bits // storage_bits(t["w"].W)
    tile_words = -(-design.engine_in * design.engine_out // w_per)
    load_steps = -(-tile_words // design.weight_ports)
    max_tiles = (max(hidden_dims + [3 * spec.embed]) // design.engine_out) * \
        (max(hidden_dims + [spec.patch_dim]) // design.engine_in)
    derived = [
        ("ENGINE_IN", design.engine_in, "linear engine inputs per cycle"),
        ("ENGINE_OUT", design.engine_out, "linear engine outputs per cycle (weight tile rows)"),
        ("ATTN_ROWS", design.attn_rows, "query rows of the attention unit on chip"),
        ("ATTN_LANES", design.attn_lanes, "K / V values the attention unit takes per cycle"),
        ("VEC_LANES", design.vec_lanes, "values per cycle of LayerNorm and the residual adds"),
        ("ACT_PARTITION", design.act_partition, "cyclic partition of the activation buffers (lcm of the lanes)"),
        ("AXI_BITS", design.axi_bits, "m_axi data width"),
        ("WEIGHT_PORTS", design.weight_ports, "m_axi ports that read the streamed weights side by side"),
        ("AXI_ACT_PER_BEAT", max(design.axi_bits // t["act"].W, 1), "act_t values per AXI beat"),
        ("AXI_LIN_PER_BEAT", max(design.axi_bits // lin_in.W, 1), "lin_in_t values per AXI beat"),
        ("AXI_W_PER_BEAT", max(design.axi_bits // t["w"].W, 1), "w_t values per AXI beat"),
        ("MAX_IN_DIM", max(hidden_dims), "widest linear-engine input"),
        ("MAX_OUT_DIM", max(hidden_dims + [3 * spec.embed]), "widest linear-engine output"),
        ("MAX_IN_TILES", max(hidden_dims + [spec.patch_dim]) // design.engine_in,
         "input tiles of a linear-engine call (patch embedding included)"),
        ("MAX_OUT_TILES", max(hidden_dims + [3 * spec.embed]) // design.engine_out, "output tiles"),
        ("MAX_ROWS", spec.tokens, "rows a linear-engine call processes at most"),
        ("ACT_ELEMS", spec.tokens * spec.embed, "values of the residual stream"),
        ("ATTN_GROUPS", -(-spec.tokens // design.attn_rows), "query row groups of the attention unit"),
        ("SM_MAX_LEN", max(spec.tokens, spec.num_experts), "longest softmax row"),
        ("MAX_IMAGES", MAX_IMAGES, "images per kernel call at most (the host runtime's limit)"),
        ("BATCH", design.batch, "frames run together: every expert's weights are read once for all of them"),
        ("BATCH_ROWS", design.batch * spec.tokens, "token rows of a batch (an expert's merged queue at most)"),
        ("TOK_IDX_BITS", _tok_bits(design.batch * spec.tokens), "bits of a token row index within a batch"),
        ("EXPERT_IDX_BITS", _tok_bits(max(spec.num_experts - 1, 1)), "bits of an expert index"),
        ("RESCALE_SPAN", rescale_span(spec, prec), "max |fraction-bit offset| of a runtime rescale"),
        ("ENGINE_ACC_DISTANCE", ENGINE_ACC_DISTANCE, "iterations from an accumulator's read to its next read, at least"),
        ("ENG_SUM_DEPTH", engine_sum_depth(Widths.of(prec), design),
         "the engine's summing stage: adder tree or packed chains (linear.h checks it against pack2.h)"),
        ("ROUTE_GROUP", ROUTE_GROUP, "tokens whose route softmax runs interleaved (the carried S update's latency)"),
        ("ENG_FIFO_DEPTH", max(2, 2 * load_steps), "weight FIFO between the engine's fetch and compute: two tiles"),
        ("ENG_MAX_STEPS", max_tiles * load_steps, "weight load steps of the largest engine call"),
        ("MAXI_BURST_BEATS", MAXI_BURST_BEATS, "m_axi burst length (words)"),
        ("MAXI_OUTSTANDING", MAXI_OUTSTANDING, "m_axi bursts in flight per channel"),
        ("ACT_LANES", act_lanes(prec, design), "values per word of the activation buffers"),
        ("TAP_LANES", design.axi_bits // 32, "32-bit tap values per AXI word"),
        ("NUM_SLOTS", spec.top_k if spec.moe_blocks else 1, "MLP output slots (top-k choices of a token)"),
        ("SLOT_BITS", max(1, (max(spec.top_k - 1, 1)).bit_length()), "bits of a slot index"),
        ("ENG_PER_CHANNEL", int(per_channel), "per-channel weight scales (g_wsh, g_qkv_wsh beside the biases)"),
    ] + list(ENGINE_MODES)
    consts = [
        ("GELU_STEPS_LOG2", GELU_STEPS_LOG2, "GELU table step 2^-5"),
        ("GELU_TABLE_SIZE", len(tables["GELU_TABLE"]), f"[0, {GELU_RANGE}]"),
        ("GELU_LIMIT_RAW", gelu_limit, f"|x| >= {GELU_RANGE} at gelu_in's scale: GELU = ReLU"),
        ("EXP2_SEG_LOG2", EXP2_SEG_LOG2, "2^f table segments (log2)"),
        ("EXP2_TABLE_SIZE", len(tables["EXP2_TABLE"]), ""),
        ("RSQRT_IDX_BITS", RSQRT_IDX_BITS, "rsqrt seed index bits"),
        ("RSQRT_MANT_F", RSQRT_MANT_F, "fraction bits of the rsqrt mantissa and Newton steps"),
        ("RSQRT_NEWTON_STEPS", RSQRT_NEWTON_STEPS, ""),
        ("RSQRT_SEED_F", SEED_F, "fraction bits of the seed table"),
        ("RSQRT_TABLE_SIZE", len(tables["RSQRT_TABLE"]), "mantissa in [1, 4)"),
        ("LOG2E_RAW", log2e_raw(), f"log2(e) in {LOG2E_T.cpp}"),
        ("SCALE_RAW", scale_raw, f"attention scale {spec.scale:.8g} in scale_t"),
        ("LN_EPS_RAW", eps_raw(t["ln_sq_acc"], spec.ln_eps), f"LayerNorm eps {spec.ln_eps:g} at ln_sq_acc's scale"),
    ]
    return dict(
        spec=spec, prec=prec, design=design, sizes=sizes, derived=derived, consts=consts,
        typedefs=typedefs, log2e_type=_cpp(LOG2E_T, modes=False), tables=tables,
        exp2_attn_copies=exp2_attn_copies, buffers=buffer_context(spec, prec, design),
        is_moe=[1 if spec.is_moe(i) else 0 for i in range(spec.depth)],
        deltas=[(name, deltas[name], desc) for name, _, _, desc in DELTA_TABLES],
        base_types={r: t[r].cpp for r in ENGINE_INPUT_ROLES},
        rescale_sites=rescale_sites(spec, prec))


_ID_LINE = re.compile(r"^#define " + KERNEL_ID_MACRO + r"\b.*\n", re.M)
_ID_PLACEHOLDER = "@EDGEMOE_KERNEL_ID@"


def layout_header(spec, prec: Precision, design: Design, layout=None) -> str:
    """Text of ``edgemoe_layout.h`` (weight, pixel, output and tap offsets of :class:`~.pack.Layout`)."""
    from .pack import Layout
    layout = layout or Layout(spec, prec, design)
    return render_template("edgemoe_layout.h.j2", spec=spec, prec=prec, **layout.layout_context())


def config_hash(config_text: str, layout_text: str) -> str:
    """16 hex digits: sha256 of ``edgemoe_config.h`` without its EDGEMOE_KERNEL_ID line, then of
    ``edgemoe_layout.h``. Its first 8 digits are the kernel ID (:func:`kernel_id_of`)."""
    h = hashlib.sha256(_ID_LINE.sub("", config_text).encode())
    h.update(b"\0" + layout_text.encode())
    return h.hexdigest()[:16]


def render_config(spec, prec: Precision, design: Design | None = None, layout=None) -> str:
    """Text of ``edgemoe_config.h`` for ``spec`` / ``prec`` / ``design`` (default: Edge-MoE point),
    with its EDGEMOE_KERNEL_ID (see the module docstring)."""
    if design is None:
        from edgemoe.design import get_design, DEFAULT_DESIGN
        design = get_design(DEFAULT_DESIGN)
    text = render_template("edgemoe_config.h.j2", kernel_id=_ID_PLACEHOLDER,
                           **config_context(spec, prec, design))
    h = config_hash(text, layout_header(spec, prec, design, layout))
    return text.replace(_ID_PLACEHOLDER, f"0x{kernel_id_of(h):08X}u").replace("@CONFIG_HASH@", h)


__all__ = ["CONFIG_NAME", "render_config", "config_context", "block_types", "scale_deltas",
           "rescale_sites", "rescale_span", "DELTA_TABLES", "layout_header", "config_hash", "kernel_id_of",
           "read_kernel_id", "KERNEL_ID_MACRO", "ENGINE_MODES", "ENGINE_MODE"]
