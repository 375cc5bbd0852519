"""Activation range monitoring for the bit-accurate fixed-point models.

Inside :func:`count_range`, every cast of a value into an ap_fixed type (see
:mod:`edgemoe.golden.apfixed`: :meth:`Fx.cast`, :meth:`FixedType.overflow`, the accumulators of
:func:`edgemoe.golden.exact_matmul.fx_matmul`) counts the values that lie outside the target type's range after quantisation,
i.e. the values that the cast saturates or wraps, per stage (:func:`range_stage`). Outside it,
casts cost one lookup.

This module knows nothing of the types themselves (apfixed imports it, not the other way round):
a cast reports its overflow mode and its counts through :func:`active_counts`.
"""
from __future__ import annotations

import contextvars
from contextlib import contextmanager


class RangeCounts:
    """Values that did not fit the type they were cast into, per stage: ``stages[name]`` is
    ``{"saturated": n, "wrapped": n, "values": n}`` (values: all the values cast at that stage)."""

    def __init__(self):
        self.stages: dict = {}
        self.prefix = ""
        self.stage = "other"

    def set_stage(self, name: str) -> None:
        self.stage = self.prefix + name

    def add(self, overflow_mode: str, n_out: int, n: int) -> None:
        """Count ``n`` values cast into a type with ``overflow_mode`` (``AP_WRAP``, ``AP_SAT``, ...),
        ``n_out`` of them out of its range (wrapped by ``AP_WRAP``, saturated by the others)."""
        d = self.stages.get(self.stage)
        if d is None:
            d = self.stages[self.stage] = {"saturated": 0, "wrapped": 0, "values": 0}
        d["wrapped" if overflow_mode == "AP_WRAP" else "saturated"] += n_out
        d["values"] += n


_ACTIVE = contextvars.ContextVar("edgemoe_range_counts", default=None)


def active_counts() -> RangeCounts | None:
    """The counts of the innermost :func:`count_range` running, or None outside one."""
    return _ACTIVE.get()


@contextmanager
def count_range(counts: RangeCounts | None = None):
    """Count the values that casts saturate or wrap while the block runs; yields the counts."""
    counts = counts if counts is not None else RangeCounts()
    token = _ACTIVE.set(counts)
    try:
        yield counts
    finally:
        _ACTIVE.reset(token)


def range_stage(name: str) -> None:
    """Name the stage whose casts follow (after the active counts' prefix, e.g. ``blocks.3.``)."""
    c = _ACTIVE.get()
    if c is not None:
        c.set_stage(name)


def range_prefix(prefix: str) -> None:
    """Put ``prefix`` (e.g. ``blocks.3.``) before the names of the stages that follow."""
    c = _ACTIVE.get()
    if c is not None:
        c.prefix = prefix


def range_total(counts: dict) -> int:
    """Values out of range (saturated or wrapped) over all the stages of :attr:`RangeCounts.stages`."""
    return sum(c["saturated"] + c["wrapped"] for c in counts.values())


def range_summary(counts: dict, top: int = 3) -> str:
    """One line on the activations that did not fit their types (stage -> saturated / wrapped)."""
    bad = [(name, c) for name, c in counts.items() if c["saturated"] or c["wrapped"]]
    if not bad:
        return f"fixed-point range: 0 values out of range at {len(counts)} stages"
    bad.sort(key=lambda nc: -(nc[1]["saturated"] + nc[1]["wrapped"]))

    def what(c):
        parts = [f"{c[k]} {k}" for k in ("saturated", "wrapped") if c[k]]
        return " + ".join(parts) + f" of {c['values']}"
    worst = ", ".join(f"{name} {what(c)}" for name, c in bad[:top])
    more = f", and {len(bad) - top} more stages" if len(bad) > top else ""
    return (f"fixed-point range: warning: {range_total(counts)} values out of range at {len(bad)} of "
            f"{len(counts)} stages: {worst}{more}")
