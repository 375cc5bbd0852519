"""Bit-exact emulation of Xilinx ``ap_fixed<W,I,Q,O>`` / ``ap_ufixed`` on numpy integers.

A fixed-point value is held as its raw two's-complement integer (``int64``) plus a
:class:`FixedType`; the real value is ``raw * 2**-F`` with ``F = W - I``.  Arithmetic between
:class:`Fx` values follows the ap_fixed result-type rules (products and sums are exact, with the
widths ap_fixed would give them); only :meth:`Fx.cast` loses information, and it does so with the
target type's quantisation and overflow modes, exactly as an assignment in C++ would.

Widths are limited to 64 bits, which is what the kernel uses: int64 arithmetic wraps modulo 2**64,
so a wrapped W <= 64 result is exact even when an intermediate sum overflowed int64.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

QUANT_MODES = ("AP_TRN", "AP_TRN_ZERO", "AP_RND", "AP_RND_ZERO", "AP_RND_MIN_INF",
               "AP_RND_INF", "AP_RND_CONV")
OVERFLOW_MODES = ("AP_WRAP", "AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM")
MAX_WIDTH = 64

_TYPE_RE = re.compile(r"^\s*ap_(u?)fixed\s*<\s*(\d+)\s*,\s*(-?\d+)\s*(?:,\s*(AP_\w+)\s*)?"
                      r"(?:,\s*(AP_\w+)\s*)?>\s*$")


@dataclass(frozen=True)
class FixedType:
    """``ap_fixed<W, I, Q, O>`` (``signed=True``) or ``ap_ufixed<W, I, Q, O>``."""

    W: int
    I: int
    signed: bool = True
    Q: str = "AP_TRN"
    O: str = "AP_WRAP"

    def __post_init__(self):
        if not 1 <= self.W <= MAX_WIDTH:
            raise ValueError(f"fixed-point width {self.W} outside 1..{MAX_WIDTH}")
        if self.Q not in QUANT_MODES:
            raise ValueError(f"unknown quantisation mode {self.Q!r} (known: {', '.join(QUANT_MODES)})")
        if self.O not in OVERFLOW_MODES:
            raise ValueError(f"unknown overflow mode {self.O!r} (known: {', '.join(OVERFLOW_MODES)})")

    # -- description -------------------------------------------------------------------------
    @property
    def F(self) -> int:
        return self.W - self.I

    @property
    def min_raw(self) -> int:
        return -(1 << (self.W - 1)) if self.signed else 0

    @property
    def max_raw(self) -> int:
        return (1 << (self.W - 1)) - 1 if self.signed else (1 << self.W) - 1

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.F

    @property
    def cpp(self) -> str:
        """The C++ spelling, with the modes only where they differ from the defaults."""
        base = "ap_fixed" if self.signed else "ap_ufixed"
        args = [str(self.W), str(self.I)]
        if self.Q != "AP_TRN" or self.O != "AP_WRAP":
            args.append(self.Q)
        if self.O != "AP_WRAP":
            args.append(self.O)
        return f"{base}<{', '.join(args)}>"

    def __str__(self) -> str:
        return self.cpp

    @classmethod
    def parse(cls, text: str) -> "FixedType":
        m = _TYPE_RE.match(text)
        if not m:
            raise ValueError(f"not an ap_fixed/ap_ufixed type: {text!r}")
        u, w, i, q, o = m.groups()
        return cls(int(w), int(i), not u, q or "AP_TRN", o or "AP_WRAP")

    def with_modes(self, Q: str | None = None, O: str | None = None) -> "FixedType":
        return FixedType(self.W, self.I, self.signed, Q or self.Q, O or self.O)

    # -- conversion --------------------------------------------------------------------------
    def quantize(self, x) -> np.ndarray:
        """Raw integers of float values ``x`` as ``T(x)`` in C++ would give (double input)."""
        v = np.asarray(x, dtype=np.float64) * (2.0 ** self.F)
        if not np.all(np.isfinite(v)):
            raise ValueError("cannot convert NaN or infinity to fixed point")
        fl = np.floor(v)
        frac = v - fl  # exact: v and floor(v) are doubles of the same binade or smaller
        q = _round_from_parts(fl, frac == 0.0, frac == 0.5, frac > 0.5, v < 0, self.Q)
        if np.any(np.abs(q) >= 2.0 ** 63):
            q = np.clip(q, -(2.0 ** 63), 2.0 ** 63 - 1024)  # beyond int64: saturate before overflow
        return self.overflow(q.astype(np.int64))

    def to_float(self, raw) -> np.ndarray:
        return np.asarray(raw, dtype=np.int64).astype(np.float64) * self.lsb

    def overflow(self, raw) -> np.ndarray:
        """Apply this type's overflow mode to integers already at this type's scale."""
        raw = np.asarray(raw, dtype=np.int64)
        lo, hi = self.min_raw, self.max_raw
        if self.O == "AP_WRAP":
            return wrap(raw, self.W, self.signed)
        over = (raw > hi) | (raw < lo)
        if self.O == "AP_SAT":
            return np.clip(raw, lo, hi)
        if self.O == "AP_SAT_ZERO":
            return np.where(over, 0, raw).astype(np.int64)
        # AP_SAT_SYM: signed types saturate to +-max (the minimum code is never produced)
        lo_sym = -hi if self.signed else lo
        return np.clip(raw, lo_sym, hi)

    def cast_raw(self, raw, src: "FixedType") -> np.ndarray:
        """Raw integers of ``T(v)`` where ``v`` holds ``raw`` at ``src``'s scale."""
        raw = np.asarray(raw, dtype=np.int64)
        shift = src.F - self.F
        if shift <= 0:
            return self.overflow(_shl_checked(raw, -shift, src))
        return self.overflow(shift_right_round(raw, shift, self.Q))


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


