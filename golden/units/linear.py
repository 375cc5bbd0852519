"""The unified compute unit's linear engine: y = x W^T + b with exact products in a wide accumulator.

Every linear layer (Q, K, V, projection, dense fc1/fc2, expert fc1/fc2, the MoE gate) runs on it.
Because the accumulator holds every product exactly and wraps, the result does not depend on the
order or the tiling of the accumulation, only on the types.
"""
from __future__ import annotations

import numpy as np

from ..apfixed import FixedType, Fx
from ..exact_matmul import fx_matmul
from ..precision import Precision
from ..raw_codes import wrap


def linear_float(x, w, b=None) -> np.ndarray:
    y = np.asarray(x, dtype=np.float64) @ np.asarray(w, dtype=np.float64).T
    return y if b is None else y + b


def linear_fixed(x: Fx, w: Fx, b: Fx | None, prec: Precision, out_t, acc_role: str = "acc", wsh=None) -> Fx:
    """``x`` [N, in] (or [in]), ``w`` [out, in], ``b`` [out] -> [N, out] in ``out_t``.

    The accumulator starts at the bias (shifted to the accumulator's scale) and adds the products.
    ``wsh`` [out]: per-channel weight scales (golden/channel_scales.py): row o's codes are ``w.t`` with
    wsh[o] more fraction bits, so output column o's accumulator has them too (same width, same wrap).
    """
    acc_t = prec.acc_for(acc_role, x.t, w.t)
    acc = fx_matmul(x, w.T, acc_t)
    if wsh is None:
        return _bias_cast(acc.raw, acc_t, b, out_t)
    wsh = np.asarray(wsh, np.int64)
    out = np.zeros(acc.raw.shape, np.int64)
    res_t = None
    for s in np.unique(wsh):
        cols = wsh == s
        t = FixedType(acc_t.W, acc_t.I - int(s), True)
        y = _bias_cast(acc.raw[..., cols], t, None if b is None else b[cols], out_t)
        out[..., cols], res_t = y.raw, y.t
    return Fx(out, res_t)


def _bias_cast(raw, acc_t, b: Fx | None, out_t) -> Fx:
    """The accumulator's raw sums plus the bias at its scale, cast to ``out_t``."""
    acc = Fx(raw, acc_t)
    if b is not None:
        s = raw + b.cast(acc_t).raw
        acc_t.record(s)  # the accumulator wraps (counted when range monitoring is on)
        acc = Fx(wrap(s, acc_t.W, True), acc_t)
    return acc.cast(out_t)
