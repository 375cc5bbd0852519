"""The published Edge-MoE kernel's schedule of the same units: the check of the model's unit rates and
bandwidths against the published 34.64 ms (ZCU102, 300 MHz, w16a32)."""
from __future__ import annotations

import math

from edgemoe.units.layernorm import layernorm_cycles

from .bandwidth import Bandwidth
from .buffers import storage_bits
from .model_common import DEPTH_AXI_READ, DEPTH_MEM, DEPTH_MUL, II_SOFTMAX, Layer, Widths, clog2
from .unit_cycles import routing_counts


def _engine_depth(design) -> int:
    """The published engine's pipeline: read, multiply, adder tree, accumulate, write."""
    return DEPTH_MEM + DEPTH_MUL + clog2(design.engine_in) + 2


def published_schedule(spec, prec, design, bw: Bandwidth) -> list:
    """The same units as the published Edge-MoE kernel schedules them (sharc-lab/Edge-MoE, read for
    facts): activations live in DDR (each unit streams its input in and its output out through the
    activation ports), every layer's weights are loaded into the ping/pong buffer before its compute
    starts (the top is not a dataflow region, so loads and compute do not overlap), and Q.K^T writes
    the attention scores to DDR for A.V to read back. This schedule is not what ``generate`` writes;
    it checks the model's unit rates and bandwidths against the published 34.64 ms."""
    wd = Widths.of(prec)
    d, T = spec.embed, spec.tokens
    macs_pc = design.engine_in * design.engine_out
    act_w = storage_bits(wd.act) / design.axi_bits          # AXI words per activation value
    tensor = math.ceil(T * d * act_w)                         # words of one [T, d] activation tensor
    layers = []

    def io(words_in, words_out):                              # reads and writes use separate bundles
        return math.ceil(max(words_in, words_out) / bw.act)

    def linear(name, block, rows, ind, outd):
        w_words = math.ceil(ind * outd * storage_bits(wd.w) / design.axi_bits)
        load = math.ceil(w_words / bw.weights) + DEPTH_AXI_READ
        compute = max(math.ceil(rows * ind * outd / macs_pc), io(rows * ind * act_w, rows * outd * act_w))
        layers.append(Layer(name, "linear", load + compute + _engine_depth(design), rows * ind * outd,
                            w_words * design.axi_bits // 8, block))

    pix = math.ceil(spec.num_patches * spec.patch_dim * storage_bits(wd.pixel) / design.axi_bits)
    linear("patch_embed", -1, spec.num_patches, spec.patch_dim, d)
    layers[-1].cycles += io(pix, 0)
    layers[-1].unit = "patch_embed"
    scores = math.ceil(T * T * spec.heads * storage_bits(wd.score) / design.axi_bits)
    for i in range(spec.depth):
        b = f"block{i}."
        layers.append(Layer(b + "ln1", "layernorm", max(layernorm_cycles(T, d, design.vec_lanes), io(tensor, tensor)), block=i))
        for n in ("q", "k"):
            linear(b + n, i, T, d, d)
        r = design.attn_rows
        qk = math.ceil(T / r) * T * (d // design.attn_lanes + r)  # Q.K^T, then the softmax pass, R rows per key
        layers.append(Layer(b + "qk", "attention", max(qk, io(tensor * 2, scores)), T * T * d, block=i))
        linear(b + "v", i, T, d, d)
        av = math.ceil(T / r) * T * (d // design.attn_lanes)
        layers.append(Layer(b + "av", "attention", max(av, io(scores + tensor, tensor)), T * T * d, block=i))
        linear(b + "proj", i, T, d, d)
        layers.append(Layer(b + "res1", "residual", io(2 * tensor, tensor), block=i))
        layers.append(Layer(b + "ln2", "layernorm", max(layernorm_cycles(T, d, design.vec_lanes), io(tensor, tensor)), block=i))
        if spec.is_moe(i):
            gate_words = math.ceil(spec.num_experts * d * storage_bits(wd.gate_w) / design.axi_bits)
            layers.append(Layer(b + "route", "moe_route", math.ceil(gate_words / bw.weights)
                                + T * (d + spec.num_experts * II_SOFTMAX), T * d * spec.num_experts, block=i))
            for e, n in enumerate(routing_counts(spec, None)[0]):
                linear(f"{b}expert{e}.fc1", i, n, d, spec.expert_hidden)
                linear(f"{b}expert{e}.fc2", i, n, spec.expert_hidden, d)
        else:
            linear(b + "fc1", i, T, d, spec.mlp_hidden)
            linear(b + "fc2", i, T, spec.mlp_hidden, d)
        layers.append(Layer(b + "res2", "residual", io(2 * tensor, tensor), block=i))
    return layers


def published_latency_ms(spec, prec, design, board, clock_mhz: float | None = None) -> float:
    """Latency per frame of the published Edge-MoE schedule (:func:`published_schedule`)."""
    clock = float(clock_mhz or design.clock_mhz or board.clock_mhz)
    layers = published_schedule(spec, prec, design, Bandwidth.of(design, board, clock))
    return sum(l.cycles for l in layers) / (clock * 1e3)


__all__ = ["published_schedule", "published_latency_ms"]
