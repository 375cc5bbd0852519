"""Exact matrix products of fixed-point values: :func:`fx_matmul` (a MAC array's sum of exact
products in a wrapping accumulator, as the kernel's linear engine computes it) and the int64
machinery under it, :func:`exact_int_matmul` (``a @ b`` exact modulo 2**64 on float64 BLAS, by
splitting the wider operand into chunks) and :func:`int_bits_needed`.  The types and the scalar /
array arithmetic they build on are :mod:`edgemoe.golden.apfixed`'s.
"""
from __future__ import annotations

import numpy as np

from .apfixed import FixedType, Fx, wrap


def int_bits_needed(values) -> int:
    """Bits (with sign) that hold every integer in ``values``."""
    v = np.asarray(values, dtype=np.int64)
    if v.size == 0:
        return 1
    hi = int(v.max())
    lo = int(v.min())
    return max(max(hi, 0).bit_length(), (-lo - 1).bit_length() if lo < 0 else 0) + 1


def exact_int_matmul(a, b, a_bits: int | None = None, b_bits: int | None = None) -> np.ndarray:
    """``a @ b`` on int64 matrices, exact modulo 2**64, using float64 BLAS on split operands.

    ``b`` is cut into chunks narrow enough that each partial product sum stays below 2**53,
    so every float64 matmul is exact; the chunks are recombined with int64 shifts.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    n = a.shape[-1]
    a_bits = a_bits or int_bits_needed(a)
    b_bits = b_bits or int_bits_needed(b)
    sum_bits = max(1, int(np.ceil(np.log2(max(n, 2)))))
    if a_bits > b_bits:  # split the wider operand
        return np.swapaxes(exact_int_matmul(np.swapaxes(b, -1, -2), np.swapaxes(a, -1, -2),
                                            b_bits, a_bits), -1, -2)
    chunk = 52 - a_bits - sum_bits
    if chunk < 1:
        raise OverflowError(f"operands of {a_bits} bits over {n} terms are too wide for exact matmul")
    af = a.astype(np.float64)
    result = None
    rest = b
    shift = 0
    while True:
        if int_bits_needed(rest) <= chunk:
            part = np.matmul(af, rest.astype(np.float64))
            term = part.astype(np.int64) << np.int64(shift)
            result = term if result is None else result + term
            break
        low = rest & np.int64((1 << chunk) - 1)  # unsigned low chunk
        part = np.matmul(af, low.astype(np.float64))
        term = part.astype(np.int64) << np.int64(shift)
        result = term if result is None else result + term
        rest = rest >> np.int64(chunk)
        shift += chunk
    return result


def fx_matmul(a: Fx, b: Fx, acc: FixedType) -> Fx:
    """Sum of exact products ``a @ b`` accumulated in ``acc`` (wrap), as a MAC array does.

    ``acc`` must hold the products without rounding (``acc.F == a.F + b.F``); that is what the
    kernel's accumulators do, which makes the result independent of the summation order.
    """
    if acc.F != a.t.F + b.t.F:
        raise ValueError(f"accumulator {acc.cpp} must have {a.t.F + b.t.F} fraction bits "
                         f"for {a.t.cpp} x {b.t.cpp}")
    if acc.O != "AP_WRAP":
        raise ValueError("accumulators wrap; saturating accumulation is order dependent")
    s = exact_int_matmul(a.raw, b.raw, a.t.W, b.t.W)
    acc.record(s)
    return Fx(wrap(s, acc.W, acc.signed), acc)
