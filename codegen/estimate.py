"""Cycle and resource model of the kernel that ``edgemoe generate`` writes.

Every figure comes from the loop structure of the generated C++ (hls/include/*.h and the top
template): the unit calls are those of the kernel plan (codegen/kernel_plan.py), which the top template
renders; trip counts from the spec, initiation interval 1 for every pipelined loop, a pipeline
depth paid each time a pipelined loop starts (each unit's module in edgemoe/units/), the weight stream's rate from
the AXI width, the weight ports, the PS ports they land on and the board's DDR (codegen/bandwidth.py).
Resources come from the multipliers, buffers, ROMs, FIFOs and registers that C++ declares
(codegen/estimate_resources.py). The model is checked against the cycles the cocotb benches measure
on the RTL units and against the published Edge-MoE figure (34.64 ms on ZCU102; codegen/published.py).

Assumptions (named so that a reader can change them):

* ``EFFICIENCY``: a long burst stream reaches 75% of the peak of a PS port or of the DDR (FPT'19).
* Routing: ``balanced`` gives every expert ceil or floor of T * top_k / E tokens (every expert
  runs, the most weight traffic); a list of per-block queue lengths can replace it.
* A PS slave port (HP/HPC) moves at most 128 bits per cycle of the PL clock; HP1 and HP2 share one
  DDR controller port.
* The DDR4 data rate is the board's (``Board.ddr``): DDR4-2133 on ZCU104 / ZCU102 as PYNQ boots them.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from edgemoe.errors import EdgeMoeError
from edgemoe.units.residual import residual_cycles

from .bandwidth import EFFICIENCY, PS_PORT_BITS, Bandwidth
from .buffers import storage_bits
from .caps import UTIL_CAPS, limiting_resource, over_caps, use_of
from .estimate_resources import RESOURCE_KEYS, memories, rescale_lut, rescale_span_of, resources, totals
from .kernel_plan import KERNEL_PLAN, sizes
from .model_common import (MAXI_READ_LATENCY, Layer, Widths, clog2, dsp_per_mult, engine_depth,
                           macs_per_dsp_best, packed_int8)
from .word_packing import tile_words
from .unit_cycles import (attention_cycles, engine_cycles, engine_load_steps, layernorm_cycles, linear_cycles,
                          moe_route_cycles, routing_counts, rtl_unit_cycles, stream_cycles)


# ---- results ----------------------------------------------------------------------------------
@dataclass
class Estimate:
    preset: str
    precision: str
    design: dict
    board: str
    clock_mhz: float
    layers: list
    resources: dict           # dsp, bram36, uram, lut, ff: totals
    by_unit_resources: dict   # unit -> {dsp, bram36, uram, lut, ff}
    budget: dict              # the board's resources
    macs: int
    bytes_per_frame: int
    compute_floor_ms: float
    ddr_floor_ms: float
    routing: str
    notes: list = field(default_factory=list)
    batch: int = 1            # frames per kernel batch: ``layers`` is the schedule of one batch
    published_schedule_ms: float | None = None   # the same units in the published Edge-MoE schedule
    caps: dict = field(default_factory=lambda: dict(UTIL_CAPS))   # timing-closure caps (fractions of the board)
    ddr: dict = field(default_factory=dict)         # the DDR assumed: kind, mts, peak, efficiency, source
    bandwidth: dict = field(default_factory=dict)   # AXI words per cycle of the weights, act, DDR

    @property
    def cycles(self) -> int:
        """Cycles of one batch."""
        return sum(l.cycles for l in self.layers)

    @property
    def batch_latency_ms(self) -> float:
        """Time from a batch's first pixel to its last output (a frame's latency when it is batched)."""
        return self.cycles / (self.clock_mhz * 1e3)

    @property
    def latency_ms(self) -> float:
        """Time per frame: the batch's time over its frames (at batch 1, the frame's latency)."""
        return self.batch_latency_ms / self.batch

    @property
    def gops(self) -> float:
        return 2 * self.macs / (self.latency_ms * 1e-3) / 1e9

    def over_budget(self) -> dict:
        """resource -> (needed, available) for every resource the design needs more of than the board has."""
        return {k: (self.resources[k], self.budget.get(k, 0)) for k in RESOURCE_KEYS
                if self.resources[k] > self.budget.get(k, 0)}

    @property
    def fits(self) -> bool:
        return not self.over_budget()

    def utilization(self) -> dict:
        return use_of(self.resources, self.budget)

    def over_caps(self) -> dict:
        """resource -> (needed, the cap's amount) for every resource above its timing-closure cap."""
        return over_caps(self.resources, self.budget, self.caps)

    @property
    def within_caps(self) -> bool:
        return not self.over_caps()

    def limiting_resource(self) -> dict:
        """The resource closest to (or furthest over) its cap: {name, use, cap, needed, available}."""
        return limiting_resource(self.resources, self.budget, self.caps)

    def limiting_unit(self) -> dict:
        """The unit with the largest share of the cycles: {name, share, cycles (per frame)}."""
        unit, cyc = max(self.by_unit_cycles().items(), key=lambda kv: kv[1])
        return dict(name=unit, share=round(cyc / max(self.cycles, 1), 4), cycles=cyc // self.batch)

    def by_unit_cycles(self) -> dict:
        """unit -> cycles of one batch."""
        out: dict = {}
        for l in self.layers:
            out[l.unit] = out.get(l.unit, 0) + l.cycles
        return out

    def frame_cycles_by_unit(self) -> list:
        """(unit, cycles per frame), the costliest first, for the tables; per frame: a batch's over its frames."""
        return [(u, c // self.batch) for u, c in sorted(self.by_unit_cycles().items(), key=lambda kv: -kv[1])]

    def linear_utilization(self) -> float:
        """Useful MACs / MAC slots of the linear engine over the cycles it runs (patch embedding and
        every linear layer): the fraction of its DSPs doing useful MACs."""
        lin = [l for l in self.layers if l.unit in ("linear", "patch_embed")]
        slots = sum(l.engine_slots for l in lin)
        return sum(l.macs for l in lin) / slots if slots else 0.0

    def to_dict(self) -> dict:
        r = self.resources
        return dict(latency_ms=round(self.latency_ms, 4), gops=round(self.gops, 2), dsp=r["dsp"],
                    bram36=r["bram36"], uram=r["uram"], lut=r["lut"], ff=r["ff"], board=self.board,
                    clock_mhz=self.clock_mhz, compute_floor_ms=round(self.compute_floor_ms, 4),
                    ddr_floor_ms=round(self.ddr_floor_ms, 4), cycles=self.cycles, preset=self.preset,
                    precision=self.precision, design=self.design, fits=self.fits,
                    over_budget={k: dict(needed=n, available=a) for k, (n, a) in self.over_budget().items()},
                    caps=self.caps, within_caps=self.within_caps,
                    over_caps={k: dict(needed=n, cap=c) for k, (n, c) in self.over_caps().items()},
                    utilization={k: (round(v, 4) if math.isfinite(v) else None) for k, v in self.utilization().items()},
                    limiting_resource=self.limiting_resource(), limiting_unit=self.limiting_unit(),
                    ddr=self.ddr, bandwidth=self.bandwidth,
                    budget=self.budget, macs=self.macs, bytes_per_frame=self.bytes_per_frame,
                    linear_utilization=round(self.linear_utilization(), 4),
                    engine_dsp_share=round(self.by_unit_resources.get("linear", {}).get("dsp", 0) / max(r["dsp"], 1), 4),
                    batch=self.batch, batch_latency_ms=round(self.batch_latency_ms, 4),
                    published_schedule_ms=None if self.published_schedule_ms is None
                    else round(self.published_schedule_ms, 4),
                    routing=self.routing, by_unit_cycles=self.by_unit_cycles(),
                    by_unit_resources=self.by_unit_resources,
                    layers=[asdict(l) for l in self.layers], notes=self.notes)


# ---- the schedule of one batch ----------------------------------------------------------------
def _tile_words(design, w_bits: int) -> int:
    return tile_words(design.engine_out, design.engine_in, storage_bits(w_bits), design.axi_bits)


def _layer_name(call, batch: int) -> str:
    """The call's name in the schedule: ``f<b>.`` for image b when the batch has more than one, then
    ``block<i>.``, then ``expert<e>.`` and the step's name (``.<chunk>`` after an expert's first chunk)."""
    if call.image is None:
        part = f".{call.chunk}" if call.chunk else ""
        return f"block{call.block}.expert{call.expert}.{call.step.name}{part}"
    f = f"f{call.image}." if batch > 1 else ""
    return f + (f"block{call.block}." if call.block >= 0 else "") + call.step.name


def schedule(spec, prec, design, bw: Bandwidth, routing=None) -> list:
    """Every unit call of one batch of ``design.batch`` frames (every image's routing the same), in
    order, with its cycles and MACs: the calls of the kernel plan (codegen/kernel_plan.py), the top
    kernel's own schedule. An expert runs once per batch on its merged queue, in calls of at most
    ``tokens`` rows."""
    wd = Widths.of(prec)
    ei, eo = design.engine_in, design.engine_out
    word_bytes = design.axi_bits // 8
    depth = engine_depth(design, wd)
    vec = design.vec_lanes
    dims = sizes(spec, design)
    layers = []

    def engine(rows, ind, outd, w_bits, macs):
        """One call of the one engine (every linear layer, the gate logits, the patch embedding)."""
        n_tiles = -(-outd // eo) * (ind // ei)
        tw = _tile_words(design, w_bits)
        cyc = engine_cycles(rows, n_tiles, engine_load_steps(tw, design.weight_ports, bw.weights), depth)
        # the fetch loop reads w_steps = n_tiles * ceil(tw / ports) words from every port (padding included)
        read_words = n_tiles * -(-tw // design.weight_ports) * design.weight_ports
        return cyc, macs, read_words * word_bytes

    def act_io(values, bits):
        """Cycles of ``values`` activations of ``bits`` bits through the act port; its AXI words."""
        words = math.ceil(values * storage_bits(bits) / design.axi_bits)
        return math.ceil(words / bw.act) + MAXI_READ_LATENCY, words

    def cost(s, rows):
        """(cycles, MACs, bytes read) of step ``s`` on ``rows`` rows."""
        ind, outd = dims[s.ind], dims[s.outd]
        if s.is_engine:
            cyc, macs, nbytes = engine(rows, ind, outd, getattr(wd, s.weights), rows * ind * dims[s.mac_out or s.outd])
            if s.kind == "patch_embed":   # the image's pixels come in once, then the engine (patch weights tile-ordered)
                io, words = act_io(rows * ind, wd.pixel)
                cyc, nbytes = cyc + io, nbytes + words * word_bytes
            return cyc, macs, nbytes
        if s.kind == "layernorm":
            return layernorm_cycles(rows, ind, vec), 0, 0
        if s.kind == "attention":
            return attention_cycles(rows, ind, spec.heads, design), 2 * rows * rows * ind, 0
        if s.kind == "residual":
            return residual_cycles(rows * ind, vec, dims[s.slots]), 0, 0
        if s.kind == "route":
            return moe_route_cycles(rows, ind, outd), 0, 0
        if s.kind == "write_out":
            cyc, words = act_io(rows * ind, wd.act)
            return cyc, 0, words * word_bytes
        raise AssertionError(f"kernel plan step {s.name!r}: no cost for kind {s.kind!r}")

    costs = {}         # (step, rows) -> cost: every image of a batch repeats the same calls
    for call in KERNEL_PLAN.calls(spec, design.batch, routing_counts(spec, routing), design):
        s = call.step
        key = (id(s), call.rows)
        if key not in costs:
            costs[key] = cost(s, call.rows)
        cyc, macs, nbytes = costs[key]
        layers.append(Layer(_layer_name(call, design.batch), s.unit, cyc, macs, nbytes, call.block,
                            engine_slots=cyc * ei * eo if s.is_engine else 0))
    return layers


def published_schedule(spec, prec, design, bw: Bandwidth) -> list:
    from .published import published_schedule as ps
    return ps(spec, prec, design, bw)


def published_latency_ms(spec, prec, design, board, clock_mhz: float | None = None) -> float:
    """Latency per frame of the published Edge-MoE schedule (codegen/published.py)."""
    from .published import published_latency_ms as pl
    return pl(spec, prec, design, board, clock_mhz)


# ---- the whole estimate -----------------------------------------------------------------------
def estimate(spec, prec, design, board, clock_mhz: float | None = None, routing=None,
             published: bool = True, layers: list | None = None, caps: dict | None = None) -> Estimate:
    """Latency, throughput and resources of the generated kernel; ``published`` adds a note with the
    published Edge-MoE schedule of the same point (explore, which scores thousands of points, leaves it
    out); ``layers``: this design's :func:`schedule` when the caller has it already (the schedule does
    not depend on ``design.uram_buffers``); ``caps``: the timing-closure caps (default ``UTIL_CAPS``)."""
    clock = float(clock_mhz or design.clock_mhz or board.clock_mhz)
    design.validate(spec)
    if board.resources is None or board.ddr is None:
        raise EdgeMoeError(f"board {board.name} has no resource or DDR figures to estimate against")
    bw = Bandwidth.of(design, board, clock)
    if layers is None:
        layers = schedule(spec, prec, design, bw, routing)
    by_unit = resources(spec, prec, design)
    total = totals(by_unit)
    wd = Widths.of(prec)
    macs = sum(l.macs for l in layers) // design.batch          # per frame
    moved = sum(l.weight_bytes for l in layers) // design.batch
    budget = board.resources.to_dict()
    # floors: all the board's DSPs doing MACs at this precision's best rate; the DDR moving only
    # the bytes one frame needs
    best = macs_per_dsp_best(wd.lin_in, wd.w)
    compute_floor = macs / (budget["dsp"] * best * clock * 1e6) * 1e3
    ddr_floor = moved / bw.ddr_bytes_per_s * 1e3
    routed = "balanced" if routing in (None, "balanced") else "given"
    notes = [f"routing {routed}: {spec.tokens * spec.top_k} token slots over {spec.num_experts} experts per MoE block",
             f"DDR: {bw.describe(board)}"]
    span = rescale_span_of(spec, prec)
    if span:
        shifters = sum(rescale_lut(spec, wd, design, span).values())
        how = "from its per-block types" if prec.overrides else "assumed: no model given"
        notes.append(f"per-block types ({prec.name}): runtime rescales over +-{span} fraction bits ({how}): "
                     f"{shifters:,d} LUT of barrel shifters counted")
    pub = None
    if published:
        pub = published_latency_ms(spec, prec, design, board, clock)
        notes.append(f"the same units scheduled as the published Edge-MoE kernel runs them (activations in DDR, "
                     f"each layer's weights loaded before it computes): {pub:.3f} ms per frame")
    ddr = dict(board.ddr.to_dict(), label=board.ddr.label, efficiency=EFFICIENCY,
               sustained_gbps=round(bw.ddr_bytes_per_s / 1e9, 3))
    band = dict(weights=round(bw.weights, 4), act=round(bw.act, 4), ddr=round(bw.ddr, 4),
                shared_ddr_port=list(bw.shared), unit=f"{design.axi_bits}-bit AXI words per cycle",
                weights_gbps=round(bw.weight_gbps, 3), act_gbps=round(bw.act_gbps, 3))
    return Estimate(spec.name, prec.name, design.to_dict(), board.name, clock, layers, total, by_unit, budget,
                    macs, moved, compute_floor, ddr_floor, routed, notes, design.batch, pub,
                    dict(caps or UTIL_CAPS), ddr, band)


def check_fits(est: Estimate) -> None:
    """Raise a one-line error naming every resource the design needs more of than the board has."""
    over = est.over_budget()
    if over:
        parts = [f"{k} {n} of {a} ({n - a} over, {n / a:.0%})" if a else f"{k} {n} (the board has none)"
                 for k, (n, a) in over.items()]
        raise EdgeMoeError(f"design {est.design['name']!r} for {est.preset} ({est.precision}) does not fit "
                           f"{est.board}: {'; '.join(parts)}")


def caps_warning(est: Estimate) -> str | None:
    """One line when the design fits the board but sits above a timing-closure cap."""
    over = est.over_caps()
    if not over or not est.fits:
        return None
    use = est.utilization()
    parts = [f"{k} {use[k]:.0%} > {est.caps[k]:.0%}" for k in over]
    return (f"warning: design {est.design['name']!r} fits {est.board} but is above the timing-closure cap "
            f"({', '.join(parts)}): designs this full rarely close timing at {est.clock_mhz:g} MHz")


__all__ = ["Estimate", "Layer", "Bandwidth", "estimate", "schedule", "check_fits", "caps_warning", "rtl_unit_cycles",
           "published_latency_ms", "published_schedule", "linear_cycles", "engine_cycles", "engine_load_steps",
           "stream_cycles", "attention_cycles", "layernorm_cycles", "moe_route_cycles", "memories", "resources",
           "dsp_per_mult", "packed_int8", "clog2", "EFFICIENCY", "PS_PORT_BITS"]
