"""The bit-accurate fixed-point M3ViT encoder, built from the unit models in hardware order.

It needs numpy only: parameters come as the float state_dict (``backbone.*`` keys, numpy arrays),
are quantised once to their storage types, and every activation is computed on raw integers.
Taps carry the same names as the float model's (``blocks.{i}.ln1`` ...) so that each stage can be
compared with the float model, the generated C++ (csim) and the RTL.
"""
from __future__ import annotations

import numpy as np

from edgemoe.errors import EdgeMoeError
from edgemoe.spec import ModelSpec

from .apfixed import Fx
from .precision import Precision
from .units.attention import attention_fixed, split_heads
from .units.gelu import gelu_fixed, gelu_table
from .units.layernorm import layernorm_fixed
from .units.linear import linear_fixed
from .units.moe_route import route_fixed
from .units.patch_embed import patchify, patch_embed_fixed

DEFAULT_ATTN_ROWS = 4  # the reference design keeps 4 query rows on chip


def block_key(i: int, name: str) -> str:
    return f"backbone.blocks.{i}.{name}"


def quantize_params(spec: ModelSpec, prec: Precision, params: dict) -> dict:
    """Float state_dict -> {name: Fx} in the storage types the kernel reads."""
    def get(name):
        try:
            return np.asarray(params[name], dtype=np.float64)
        except KeyError:
            raise EdgeMoeError(f"parameter {name} missing from the model's weights") from None

    q = {}
    d = spec.embed
    q["patch_w"] = Fx.from_float(get("backbone.patch_embed.proj.weight").reshape(d, -1), prec.t("patch_w"))
    q["patch_b"] = Fx.from_float(get("backbone.patch_embed.proj.bias"), prec.t("bias"))
    q["cls"] = Fx.from_float(get("backbone.cls_token").reshape(d), prec.t("bias"))
    q["pos"] = Fx.from_float(get("backbone.pos_embed").reshape(spec.tokens, d), prec.t("bias"))
    for i in range(spec.depth):
        k = lambda n, i=i: block_key(i, n)
        for n in ("norm1", "norm2"):
            q[k(n + ".weight")] = Fx.from_float(get(k(n + ".weight")), prec.t("ln_param"))
            q[k(n + ".bias")] = Fx.from_float(get(k(n + ".bias")), prec.t("ln_param"))
        q[k("attn.qkv.weight")] = Fx.from_float(get(k("attn.qkv.weight")), prec.t("w", tensor=k("attn.qkv")))
        q[k("attn.qkv.bias")] = Fx.from_float(get(k("attn.qkv.bias")), prec.t("qkv_b"))
        q[k("attn.proj.weight")] = Fx.from_float(get(k("attn.proj.weight")), prec.t("w", tensor=k("attn.proj")))
        q[k("attn.proj.bias")] = Fx.from_float(get(k("attn.proj.bias")), prec.t("b"))
        if spec.is_moe(i):
            for n in ("htoh4", "h4toh"):
                base = k(f"mlp.experts.{n}")
                q[base + ".weight"] = Fx.from_float(get(base + ".weight"), prec.t("w", tensor=base))
                q[base + ".bias"] = Fx.from_float(get(base + ".bias"), prec.t("b"))
            for t in range(spec.num_tasks):
                g = k(f"mlp.gate.{t}.w_gate")
                q[g] = Fx.from_float(get(g).T, prec.t("gate_w", tensor=k("mlp.gate")))  # [E, d]
        else:
            for n in ("fc1", "fc2"):
                base = k(f"mlp.{n}")
                q[base + ".weight"] = Fx.from_float(get(base + ".weight"), prec.t("w", tensor=base))
                q[base + ".bias"] = Fx.from_float(get(base + ".bias"), prec.t("b"))
    return q


