"""Calibration of the w8a8 precision: power-of-two scales from the float model on sample inputs.

Each 8-bit tensor (LayerNorm outputs, Q/K/V, attention output, MLP hidden, weights) gets the
smallest power-of-two range that holds the largest magnitude seen on the calibration images; the
accumulators follow from their operands (32 bits, exact products). Deterministic: the sample
images are seeded, so the same model always gives the same precision.
"""
from __future__ import annotations

import numpy as np

from edgemoe.spec import ModelSpec, block_key, mlp_tensor

from .calib_images import SAMPLE_IMAGES, sample_set
from .precision import Precision, base_precision, pow2_type
from .units.gelu import gelu_float

CALIB_IMAGES = SAMPLE_IMAGES   # the default set's size (golden/calib_images.py: the set, --calib DIR)


def _amax(arrs) -> float:
    return float(max(np.abs(np.asarray(a, dtype=np.float64)).max() for a in arrs))


def _gelu_amax(pre: np.ndarray) -> float:
    """max |GELU(x)| over the values in ``pre``: GELU rises for x > -0.7518 and has its minimum
    (-0.17) there, so the extremes and that point decide it (no GELU of the whole array)."""
    lo, hi = float(pre.min()), float(pre.max())
    return float(np.abs(gelu_float(np.array([lo, hi, min(max(-0.7518, lo), hi)]))).max())


def calibrate_w8a8(spec: ModelSpec, params: dict, taps_list: list, base: Precision | None = None) -> Precision:
    """``taps_list``: float taps (numpy, no batch axis) of several (image, task) runs; ``base``: the
    uncalibrated w8a8 precision (default golden/precision.py's)."""
    prec = base if base is not None else base_precision("w8a8")
    ov = {}
    t = lambda name: [tp[name] for tp in taps_list]  # noqa: E731
    W = lambda role: prec.types[role].W  # noqa: E731

    def weight(tensor: str, role: str = "w"):
        ov[f"{tensor}.{role}"] = pow2_type(_amax([params[tensor + (".w_gate" if role == "gate_w" else ".weight")]]),
                                           prec.types[role].W)

    acts = t("patch_embed")
    for i in range(spec.depth):
        k = lambda n, i=i: block_key(i, n)  # noqa: E731
        p = f"blocks.{i}."
        acts += t(p + "res1") + t(p + "out")
        moe = spec.is_moe(i)
        ov[k("ln1.ln_out")] = pow2_type(_amax(t(p + "ln1")), W("ln_out"))
        ov[k("ln2.ln_out")] = pow2_type(_amax(t(p + "ln2")), W("ln_out"))
        ov[k("attn.qkv")] = pow2_type(_amax(t(p + "q") + t(p + "k") + t(p + "v")), W("qkv"))
        ov[k("attn_out.attn_out")] = pow2_type(_amax(t(p + "attn_out")), W("attn_out"))
        if W("prob") <= 8:
            # 8-bit probabilities shrink as 1/tokens: a fixed [0, 1) range would round most of them to 0
            # (16-bit ones, wide-attn, keep [0, 1): a peaked row on another image never saturates)
            ov[k("attn.prob")] = pow2_type(_amax(t(p + "attn_probs")), W("prob"), signed=False)
        weight(k("attn.qkv"))
        weight(k("attn.proj"))
        fc1, fc2, hidden = (k(mlp_tensor(part, moe)) for part in ("fc1", "fc2", "hidden"))
        if moe:
            w1 = np.asarray(params[fc1 + ".weight"], np.float64)
            b1 = np.asarray(params[fc1 + ".bias"], np.float64)
            # each expert over the tokens the float gate sent it on the calibration runs
            hid = [0.0]
            for x, idx in zip(t(p + "ln2"), t(p + "topk_idx")):
                for e in np.unique(idx):
                    rows = np.asarray(x, np.float64)[np.any(idx == e, axis=-1)]
                    hid.append(_gelu_amax(rows @ w1[e].T + b1[e]))
            ov[hidden + ".hidden"] = pow2_type(max(hid), W("hidden"))
        else:
            ov[hidden + ".hidden"] = pow2_type(_amax(t(p + "fc1")), W("hidden"))
        weight(fc1)
        weight(fc2)
        if moe:
            gates = [params[k(f"mlp.gate.{j}.w_gate")] for j in range(spec.num_tasks)]
            ov[k("mlp.gate.gate_w")] = pow2_type(_amax(gates), prec.types["gate_w"].W)
    types = dict(prec.types)
    types["patch_w"] = pow2_type(_amax([params["backbone.patch_embed.proj.weight"]]), prec.types["patch_w"].W)
    types["act"] = pow2_type(_amax(acts), prec.types["act"].W)
    # the 16-bit parameter types (biases, CLS / positions, LayerNorm gamma and beta) keep w16a32's binary
    # point unless the model holds a value beyond it (a trained gamma of 20): then the point moves just far
    # enough (golden/fit_types.py), so no parameter is clamped; models whose values fit are unchanged
    from .fit_types import fit_type, role_tensors
    for role, names in role_tensors(spec).items():
        if role != "patch_w":
            t = types[role]
            m = _amax([params[n] for n in names])
            if m > t.max_raw * t.lsb:
                types[role] = fit_type(t, m)
    prec = Precision(prec.name, types, {}, prec.description, prec.smooth)
    return prec.with_overrides(ov)


def calibration_taps(model, spec: ModelSpec, images=None) -> list:
    """Float taps of the calibration images (default: the seeded sample images, golden/calib_images.py
    sample_set) on every task (needs the torch model)."""
    import torch

    if images is None:
        images = sample_set(spec).images
    out = []
    with torch.no_grad():
        for img in images:
            for task in range(spec.num_tasks):
                taps = {}
                model.encode(torch.from_numpy(np.asarray(img, np.float32))[None], task, taps=taps)
                out.append({k: v[0].detach().numpy() for k, v in taps.items() if torch.is_tensor(v)})
    return out


def precision_for(precision, spec: ModelSpec, model=None, params=None, images=None) -> Precision:
    """The precision (a name or the uncalibrated :class:`Precision` of one), calibrated on the model
    where it needs calibration; ``images``: the calibration images (N, 3, H, W) (default: the seeded
    sample images; golden/calib_images.py reads a user's folder)."""
    prec = base_precision(precision) if isinstance(precision, str) else precision
    if prec.base == "w16a32-fit":   # parameter types fitted to the weights (no images)
        from .fit_types import fit_precision
        from .model import params_numpy
        if params is None and model is None:
            from edgemoe.errors import EdgeMoeError
            raise EdgeMoeError("precision w16a32-fit is fitted to a model's parameters: give the model")
        return fit_precision(spec, params if params is not None else params_numpy(model), prec)
    if prec.base != "w8a8":
        return prec
    from .model import params_numpy
    params = params if params is not None else params_numpy(model)
    taps = calibration_taps(model, spec, images)
    if "smooth" in prec.options:
        # the exponents first; then every type is calibrated on the smoothed parameters and taps
        from .smoothing import smooth_exponents, smooth_params, smooth_taps
        sm = smooth_exponents(spec, params, taps, prec.types["ln_param"], (prec.types["ln_out"].W, prec.types["w"].W))
        prec = Precision(prec.name, prec.types, prec.overrides, prec.description, sm)
        params = smooth_params(spec, sm, params)
        taps = [smooth_taps(sm, tp) for tp in taps]
    return calibrate_w8a8(spec, params, taps, prec)
