"""The hardware units, one module each (the "units" layer, issue 13).

A unit has the same name everywhere: golden/units/<u>.py (its bit-exact model), hls/include/<u>.h (the
C++), hls/rtl/<u>.v.j2 (the RTL template), sim/benches/<u>.py (its cocotb bench), tests/test_unit_<u>.py
and here edgemoe/units/<u>.py: everything about the unit that is not a template -- its constants
(pipeline depths, register offsets and mode codes), its RTL render context (``rtl_context``), its HLS
unit top's headers, ports and values (``HLS_TOP_HEADERS``, ``hls_top_streams``, ``hls_top_context``),
its cycle formulas (the C++'s, e.g. ``layernorm_cycles``, and the RTL unit's ``rtl_cycles``) and its
RTL rate (``ITEM``, ``rate(design)``).  ``_rtl`` and ``_cycles`` hold what the units share.

Layer: imports the bottom layer (edgemoe/*.py) and golden; codegen and sim import it.

``UNITS``: {name: unit module}; ``RTL_UNITS``: the ones with an RTL unit (``UNIT_NAMES``, in this order);
``unit_context(name, spec, prec, design)``: a unit's whole template context; ``rtl_unit_cycles(name,
workload)``: the RTL unit's cycle model.
"""
from __future__ import annotations

from edgemoe.errors import EdgeMoeError

from . import attention, gelu, layernorm, linear, moe_route, patch_embed, residual, softmax
from ._rtl import LIMITATIONS

UNITS = {"gelu": gelu, "softmax": softmax, "layernorm": layernorm, "linear": linear, "moe_route": moe_route,
         "attention": attention, "patch_embed": patch_embed, "residual": residual}
# every unit's C++ header, in the order the unit test harness includes them
HLS_HEADERS = tuple(UNITS[n].HLS_HEADER for n in ("patch_embed", "layernorm", "linear", "attention", "softmax", "gelu",
                                                   "moe_route", "residual"))
# the harness's extern "C" entries: the units' own, and the two that read the generated header back
HARNESS_COMMON = ("em_sizes", "em_deltas")
RTL_UNITS = {name: u for name, u in UNITS.items() if hasattr(u, "rtl_context")}
UNIT_NAMES = tuple(RTL_UNITS)       # gelu, softmax, layernorm, linear, moe_route


def top_name(name: str) -> str:
    return f"edgemoe_{name}"


def unit_context(name: str, spec, prec, design) -> dict:
    """Everything a unit's template needs (also used by the benches to pack the streams)."""
    if name not in UNIT_NAMES:
        raise EdgeMoeError(f"unknown RTL unit {name!r} (known: {', '.join(UNIT_NAMES)})")
    if prec.overrides:    # the templates read prec.t(role) without a block: overrides would be ignored
        raise EdgeMoeError(f"precision {prec.name!r} has per-tensor overrides: fold one block's types in "
                           "first (edgemoe.sim.rtl.block_precision)")
    design.validate(spec)
    top = top_name(name)
    ctx = dict(top=top, p=top, spec=spec, prec=prec, design=design, limitations=LIMITATIONS)
    ctx.update(RTL_UNITS[name].rtl_context(spec, prec, design))
    return ctx


def rtl_unit_cycles(unit: str, w: dict) -> int:
    """Cycles of an RTL unit's throughput phase (no gaps, no backpressure) from the workload its
    cocotb bench reports (``throughput_workload``): one item per cycle (a MAC tile per cycle for the
    linear engine), plus the pipeline's fill from the stage counts of the template."""
    u = RTL_UNITS.get(unit)
    if u is None:
        raise EdgeMoeError(f"no cycle model for RTL unit {unit!r}")
    return u.rtl_cycles(w)


__all__ = ["UNITS", "HLS_HEADERS", "HARNESS_COMMON", "RTL_UNITS",
           "UNIT_NAMES", "LIMITATIONS", "top_name", "unit_context", "rtl_unit_cycles"]
