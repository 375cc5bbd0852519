"""ap_fixed raw codes -> float, numpy only (the board has no edgemoe.golden and no torch).

The kernel stores each value in the smallest of 8/16/32/64 bits that holds its W bits, packed
little-endian into the AXI words, so an output buffer is a flat little-endian array of containers.
"""
from __future__ import annotations

import re

import numpy as np

from edgemoe.errors import EdgeMoeError
from edgemoe.kernel_interface import storage_bits

_TYPE_RE = re.compile(r"^\s*ap_(u?)fixed\s*<\s*(\d+)\s*,\s*(-?\d+)\s*(?:,[^>]*)?>\s*$")


class FixedFormat:
    """The numeric part of an ap_[u]fixed<W, I, ...> type (quantisation/overflow modes ignored)."""

    def __init__(self, width: int, int_bits: int, signed: bool):
        if not 1 <= width <= 64:
            raise EdgeMoeError(f"ap_fixed width {width} outside 1..64")
        self.width, self.int_bits, self.signed = int(width), int(int_bits), bool(signed)

    @classmethod
    def parse(cls, text: str) -> "FixedFormat":
        m = _TYPE_RE.match(str(text))
        if m is None:
            raise EdgeMoeError(f"cannot read the fixed-point type {text!r} (expected ap_fixed<W, I> or ap_ufixed<W, I>)")
        return cls(int(m.group(2)), int(m.group(3)), m.group(1) != "u")

    @property
    def frac_bits(self) -> int:
        return self.width - self.int_bits

    @property
    def storage_bits(self) -> int:
        return storage_bits(self.width)

    def raw_from_bytes(self, data, count: int) -> np.ndarray:
        """The first ``count`` raw codes (int64, sign-extended when signed) of packed bytes."""
        sb = self.storage_bits
        need = count * sb // 8
        if isinstance(data, np.ndarray):
            buf = np.ascontiguousarray(data).view(np.uint8)[:need].tobytes()
        else:
            buf = bytes(data[:need])
        if len(buf) < need:
            raise EdgeMoeError(f"{len(buf)} bytes hold fewer than {count} values of {sb} bits")
        u = np.frombuffer(buf, dtype=f"<u{sb // 8}", count=count).astype(np.uint64)
        if self.width < 64:
            u = u & np.uint64((1 << self.width) - 1)
        if not self.signed:
            return u.astype(np.int64)
        if self.width == 64:
            return u.view(np.int64)
        sign = np.uint64(1 << (self.width - 1))
        # two's complement sign extension done in int64 (values fit: width < 64)
        return u.astype(np.int64) - ((u & sign) != 0).astype(np.int64) * (1 << self.width)

    def to_float(self, raw: np.ndarray) -> np.ndarray:
        return np.asarray(raw, dtype=np.float64) * (2.0 ** -self.frac_bits)

    def decode(self, data, count: int) -> np.ndarray:
        return self.to_float(self.raw_from_bytes(data, count))

    def __repr__(self) -> str:
        return f"ap_{'' if self.signed else 'u'}fixed<{self.width}, {self.int_bits}>"


__all__ = ["FixedFormat"]
