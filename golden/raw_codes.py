"""Operations on raw fixed-point codes (two's-complement integers in ``int64``) that ap_fixed's casts
and arithmetic are made of: :func:`wrap` keeps the low bits of a width (the ``AP_WRAP`` overflow and
every exact sum's result width), :func:`shift_right_round` divides by a power of two with one of
ap_fixed's quantisation modes, and ``_round_from_parts`` is the choice between floor and floor + 1
that every quantisation mode makes.  The types that use them are :mod:`edgemoe.golden.apfixed`'s.
"""
from __future__ import annotations

import numpy as np


def wrap(raw, width: int, signed: bool = True) -> np.ndarray:
    """Keep the low ``width`` bits (two's complement when signed)."""
    raw = np.asarray(raw, dtype=np.int64)
    if width >= 64:
        return raw if signed else raw  # unsigned 64-bit values beyond int64 are not used
    mask = np.int64((1 << width) - 1)
    low = raw & mask
    if signed:
        sign = np.int64(1 << (width - 1))
        return (low ^ sign) - sign
    return low



def _round_from_parts(fl, exact, half, above_half, negative, mode):
    """Pick floor or floor+1 for a value split into ``fl`` (floor) and its fraction."""
    up = np.zeros(np.shape(fl), dtype=bool)
    if mode == "AP_TRN":
        pass
    elif mode == "AP_TRN_ZERO":
        up = negative & ~exact
    elif mode == "AP_RND":
        up = half | above_half
    elif mode == "AP_RND_ZERO":
        up = above_half | (half & negative)
    elif mode == "AP_RND_MIN_INF":
        up = above_half
    elif mode == "AP_RND_INF":
        up = above_half | (half & ~negative)
    elif mode == "AP_RND_CONV":
        odd = np.mod(np.where(np.isfinite(fl), fl, 0), 2) != 0  # (inf: beyond 2**1024, even)
        up = above_half | (half & odd)
    else:  # pragma: no cover - FixedType validates modes
        raise ValueError(mode)
    return fl + up



def shift_right_round(raw, n: int, mode: str = "AP_TRN") -> np.ndarray:
    """``raw / 2**n`` quantised with ap_fixed quantisation ``mode`` (n <= 0 shifts left, exactly)."""
    raw = np.asarray(raw, dtype=np.int64)
    if n <= 0:
        return raw << np.int64(-n)
    if n <= 63:
        fl = raw >> np.int64(n)
        rem = raw & np.int64((1 << n) - 1)
        half_v = np.int64(1 << (n - 1))
        exact = rem == 0
        half = rem == half_v
        above = rem > half_v
    else:  # |raw| <= 2**63 <= 2**(n-1): the quotient is in [-0.5, 0.5)
        fl = raw >> np.int64(63)
        exact = raw == 0
        half = (raw == np.iinfo(np.int64).min) if n == 64 else np.zeros(raw.shape, dtype=bool)
        above = (raw < 0) & ~half
    negative = raw < 0
    return _round_from_parts(fl, exact, half, above, negative, mode).astype(np.int64)

