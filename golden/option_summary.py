"""One line that says which options of a precision are on and what each did (``w8a8+smooth+per-channel``):
printed by ``golden --fixed``, ``generate`` and ``csim`` beside the precision's name."""
from __future__ import annotations

import numpy as np

from edgemoe.spec import PRECISION_OPTIONS

from .channel_scales import SHIFT_SUFFIX


def options_line(prec, q: dict | None = None) -> str | None:
    """``prec``'s options, on and off, with what the switched-on ones changed (``q``: the quantised parameters,
    :func:`edgemoe.golden.fixed_model.quantize_params`, for the per-channel shifts); None for a precision
    without options."""
    known = PRECISION_OPTIONS.get(prec.base)
    if not known:
        return None
    parts = []
    for o in known:
        if o not in prec.options:
            parts.append(f"{o} off")
        elif o == "smooth":
            ks = np.concatenate([np.asarray(v) for v in prec.smooth.values()]) if prec.smooth else np.zeros(1, int)
            parts.append(f"smooth on ({int(np.count_nonzero(ks))} LayerNorm channels in {len(prec.smooth)} LayerNorms "
                         f"scaled by 2^-k, k <= {int(ks.max())}; their weight columns by 2^k)")
        elif o == "wide-attn":
            parts.append(f"wide-attn on (qkv {prec.types['qkv'].cpp}, probabilities {prec.types['prob'].cpp})")
        elif o == "per-channel":
            sh = [np.asarray(v).ravel() for k, v in (q or {}).items() if k.endswith(SHIFT_SUFFIX)]
            if sh:
                a = np.concatenate(sh)
                parts.append(f"per-channel on ({np.count_nonzero(a)} of {a.size} output channels finer than their "
                             f"tensor's type, by up to {int(a.max())} bits)")
            else:
                parts.append("per-channel on")
    return f"{prec.name} options: " + "; ".join(parts)


__all__ = ["options_line"]
