"""Utilisation caps: the share of each board resource a design may use and still close timing.

Designs above about 80% of DSP or BRAM rarely close at 300 MHz on the first pass, and the Vivado runs
of published ZCU104 / KV260 reference designs sit at 50-80% (BRIEF 6): ``explore`` keeps DSP, BRAM36
and URAM at most 80% and LUT and FF at most 70% of the board unless told otherwise (``--max-util``).
"""
from __future__ import annotations

import math

from edgemoe.errors import EdgeMoeError

UTIL_CAPS = {"dsp": 0.80, "bram36": 0.80, "uram": 0.80, "lut": 0.70, "ff": 0.70}
_ALIASES = {"bram": "bram36", "brams": "bram36", "dsps": "dsp", "luts": "lut", "ffs": "ff"}


def parse_max_util(spec) -> dict:
    """Caps from ``--max-util``: one fraction for every resource (``0.9``) or ``key=fraction`` pairs
    (``dsp=0.85,lut=0.75``; the others keep their defaults); None: the defaults."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return dict(UTIL_CAPS)
    if isinstance(spec, dict):
        items = list(spec.items())
    else:
        text = str(spec).strip()
        items = None if "=" not in text else [tuple(p.split("=", 1)) for p in text.split(",") if p.strip()]
        if items is None:
            items = [(k, text) for k in UTIL_CAPS]
    caps = dict(UTIL_CAPS)
    for key, value in items:
        k = _ALIASES.get(str(key).strip().lower(), str(key).strip().lower())
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
        if k not in UTIL_CAPS or not 0 < v <= 1:
            raise EdgeMoeError(f"--max-util {spec!r}: expected one fraction in (0, 1] for every resource or "
                               f"key=fraction pairs, keys {', '.join(UTIL_CAPS)} (e.g. 0.9 or dsp=0.85,lut=0.75)")
        caps[k] = v
    return caps


def use_of(totals: dict, budget: dict) -> dict:
    """resource -> fraction of the board it takes (inf when the board has none of it and it is needed)."""
    out = {}
    for k in UTIL_CAPS:
        n, a = totals.get(k, 0), budget.get(k, 0)
        out[k] = n / a if a else (math.inf if n else 0.0)
    return out


def over_caps(totals: dict, budget: dict, caps: dict) -> dict:
    """resource -> (needed, the cap's amount) for every resource above its cap."""
    use = use_of(totals, budget)
    return {k: (totals[k], math.floor(caps[k] * budget.get(k, 0))) for k in UTIL_CAPS if use[k] > caps[k]}


def limiting_resource(totals: dict, budget: dict, caps: dict) -> dict:
    """The resource with the highest use relative to its cap: {name, use, cap, needed, available}."""
    use = use_of(totals, budget)
    k = max(UTIL_CAPS, key=lambda r: (use[r] / caps[r], r == "dsp"))
    return dict(name=k, use=round(use[k], 4) if math.isfinite(use[k]) else None, cap=caps[k],
                needed=totals.get(k, 0), available=budget.get(k, 0))


def describe_caps(caps: dict) -> str:
    return ", ".join(f"{k} {v:.0%}" for k, v in caps.items())


__all__ = ["UTIL_CAPS", "parse_max_util", "use_of", "over_caps", "limiting_resource", "describe_caps"]
