"""The error budget of a precision (``--min-cosine``): every stage of the fixed model against the float model.

After calibration, the fixed model runs the first calibration image on every task and each stage tap is
compared with the float model's (golden/stage_error.py).  A stage below the budget is a tensor the precision
cannot hold.  When it is an attention tensor (Q, K, V, scores, probabilities, attention output) and the
precision is w8a8 without ``wide-attn``, the calibration keeps the attention wider (``+wide-attn``), says so,
and checks again; a stage still below the budget is an error that names it, its cosine and the budget.
"""
from __future__ import annotations

import sys

import numpy as np

from edgemoe.errors import EdgeMoeError
from edgemoe.spec import PRECISION_OPTIONS, precision_name

from .stage_error import INDEX_TAPS

ATTENTION_TAPS = ("q", "k", "v", "scores", "attn_probs", "attn_out")
WIDE_ATTN = "wide-attn"


def stages_below(model, spec, prec, params, images, min_cosine: float, attn_rows=None, saturate_params=False) -> list:
    """The stage rows (the weakest per stage over the tasks) whose cosine is below ``min_cosine`` on the first of
    ``images``, weakest first."""
    from .stage_error import run_stage_errors
    worst = {}
    for task in range(spec.num_tasks):
        for r in run_stage_errors(model, spec, prec, params, np.asarray(images[0]), task, attn_rows, saturate_params):
            if r["stage"].rsplit(".", 1)[-1] in INDEX_TAPS:
                continue
            if r["stage"] not in worst or r["cosine"] < worst[r["stage"]]["cosine"]:
                worst[r["stage"]] = dict(r, task=task)
    return sorted((r for r in worst.values() if r["cosine"] < min_cosine), key=lambda r: r["cosine"])


def _is_attention(stage: str) -> bool:
    return stage.rsplit(".", 1)[-1] in ATTENTION_TAPS


def within_budget(precision, spec, model, params, images, min_cosine: float, attn_rows=None,
                  saturate_params: bool = False, log=None):
    """The calibrated precision for ``precision`` (a name or an uncalibrated Precision) whose every stage
    reaches ``min_cosine`` on the first calibration image (see the module's text); the wider attention is
    switched on (with one line to ``log``, default stderr) when an attention stage needs it."""
    from .calibrate import precision_for
    from .precision import base_precision
    log = log or (lambda msg: print(msg, file=sys.stderr))
    base = base_precision(precision) if isinstance(precision, str) else precision
    prec = precision_for(base, spec, model, params, images=images)
    low = stages_below(model, spec, prec, params, images, min_cosine, attn_rows, saturate_params)
    if low and base.base in PRECISION_OPTIONS and WIDE_ATTN in PRECISION_OPTIONS[base.base] \
            and WIDE_ATTN not in base.options and any(_is_attention(r["stage"]) for r in low):
        first = next(r for r in low if _is_attention(r["stage"]))
        wider = precision_name(base.base, base.options + (WIDE_ATTN,))
        log(f"edgemoe: {base.name}: stage {first['stage']} has cosine {first['cosine']:.6f} against float (budget "
            f"{min_cosine:g}): keeping the attention at 16 bits ({wider})")
        prec = precision_for(wider, spec, model, params, images=images)
        low = stages_below(model, spec, prec, params, images, min_cosine, attn_rows, saturate_params)
    if low:
        w = low[0]
        more = f"; {len(low) - 1} more stage{'s' if len(low) > 2 else ''} below it" if len(low) > 1 else ""
        hint = [f"+{o}" for o in _helping_options(w["stage"]) if o in PRECISION_OPTIONS.get(prec.base, {})
                and o not in prec.options]
        raise EdgeMoeError(f"precision {prec.name} misses its error budget: stage {w['stage']} ({w.get('type', '?')}) has "
                           f"cosine {w['cosine']:.6f} against the float model on calibration image 0, task {w['task']} "
                           f"(--min-cosine {min_cosine:g}){more}; try "
                           + (f"{' or '.join(hint)}, " if hint else "") + "a wider precision (w16a32-fit) or a lower budget")
    return prec


def _helping_options(stage: str) -> tuple:
    """The options that address a stage's error: the LayerNorm outputs (smoothing), the linear layers' outputs
    (per-channel weight scales), the attention (16 bits)."""
    leaf = stage.rsplit(".", 1)[-1]
    if leaf in ("ln1", "ln2"):
        return ("smooth",)
    if leaf in ("q", "k", "v"):
        return ("per-channel", WIDE_ATTN)
    if leaf in ATTENTION_TAPS:
        return (WIDE_ATTN,)
    return ("per-channel",)


def calibrated(precision, spec, model, params, images=None, min_cosine: float | None = None, attn_rows=None,
               saturate_params: bool = False):
    """The calibrated precision (golden/calibrate.py precision_for), held to ``min_cosine`` when one is given
    (:func:`within_budget`, on ``images`` or the seeded sample images)."""
    if min_cosine is None:
        from .calibrate import precision_for
        return precision_for(precision, spec, model, params, images=images)
    if images is None:
        from .calib_images import sample_set
        images = sample_set(spec).images
    return within_budget(precision, spec, model, params, images, min_cosine, attn_rows, saturate_params)


__all__ = ["ATTENTION_TAPS", "stages_below", "within_budget", "calibrated"]
