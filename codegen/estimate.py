"""Cycle and resource model of the kernel that ``edgemoe generate`` writes.

Every figure comes from the loop structure of the generated C++ (hls/include/*.h and the top
template): trip counts from the spec, initiation interval 1 for every pipelined loop, a pipeline
depth paid each time a pipelined loop starts, and the weight stream's rate from the AXI width, the
number of weight ports and the board's DDR. Resources come from the multipliers and buffers that
C++ declares. The model is checked against the cycles the cocotb benches measure on the RTL units
(tests/test_estimate.py) and against the published Edge-MoE figure (34.64 ms on ZCU102).

Assumptions (named so that a reader can change them):

* ``EFFICIENCY``: a long burst stream reaches 75% of the peak of a PS port or of the DDR.
* Routing: ``balanced`` gives every expert ceil or floor of T * top_k / E tokens (every expert
  runs, the most weight traffic); a list of per-block queue lengths can replace it.
* A PS slave port (HP/HPC) moves at most 128 bits per cycle of the PL clock.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from edgemoe.errors import EdgeMoeError

from .pack import storage_bits, tile_words

EFFICIENCY = 0.75          # reachable fraction of a port's or the DDR's peak bandwidth
PS_PORT_BITS = 128         # data width of a ZynqMP HP / HPC slave port
URAM_DEPTH, URAM_WIDTH = 4096, 72
LUTRAM_BITS = 2048         # banks at most this big live in LUTRAM / registers, not block RAM

# Pipeline depths (cycles from the first read to the last write of one pipelined loop), paid each
# time the loop starts. They follow the operator chains of the C++: AXI / BRAM read 2, a DSP
# multiply 3-4 (a 32x32 product 6), an adder tree log2(n), the casts 1.
DEPTH_MEM = 2
DEPTH_MUL = 4
DEPTH_EXP = 10             # sm_exp_neg: d * log2(e), table read, interpolation multiply, shift
DEPTH_GELU = 8             # table read, interpolation multiply, ReLU minus d(a)
DEPTH_RECIP = 40           # one integer division per softmax row (a pipelined divider's latency)
DEPTH_RSQRT = 60           # LayerNorm row: two divisions by EMBED, bit length, seed table, 2 Newton steps
                           # of 3 dependent 64-bit products
DEPTH_AXI_READ = 20        # first beat of a burst read after its address
II_SOFTMAX = 4             # the running sum S = floor(S * e) + 1 is carried from key to key through a
                           # multiply and an add, so the single-pass softmax loops cannot reach II=1


def clog2(n: int) -> int:
    return max(int(n - 1).bit_length(), 0)


def dsp_per_mult(a_bits: int, b_bits: int) -> int:
    """DSP48E2 slices of one a x b-bit signed product (27 x 18 per slice, wider ones split)."""
    if min(a_bits, b_bits) <= 4:
        return 0                                  # tiny products go to LUTs
    return min(math.ceil(a_bits / 27) * math.ceil(b_bits / 18), math.ceil(b_bits / 27) * math.ceil(a_bits / 18))


def macs_per_dsp_best(a_bits: int, b_bits: int) -> float:
    """The most MACs one DSP48E2 can do per cycle for these operands (two 8-bit MACs with packing)."""
    if max(a_bits, b_bits) <= 8:
        return 2.0
    return 1.0 / dsp_per_mult(a_bits, b_bits)


# ---- the spec, as the model needs it ----------------------------------------------------------
@dataclass(frozen=True)
class Widths:
    """Bit widths of the operands the model counts (from the precision's base types)."""
    lin_in: int
    w: int
    act: int
    qkv: int
    prob: int
    score: int
    hidden: int
    gelu_in: int
    ln_diff: int
    ln_param: int
    gate_w: int
    gate_score: int
    pixel: int
    patch_w: int
    acc: int
    sm_sum: int
    exp: int
    bias: int

    @classmethod
    def of(cls, prec) -> "Widths":
        t = prec.types
        return cls(lin_in=t["ln_out"].W, w=t["w"].W, act=t["act"].W, qkv=t["qkv"].W, prob=t["prob"].W,
                   score=t["score"].W, hidden=t["hidden"].W, gelu_in=t["gelu_in"].W, ln_diff=t["ln_diff"].W,
                   ln_param=t["ln_param"].W, gate_w=t["gate_w"].W, gate_score=t["gate_score"].W,
                   pixel=t["pixel"].W, patch_w=t["patch_w"].W, acc=t["acc"].W, sm_sum=t["sm_sum"].W,
                   exp=t["exp"].W, bias=t["b"].W)


@dataclass(frozen=True)
class Bandwidth:
    """AXI words (design.axi_bits each) per kernel cycle that the ports and the DDR sustain."""
    act: float                # gmem_act: pixels in, outputs out
    weights: float            # the weight bundle(s) together
    ddr: float                # the whole DDR
    ddr_bytes_per_s: float

    @classmethod
    def of(cls, design, board, clock_mhz: float) -> "Bandwidth":
        word_bytes = design.axi_bits / 8
        per_port = min(design.axi_bits, PS_PORT_BITS) / design.axi_bits * EFFICIENCY
        ddr_bps = EFFICIENCY * board.ddr.peak_gbps * 1e9
        ddr = ddr_bps / (word_bytes * clock_mhz * 1e6)
        return cls(act=min(per_port, ddr), weights=min(design.weight_ports * per_port, ddr), ddr=ddr,
                   ddr_bytes_per_s=ddr_bps)


# ---- results ----------------------------------------------------------------------------------
@dataclass
class Layer:
    """One call of a unit in the per-frame schedule."""
    name: str                 # e.g. "block3.qkv"
    unit: str                 # linear | attention | layernorm | residual | moe_route | patch_embed | io
    cycles: int
    macs: int = 0
    weight_bytes: int = 0
    block: int = -1
    engine_slots: int = 0     # MAC slots of the linear engine during this call (cycles x MACs per cycle)


@dataclass
class Estimate:
    preset: str
    precision: str
    design: dict
    board: str
    clock_mhz: float
    layers: list
    resources: dict           # dsp, bram36, uram, lut: totals
    by_unit_resources: dict   # unit -> {dsp, bram36, uram, lut}
    budget: dict              # the board's resources
    macs: int
    bytes_per_frame: int
    compute_floor_ms: float
    ddr_floor_ms: float
    routing: str
    notes: list = field(default_factory=list)
    batch: int = 1            # frames per kernel batch: ``layers`` is the schedule of one batch
    published_schedule_ms: float | None = None   # the same units in the published Edge-MoE schedule

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
        return {k: (self.resources[k], self.budget[k]) for k in ("dsp", "bram36", "uram", "lut")
                if self.resources[k] > self.budget.get(k, 0)}

    @property
    def fits(self) -> bool:
        return not self.over_budget()

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
                    bram36=r["bram36"], uram=r["uram"], lut=r["lut"], board=self.board,
                    clock_mhz=self.clock_mhz, compute_floor_ms=round(self.compute_floor_ms, 4),
                    ddr_floor_ms=round(self.ddr_floor_ms, 4), cycles=self.cycles, preset=self.preset,
                    precision=self.precision, design=self.design, fits=self.fits,
                    over_budget={k: dict(needed=n, available=a) for k, (n, a) in self.over_budget().items()},
                    budget=self.budget, macs=self.macs, bytes_per_frame=self.bytes_per_frame,
                    linear_utilization=round(self.linear_utilization(), 4),
                    engine_dsp_share=round(self.by_unit_resources.get("linear", {}).get("dsp", 0) / max(r["dsp"], 1), 4),
                    batch=self.batch, batch_latency_ms=round(self.batch_latency_ms, 4),
                    published_schedule_ms=None if self.published_schedule_ms is None
                    else round(self.published_schedule_ms, 4),
                    routing=self.routing, by_unit_cycles=self.by_unit_cycles(),
                    by_unit_resources=self.by_unit_resources,
                    layers=[asdict(l) for l in self.layers], notes=self.notes)


