"""Bit-exact emulation of Xilinx ``ap_fixed<W,I,Q,O>`` / ``ap_ufixed`` on numpy integers.

A fixed-point value is held as its raw two's-complement integer (``int64``) plus a
:class:`FixedType`; the real value is ``raw * 2**-F`` with ``F = W - I``.  Arithmetic between
:class:`Fx` values follows the ap_fixed result-type rules (products and sums are exact, with the
widths ap_fixed would give them); only :meth:`Fx.cast` loses information, and it does so with the
target type's quantisation and overflow modes, exactly as an assignment in C++ would.

Widths are limited to 64 bits, which is what the kernel uses: int64 arithmetic wraps modulo 2**64,
so a wrapped W <= 64 result is exact even when an intermediate sum overflowed int64.

Range monitoring: inside :func:`edgemoe.golden.range_counts.count_range`, every cast of a value into
a type (:meth:`Fx.cast`, :meth:`FixedType.overflow`, the accumulators of
:func:`edgemoe.golden.exact_matmul.fx_matmul`) counts the values that lie outside the target type's
range after quantisation (see that module).

This module holds the types (:class:`FixedType`, its casts, the result types :func:`mul_type` /
:func:`add_type`) and :class:`Fx`; the raw-code operations under them (wrap, rounding shifts) are in
:mod:`edgemoe.golden.raw_codes`, the exact matrix product in :mod:`edgemoe.golden.exact_matmul`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .range_counts import active_counts
from .raw_codes import _round_from_parts, shift_right_round, wrap

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
    def _rounded(self, x) -> np.ndarray:
        """Float ``x`` at this type's scale, rounded with its quantisation mode (integer valued)."""
        x = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise ValueError("cannot convert NaN or infinity to fixed point")
        with np.errstate(over="ignore", under="ignore"):
            v = np.ldexp(x, self.F)  # exact, unless it overflows to inf or underflows
        # a nonzero value that underflowed to 0 only matters through its sign
        v = np.where((v == 0) & (x != 0), np.copysign(5e-324, x), v)
        fl = np.floor(v)
        exact = v == fl
        # fl + 0.5 is exact whenever v has a fraction (|v| < 2**52); the difference v - fl is not
        # (for v in (-1, 0) it rounds, e.g. 1 + (-0.5 + 2**-54) == 0.5)
        mid = fl + 0.5
        half = ~exact & (v == mid)
        above = ~exact & (v > mid)
        return _round_from_parts(fl, exact, half, above, v < 0, self.Q)

    def quantize(self, x, record: bool = False) -> np.ndarray:
        """Raw integers of float values ``x`` as ``T(x)`` in C++ would give (double input).
        ``record``: count the values out of range in the active :func:`count_range` (an input cast)."""
        q = self._rounded(x)
        big = (q >= 2.0 ** 63) | (q < -(2.0 ** 63))  # also +-inf: beyond 2**1024
        if record and active_counts() is not None:
            tol = self._edge_tolerance
            self._record_count(int(np.count_nonzero((q > self.max_raw + tol) | (q < self.min_raw - tol))), q.size)
        if not np.any(big):
            return self._overflow(q.astype(np.int64))
        if self.O == "AP_WRAP":
            # |q| >= 2**63 is a multiple of 2**11 (53-bit mantissa): fmod by 2**64 is exact
            m = np.fmod(np.where(np.isinf(q), 0.0, q), 2.0 ** 64)
            m = np.where(m >= 2.0 ** 63, m - 2.0 ** 64, np.where(m < -(2.0 ** 63), m + 2.0 ** 64, m))
            return wrap(m.astype(np.int64), self.W, self.signed)
        raw = np.where(big, 0.0, q).astype(np.int64)
        return self._overflow(raw, big & (q > 0), big & (q < 0))

    @property
    def _hi_f(self) -> float:
        """max_raw + 1 as a float (exact: a power of two)."""
        return float(self.max_raw + 1)

    @property
    def _lo_f(self) -> float:
        return float(self.min_raw)

    def quantize_clamped(self, x):
        """(raw, out of range) of float values ``x``: rounded with this type's quantisation mode and
        clamped to its min / max (never wrapped, whatever the overflow mode), and the boolean mask of
        the values that did not fit (that were clamped)."""
        q = self._rounded(x)
        over_hi = q >= self._hi_f
        over_lo = q < self._lo_f
        raw = np.where(over_hi | over_lo, 0.0, q).astype(np.int64)
        raw = np.where(over_hi, np.int64(self.max_raw), np.where(over_lo, np.int64(self.min_raw), raw))
        return raw.astype(np.int64), over_hi | over_lo

    @property
    def range_text(self) -> str:
        """``[min, max]`` of the representable values, as text."""
        return f"[{self.to_float(self.min_raw):.6g}, {self.to_float(self.max_raw):.6g}]"

    @property
    def storage_cpp(self) -> str:
        """The type without its modes, e.g. ``ap_fixed<16,5>`` (how a stored parameter is declared)."""
        return f"{'ap_fixed' if self.signed else 'ap_ufixed'}<{self.W},{self.I}>"

    def to_float(self, raw) -> np.ndarray:
        return np.asarray(raw, dtype=np.int64).astype(np.float64) * self.lsb

    def overflow(self, raw, record: bool = True) -> np.ndarray:
        """Apply this type's overflow mode to integers already at this type's scale (a cast: the
        values out of range are counted in the active :func:`count_range` unless ``record`` is False)."""
        raw = np.asarray(raw, dtype=np.int64)
        if record:
            self.record(raw)
        return self._overflow(raw)

    def record(self, raw, too_big=None, too_small=None) -> None:
        """Count the values of ``raw`` (this type's scale) outside its range in the active
        :func:`count_range`; ``too_big`` / ``too_small``: masks of values beyond int64."""
        if active_counts() is None:
            return
        raw = np.asarray(raw)
        if not raw.size:
            return
        tol = self._edge_tolerance
        if self.W < 64:  # two reductions decide the usual case (everything fits)
            beyond = raw.max() > self.max_raw + tol or raw.min() < self.min_raw - tol
        else:  # int64 holds every signed 64-bit value; unsigned: the negative ones do not fit
            beyond = not self.signed and raw.min() < 0
        extra = too_big is not None and bool(too_big.any() or too_small.any())
        n = 0
        if beyond or extra:
            if self.W < 64:
                out = (raw > self.max_raw + tol) | (raw < self.min_raw - tol)
            else:
                out = (raw < 0) if not self.signed else np.zeros(raw.shape, dtype=bool)
            if extra:
                out = out | too_big | too_small
            n = int(np.count_nonzero(out))
        self._record_count(n, raw.size)

    @property
    def _edge_tolerance(self) -> int:
        """LSBs beyond the range that a saturating cast does not count: a value rounded onto the edge
        (1.0 into ap_ufixed<8,0> becomes 255/256) is off by one LSB, a rounding error, not an overflow.
        A wrapping type counts every value beyond: one LSB past the top wraps to the bottom."""
        return 0 if self.O == "AP_WRAP" else 1

    def _record_count(self, n_out: int, n: int) -> None:
        c = active_counts()
        if c is not None:
            c.add(self.O, n_out, n)

    def _overflow(self, raw, too_big=None, too_small=None) -> np.ndarray:
        """:meth:`overflow`, with extra masks of values known to lie beyond int64 (above/below)."""
        if self.O == "AP_WRAP":
            return wrap(raw, self.W, self.signed)
        lo, hi = self.min_raw, self.max_raw
        over_hi = raw > hi
        over_lo = raw < lo
        if too_big is not None:  # there ``raw`` holds a wrapped, meaningless value
            over_hi = (over_hi & ~too_small) | too_big
            over_lo = (over_lo & ~too_big) | too_small
        if self.O == "AP_SAT":
            sat_hi, sat_lo = hi, lo
        elif self.O == "AP_SAT_ZERO":
            sat_hi, sat_lo = 0, 0
        else:  # AP_SAT_SYM: signed types saturate to +-max (the minimum code is never produced)
            sat_hi, sat_lo = hi, (-hi if self.signed else lo)
        out = np.where(over_hi, np.int64(sat_hi), np.where(over_lo, np.int64(sat_lo), raw))
        if self.O == "AP_SAT_SYM" and self.signed:
            out = np.where(out == lo, np.int64(-hi), out)
        return out.astype(np.int64)

    def cast_raw(self, raw, src: "FixedType") -> np.ndarray:
        """Raw integers of ``T(v)`` where ``v`` holds ``raw`` at ``src``'s scale."""
        raw = np.asarray(raw, dtype=np.int64)
        shift = src.F - self.F
        if shift <= 0:
            shifted, too_big, too_small = _shl_checked(raw, -shift, src)
            self.record(shifted, too_big, too_small)
            return self._overflow(shifted, too_big, too_small)
        return self.overflow(shift_right_round(raw, shift, self.Q))


def _shl_checked(raw, n: int, src: FixedType):
    """``raw << n`` wrapped modulo 2**64, with masks of the elements whose exact result is
    above / below the int64 range (so a saturating target can still tell they overflowed)."""
    raw = np.asarray(raw, dtype=np.int64)
    if n == 0:
        no = np.zeros(raw.shape, dtype=bool)
        return raw, no, no
    too_big = raw > (((1 << 63) - 1) >> n)
    too_small = raw < -((1 << 63) >> n)
    shifted = raw << np.int64(n) if n < 64 else np.zeros_like(raw)  # C++: shifted out -> 0
    return shifted, too_big, too_small


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
        if self.t.W + 1 > MAX_WIDTH:
            raise OverflowError(f"-{self.t.cpp} is wider than {MAX_WIDTH} bits")
        t = FixedType(self.t.W + 1, self.t.I + 1, True)
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
