"""The ``smooth`` option of w8a8: LayerNorm outliers moved into the next layer's weights (SmoothQuant-style).

Trained ViTs have a few LayerNorm channels with gammas / betas of 10-20: their outputs set the range of
the whole 8-bit LayerNorm output and the other channels round to a few codes (or zero).  For each
channel c of a LayerNorm output, an integer exponent k_c scales

* the LayerNorm's gamma_c and beta_c by 2^-k_c (so the output channel is y_c * 2^-k_c), and
* input column c of every layer that reads that output by 2^k_c: after ``norm1`` the qkv weights,
  after ``norm2`` fc1 (every expert's htoh4 in a MoE block) and every task's MoE gate.

A power of two is exact in floating point, so the float model computes the same function (to the
last bit, barring overflow); the kernel is unchanged: it runs on the re-parameterised weights.

k_c (0 .. MAX_SHIFT) is chosen per LayerNorm on the calibration images (:func:`smooth_exponents`): the
channels above a power-of-two threshold are scaled down to it, and the threshold is the one whose quantised
consumers have the least error (moving an outlier into the weights makes the per-tensor weight type
coarser: SmoothQuant's trade-off, measured here rather than set by an alpha).  The exponents are part of
the precision (``Precision.smooth``, in the manifest): every consumer (the fixed model, the packer)
applies them to the checkpoint's float parameters through :func:`smooth_params`; a project's weights
read back from weights.bin hold them applied (``quantize_params(smoothed=True)``).
"""
from __future__ import annotations


import numpy as np

from edgemoe.spec import ModelSpec, block_key, mlp_tensor

from .apfixed import FixedType
from .precision import pow2_type


MAX_SHIFT = 8     # |k_c| at most: the weight column grows by 2^k_c
NORMS = ("norm1", "norm2")
TAPS = {"norm1": "ln1", "norm2": "ln2"}   # the float model's tap of each LayerNorm's output


def consumers(spec: ModelSpec, block: int, norm: str) -> list:
    """``[(weight tensor, axis of its input channels)]`` of the layers that read ``norm``'s output."""
    k = lambda n: block_key(block, n)  # noqa: E731
    if norm == "norm1":
        return [(k("attn.qkv.weight"), -1)]
    moe = spec.is_moe(block)
    out = [(k(mlp_tensor("fc1", moe)) + ".weight", -1)]
    if moe:
        out += [(k(f"mlp.gate.{t}.w_gate"), 0) for t in range(spec.num_tasks)]   # w_gate is [embed, experts]
    return out


def _col_amax(w: np.ndarray, axis: int) -> np.ndarray:
    """max |w| over everything but the input-channel ``axis``."""
    w = np.abs(np.moveaxis(np.asarray(w, np.float64), axis, -1))
    return w.reshape(-1, w.shape[-1]).max(0)


def _q(v: np.ndarray, width: int) -> np.ndarray:
    """``v`` through the per-tensor power-of-two type of ``width`` bits that calibration would give it."""
    t = pow2_type(float(np.abs(v).max()), width)
    return t.to_float(t.quantize(v))


def _layer_error(x: np.ndarray, ln: tuple, ws: list, k: np.ndarray, widths: tuple) -> float:
    """Squared error, relative to the float output's energy, of every consumer of ``x`` [tokens, embed] with
    the channels scaled by 2^-k (their weight columns by 2^k), operands quantised per tensor; ``ln``:
    (normalised x, gamma, beta, their type): the scaled gamma and beta lose bits in their fixed type."""
    f = np.exp2(k.astype(np.float64))
    norm, g, b, lnp = ln
    xs = norm * lnp.to_float(lnp.quantize(g / f)) + lnp.to_float(lnp.quantize(b / f))
    xq = _q(xs, widths[0])
    err = ref = 0.0
    for w, axis in ws:
        w2 = np.moveaxis(w, axis, -1).reshape(-1, w.shape[axis])     # [outputs, embed]
        y = x @ w2.T
        yq = xq @ _q(w2 * f, widths[1]).T
        err += float(((yq - y) ** 2).sum())
        ref += float((y ** 2).sum())
    return err / max(ref, 1e-30)