# ---- cycle models of the units (shared by the kernel model and the RTL checks) ----------------
def linear_cycles(n_rows: int, n_out_tiles: int, n_in_tiles: int, tile_load: float, depth: int,
                  min_iter: int = 0) -> int:
    """The engine: a prologue loads the first weight tile; then one flattened pipelined loop runs
    max(n_rows, tile load, min_iter) iterations per (output tile, input tile), computing the rows
    while the next tile loads, and pays its pipeline depth once per call."""
    tl = math.ceil(tile_load)
    return tl + n_out_tiles * n_in_tiles * max(n_rows, tl, min_iter) + depth


def packed_int8(a_bits: int, b_bits: int) -> bool:
    """pack2.h applies: two 8-bit products share one DSP48E2 (the shared operand times a packed pair)."""
    return max(a_bits, b_bits) <= 8


def _chain_depth(n: int, chunk: int) -> int:
    c = min(chunk, n)
    return c + 1 + clog2(math.ceil(n / c))


def engine_sum_depth(wd, design) -> int:
    """Cycles of the engine's summing stage (linear.h engine_pack::SUM_DEPTH): an adder tree, or with
    int8 packing chains of 8 s8 x s8 (4 u8 x s8) products, a split and a tree over the chains; the
    deeper of the engine's two users (linear layers, patch embedding)."""
    ei = design.engine_in
    packed = design.engine_out % 2 == 0
    lin = _chain_depth(ei, 8) if packed and packed_int8(wd.lin_in, wd.w) else clog2(ei)
    pe = _chain_depth(ei, 4) if packed and packed_int8(wd.pixel, wd.patch_w) else clog2(ei)
    return max(lin, pe)


