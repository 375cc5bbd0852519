"""The ``w16a32-fit`` precision: w16a32 whose parameter types get their integer bits from the values they hold.

A trained checkpoint has parameters the reference design's types cannot hold (LayerNorm gammas of 20
in ``ap_fixed<16,5>``, ...).  :func:`fit_precision` starts from w16a32's types and, keeping every
width, sign and mode, moves the binary point of each parameter type to the smallest power-of-two
range that holds the largest magnitude it stores (:func:`fit_type`: :func:`pow2_type` with the
base type's width): a fitted type never saturates a parameter, and gets the finest step that allows.

* ``w`` (qkv, proj, fc1, fc2 / the experts' weights) and ``gate_w``: per tensor of every block
  (per-tensor overrides ``blocks.i.<tensor>.w``): the kernel keeps its nominal ``w_t`` / ``gate_w_t``
  and shifts the binary point per block with its D_W_* / D_GATE_W tables (golden/block_types.py).
* ``patch_w``, ``bias`` (patch bias, CLS token, position embedding), ``qkv_b``, ``b`` (proj, fc1, fc2
  and the experts' biases) and ``ln_param`` (every gamma and beta): one global type each (the kernel
  has one C++ type per role), fitted over all the tensors that role holds.

Activation and accumulator types stay w16a32's (``act`` is ``ap_fixed<32,10>``: |x| < 512).
Deterministic: the types depend on the parameters alone (no images).
"""
from __future__ import annotations

import numpy as np

from edgemoe.spec import ModelSpec, block_key, mlp_tensor

from .apfixed import FixedType
from .precision import Precision, base_precision, pow2_type

FIT_PRECISION = "w16a32-fit"
# global parameter roles fitted by fit_precision (the per-block ones: w, gate_w)
FITTED_GLOBAL_ROLES = ("patch_w", "bias", "qkv_b", "b", "ln_param")


def fit_type(base: FixedType, max_abs: float) -> FixedType:
    """``base`` with its binary point moved so that ``max_abs`` fits (width, sign and modes kept)."""
    return pow2_type(max_abs, base.W, base.signed, Q=base.Q, O=base.O)


def _amax(params: dict, names) -> float:
    return float(max(np.abs(np.asarray(params[n], np.float64)).max() for n in names))


def role_tensors(spec: ModelSpec) -> dict:
    """``{global role: [checkpoint tensor names it stores]}`` (the lookups of fixed_model.quantize_params)."""
    out = {"patch_w": ["backbone.patch_embed.proj.weight"],
           "bias": ["backbone.patch_embed.proj.bias", "backbone.cls_token", "backbone.pos_embed"],
           "qkv_b": [], "b": [], "ln_param": []}
    for i in range(spec.depth):
        k = lambda n, i=i: block_key(i, n)  # noqa: E731
        out["ln_param"] += [k(f"{n}.{leaf}") for n in ("norm1", "norm2") for leaf in ("weight", "bias")]
        out["qkv_b"].append(k("attn.qkv.bias"))
        out["b"] += [k("attn.proj.bias")] + [k(mlp_tensor(p, spec.is_moe(i))) + ".bias" for p in ("fc1", "fc2")]
    return out


def block_weight_tensors(spec: ModelSpec) -> dict:
    """``{override key: [checkpoint tensor names]}`` of the per-block weight types (w, gate_w)."""
    out = {}
    for i in range(spec.depth):
        k = lambda n, i=i: block_key(i, n)  # noqa: E731
        for t in ("attn.qkv", "attn.proj") + tuple(mlp_tensor(p, spec.is_moe(i)) for p in ("fc1", "fc2")):
            out[f"{k(t)}.w"] = [k(t) + ".weight"]
        if spec.is_moe(i):
            out[f"{k('mlp.gate')}.gate_w"] = [k(f"mlp.gate.{j}.w_gate") for j in range(spec.num_tasks)]
    return out


def fit_precision(spec: ModelSpec, params: dict, base: Precision | None = None) -> Precision:
    """``base`` (default: the unfitted ``w16a32-fit``, i.e. w16a32's types) with the parameter types
    fitted to ``params`` (numpy state dict, the checkpoint's names; see the module's text)."""
    prec = base if base is not None else base_precision(FIT_PRECISION)
    types = dict(prec.types)
    for role, names in role_tensors(spec).items():
        types[role] = fit_type(prec.types[role], _amax(params, names))
    ov = {key: fit_type(prec.types[key.rsplit(".", 1)[1]], _amax(params, names))
          for key, names in block_weight_tensors(spec).items()}
    return Precision(prec.name, types, {}, prec.description).with_overrides(ov)


__all__ = ["FIT_PRECISION", "FITTED_GLOBAL_ROLES", "fit_type", "fit_precision", "role_tensors", "block_weight_tensors"]
