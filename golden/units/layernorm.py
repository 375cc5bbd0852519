"""LayerNorm unit: mean and variance of a row held on chip, 1/sqrt by a table seed and Newton steps.

Order of operations (mirrored by the C++):
  sum   = sum(x)                       exact
  mean  = floor(sum / d)               at the activation scale
  diff  = x - mean                     cast to ln_diff
  var   = floor(sum(trunc(diff^2)) / d) squares truncated to ln_sq_acc's scale, summed exactly
  rstd  = rsqrt(var + eps)             normalise to m * 4^e, m in [1, 4); seed from a table indexed
                                       by m's top bits; RSQRT_NEWTON_STEPS times
                                       y = y * (3 - m * y^2) / 2; kept as mantissa y and exponent -e
  norm  = diff * y * 2^-e              exact product, one truncating shift into ln_norm
  y     = norm * gamma + beta          cast to the output type
"""
from __future__ import annotations

import numpy as np

from ..apfixed import Fx
from ..precision import RSQRT_IDX_BITS, RSQRT_MANT_F, RSQRT_NEWTON_STEPS, Precision
from ..raw_codes import shift_right_round

SEED_F = 17  # fraction bits of the rsqrt seed table (values in (0.5, 1])


def layernorm_float(x, gamma, beta, eps=1e-6) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def rsqrt_table() -> np.ndarray:
    """Seed 1/sqrt(m) at the middle of each mantissa interval [i, i+1) / 2^RSQRT_IDX_BITS in [1, 4)."""
    lo, hi = 1 << RSQRT_IDX_BITS, 4 << RSQRT_IDX_BITS
    mid = (np.arange(lo, hi, dtype=np.float64) + 0.5) / (1 << RSQRT_IDX_BITS)
    return np.round(mid ** -0.5 * (1 << SEED_F)).astype(np.int64)


def _bit_length(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.int64)
    out = np.zeros(v.shape, dtype=np.int64)
    for b in range(63):  # vectorised bit length of non-negative int64
        out += (v >> np.int64(b)) > 0
    return out


def _shift(raw, n):
    raw = np.asarray(raw, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    left = raw << np.clip(n, 0, 62)
    right = raw >> np.clip(-n, 0, 62)
    return np.where(n >= 0, left, right)


def rsqrt_fixed(v_raw, v_f: int):
    """1/sqrt(v) for v = v_raw * 2^-v_f > 0 as a mantissa and an exponent: (y, k) with
    1/sqrt(v) = y * 2^-RSQRT_MANT_F * 2^k and y in (2^(MANT_F-1), 2^MANT_F]."""
    v = np.maximum(np.asarray(v_raw, dtype=np.int64), 1)
    nb = _bit_length(v)
    e = nb - 1 - v_f                      # v = m * 2^e, m in [1, 2)
    odd = e & 1
    e = e - odd                           # make e even: m in [1, 4)
    m = _shift(v, RSQRT_MANT_F - (nb - 1) + odd)   # mantissa at RSQRT_MANT_F fraction bits
    table = rsqrt_table()
    idx = (m >> np.int64(RSQRT_MANT_F - RSQRT_IDX_BITS)) - (1 << RSQRT_IDX_BITS)
    y = table[idx] << np.int64(RSQRT_MANT_F - SEED_F)              # seed at MANT_F
    three = np.int64(3 << RSQRT_MANT_F)
    for _ in range(RSQRT_NEWTON_STEPS):                           # y = y * (3 - m y^2) / 2
        ysq = shift_right_round(y * y, RSQRT_MANT_F)              # MANT_F, <= 1
        my = shift_right_round(m * ysq, RSQRT_MANT_F)             # MANT_F, about 1
        y = shift_right_round(y * (three - my), RSQRT_MANT_F + 1)
    return y, -(e >> 1)


def rsqrt_to_type(y, k, out_t) -> np.ndarray:
    """Raw codes of y * 2^-MANT_F * 2^k in ``out_t`` (for taps and tests)."""
    return out_t.overflow(_shift(y, out_t.F - RSQRT_MANT_F + k), record=False)  # a tap only


def eps_raw(sq_t, eps: float) -> int:
    """eps at the variance's scale, rounded to nearest (a constant of the generated C++)."""
    return max(int(sq_t.with_modes(Q="AP_RND", O="AP_SAT").quantize(eps)), 1)


def layernorm_fixed(x: Fx, gamma: Fx, beta: Fx, prec: Precision, eps: float = 1e-6,
                    out_t=None, taps: dict | None = None) -> Fx:
    """LayerNorm over the last axis of ``x`` (rows of the residual stream)."""
    out_t = out_t or prec.t("ln_out")
    d = x.shape[-1]
    diff_t, sq_t, rstd_t, norm_t = prec.t("ln_diff"), prec.t("ln_sq_acc"), prec.t("ln_rstd"), prec.t("ln_norm")
    s = x.raw.sum(-1, keepdims=True)                      # exact at x's scale
    mean = Fx(s // d, x.t)                                # floor division
    diff = (x - mean).cast(diff_t)
    sq = shift_right_round(diff.raw * diff.raw, 2 * diff_t.F - sq_t.F)
    var = sq_t.overflow(sq.sum(-1, keepdims=True)) // d
    v = var + eps_raw(sq_t, eps)
    y, k = rsqrt_fixed(v, sq_t.F)
    # norm = diff * y * 2^k: the mantissa product is exact, one truncating shift per row
    norm = Fx(norm_t.overflow(_shift(diff.raw * y, norm_t.F - diff_t.F - RSQRT_MANT_F + k)), norm_t)
    rstd = Fx(rsqrt_to_type(y, k, rstd_t), rstd_t)
    if taps is not None:
        taps.update(mean=mean, var=Fx(var, sq_t), rstd=rstd, norm=norm)
    return (norm * gamma + beta).cast(out_t)