def engine_min_iter(design, tile_words: int, wd) -> int:
    """linear.h: a tile runs at least LW + 2 iterations (LW = its load steps over the weight ports)
    and at least ENGINE_MIN_ITER = 6 + the summing depth (a row's read-to-accumulate distance)."""
    lw = math.ceil(tile_words / design.weight_ports)
    return max(lw + 2, 6 + engine_sum_depth(wd, design))


def stream_cycles(items: int, lanes: int, depth: int, calls: int = 1) -> int:
    """A pipelined pass over ``items`` values, ``lanes`` per cycle, started ``calls`` times."""
    return math.ceil(items / lanes) + depth * calls


def engine_depth(design, mode: str = "plain", wd=None) -> int:
    epi = {"plain": 1, "gelu": DEPTH_GELU, "scatter": DEPTH_MUL + 1, "pos": 1}[mode]
    summing = engine_sum_depth(wd, design) if wd is not None else clog2(design.engine_in)
    return DEPTH_MEM + DEPTH_MUL + summing + 1 + epi


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
    """gamma / beta copied in (EMBED cycles); then one flattened pipeline of (n_rows + 2) steps of
    EMBED / lanes iterations, each step summing row t, squaring row t-1 and normalising row t-2;
    the divisions and the rsqrt chain only deepen that pipeline (paid once per call)."""
    steps = math.ceil(embed / lanes)
    depth = DEPTH_MEM + 2 * (clog2(lanes) + 1) + 2 * DEPTH_MUL + DEPTH_RSQRT
    return embed + DEPTH_MEM + (n_rows + 2) * steps + depth


