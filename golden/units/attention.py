"""Reordered attention unit: Q.K^T with the single-pass softmax, then A.V, for all heads.

The hardware keeps a group of ``attn_rows`` query rows on chip and streams K once per group; row r
of a group starts at key (r mod attn_rows) and wraps, so that is the order in which the single-pass
softmax sees the scores of row r (the order changes the rounding, hence it is part of the spec).
"""
from __future__ import annotations

import numpy as np

from ..apfixed import Fx
from ..exact_matmul import fx_matmul
from ..precision import Precision
from ..range_counts import range_stage
from .softmax import exp2_table, online_softmax_fixed, probs_fixed, softmax_float


def attention_float(q, k, v, scale: float):
    """q, k, v: [H, T, hd] -> (out [T, H*hd], probs [H, T, T])."""
    s = np.einsum("htd,hsd->hts", q, k) * scale
    p = softmax_float(s, -1)
    o = np.einsum("hts,hsd->htd", p, v)
    return o.transpose(1, 0, 2).reshape(q.shape[1], -1), p


def row_start(tokens: int, attn_rows: int) -> np.ndarray:
    """First key each query row visits."""
    return np.arange(tokens) % max(attn_rows, 1)


def split_heads(x: Fx, heads: int) -> Fx:
    """[T, H*hd] -> [H, T, hd]."""
    t, d = x.shape
    return Fx(x.raw.reshape(t, heads, d // heads).transpose(1, 0, 2), x.t)


def attention_fixed(q: Fx, k: Fx, v: Fx, scale_raw: int, prec: Precision, attn_rows: int,
                    taps: dict | None = None, out_t=None, prob_t=None) -> Fx:
    """q, k, v: [H, T, hd] in the ``qkv`` type -> attention output [T, H*hd] in ``attn_out``.

    All heads advance together (the unit reads one K block of every head per cycle)."""
    h, t, hd = q.shape
    out_t = out_t or prec.t("attn_out")
    prob_t = prob_t or prec.t("prob")
    score_t = prec.t("score")
    qk_t = prec.acc_for("qk_acc", q.t, k.t)
    av_t = prec.acc_for("av_acc", prob_t, v.t)
    scale = Fx(np.int64(scale_raw), prec.t("scale"))
    table = exp2_table(prec)
    range_stage("scores")
    dot_t = prec.t("qk")
    raw = np.stack([fx_matmul(q[i], k[i].T, qk_t).cast(dot_t).raw for i in range(h)])    # q.k
    s = (Fx(raw, dot_t) * scale).cast(score_t)                                             # * scale
    range_stage("attn_probs")
    m, recip, _ = online_softmax_fixed(s, prec, row_start(t, attn_rows), table)
    p = probs_fixed(s, m, recip, prec, prob_t, table)
    range_stage("attn_out")
    out = np.stack([fx_matmul(p[i], v[i], av_t).cast(out_t).raw for i in range(h)])
    if taps is not None:
        taps["scores"] = s
        taps["attn_probs"] = p
    return Fx(out.transpose(1, 0, 2).reshape(t, h * hd), out_t)
