"""GELU unit: GELU(x) = ReLU(x) - d(|x|), d(a) = a * Phi(-a) from a table with linear interpolation.

The table covers [0, GELU_RANGE] in steps of 2^-GELU_STEPS_LOG2 (177 entries for 5.5 and 1/32);
beyond it d is below the table's resolution and GELU is ReLU. Exact-erf GELU, not the tanh form.
"""
from __future__ import annotations

import math

import numpy as np

from ..apfixed import Fx
from ..precision import GELU_RANGE, GELU_STEPS_LOG2, Precision

_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu_float(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def table_size() -> int:
    return int(round(GELU_RANGE * (1 << GELU_STEPS_LOG2))) + 1


def gelu_limit_raw(f: int) -> int:
    """GELU_RANGE as a raw code of an input with ``f`` fraction bits: |x| >= it is outside the table (ReLU).
    The one definition: the config header's GELU_LIMIT_RAW and the RTL's LIMIT are this value."""
    return int(GELU_RANGE * (1 << f)) if f >= 0 else int(GELU_RANGE) >> -f


def gelu_table(prec: Precision) -> np.ndarray:
    """Raw codes of d(a) = a * Phi(-a) at a = i / 2^GELU_STEPS_LOG2 in the ``gelu_tab`` type."""
    a = np.arange(table_size(), dtype=np.float64) / (1 << GELU_STEPS_LOG2)
    d = a - gelu_float(a)  # = a * Phi(-a)
    return prec.t("gelu_tab").quantize(d)


def gelu_fixed(x: Fx, prec: Precision, out_t=None, table=None) -> Fx:
    """GELU of ``x`` (already in the ``gelu_in`` type) into ``out_t`` (default: ``hidden``)."""
    out_t = out_t or prec.t("hidden")
    tab_t = prec.t("gelu_tab")
    table = gelu_table(prec) if table is None else table
    f = x.t.F
    a = np.abs(x.raw)
    inside = a < gelu_limit_raw(f)
    sb = f - GELU_STEPS_LOG2  # fraction bits left below the table step
    if sb >= 0:
        idx = a >> np.int64(sb)
        r = a & np.int64((1 << sb) - 1)
    else:
        idx, r, sb = a << np.int64(-sb), np.zeros_like(a), 0
    idx = np.where(inside, idx, 0)
    t0 = table[idx]
    t1 = table[np.minimum(idx + 1, len(table) - 1)]
    d = t0 + (((t1 - t0) * r) >> np.int64(sb))  # interpolate at the table's scale (floor)
    d = np.where(inside, d, 0)
    relu = Fx(np.maximum(x.raw, 0), x.t)
    return (relu - Fx(d, tab_t)).cast(out_t)
