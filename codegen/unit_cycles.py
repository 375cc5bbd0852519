"""The routing of the schedule's MoE blocks (:func:`routing_counts`), and the units' cycle models that
estimate.py imports from here.

The cycle models of the units (the loop structure of the generated C++: trip counts, II 1 unless said,
a pipeline depth paid each time a pipelined loop starts; and the RTL units' throughput for the check
against the cocotb benches) live with their units in the units layer: ``edgemoe/units/<unit>.py``
(linear: engine_cycles, engine_load_steps, linear_cycles; attention: attention_cycles; layernorm:
layernorm_cycles; moe_route: moe_route_cycles; each RTL unit's rtl_cycles, looked up by
``edgemoe.units.rtl_unit_cycles``) and ``edgemoe/units/_cycles.py`` (stream_cycles).
"""
from __future__ import annotations

from edgemoe.errors import EdgeMoeError
from edgemoe.units import rtl_unit_cycles
from edgemoe.units._cycles import stream_cycles
from edgemoe.units.attention import attention_cycles
from edgemoe.units.layernorm import layernorm_cycles
from edgemoe.units.linear import engine_cycles, engine_load_steps, linear_cycles
from edgemoe.units.moe_route import moe_route_cycles


# ---- routing ------------------------------------------------------------------------------------
def routing_counts(spec, routing) -> list:
    """Per MoE block, the queue length of every expert."""
    if routing in (None, "balanced"):
        slots = spec.tokens * spec.top_k
        base, extra = divmod(slots, spec.num_experts)
        counts = [base + (1 if e < extra else 0) for e in range(spec.num_experts)]
        return [counts for _ in spec.moe_blocks]
    counts = [list(map(int, c)) for c in routing]
    if len(counts) != len(spec.moe_blocks):
        raise EdgeMoeError(f"routing: {len(counts)} blocks of queue lengths given, the model has "
                           f"{len(spec.moe_blocks)} MoE blocks")
    return counts


# the units' cycle models, re-exported for estimate.py
__all__ = ["engine_cycles", "engine_load_steps", "linear_cycles", "stream_cycles", "attention_cycles",
           "layernorm_cycles", "moe_route_cycles", "rtl_unit_cycles", "routing_counts"]
