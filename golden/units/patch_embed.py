"""Patch embedding unit: 16x16 patches as rows of a linear layer, plus bias, CLS and positions."""
from __future__ import annotations

import numpy as np

from ..apfixed import Fx
from ..precision import Precision
from .linear import linear_fixed


def patchify(image: np.ndarray, patch: int) -> np.ndarray:
    """(C, H, W) -> (patches, C*p*p), patches row-major, each in (c, ky, kx) order like the conv."""
    c, h, w = image.shape
    g = image.reshape(c, h // patch, patch, w // patch, patch)
    return g.transpose(1, 3, 0, 2, 4).reshape((h // patch) * (w // patch), c * patch * patch)


def patch_embed_float(image, w, b, cls, pos) -> np.ndarray:
    """image (C,H,W); w (d, C, p, p); cls (d,); pos (T, d) -> tokens (T, d)."""
    p = w.shape[-1]
    x = patchify(np.asarray(image, np.float64), p) @ w.reshape(w.shape[0], -1).T.astype(np.float64) + b
    return np.concatenate([cls[None, :], x], 0) + pos


def patch_embed_fixed(pixels: Fx, w: Fx, b: Fx, cls: Fx, pos: Fx, prec: Precision) -> Fx:
    """pixels (patches, C*p*p) in ``pixel``; w (d, C*p*p) -> tokens (T, d) in ``act``.

    Per patch: y = act(acc + bias); token = act(y + pos). CLS: act(cls + pos[0]).
    """
    act = prec.t("act")
    y = linear_fixed(pixels, w, b, prec, act, acc_role="patch_acc")
    tok = (y + pos[1:]).cast(act)
    first = (cls + pos[0]).cast(act)
    return Fx(np.concatenate([first.raw[None, :], tok.raw], 0), act)
