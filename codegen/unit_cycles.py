"""Cycle models of the units: the loop structure of the generated C++ (trip counts, II 1 unless said,
a pipeline depth paid each time a pipelined loop starts), shared by the kernel's schedule
(estimate.py), the published schedule (published.py) and the check against the cocotb benches."""
from __future__ import annotations

import math

from edgemoe.errors import EdgeMoeError

from . import design as _design
from .model_common import (DEPTH_EXP, DEPTH_MEM, DEPTH_MUL, DEPTH_RECIP, DEPTH_RSQRT, II_SOFTMAX, MAXI_READ_LATENCY,
                           ROUTE_GROUP, clog2)


def engine_cycles(n_rows: int, n_tiles: int, lw: int, depth: int) -> int:
    """One call of the linear engine (a DATAFLOW of the weight fetch loop and the compute loop): the
    fetch's first word after ``MAXI_READ_LATENCY``, tile 0's ``lw`` steps (LW' = max(LW, the tile's words
    over the weight bandwidth)), then ``max(n_rows, lw, ENGINE_ACC_DISTANCE)`` iterations per weight
    tile (the next tile streams in while the rows compute; a row's accumulator is never touched twice
    within ENGINE_ACC_DISTANCE iterations), and the compute pipeline's depth once."""
    per_tile = max(n_rows, lw, _design.ENGINE_ACC_DISTANCE)
    return MAXI_READ_LATENCY + lw + n_tiles * per_tile + depth


def engine_load_steps(tile_words: int, weight_ports: int, weights_bw: float) -> int:
    """LW': the fetch loop's steps per tile: LW = ceil(tile words / ports) at one word per port per
    cycle, or fewer words per cycle when the PS ports / DDR cannot keep up."""
    return max(math.ceil(tile_words / weight_ports), math.ceil(tile_words / weights_bw - 1e-9))


def linear_cycles(n_rows: int, n_out_tiles: int, n_in_tiles: int, tile_load: float, depth: int) -> int:
    """The RTL linear unit (hls/rtl): a prologue loads the first weight tile; then max(n_rows, tile
    load) cycles per (output tile, input tile), computing the rows while the next tile loads."""
    tl = math.ceil(tile_load)
    return tl + n_out_tiles * n_in_tiles * max(n_rows, tl) + depth


def stream_cycles(items: int, lanes: int, depth: int, calls: int = 1) -> int:
    """A pipelined pass over ``items`` values, ``lanes`` per cycle, started ``calls`` times."""
    return math.ceil(items / lanes) + depth * calls


def attention_cycles(n_tok: int, embed: int, heads: int, design) -> int:
    r, lanes = design.attn_rows, design.attn_lanes
    chunks = embed // lanes
    groups = math.ceil(n_tok / r)
    per_group = (r * chunks + DEPTH_MEM                          # load the group's Q rows
                 + n_tok * chunks + DEPTH_MEM + DEPTH_MUL + 2    # Q.K^T, ATTN_LANES per row per cycle
                 + n_tok * II_SOFTMAX + DEPTH_EXP + DEPTH_MUL    # single-pass softmax (S carried)
                 + heads + DEPTH_RECIP                           # 1/S per (head, row), R per cycle
                 + n_tok * chunks + DEPTH_MEM + DEPTH_EXP + DEPTH_MUL  # A.V with p on the fly
                 + r * chunks + DEPTH_MEM)                       # write the group's rows
    return groups * per_group


def layernorm_cycles(n_rows: int, embed: int, lanes: int) -> int:
    """One flattened pipeline of (n_rows + 2) steps of EMBED / lanes iterations, each step summing row t,
    squaring row t-1 and normalising row t-2 (gamma and beta read from the parameter buffer in the same
    iterations); the divisions and the rsqrt chain only deepen that pipeline (paid once per call)."""
    steps = math.ceil(embed / lanes)
    depth = DEPTH_MEM + 2 * (clog2(lanes) + 1) + 2 * DEPTH_MUL + DEPTH_RSQRT
    return (n_rows + 2) * steps + depth


def moe_route_cycles(n_tok: int, experts: int, top_k: int) -> int:
    """moe_route.h after the gate logits (which run on the engine): groups of ROUTE_GROUP tokens; per
    group the softmax over experts and the probabilities (experts x G iterations each, II=1), one
    divider per token, then top-k (an unrolled argmax per k, about two cycles) and the queue writes."""
    g = ROUTE_GROUP
    per_group = (2 * experts * g + g + g * top_k * 2
                 + (DEPTH_EXP + DEPTH_MUL) + DEPTH_RECIP + (DEPTH_EXP + DEPTH_MUL))
    return math.ceil(n_tok / g) * per_group


# ---- the RTL units (hls/rtl): the same shapes at their own rates, for the check against cocotb ----
HANDSHAKE = 2              # registered TVALID / TREADY on the way in and out of an RTL unit


def rtl_unit_cycles(unit: str, w: dict) -> int:
    """Cycles of an RTL unit's throughput phase (no gaps, no backpressure) from the workload its
    cocotb bench reports (``throughput_workload``): one item per cycle (a MAC tile per cycle for the
    linear engine), plus the pipeline's fill from the stage counts of the template."""
    if unit == "gelu":
        return stream_cycles(w["values"], 1, w["pipeline_depth"] + HANDSHAKE)
    if unit == "softmax":
        lens = w["row_len"] if isinstance(w["row_len"], list) else [w["row_len"]] * w["rows"]
        # pass 2 of a row overlaps pass 1 of the next; the last row waits for its exp and 1/S
        return stream_cycles(sum(lens), 1, w["exp_depth"] + w["divider_steps"] + HANDSHAKE)
    if unit == "layernorm":
        # the row's sum, its squares and its outputs overlap with the neighbouring rows; the last row
        # then waits for its mean, runs its second pass (squares), waits for its variance and rsqrt and
        # runs its third pass (outputs): the stages' cycles are the RTL's (sim/rtl.py, via the bench)
        fill = 2 * w["width"] + sum(w["stages"].values()) + HANDSHAKE
        return stream_cycles(w["rows"] * w["width"], 1, fill)
    if unit == "moe_route":
        return stream_cycles(sum(w["tokens"]), 1, w["exp_depth"] + w["divider_steps"] + w["experts"] + HANDSHAKE)
    if unit == "linear":
        return linear_cycles(w["rows"], w["out_tiles"], w["in_tiles"], w["w_beats_per_tile"], 0) \
            + w["pipeline_depth"] + HANDSHAKE
    raise EdgeMoeError(f"no cycle model for RTL unit {unit!r}")


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


__all__ = ["engine_cycles", "engine_load_steps", "linear_cycles", "stream_cycles", "attention_cycles",
           "layernorm_cycles", "moe_route_cycles", "rtl_unit_cycles", "routing_counts"]