def _shl_checked(raw, n: int, src: FixedType) -> np.ndarray:
    """Left shift; beyond int64 only a wrapping target stays exact (mod 2**64), like C++."""
    return raw << np.int64(n) if n else raw


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
        odd = np.mod(fl, 2) != 0
        up = above_half | (half & odd)
    else:  # pragma: no cover - FixedType validates modes
        raise ValueError(mode)
    return fl + up


def shift_right_round(raw, n: int, mode: str = "AP_TRN") -> np.ndarray:
    """``raw / 2**n`` quantised with ap_fixed quantisation ``mode`` (n <= 0 shifts left, exactly)."""
    raw = np.asarray(raw, dtype=np.int64)
    if n <= 0:
        return raw << np.int64(-n)
    if n > 62:
        raise ValueError(f"right shift by {n} bits is outside the 64-bit emulation")
    fl = raw >> np.int64(n)
    rem = raw & np.int64((1 << n) - 1)
    half_v = np.int64(1 << (n - 1))
    exact = rem == 0
    half = rem == half_v
    above = rem > half_v
    negative = raw < 0
    return _round_from_parts(fl, exact, half, above, negative, mode).astype(np.int64)


def _result_signed(a: FixedType, b: FixedType) -> bool:
    return a.signed or b.signed


def mul_type(a: FixedType, b: FixedType) -> FixedType:
    """Type of ``a * b`` in ap_fixed: full precision."""
    if a.W + b.W > MAX_WIDTH:
        raise OverflowError(f"product {a.cpp} * {b.cpp} is wider than {MAX_WIDTH} bits")
    return FixedType(a.W + b.W, a.I + b.I, _result_signed(a, b))


def add_type(a: FixedType, b: FixedType) -> FixedType:
    """Type of ``a + b`` / ``a - b`` in ap_fixed: one carry bit over the wider operand."""
    f = max(a.F, b.F)
    i = max(a.I + (b.signed and not a.signed), b.I + (a.signed and not b.signed)) + 1
    if i + f > MAX_WIDTH:
        raise OverflowError(f"sum {a.cpp} + {b.cpp} is wider than {MAX_WIDTH} bits")
    return FixedType(i + f, i, _result_signed(a, b))


class Fx:
    """A numpy array of fixed-point values of one :class:`FixedType`."""

    __slots__ = ("raw", "t")

    def __init__(self, raw, t: FixedType):
        self.raw = np.asarray(raw, dtype=np.int64)
        self.t = t

    @classmethod
    def from_float(cls, x, t: FixedType) -> "Fx":
        return cls(t.quantize(x), t)

    @classmethod
    def zeros(cls, shape, t: FixedType) -> "Fx":
        return cls(np.zeros(shape, dtype=np.int64), t)

    def to_float(self) -> np.ndarray:
        return self.t.to_float(self.raw)

    def cast(self, t: FixedType) -> "Fx":
        return Fx(t.cast_raw(self.raw, self.t), t)

    # numpy-like plumbing
    @property
    def shape(self):
        return self.raw.shape

    def __getitem__(self, idx) -> "Fx":
        return Fx(self.raw[idx], self.t)

    def __len__(self):
        return len(self.raw)

    def reshape(self, *shape) -> "Fx":
        return Fx(self.raw.reshape(*shape), self.t)

    @property
    def T(self) -> "Fx":
        return Fx(self.raw.T, self.t)

    def __repr__(self):
        return f"Fx({self.t.cpp}, shape={self.raw.shape})"

    # exact arithmetic with ap_fixed result types
    def _align(self, other: "Fx"):
        f = max(self.t.F, other.t.F)
        return (self.raw << np.int64(f - self.t.F), other.raw << np.int64(f - other.t.F))

    def __add__(self, other: "Fx") -> "Fx":
        a, b = self._align(other)
        t = add_type(self.t, other.t)
        return Fx(wrap(a + b, t.W, t.signed), t)

    def __sub__(self, other: "Fx") -> "Fx":
        a, b = self._align(other)
        t = add_type(self.t, other.t)
        t = FixedType(t.W, t.I, True) if not t.signed else t  # differences may be negative
        return Fx(wrap(a - b, t.W, t.signed), t)

    def __neg__(self) -> "Fx":
        t = FixedType(min(self.t.W + 1, MAX_WIDTH), self.t.I + 1, True)
        return Fx(-self.raw, t)

    def __mul__(self, other: "Fx") -> "Fx":
        t = mul_type(self.t, other.t)
        return Fx(self.raw * other.raw, t)

    def __lt__(self, other):
        a, b = self._align(other)
        return a < b

    def __gt__(self, other):
        a, b = self._align(other)
        return a > b


def int_bits_needed(values) -> int:
    """Bits (with sign) that hold every integer in ``values``."""
    v = np.asarray(values, dtype=np.int64)
    if v.size == 0:
        return 1
    hi = int(v.max())
    lo = int(v.min())
    return max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0) + 1


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
    return Fx(wrap(s, acc.W, acc.signed), acc)
