"""MoE routing unit (patch reordering): gate, softmax over all experts, top-k, per-expert queues.

Gate logits = x . W_gate (no bias, no noise). Probabilities come from the single-pass softmax over
all experts in expert order; the top-k experts are chosen by logit (equal logits: the lower expert
index first) and weighted by their full-softmax probability, not renormalised over the top-k.
Tokens are queued per expert in token order with their scores; an expert whose queue is empty is
never computed (nor, in hardware, read from memory).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..apfixed import Fx
from ..precision import Precision
from ..range_counts import range_stage
from .linear import linear_fixed
from .softmax import softmax_fixed, softmax_float


@dataclass
class Route:
    logits: Fx          # [T, E]
    probs: Fx           # [T, E] in gate_score
    topk_idx: np.ndarray  # [T, k] expert ids, best first
    topk_score: Fx      # [T, k]
    queues: list        # per expert: (token indices [n], scores Fx [n])


def topk_by_logit(logits_raw: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest per row, best first; ties go to the lower index."""
    e = logits_raw.shape[-1]
    # stable sort on the negated value keeps lower indices first among equals
    order = np.argsort(-logits_raw, axis=-1, kind="stable")
    return order[..., :k] if k <= e else order


def route_fixed(x: Fx, w_gate: Fx, prec: Precision, top_k: int) -> Route:
    """x [T, d] (LayerNorm output), w_gate [E, d] (the task's gate, transposed to rows per expert)."""
    range_stage("gate_logits")
    logits = linear_fixed(x, w_gate, None, prec, prec.t("gate_logit"), acc_role="gate_acc")
    range_stage("gate_probs")
    probs = softmax_fixed(logits, prec, start=None, out_t=prec.t("gate_score"))
    idx = topk_by_logit(logits.raw, top_k)
    score = Fx(np.take_along_axis(probs.raw, idx, -1), probs.t)
    queues = []
    for e in range(w_gate.shape[0]):
        tok, slot = np.nonzero(idx == e)
        queues.append((tok, Fx(score.raw[tok, slot], score.t)))
    return Route(logits, probs, idx, score, queues)


def route_float(x, w_gate_dE, top_k: int):
    """Float gate: (probs [T, E], topk_idx [T, k], topk_probs [T, k])."""
    logits = np.asarray(x, dtype=np.float64) @ np.asarray(w_gate_dE, dtype=np.float64)
    p = softmax_float(logits, -1)
    idx = topk_by_logit(logits, top_k)
    return p, idx, np.take_along_axis(p, idx, -1)
