"""The numeric options of every command, checked in one place with one range each.

``cli.main`` runs :func:`check_args` on the parsed options of every subcommand, and the Python API
(``generate``, ``Design``) uses the same checks, so a value means the same thing everywhere.
"""
from __future__ import annotations

import math

from .errors import EdgeMoeError
from .kernel_interface import MAX_IMAGES

CLOCK_RANGE_MHZ = (50.0, 450.0)   # PL clocks a ZynqMP fabric design closes timing at (BRIEF section 3)
MAX_BATCH = 8                     # frames whose activations the kernel holds on chip at once

# option (argparse dest) -> (low, high, what): integers unless the low bound is a float
RANGES = {
    "clock": (*CLOCK_RANGE_MHZ, "MHz"),
    "batch": (1, MAX_BATCH, "frames per kernel pass"),
    "images": (1, MAX_IMAGES, "images per kernel call"),
    "vectors": (1, 10_000_000, "test vectors"),
    "seed": (0, 2**32 - 1, "seed"),
    "port": (0, 65535, "TCP port"),
    "latency": (0.0, 3600.0, "seconds"),
    "ddr_mb": (1, 4096, "MB"),
    "top": (1, 10_000, "points"),
    "timeout": (0.001, 86400.0, "seconds"),   # edgemoe-host run: the wait for ap_done
    "frames": (1, 1_000_000, "frames per task"),   # edgemoe-host run --images (run in calls of MAX_IMAGES)
    "min_cosine": (0.0, 1.0, "cosine against the float model"),   # golden --fixed, generate: the error budget
}


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def check_number(dest: str, value, option: str | None = None):
    """``value`` of option ``dest`` checked against its range; a one-line error names the range."""
    lo, hi, unit = RANGES[dest]
    option = option or _flag(dest)
    real = isinstance(lo, float)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (not real and not float(value).is_integer()):
        kind = "a number" if real else "an integer"
        raise EdgeMoeError(f"{option} {value!r}: expected {kind} in {_n(lo)}..{_n(hi)} ({unit})")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise EdgeMoeError(f"{option} {value:g}: outside the accepted range {_n(lo)}..{_n(hi)} ({unit}){_hint(dest)}")
    return float(value) if real else int(value)


def _n(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _hint(dest: str) -> str:
    if dest != "clock":
        return ""
    from edgemoe.board_facts import BOARDS   # board facts: the bottom layer
    return f"; board defaults: {', '.join(f'{n} {b.clock_mhz:g}' for n, b in BOARDS.items())}"


def check_clock(mhz, option: str = "--clock") -> float:
    return check_number("clock", mhz, option)


def check_args(args) -> None:
    """Check every numeric option of a parsed command line that has a range here (None: not given) and the precision's name."""
    for dest in RANGES:
        value = getattr(args, dest, None)
        if value is not None:
            setattr(args, dest, check_number(dest, value))
    if isinstance(getattr(args, "precision", None), str):
        # a precision and its options ("w8a8+wide-attn"), in their canonical order; unknown: one line
        from .spec import split_precision
        base, options = split_precision(args.precision)
        args.precision = "+".join((base,) + options)


__all__ = ["CLOCK_RANGE_MHZ", "RANGES", "check_number", "check_clock", "check_args"]
