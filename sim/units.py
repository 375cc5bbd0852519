"""Registry of the RTL units that ``edgemoe sim`` runs (one cocotb bench per unit).

``RtlUnit.render(spec, prec, design, out_dir)`` writes the unit's Verilog (edgemoe.sim.rtl);
``design_rate`` is the unit's full rate in items per cycle at DEFAULT_SPEC's design point (what the
bench's no-backpressure ``items_per_cycle`` is compared to); ``rate(design)`` gives it for any
design point (the linear engine's rate is engine_in * engine_out MACs per cycle).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgemoe.spec import DEFAULT_PRECISION

DEFAULT_SPEC = ("micro", DEFAULT_PRECISION, "edge-moe")   # preset, precision, design used by `edgemoe sim`


@dataclass(frozen=True)
class RtlUnit:
    name: str                  # "gelu" | "softmax" | "layernorm" | "linear" | "moe_route"
    top: str                   # Verilog top module name, e.g. "edgemoe_gelu"
    bench_module: str          # e.g. "edgemoe.sim.benches.gelu" (cocotb test module)
    design_rate: float         # items per cycle at full rate (at DEFAULT_SPEC's design)
    item: str = "value"        # what an item is

    def render(self, spec, prec, design, out_dir) -> list[Path]:
        from .rtl import render_unit
        return render_unit(self.name, spec, prec, design, out_dir)

    def rate(self, design) -> float:
        return float(design.engine_in * design.engine_out) if self.name == "linear" else self.design_rate


def _default_macs() -> float:
    from edgemoe.design import get_design
    return float(get_design(DEFAULT_SPEC[2]).macs_per_cycle)


def _unit(name: str, rate: float, item: str) -> RtlUnit:
    return RtlUnit(name, f"edgemoe_{name}", f"edgemoe.sim.benches.{name}", rate, item)


UNITS: dict[str, RtlUnit] = {
    "gelu": _unit("gelu", 1.0, "value"),
    "softmax": _unit("softmax", 1.0, "score"),
    "layernorm": _unit("layernorm", 1.0, "value"),   # a vector is a row of embed values
    "linear": _unit("linear", _default_macs(), "MAC"),
    "moe_route": _unit("moe_route", 1.0, "token"),   # a vector is a token (its E gate logits)
}

__all__ = ["RtlUnit", "UNITS", "DEFAULT_SPEC"]
