"""Render the synthesizable Verilog of the Edge-MoE units from the spec.

Each unit is a jinja2 template under ``edgemoe/hls/rtl`` (``<unit>.v.j2``); every width, size and
table is computed here from the model spec, the :class:`Precision` base types and the
:class:`Design`, with the golden model's own functions (``gelu_table``, ``exp2_table``,
``rsqrt_table``, ``log2e_raw``, ``eps_raw``), never retyped.  The RTL is bit-exact with the golden
units called with the precision's types, which must have no per-tensor overrides: w16a32 has none;
for w8a8 :func:`block_precision` folds one block's calibrated types into the types (see
:data:`LIMITATIONS`).

``render_unit(name, spec, prec, design, out_dir) -> [Path]`` writes ``<top>.v`` (one file per unit:
the top and its helper modules, prefixed by the top name so that units can be compiled together).
"""
from __future__ import annotations

import math
from pathlib import Path

from edgemoe.errors import EdgeMoeError
from edgemoe.kernel_interface import storage_bits
from edgemoe.golden.apfixed import FixedType, add_type, mul_type
from edgemoe.golden.precision import (EXP2_SEG_LOG2, GELU_RANGE, GELU_STEPS_LOG2, Precision)
from edgemoe.golden.units.gelu import gelu_limit_raw, gelu_table
from edgemoe.golden.units.softmax import LOG2E_T, check_exp_arg, exp2_table, log2e_raw

RTL_DIR = Path(__file__).resolve().parent.parent / "hls" / "rtl"
UNIT_NAMES = ("gelu", "softmax", "layernorm", "linear", "moe_route")
LIMITATIONS = ("w8a8: one RTL build has the calibrated types of one block (block_precision); the HLS "
               "kernel's run-time fraction-bit offsets (D_* tables), which switch between blocks, are not "
               "in the RTL.")

# linear engine's s_axi_control: its argument registers at the offsets Vitis HLS gives the scalar
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

# pipeline depths of the datapaths, in registered stages (one value per cycle, never stalls): the
# templates are written with this many stages; their comments, the benches' workloads and the cycle
# model (codegen/unit_cycles.py) read them here
GELU_CORE_DEPTH = 4        # gelu_core.v.j2: |x| and index, table entries, interpolation, relu - d and cast
EXP_CORE_DEPTH = 4         # exp_core.v.j2: d * log2(e), table entries, interpolation, shift
LIN_CORE_DEPTH = 4         # linear.v.j2: stages A (row), B (products), C (sums), D (accumulator); then
                           # stage E, the output casts beside the GELU core (GELU_CORE_DEPTH)
LN_SQUARE_DEPTH = 1        # layernorm.v.j2: the squares' register before the variance sum
LN_NORM_DEPTH = 4          # layernorm.v.j2: pass C's stages c1..c4 (normalise, shift, scale, cast)

_env = None


def environment():
    global _env
    if _env is None:
        import jinja2
        _env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(RTL_DIR)),
                                  undefined=jinja2.StrictUndefined, autoescape=False,
                                  trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
        _env.globals.update(ext=ext_expr)
    return _env


def ext_expr(w: int, to: int, signed, sig: str) -> str:
    """Verilog expression: ``sig`` ([w-1:0]) sign- or zero-extended to ``to`` bits."""
    if to == w:
        return sig
    fill = f"{sig}[{w - 1}]" if int(signed) else "1'b0"
    return f"{{{{{to - w}{{{fill}}}}}, {sig}}}"


def _modes(t: FixedType) -> tuple:
    if t.Q not in ("AP_TRN", "AP_RND") or t.O not in ("AP_WRAP", "AP_SAT"):
        raise EdgeMoeError(f"RTL casts support AP_TRN/AP_RND and AP_WRAP/AP_SAT, not {t.cpp}")
    return int(t.Q == "AP_RND"), int(t.O == "AP_SAT")


def cast_params(src: FixedType, dst: FixedType) -> str:
    """Parameter list of ``<prefix>_cast`` for ``dst = src``."""
    rnd, sat = _modes(dst)
    return (f".SW({src.W}), .SS({int(src.signed)}), .SF({src.F}), .DW({dst.W}), .DS({int(dst.signed)}), "
            f".DF({dst.F}), .RND({rnd}), .SAT({sat})")


def _bits(n: int) -> int:
    return max(1, int(n).bit_length())


def cdiv_latency(nw: int, d: int | None) -> int:
    """Cycles of layernorm.v.j2's ``_cdiv`` (floor(n / D) of an ``nw``-bit n): one when D > 1 is a power
    of two (a shift), else a stage in, ``nw + 1`` quotient stages and a stage out (``d=None``: the latter)."""
    return 1 if d is not None and d > 1 and d & (d - 1) == 0 else nw + 3


