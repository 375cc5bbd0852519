"""Single-pass softmax unit (attention rows and the MoE gate).

Per row a running max m and sum S: on a new score s, if s > m then S = S * exp(m - s) + 1 and
m = s, else S += exp(s - m). The row keeps (1/S, m); probabilities are exp(s - m) * (1/S).
exp(d) for d <= 0 is 2^(d * log2 e): the integer part is a shift, 2^f for the fraction f in [0, 1)
comes from a table with linear interpolation. 1/S is one integer division per row.
"""
from __future__ import annotations

import math

import numpy as np

from edgemoe.errors import EdgeMoeError

from ..apfixed import FixedType, Fx
from ..precision import EXP2_SEG_LOG2, Precision
from ..raw_codes import shift_right_round

LOG2E_T = FixedType(18, 1, False, "AP_RND", "AP_SAT")


def softmax_float(x, axis=-1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log2e_raw() -> int:
    return int(LOG2E_T.quantize(math.log2(math.e)))


def exp2_table(prec: Precision) -> np.ndarray:
    """Raw codes of 2^(i / 2^EXP2_SEG_LOG2), i = 0 .. 2^EXP2_SEG_LOG2, in the ``exp2_tab`` type."""
    n = 1 << EXP2_SEG_LOG2
    return prec.t("exp2_tab").quantize(2.0 ** (np.arange(n + 1) / n))


def _shift(raw, n):
    """raw * 2^n with floor for negative n (a right shift), elementwise n."""
    raw = np.asarray(raw, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    left = np.where(n > 0, raw << np.clip(n, 0, 62), raw)
    return np.where(n < 0, np.where(-n > 62, raw >> 62, left >> np.clip(-n, 0, 62)), left)


def exp_neg_fixed(d: Fx, prec: Precision, table=None) -> np.ndarray:
    """Raw codes (``exp`` type) of exp(d) for d <= 0."""
    table = exp2_table(prec) if table is None else table
    arg_t, tab_t, exp_t = prec.t("exp_arg"), prec.t("exp2_tab"), prec.t("exp")
    t = Fx(d.raw * np.int64(log2e_raw()), FixedType(d.t.W + LOG2E_T.W, d.t.I + LOG2E_T.I)).cast(arg_t).raw
    fa = arg_t.F
    n = t >> np.int64(fa)                      # integer part (floor), <= 0
    f = t & np.int64((1 << fa) - 1)            # fraction in [0, 1)
    sb = fa - EXP2_SEG_LOG2
    idx = f >> np.int64(sb)
    r = f & np.int64((1 << sb) - 1)
    p = table[idx] + (((table[idx + 1] - table[idx]) * r) >> np.int64(sb))  # 2^f at the table's scale
    return _shift(p, (exp_t.F - tab_t.F) + n)


def online_softmax_fixed(scores: Fx, prec: Precision, start=None, table=None):
    """Run the single-pass recurrence over the last axis of ``scores`` [..., N].

    Row r visits its scores in the order (start[r] + c) mod N, c = 0 .. N-1 (the hardware's skew).
    Returns (m: Fx of the row maxima, recip: raw 1/S codes in the ``recip`` type, S raw).
    """
    table = exp2_table(prec) if table is None else table
    s_all = scores.raw
    lead, n = s_all.shape[:-1], s_all.shape[-1]
    s2 = s_all.reshape(-1, n)
    rows = np.arange(s2.shape[0])
    st = np.zeros(s2.shape[0], dtype=np.int64) if start is None else \
        np.broadcast_to(np.asarray(start, dtype=np.int64), lead).reshape(-1)
    sum_t, exp_t, recip_t = prec.t("sm_sum"), prec.t("exp"), prec.t("recip")
    one = np.int64(1 << sum_t.F)
    m = s2[rows, st % n].copy()
    S = np.full(s2.shape[0], one, dtype=np.int64)
    for c in range(1, n):
        s = s2[rows, (st + c) % n]
        bigger = s > m
        d = Fx(np.where(bigger, m - s, s - m), FixedType(scores.t.W + 1, scores.t.I + 1))
        e = exp_neg_fixed(d, prec, table)
        rescaled = shift_right_round(S * e, exp_t.F) + one          # S * exp(m - s) + 1
        added = S + _shift(e, sum_t.F - exp_t.F)                     # S + exp(s - m)
        S = sum_t.overflow(np.where(bigger, rescaled, added))
        m = np.where(bigger, s, m)
    recip = recip_t.overflow(np.int64(1 << (recip_t.F + sum_t.F)) // np.maximum(S, 1))
    return Fx(m.reshape(lead), scores.t), recip.reshape(lead), S.reshape(lead)


def probs_fixed(scores: Fx, m: Fx, recip, prec: Precision, out_t=None, table=None) -> Fx:
    """p = exp(s - m) * (1/S), cast to ``out_t`` (default ``prob``)."""
    out_t = out_t or prec.t("prob")
    d = scores - Fx(m.raw[..., None], m.t)
    e = Fx(exp_neg_fixed(d, prec, table), prec.t("exp"))
    return (e * Fx(np.asarray(recip)[..., None], prec.t("recip"))).cast(out_t)


def softmax_fixed(scores: Fx, prec: Precision, start=None, out_t=None) -> Fx:
    """The whole unit: recurrence pass, then probabilities."""
    table = exp2_table(prec)
    m, recip, _ = online_softmax_fixed(scores, prec, start, table)
    return probs_fixed(scores, m, recip, prec, out_t, table)


def check_exp_arg(arg_t: FixedType, who: str = "") -> None:
    """The exp unit (HLS and RTL) indexes its 2^f table with the top EXP2_SEG_LOG2 fraction bits of exp_arg."""
    if arg_t.F < EXP2_SEG_LOG2:
        raise EdgeMoeError(f"{who}exp_arg {arg_t.cpp} needs at least {EXP2_SEG_LOG2} fraction bits "
                           "(the exp2 table index)")