ROUTE_GROUP = 4            # moe_route.h: tokens whose softmax updates interleave (hides the carried S)


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
        # waits for its mean, variance and rsqrt
        return stream_cycles(w["rows"] * w["width"], 1, 2 * w["width"] // 8 + 3 * DEPTH_MUL + RSQRT_RTL_STEPS)
    if unit == "moe_route":
        return stream_cycles(sum(w["tokens"]), 1, w["exp_depth"] + w["divider_steps"] + w["experts"] + HANDSHAKE)
    if unit == "linear":
        return linear_cycles(w["rows"], w["out_tiles"], w["in_tiles"], w["w_beats_per_tile"], 0) \
            + w["pipeline_depth"] + HANDSHAKE
    raise EdgeMoeError(f"no cycle model for RTL unit {unit!r}")


RSQRT_RTL_STEPS = 24       # hls/rtl/layernorm: the rsqrt's Newton iterations, one multiply stage each


# ---- the schedule of one frame ----------------------------------------------------------------
def _routing_counts(spec, routing) -> list:
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


def _tile_words(design, w_bits: int) -> int:
    return tile_words(design.engine_out, design.engine_in, storage_bits(w_bits), design.axi_bits)


def schedule(spec, prec, design, bw: Bandwidth, routing=None) -> list:
    """Every unit call of one batch of ``design.batch`` frames (every image's routing the same), in
    order, with its cycles and MACs; layer names carry ``f<b>.`` for image b when the batch has more
    than one. An expert runs once per batch on its merged queue, in calls of at most ``tokens`` rows."""
    wd = Widths.of(prec)
    d, T = spec.embed, spec.tokens
    ei, eo = design.engine_in, design.engine_out
    word_bytes = design.axi_bits // 8
    tw = _tile_words(design, wd.w)
    tile_load = tw / bw.weights
    layers = []

    depths = {m: engine_depth(design, m, wd) for m in ("plain", "gelu", "scatter")}
    min_iter = engine_min_iter(design, tw, wd)

    cycles_of = {}     # (rows, in, out, mode) -> cycles: every image of a batch repeats the same calls

    def linear(name, block, rows, ind, outd, mode):
        n_ot, n_it = outd // eo, ind // ei
        key = (rows, ind, outd, mode)
        cyc = cycles_of.get(key)
        if cyc is None:
            cyc = cycles_of[key] = linear_cycles(rows, n_ot, n_it, tile_load, depths[mode], min_iter)
        layers.append(Layer(name, "linear", cyc, rows * ind * outd, n_ot * n_it * tw * word_bytes, block,
                            engine_slots=cyc * ei * eo))

    # patch embedding: the image's pixels come in once, then the engine (patch weights tile-ordered)
    pix_words = math.ceil(spec.num_patches * spec.patch_dim * storage_bits(wd.pixel) / design.axi_bits)
    ptw = _tile_words(design, wd.patch_w)
    pe_cyc = math.ceil(pix_words / bw.act) + DEPTH_AXI_READ + linear_cycles(
        spec.num_patches, d // eo, spec.patch_dim // ei, ptw / bw.weights, engine_depth(design, "pos", wd),
        engine_min_iter(design, ptw, wd))
    B = design.batch
    frames = [f"f{k}." if B > 1 else "" for k in range(B)]
    for f in frames:
        layers.append(Layer(f + "patch_embed", "patch_embed", pe_cyc, spec.num_patches * spec.patch_dim * d,
                            (d // eo) * (spec.patch_dim // ei) * ptw * word_bytes + pix_words * word_bytes,
                            engine_slots=pe_cyc * ei * eo))
    vec = design.vec_lanes

    def front(b, i):
        """run_block_front (top template): image b's block i up to its routing, or whole when dense."""
        layers.append(Layer(b + "ln1", "layernorm", layernorm_cycles(T, d, vec), block=i))
        linear(b + "qkv", i, T, d, 3 * d, "plain")
        layers.append(Layer(b + "attention", "attention", attention_cycles(T, d, spec.heads, design),
                            2 * T * T * d, block=i))
        linear(b + "proj", i, T, d, d, "plain")
        layers.append(Layer(b + "res1", "residual", stream_cycles(T * d, vec, DEPTH_MEM + 1), block=i))
        layers.append(Layer(b + "ln2", "layernorm", layernorm_cycles(T, d, vec), block=i))
        if spec.is_moe(i):
            # the gate logits on the engine (expert rows padded to a multiple of ENGINE_OUT), then routing
            gate_rows = -(-spec.num_experts // eo) * eo
            linear(b + "gate", i, T, d, gate_rows, "plain")
            layers[-1].macs = T * d * spec.num_experts
            layers.append(Layer(b + "route", "moe_route", moe_route_cycles(T, spec.num_experts, spec.top_k), block=i))
            # clear_act (top template) writes ACT_PARTITION values per cycle
            layers.append(Layer(b + "clear", "residual", stream_cycles(T * d, design.act_partition, DEPTH_MEM),
                                block=i))
        else:
            linear(b + "fc1", i, T, d, spec.mlp_hidden, "gelu")
            linear(b + "fc2", i, T, spec.mlp_hidden, d, "plain")
            back(b, i)

    def back(b, i):
        """block_back: the MLP output added to image b's residual stream."""
        layers.append(Layer(b + "res2", "residual", stream_cycles(T * d, vec, DEPTH_MEM + 1), block=i))

    counts = iter(_routing_counts(spec, routing))
    for i in range(spec.depth):
        for f in frames:
            front(f"{f}block{i}.", i)
        if not spec.is_moe(i):
            continue
        # run_experts: every expert once on the merged queue of the B images, TOKENS rows per engine call
        for e, n in enumerate(next(counts)):
            for c0 in range(0, B * n, T):      # an empty queue: the expert is never read
                rows = min(T, B * n - c0)
                part = f".{c0 // T}" if c0 else ""
                linear(f"block{i}.expert{e}.fc1{part}", i, rows, d, spec.expert_hidden, "gelu")
                linear(f"block{i}.expert{e}.fc2{part}", i, rows, spec.expert_hidden, d, "scatter")
        for f in frames:
            back(f"{f}block{i}.", i)
    out_words = math.ceil(T * d * storage_bits(wd.act) / design.axi_bits)
    for f in frames:
        layers.append(Layer(f + "write_out", "io", math.ceil(out_words / bw.act) + DEPTH_AXI_READ,
                            weight_bytes=out_words * word_bytes))
    return layers


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
        layers.append(Layer(name, "linear", load + compute + engine_depth(design), rows * ind * outd,
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
            for e, n in enumerate(_routing_counts(spec, None)[0]):
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


# ---- resources --------------------------------------------------------------------------------
def _bank_cost(depth: int, width: int, uram: bool) -> tuple:
    """(bram36, uram, lut) of one memory bank of ``depth`` x ``width`` bits."""
    if depth * width <= LUTRAM_BITS:
        return 0, 0, math.ceil(depth * width / 64)          # LUTRAM: 64 bits per LUT
    if uram:
        return 0, math.ceil(width / URAM_WIDTH) * math.ceil(depth / URAM_DEPTH), 0
    # the cheapest BRAM36 aspect ratio (depth x width): 1Kx36, 2Kx18, 4Kx9, 512x72
    best = min(math.ceil(width / w) * math.ceil(depth / dd) for dd, w in
               ((512, 72), (1024, 36), (2048, 18), (4096, 9), (8192, 4), (16384, 2), (32768, 1)))
    return best, 0, 0


def memories(spec, prec, design) -> list:
    """(unit, name, elements, bits, banks) of every on-chip buffer of the generated kernel."""
    wd = Widths.of(prec)
    d, T = spec.embed, spec.tokens
    P = design.act_partition
    hid = max(spec.mlp_hidden if len(spec.moe_blocks) < spec.depth else 0,
              spec.expert_hidden if spec.moe_blocks else 0)
    E = spec.num_experts
    B = design.batch
    tok_bits = max(clog2(B * T + 1), 1)
    m = [
        # the residual streams, MoE inputs and MoE outputs of the batch's images
        ("residual", "g_x", B * T * d, wd.act, P), ("layernorm", "g_lnb", B * T * d, wd.lin_in, P),
        ("linear", "g_qkv", T * 3 * d, wd.qkv, P), ("attention", "g_att", T * d, wd.lin_in, P),
        ("residual", "g_tmp", B * T * d, wd.act, P), ("linear", "g_hid", T * hid, wd.hidden, P),
        ("patch_embed", "g_pos", T * d, wd.bias, P),
        ("patch_embed", "pixels", spec.num_patches * spec.patch_dim, wd.pixel, design.engine_in),
        # one-time parameters, partitioned like the activations so the engine reads a lane of biases
        # and the loads write a word of values per cycle
        ("layernorm", "g_ln", spec.depth * 4 * d, wd.ln_param, P),
        ("linear", "g_qkv_b", spec.depth * 3 * d, wd.bias, P),
        ("linear", "g_bias", sum(d + (E * (spec.expert_hidden + d) if spec.is_moe(i) else spec.mlp_hidden + d)
                                 for i in range(spec.depth)), wd.bias, P),
        ("linear", "acc", T * design.engine_out, wd.acc, design.engine_out),
        ("linear", "wbuf", 2 * design.engine_in * design.engine_out, storage_bits(wd.w),
         design.engine_in * design.engine_out),
        ("attention", "sbuf", spec.heads * design.attn_rows * T, wd.score, spec.heads * design.attn_rows),
        ("attention", "qbuf", design.attn_rows * d, wd.qkv, design.attn_rows * design.attn_lanes),
        ("attention", "oacc", design.attn_rows * d, 64, design.attn_rows * design.attn_lanes),
        # one 2^f table per parallel exp of the softmax (A.V's exps reuse them): both ports of each
        ("attention", "exp_roms", spec.heads * design.attn_rows * 257, 24, spec.heads * design.attn_rows),
    ]
    if spec.moe_blocks:
        m += [("moe_route", "g_logits+probs", 2 * T * E, wd.score, design.engine_out),
              ("moe_route", "queues", E * B * T, tok_bits + wd.gate_score, E)]
    return m


def resources(spec, prec, design) -> dict:
    """unit -> {dsp, bram36, uram, lut}; the buffers in ``design.uram_buffers`` are bound to UltraRAM."""
    wd = Widths.of(prec)
    r, lanes, H = design.attn_rows, design.attn_lanes, spec.heads
    ei, eo, vec = design.engine_in, design.engine_out, design.vec_lanes
    pair = eo % 2 == 0 and packed_int8(wd.lin_in, wd.w)          # pack2.h: two int8 MACs per DSP
    rows2 = r % 2 == 0
    qk = r * lanes // 2 if rows2 and packed_int8(wd.qkv, wd.qkv) else r * lanes * dsp_per_mult(wd.qkv, wd.qkv)
    av = r * lanes // 2 if rows2 and packed_int8(wd.prob, wd.qkv) else r * lanes * dsp_per_mult(wd.prob, wd.qkv)
    dsp = {
        # the engine's MACs, plus the epilogue per output lane: GELU interpolation, score weighting
        "linear": (ei * eo // 2 if pair else ei * eo * dsp_per_mult(wd.lin_in, wd.w))
        + eo * (1 + dsp_per_mult(wd.gate_score, wd.act)),
        "attention": qk + av
        + r * dsp_per_mult(wd.score, 16)                                    # the scale
        + H * r * (dsp_per_mult(wd.score + 1, 18) + 1 + dsp_per_mult(wd.sm_sum, wd.exp))   # softmax updates
        + r * (dsp_per_mult(wd.score + 1, 18) + 1 + dsp_per_mult(wd.exp, 18)),          # p on the fly
        # per lane: the square, diff x rsqrt mantissa (32 bits), norm x gamma; once: the rsqrt's Newton
        # steps (RSQRT_NEWTON_STEPS x 3 products of 34 bits); one instance serves every LayerNorm
        "layernorm": vec * (dsp_per_mult(wd.ln_diff, wd.ln_diff) + dsp_per_mult(wd.ln_diff, 32)
                            + dsp_per_mult(32, wd.ln_param)) + 6 * dsp_per_mult(34, 34),
        # the gate's dot products run on the engine; per token: the softmax update and the probability
        "moe_route": 2 * dsp_per_mult(wd.score + 1, 18) + dsp_per_mult(wd.sm_sum, wd.exp) + 1
        if spec.moe_blocks else 0,
        "patch_embed": 0,            # shares the engine
        "residual": 0,
    }
    # LUTs: adder trees and accumulators of the MACs, partition multiplexers, control (coarse)
    psum = wd.lin_in + wd.w + clog2(ei)
    lut = {
        "linear": ei * eo * (psum // 2) + eo * (wd.acc + 200) + 3000,
        "attention": r * lanes * 2 * 40 + H * r * 350 + 4000,
        "layernorm": vec * 250 + 3000,
        "moe_route": spec.num_experts * 120 + 2500 if spec.moe_blocks else 0,
        "patch_embed": 800,
        "residual": vec * (wd.act + 8) + 500,
    }
    out = {u: dict(dsp=dsp[u], bram36=0, uram=0, lut=lut[u]) for u in dsp}
    for unit, name, n, bits, banks in memories(spec, prec, design):
        banks = max(1, min(banks, n))
        if name in design.uram_buffers:
            # an UltraRAM buffer is reshaped, not partitioned: one word holds a row of its lanes
            bits, n, banks = bits * banks, math.ceil(n / banks), 1
        b, u, l = _bank_cost(math.ceil(n / banks), bits, name in design.uram_buffers)
        out[unit]["bram36"] += b * banks
        out[unit]["uram"] += u * banks
        out[unit]["lut"] += l * banks
    bundles = 2 + design.weight_ports           # gmem_act, gmem_scratch and the weight ports
    out["interfaces"] = dict(dsp=0, bram36=4 * bundles, uram=0, lut=2500 * bundles + 1500)
    return out


# ---- the whole estimate -----------------------------------------------------------------------
def estimate(spec, prec, design, board, clock_mhz: float | None = None, routing=None,
             published: bool = True, layers: list | None = None) -> Estimate:
    """Latency, throughput and resources of the generated kernel for one frame; ``published`` adds a
    note with the published Edge-MoE schedule of the same point (explore, which scores thousands of
    points, leaves it out); ``layers``: this design's :func:`schedule` when the caller has it already
    (the schedule does not depend on ``design.uram_buffers``)."""
    clock = float(clock_mhz or design.clock_mhz or board.clock_mhz)
    design.validate(spec)
    if board.resources is None or board.ddr is None:
        raise EdgeMoeError(f"board {board.name} has no resource or DDR figures to estimate against")
    bw = Bandwidth.of(design, board, clock)
    if layers is None:
        layers = schedule(spec, prec, design, bw, routing)
    by_unit = resources(spec, prec, design)
    total = {k: sum(u[k] for u in by_unit.values()) for k in ("dsp", "bram36", "uram", "lut")}
    wd = Widths.of(prec)
    macs = sum(l.macs for l in layers) // design.batch          # per frame
    moved = sum(l.weight_bytes for l in layers) // design.batch
    budget = board.resources.to_dict()
    # floors: all the board's DSPs doing MACs at this precision's best rate; the DDR moving only
    # the bytes one frame needs
    best = macs_per_dsp_best(wd.lin_in, wd.w)
    compute_floor = macs / (budget["dsp"] * best * clock * 1e6) * 1e3
    ddr_floor = moved / bw.ddr_bytes_per_s * 1e3
    notes = [f"routing {'balanced' if routing in (None, 'balanced') else 'given'}: "
             f"{spec.tokens * spec.top_k} token slots over {spec.num_experts} experts per MoE block",
             f"bandwidth: weights {bw.weights:.3f} and act {bw.act:.3f} AXI words per cycle, "
             f"DDR {bw.ddr_bytes_per_s / 1e9:.1f} GB/s ({EFFICIENCY:.0%} of peak)"]
    pub = None
    if published:
        pub = published_latency_ms(spec, prec, design, board, clock)
        notes.append(f"the same units scheduled as the published Edge-MoE kernel runs them (activations in DDR, "
                     f"each layer's weights loaded before it computes): {pub:.3f} ms per frame")
    return Estimate(spec.name, prec.name, design.to_dict(), board.name, clock, layers, total, by_unit, budget,
                    macs, moved, compute_floor, ddr_floor,
                    "balanced" if routing in (None, "balanced") else "given", notes, design.batch, pub)


def check_fits(est: Estimate) -> None:
    """Raise a one-line error naming every resource the design needs more of than the board has."""
    over = est.over_budget()
    if over:
        parts = [f"{k} {n} of {a} ({n - a} over, {n / a:.0%})" if a else f"{k} {n} (the board has none)"
                 for k, (n, a) in over.items()]
        raise EdgeMoeError(f"design {est.design['name']!r} for {est.preset} ({est.precision}) does not fit "
                           f"{est.board}: {'; '.join(parts)}")


__all__ = ["Estimate", "Layer", "estimate", "check_fits", "rtl_unit_cycles", "published_latency_ms",
           "published_schedule", "linear_cycles", "stream_cycles", "attention_cycles", "layernorm_cycles",
           "moe_route_cycles", "dsp_per_mult", "EFFICIENCY"]