def smooth_exponents(spec: ModelSpec, params: dict, taps_list: list, ln_param: FixedType,
                     widths: tuple = (8, 8)) -> dict:
    """``{"backbone.blocks.i.normN": [k_c per channel]}`` from the float taps of the calibration runs
    (``taps_list``, as golden/calibrate.calibration_taps) and the float parameters.

    Per LayerNorm, the channels whose largest |x| exceeds a threshold T are scaled down to it (k_c =
    ceil(log2(max|x_c| / T))); T is the power of two, from the largest channel's range down to
    1/2^MAX_SHIFT of it, whose quantised consumers (``widths``: the LayerNorm output's and the weights'
    bits; ``ln_param``: the type of the scaled gammas and betas) have the least output error on the
    calibration runs, "no channel moved" included.  That is each consumer's own error, operands quantised
    alone: the whole model can still come out worse (the MoE routes flip on small changes; measured in the
    issue-14 notes), which is why the option is switchable and off by default."""
    out = {}
    for i in range(spec.depth):
        for norm in NORMS:
            x = np.concatenate([np.asarray(tp[f"blocks.{i}.{TAPS[norm]}"], np.float64).reshape(-1, spec.embed)
                                for tp in taps_list])
            ax = np.maximum(np.abs(x).max(0), 1e-30)
            ws = [(np.asarray(params[name], np.float64), axis) for name, axis in consumers(spec, i, norm)]
            key = block_key(i, norm)
            g, b = (np.asarray(params[f"{key}.{leaf}"], np.float64) for leaf in ("weight", "bias"))
            ln = ((x - b) / np.where(g == 0, 1.0, g), g, b, ln_param)
            best_k, best = np.zeros(spec.embed, np.int64), _layer_error(x, ln, ws, np.zeros(spec.embed, np.int64), widths)
            top = np.ceil(np.log2(ax.max()))
            for j in range(1, MAX_SHIFT + 1):
                k = np.clip(np.ceil(np.log2(ax) - (top - j)), 0, MAX_SHIFT).astype(np.int64)
                e = _layer_error(x, ln, ws, k, widths)
                if e < best:
                    best_k, best = k, e
            if np.any(best_k):
                out[key] = [int(v) for v in best_k]
    return out


def smooth_params(spec: ModelSpec, smooth: dict, params: dict) -> dict:
    """``params`` (float state_dict, numpy) with the exponents ``smooth`` applied (a new dict; the scaled
    tensors are copies, the others shared)."""
    if not smooth:
        return params
    out = dict(params)
    for key, ks in smooth.items():
        block, norm = _block_norm(key)
        f = np.exp2(np.asarray(ks, np.float64))
        for leaf in ("weight", "bias"):
            out[f"{key}.{leaf}"] = np.asarray(params[f"{key}.{leaf}"], np.float64) / f
        for name, axis in consumers(spec, block, norm):
            w = np.asarray(params[name], np.float64)
            shape = [1] * w.ndim
            shape[axis] = -1
            out[name] = w * f.reshape(shape)
    return out


def smooth_taps(smooth: dict, taps: dict) -> dict:
    """Float taps (numpy) with the LayerNorm outputs scaled as the smoothed model computes them (the
    other taps are unchanged: the next layers undo the scale exactly)."""
    if not smooth:
        return taps
    out = dict(taps)
    for key, ks in smooth.items():
        block, norm = _block_norm(key)
        name = f"blocks.{block}.{TAPS[norm]}"
        if name in out:
            out[name] = np.asarray(out[name], np.float64) * np.exp2(-np.asarray(ks, np.float64))
    return out


def _block_norm(key: str) -> tuple:
    """"backbone.blocks.3.norm2" -> (3, "norm2")."""
    *_, block, norm = key.split(".")
    return int(block), norm


__all__ = ["MAX_SHIFT", "consumers", "smooth_exponents", "smooth_params", "smooth_taps"]