class FixedM3ViT:
    """``encode(image, task)`` -> the last block's output (tokens, embed) as :class:`Fx`."""

    def __init__(self, spec: ModelSpec, prec: Precision, params: dict, attn_rows: int = DEFAULT_ATTN_ROWS):
        self.spec, self.prec, self.attn_rows = spec, prec, attn_rows
        self.q = quantize_params(spec, prec, params)
        self.gelu_tab = gelu_table(prec)
        self.scale_raw = int(prec.t("scale").quantize(spec.scale))

    def quantize_image(self, image) -> Fx:
        image = np.asarray(image)
        if image.shape != self.spec.input_shape:
            raise EdgeMoeError(f"image has shape {tuple(image.shape)}; {self.spec.name} expects "
                               f"{self.spec.input_shape}")
        return Fx.from_float(patchify(image.astype(np.float64), self.spec.patch), self.prec.t("pixel"))

    def encode(self, image, task: int, taps: dict | None = None) -> Fx:
        spec, prec, q = self.spec, self.prec, self.q
        task = spec.task_index(task)
        act = prec.t("act")
        tap = (lambda name, v: taps.__setitem__(name, v)) if taps is not None else (lambda name, v: None)
        x = patch_embed_fixed(self.quantize_image(image), q["patch_w"], q["patch_b"], q["cls"], q["pos"], prec)
        tap("patch_embed", x)
        for i in range(spec.depth):
            k = lambda n, i=i: block_key(i, n)
            p = f"blocks.{i}."
            ln1 = layernorm_fixed(x, q[k("norm1.weight")], q[k("norm1.bias")], prec, spec.ln_eps,
                                  out_t=prec.t("ln_out", tensor=k("ln1")))
            tap(p + "ln1", ln1)
            qkv_t = prec.t("qkv", tensor=k("attn"))
            qkv = linear_fixed(ln1, q[k("attn.qkv.weight")], q[k("attn.qkv.bias")], prec, qkv_t)
            d = spec.embed
            qh, kh, vh = (split_heads(qkv[:, j * d:(j + 1) * d], spec.heads) for j in range(3))
            tap(p + "q", qh), tap(p + "k", kh), tap(p + "v", vh)
            at = {}
            attn = attention_fixed(qh, kh, vh, self.scale_raw, prec, self.attn_rows, at,
                                   out_t=prec.t("attn_out", tensor=k("attn_out")),
                                   prob_t=prec.t("prob", tensor=k("attn")))
            tap(p + "scores", at["scores"]), tap(p + "attn_probs", at["attn_probs"]), tap(p + "attn_out", attn)
            proj = linear_fixed(attn, q[k("attn.proj.weight")], q[k("attn.proj.bias")], prec, act)
            tap(p + "proj", proj)
            x = (x + proj).cast(act)
            tap(p + "res1", x)
            ln2 = layernorm_fixed(x, q[k("norm2.weight")], q[k("norm2.bias")], prec, spec.ln_eps,
                                  out_t=prec.t("ln_out", tensor=k("ln2")))
            tap(p + "ln2", ln2)
            if spec.is_moe(i):
                y = self._moe(i, ln2, task, tap, p)
            else:
                h = self._fc1_gelu(ln2, k("mlp.fc1"), q[k("mlp.fc1.weight")], q[k("mlp.fc1.bias")])
                tap(p + "fc1", h)
                y = linear_fixed(h, q[k("mlp.fc2.weight")], q[k("mlp.fc2.bias")], prec, act)
            tap(p + "mlp_out", y)
            x = (x + y).cast(act)
            tap(p + "out", x)
        return x

    def _fc1_gelu(self, x: Fx, name: str, w: Fx, b: Fx) -> Fx:
        prec = self.prec
        h = linear_fixed(x, w, b, prec, prec.t("gelu_in"))
        return gelu_fixed(h, prec, out_t=prec.t("hidden", tensor=name.rsplit(".", 1)[0]), table=self.gelu_tab)

    def _moe(self, i: int, ln2: Fx, task: int, tap, p: str) -> Fx:
        """Route, run each expert over its own queue only, scatter score * y into the output."""
        spec, prec, q = self.spec, self.prec, self.q
        act = prec.t("act")
        k = lambda n, i=i: block_key(i, n)
        route = route_fixed(ln2, q[k(f"mlp.gate.{task}.w_gate")], prec, spec.top_k)
        tap(p + "gate_logits", route.logits), tap(p + "gate_probs", route.probs)
        tap(p + "topk_idx", route.topk_idx), tap(p + "topk_score", route.topk_score)
        w1, b1 = q[k("mlp.experts.htoh4.weight")], q[k("mlp.experts.htoh4.bias")]
        w2, b2 = q[k("mlp.experts.h4toh.weight")], q[k("mlp.experts.h4toh.bias")]
        out = Fx.zeros(ln2.shape, act)
        for e, (tok, score) in enumerate(route.queues):
            if len(tok) == 0:
                continue  # an expert without tokens is skipped (and not fetched)
            h = self._fc1_gelu(ln2[tok], k("mlp.experts.htoh4"), w1[e], b1[e])
            y = linear_fixed(h, w2[e], b2[e], prec, act)
            contrib = (Fx(score.raw[:, None], score.t) * y).cast(act)
            out.raw[tok] = (out[tok] + contrib).cast(act).raw
        tap(p + "expert_load", np.array([len(t) for t, _ in route.queues]))
        return out


def run_fixed(spec: ModelSpec, prec: Precision, params: dict, image, task: int,
              attn_rows: int = DEFAULT_ATTN_ROWS, taps: dict | None = None) -> np.ndarray:
    """Float32 (tokens, embed) output of the fixed-point encoder."""
    return FixedM3ViT(spec, prec, params, attn_rows).encode(image, task, taps).to_float().astype(np.float32)
