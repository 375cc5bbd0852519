"""The bit-accurate fixed-point M3ViT encoder, built from the unit models in hardware order.

It needs numpy only: parameters come as the float state_dict (``backbone.*`` keys, numpy arrays),
are quantised once to their storage types, and every activation is computed on raw integers.
Taps carry the same names as the float model's (``blocks.{i}.ln1`` ...) so that each stage can be
compared with the float model, the generated C++ (csim) and the RTL.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from edgemoe.design import DEFAULT_DESIGN, get_design
from edgemoe.errors import EdgeMoeError
from edgemoe.spec import ModelSpec, block_key, mlp_tensor

from .apfixed import FixedType, Fx
from .precision import Precision
from .range_counts import count_range, range_prefix, range_stage
from .units.attention import attention_fixed, split_heads
from .units.gelu import gelu_fixed, gelu_table
from .units.layernorm import layernorm_fixed
from .units.linear import linear_fixed
from .units.moe_route import route_fixed
from .units.patch_embed import patchify, patch_embed_fixed

# the query rows on chip of the default design (the reference design keeps 4): a golden run without a
# design computes attention in the same row groups as the kernel generated for it
DEFAULT_ATTN_ROWS = get_design(DEFAULT_DESIGN).attn_rows


SATURATE_HINT = "pass --saturate (saturate_params=True) to clamp them to the type's range instead"


@dataclass
class ParamRange:
    """A parameter tensor with values outside its fixed-point type."""
    name: str        # checkpoint-style name, e.g. backbone.blocks.3.norm1.weight
    t: FixedType
    lo: float        # the tensor's smallest and largest float value
    hi: float
    count: int       # values out of the type's range
    size: int

    def describe(self) -> str:
        return (f"{self.name}: values in [{self.lo:.6g}, {self.hi:.6g}], {self.count} of {self.size} outside "
                f"{self.t.storage_cpp}'s range {self.t.range_text}")


def param_range_message(bad: list) -> str:
    """The one-line error for parameters that do not fit their types."""
    first = bad[0]
    msg = (f"parameter {first.name} does not fit its fixed-point type: values in [{first.lo:.6g}, {first.hi:.6g}], "
           f"{first.count} of {first.size} values outside {first.t.storage_cpp}'s range {first.t.range_text}")
    if len(bad) > 1:
        rest = bad[1:]
        names = ", ".join(b.name for b in rest[:3]) + (", ..." if len(rest) > 3 else "")
        n = sum(b.count for b in rest)
        msg += (f"; {len(rest)} more tensor{'s' if len(rest) > 1 else ''} with {n} value{'s' if n != 1 else ''} "
                f"out of range: {names}")
    return f"{msg}; {SATURATE_HINT}"


def param_saturation_warning(bad: list) -> str:
    """The one-line warning when out-of-range parameters are clamped (saturate_params)."""
    n = sum(b.count for b in bad)
    worst = sorted(bad, key=lambda b: -b.count)
    parts = "; ".join(b.describe() for b in worst[:3]) + ("; ..." if len(worst) > 3 else "")
    return (f"edgemoe: warning: {n} parameter value{'s' if n != 1 else ''} in {len(bad)} tensor"
            f"{'s' if len(bad) != 1 else ''} saturate (clamped to their fixed-point type's min/max): {parts}")


def quantize_params(spec: ModelSpec, prec: Precision, params: dict, saturate_params: bool = False,
                    report: list | None = None, warn: bool = True, smoothed: bool = False) -> dict:
    """Float state_dict -> {name: Fx} in the storage types the kernel reads.

    Every tensor is checked against its type: a value that does not fit (after rounding) is an
    :class:`EdgeMoeError` naming the tensor, unless ``saturate_params``, which clamps such values
    to the type's min / max (never wraps) and prints one warning line on stderr (``warn``).
    ``report``: a list that receives a :class:`ParamRange` per tensor that does not fit.
    The smooth option's exponents (``prec.smooth``) are applied first unless ``smoothed`` (parameters read
    back from a project's weights.bin, which holds them applied).
    The packer (:meth:`edgemoe.codegen.pack.Layout.fill`) quantises through this function too.
    """
    bad = []
    if prec.smooth and not smoothed:     # the smooth option's exponents (golden/smoothing.py), float-exact
        from .smoothing import smooth_params
        params = smooth_params(spec, prec.smooth, params)

    def get(name):
        try:
            return np.asarray(params[name], dtype=np.float64)
        except KeyError:
            raise EdgeMoeError(f"parameter {name} missing from the model's weights") from None

    def fx(name: str, t, x=None) -> Fx:
        x = get(name) if x is None else x
        if per_channel and name in scaled:
            # per-channel weight scales (golden/channel_scales.py): as read back from a project, else from the rows
            sh = params.get(name + SHIFT_SUFFIX)
            sh = channel_shifts(x, t) if sh is None else np.asarray(sh, np.int64)
            q[name + SHIFT_SUFFIX] = sh
            raw, out = quantize_rows(x, t, sh)
        else:
            raw, out = t.quantize_clamped(x)
        n = int(np.count_nonzero(out))
        if n:
            bad.append(ParamRange(name, t, float(x.min()), float(x.max()), n, int(x.size)))
        return Fx(raw, t)

    q = {}
    per_channel = "per-channel" in prec.options
    scaled = set()
    if per_channel:
        from .channel_scales import SHIFT_SUFFIX, channel_shifts, quantize_rows, scaled_tensors
        scaled = {n + ".weight" for i in range(spec.depth) for n in scaled_tensors(spec, i)}
    d = spec.embed
    pw = "backbone.patch_embed.proj.weight"
    q["patch_w"] = fx(pw, prec.t("patch_w"), get(pw).reshape(d, -1))
    q["patch_b"] = fx("backbone.patch_embed.proj.bias", prec.t("bias"))
    q["cls"] = fx("backbone.cls_token", prec.t("bias"), get("backbone.cls_token").reshape(d))
    q["pos"] = fx("backbone.pos_embed", prec.t("bias"), get("backbone.pos_embed").reshape(spec.tokens, d))
    for i in range(spec.depth):
        k = lambda n, i=i: block_key(i, n)
        for n in ("norm1", "norm2"):
            q[k(n + ".weight")] = fx(k(n + ".weight"), prec.t("ln_param"))
            q[k(n + ".bias")] = fx(k(n + ".bias"), prec.t("ln_param"))
        q[k("attn.qkv.weight")] = fx(k("attn.qkv.weight"), prec.t("w", tensor=k("attn.qkv")))
        q[k("attn.qkv.bias")] = fx(k("attn.qkv.bias"), prec.t("qkv_b"))
        q[k("attn.proj.weight")] = fx(k("attn.proj.weight"), prec.t("w", tensor=k("attn.proj")))
        q[k("attn.proj.bias")] = fx(k("attn.proj.bias"), prec.t("b"))
        for part in ("fc1", "fc2"):
            base = k(mlp_tensor(part, spec.is_moe(i)))
            q[base + ".weight"] = fx(base + ".weight", prec.t("w", tensor=base))
            q[base + ".bias"] = fx(base + ".bias", prec.t("b"))
        if spec.is_moe(i):
            for t in range(spec.num_tasks):
                g = k(f"mlp.gate.{t}.w_gate")
                q[g] = fx(g, prec.t("gate_w", tensor=k("mlp.gate")), get(g).T)  # [E, d]
    if report is not None:
        report.extend(bad)
    if bad and not saturate_params:
        raise EdgeMoeError(param_range_message(bad))
    if bad and warn:
        print(param_saturation_warning(bad), file=sys.stderr)
    return q


class FixedM3ViT:
    """``encode(image, task)`` -> the last block's output (tokens, embed) as :class:`Fx`.

    Building it checks every parameter against its type (:func:`quantize_params`;
    ``saturate_params`` clamps instead of failing, :attr:`param_range` lists the tensors clamped).
    After each ``encode``, :attr:`range_counts` holds, per stage, the activation values that did
    not fit the type they were cast into: ``{stage: {"saturated": n, "wrapped": n, "values": n}}``.
    """

    def __init__(self, spec: ModelSpec, prec: Precision, params: dict, attn_rows: int = DEFAULT_ATTN_ROWS,
                 saturate_params: bool = False, warn: bool = True, smoothed: bool = False):
        self.spec, self.prec, self.attn_rows = spec, prec, attn_rows
        self.param_range = []
        self.q = quantize_params(spec, prec, params, saturate_params, self.param_range, warn, smoothed)
        self.range_counts = {}
        self.gelu_tab = gelu_table(prec)
        self.scale_raw = int(prec.t("scale").quantize(spec.scale))

    def quantize_image(self, image) -> Fx:
        image = np.asarray(image)
        if image.shape != self.spec.input_shape:
            raise EdgeMoeError(f"image has shape {tuple(image.shape)}; {self.spec.name} expects "
                               f"{self.spec.input_shape}")
        t = self.prec.t("pixel")
        return Fx(t.quantize(patchify(image.astype(np.float64), self.spec.patch), record=True), t)

    def encode(self, image, task: int, taps: dict | None = None, range_counts: dict | None = None) -> Fx:
        """The encoder on one image; ``range_counts``: a dict that receives :attr:`range_counts`."""
        task = self.spec.task_index(task)
        with count_range() as rc:
            y = self._encode(image, task, taps)
        self.range_counts = rc.stages
        if range_counts is not None:
            range_counts.update(rc.stages)
        return y

    def _encode(self, image, task: int, taps: dict | None) -> Fx:
        spec, prec, q = self.spec, self.prec, self.q
        act = prec.t("act")
        tap = (lambda name, v: taps.__setitem__(name, v)) if taps is not None else (lambda name, v: None)
        range_stage("pixels")
        pix = self.quantize_image(image)
        range_stage("patch_embed")
        x = patch_embed_fixed(pix, q["patch_w"], q["patch_b"], q["cls"], q["pos"], prec)
        tap("patch_embed", x)
        for i in range(spec.depth):
            k = lambda n, i=i: block_key(i, n)
            p = f"blocks.{i}."
            range_prefix(p)
            range_stage("ln1")
            ln1 = layernorm_fixed(x, q[k("norm1.weight")], q[k("norm1.bias")], prec, spec.ln_eps,
                                  out_t=prec.t("ln_out", tensor=k("ln1")))
            tap(p + "ln1", ln1)
            qkv_t = prec.t("qkv", tensor=k("attn"))
            range_stage("qkv")
            qkv = linear_fixed(ln1, q[k("attn.qkv.weight")], q[k("attn.qkv.bias")], prec, qkv_t, wsh=self._wsh(k("attn.qkv")))
            d = spec.embed
            qh, kh, vh = (split_heads(qkv[:, j * d:(j + 1) * d], spec.heads) for j in range(3))
            tap(p + "q", qh), tap(p + "k", kh), tap(p + "v", vh)
            at = {}
            attn = attention_fixed(qh, kh, vh, self.scale_raw, prec, self.attn_rows, at,
                                   out_t=prec.t("attn_out", tensor=k("attn_out")),
                                   prob_t=prec.t("prob", tensor=k("attn")))
            tap(p + "scores", at["scores"]), tap(p + "attn_probs", at["attn_probs"]), tap(p + "attn_out", attn)
            range_stage("proj")
            proj = linear_fixed(attn, q[k("attn.proj.weight")], q[k("attn.proj.bias")], prec, act, wsh=self._wsh(k("attn.proj")))
            tap(p + "proj", proj)
            range_stage("res1")
            x = (x + proj).cast(act)
            tap(p + "res1", x)
            range_stage("ln2")
            ln2 = layernorm_fixed(x, q[k("norm2.weight")], q[k("norm2.bias")], prec, spec.ln_eps,
                                  out_t=prec.t("ln_out", tensor=k("ln2")))
            tap(p + "ln2", ln2)
            if spec.is_moe(i):
                y = self._moe(i, ln2, task, tap, p)
            else:
                range_stage("fc1")
                fc1, fc2 = k(mlp_tensor("fc1", False)), k(mlp_tensor("fc2", False))
                h = self._fc1_gelu(ln2, k(mlp_tensor("hidden", False)), q[fc1 + ".weight"], q[fc1 + ".bias"], self._wsh(fc1))
                tap(p + "fc1", h)
                range_stage("mlp_out")
                y = linear_fixed(h, q[fc2 + ".weight"], q[fc2 + ".bias"], prec, act, wsh=self._wsh(fc2))
            tap(p + "mlp_out", y)
            range_stage("out")
            x = (x + y).cast(act)
            tap(p + "out", x)
        return x

    def _wsh(self, tensor: str, expert: int | None = None):
        """The per-channel weight scales of ``tensor`` (its checkpoint name without .weight), None without."""
        sh = self.q.get(tensor + ".weight.wsh")
        return sh if sh is None or expert is None else sh[expert]

    def _fc1_gelu(self, x: Fx, hidden: str, w: Fx, b: Fx, wsh=None) -> Fx:
        """fc1 then GELU into the type of the MLP's hidden tensor ``hidden`` (its checkpoint name)."""
        prec = self.prec
        h = linear_fixed(x, w, b, prec, prec.t("gelu_in"), wsh=wsh)
        return gelu_fixed(h, prec, out_t=prec.t("hidden", tensor=hidden), table=self.gelu_tab)

    def _moe(self, i: int, ln2: Fx, task: int, tap, p: str) -> Fx:
        """Route, run each expert over its own queue only, scatter score * y into the output."""
        spec, prec, q = self.spec, self.prec, self.q
        act = prec.t("act")
        k = lambda n, i=i: block_key(i, n)
        route = route_fixed(ln2, q[k(f"mlp.gate.{task}.w_gate")], prec, spec.top_k)
        tap(p + "gate_logits", route.logits), tap(p + "gate_probs", route.probs)
        tap(p + "topk_idx", route.topk_idx), tap(p + "topk_score", route.topk_score)
        fc1, fc2 = k(mlp_tensor("fc1", True)), k(mlp_tensor("fc2", True))
        w1, b1 = q[fc1 + ".weight"], q[fc1 + ".bias"]
        w2, b2 = q[fc2 + ".weight"], q[fc2 + ".bias"]
        out = Fx.zeros(ln2.shape, act)
        for e, (tok, score) in enumerate(route.queues):
            if len(tok) == 0:
                continue  # an expert without tokens is skipped (and not fetched)
            range_stage("fc1")
            h = self._fc1_gelu(ln2[tok], k(mlp_tensor("hidden", True)), w1[e], b1[e], self._wsh(fc1, e))
            range_stage("mlp_out")
            y = linear_fixed(h, w2[e], b2[e], prec, act, wsh=self._wsh(fc2, e))
            contrib = (Fx(score.raw[:, None], score.t) * y).cast(act)
            out.raw[tok] = (out[tok] + contrib).cast(act).raw
        tap(p + "expert_load", np.array([len(t) for t, _ in route.queues]))
        return out


def run_fixed(spec: ModelSpec, prec: Precision, params: dict, image, task: int,
              attn_rows: int = DEFAULT_ATTN_ROWS, taps: dict | None = None, saturate_params: bool = False,
              range_counts: dict | None = None, param_range: list | None = None,
              fixed_out: list | None = None) -> np.ndarray:
    """Float32 (tokens, embed) output of the fixed-point encoder (``range_counts``: see
    :meth:`FixedM3ViT.encode`; ``param_range``: receives :attr:`FixedM3ViT.param_range`; ``fixed_out``:
    receives the :class:`FixedM3ViT`)."""
    model = FixedM3ViT(spec, prec, params, attn_rows, saturate_params=saturate_params)
    if param_range is not None:
        param_range.extend(model.param_range)
    if fixed_out is not None:
        fixed_out.append(model)
    return model.encode(image, task, taps, range_counts).to_float().astype(np.float32)