def rsqrt_latency(steps: int) -> int:
    """Cycles of layernorm.v.j2's ``_rsqrt``: max(v, 1), normalise, seed, then three stages per Newton step."""
    return 3 + 3 * steps


def block_precision(spec, prec: Precision, block: int | None) -> Precision:
    """``prec`` without per-tensor overrides, for one RTL build: block ``block``'s calibrated types
    become the types (each role from the tensor the HLS kernel's D_* table of that role uses:
    ln1 for ln_out, qkv weights for w, ...).  ``block=None``: the nominal types (all offsets 0)."""
    types = dict(prec.types)
    if block is not None:
        if not 0 <= int(block) < spec.depth:
            raise EdgeMoeError(f"block {block} is not a block of {spec.name} (0..{spec.depth - 1})")
        moe = spec.is_moe(int(block))
        tensors = dict(ln_out="ln1", w="attn.qkv", qkv="attn", attn_out="attn_out", prob="attn",
                       hidden="mlp.experts" if moe else "mlp", gate_w="mlp.gate" if moe else None)
        for role, tensor in tensors.items():
            if tensor is not None:
                types[role] = prec.t(role, tensor=f"backbone.blocks.{int(block)}.{tensor}")
    where = "nominal types" if block is None else f"types of block {int(block)}"
    return Precision(prec.name, types, {}, f"{prec.description} ({where})".strip())


# ---- per-unit contexts ----------------------------------------------------------------------------
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


# ---- rendering ------------------------------------------------------------------------------------
def top_name(name: str) -> str:
    return f"edgemoe_{name}"


def unit_context(name: str, spec, prec: Precision, design) -> dict:
    """Everything a unit's template needs (also used by the benches to pack the streams)."""
    if name not in UNIT_NAMES:
        raise EdgeMoeError(f"unknown RTL unit {name!r} (known: {', '.join(UNIT_NAMES)})")
    if prec.overrides:    # the templates read prec.t(role) without a block: overrides would be ignored
        raise EdgeMoeError(f"precision {prec.name!r} has per-tensor overrides: fold one block's types in "
                           "first (edgemoe.sim.rtl.block_precision)")
    design.validate(spec)
    top = top_name(name)
    ctx = dict(top=top, p=top, spec=spec, prec=prec, design=design, limitations=LIMITATIONS)
    ctx.update(globals()[f"_ctx_{name}"](spec, prec, design))
    return ctx


def _ctx_gelu(spec, prec, design) -> dict:
    g = gelu_ctx(prec)
    return dict(g=g, in_sb=storage_bits(g["gw"]), out_sb=storage_bits(g["ow"]))


def _ctx_softmax(spec, prec, design) -> dict:
    score_t, prob_t = prec.t("score"), prec.t("prob")
    e = exp_ctx(prec, score_t)
    s = softmax_core_ctx(prec, score_t, prob_t)
    max_len = max(spec.tokens, spec.num_experts)
    lat = 2 * EXP_CORE_DEPTH + s["div_steps"]     # first pass + divider, roughly
    depth_log2 = max(4, math.ceil(math.log2(2 * max_len + lat + 8)))
    return dict(e=e, s=s, max_len=max_len, fifo_aw=depth_log2,
                in_sb=storage_bits(score_t.W), out_sb=storage_bits(prob_t.W))


def render_unit(name: str, spec, prec: Precision, design, out_dir) -> list:
    """Write ``<out_dir>/<top>.v`` for unit ``name``; returns the written paths."""
    ctx = unit_context(name, spec, prec, design)
    text = environment().get_template(f"{name}.v.j2").render(**ctx)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{ctx['top']}.v"
    path.write_text(text)
    return [path]


__all__ = ["UNIT_NAMES", "LIMITATIONS", "render_unit", "unit_context", "top_name", "storage_bits", "block_precision",
           "gelu_ctx", "exp_ctx", "softmax_core_ctx", "cast_params", "LIN_REGS", "LIN_MODE_BITS", "LIN_MODE_QKV",
           "LIN_MODE_ACT", "LIN_MODE_GELU", "LIN_MODE_SCORE", "LIN_BIAS_QKV_BIT", "GELU_CORE_DEPTH", "EXP_CORE_DEPTH",
           "LIN_CORE_DEPTH", "LN_SQUARE_DEPTH", "LN_NORM_DEPTH", "cdiv_latency", "rsqrt_latency"]


def _ctx_linear(spec, prec, design) -> dict:
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
    row_bits = ei * L["wb"] + L["bb"]
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


def _ctx_layernorm(spec, prec, design) -> dict:
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
    # benches report them; codegen/unit_cycles.rtl_unit_cycles adds them up)
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


def _ctx_moe_route(spec, prec, design) -> dict:
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
