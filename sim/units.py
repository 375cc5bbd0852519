"""Registry of the RTL units that ``edgemoe sim`` runs (one cocotb bench per unit), built from the units
layer (``edgemoe.units.RTL_UNITS``: a unit's item and rate are in ``edgemoe/units/<unit>.py``).

``RtlUnit.render(spec, prec, design, out_dir)`` writes the unit's Verilog (edgemoe.sim.rtl);
``design_rate`` is the unit's full rate in items per cycle at DEFAULT_SPEC's design point (what the
bench's no-backpressure ``items_per_cycle`` is compared to); ``rate(design)`` gives it for any
design point (the linear engine's rate is engine_in * engine_out MACs per cycle).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgemoe.spec import DEFAULT_PRECISION
from edgemoe.units import RTL_UNITS, top_name

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
        unit = RTL_UNITS.get(self.name)
        return unit.rate(design) if unit is not None else self.design_rate


def _unit(name: str) -> RtlUnit:
    from edgemoe.design import get_design
    unit = RTL_UNITS[name]
    return RtlUnit(name, top_name(name), f"edgemoe.sim.benches.{name}", unit.rate(get_design(DEFAULT_SPEC[2])), unit.ITEM)


UNITS: dict[str, RtlUnit] = {name: _unit(name) for name in RTL_UNITS}

__all__ = ["RtlUnit", "UNITS", "DEFAULT_SPEC"]
