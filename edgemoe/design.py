"""Design points of the accelerator: the parallelism factors the generated HLS is built with.

A :class:`Design` is independent of the model (:class:`edgemoe.spec.ModelSpec`) and of the
precision; :meth:`Design.validate` checks that a model's dimensions tile onto it and names the
nearest valid sizes when they do not.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from math import lcm

from .errors import EdgeMoeError
from .kernel_interface import TAP_BITS, storage_bits
from .options import MAX_BATCH, check_clock

AXI_WIDTHS = (32, 64, 128, 256, 512)
MAX_WEIGHT_PORTS = 4
# the kernel's on-chip buffers that may be bound to UltraRAM (the activations and the biases)
URAM_CANDIDATES = ("g_x", "g_lnb", "g_qkv", "g_att", "g_tmp", "g_hid", "g_pos", "g_bias")

# The kernel's m_axi adapters (the INTERFACE pragmas of the top take these values through
# edgemoe_config.h): bursts of MAXI_BURST_BEATS words and MAXI_OUTSTANDING bursts in flight per
# channel.  Each read (write) channel gets a FIFO of outstanding x beats x AXI word: 4 x 32 x 256 bits
# = 32 Kb (4 BRAM36, width-bound).  In flight: 128 words per port, against the ~22 words that a DDR
# latency of ~60 PL cycles at the port's 0.375 words per cycle needs (Little's law).
MAXI_BURST_BEATS = 32
MAXI_OUTSTANDING = 4
# The engine's accumulators: a row's accumulator is read, added to and written back within this many
# iterations of its pipelined loop, and the loop never runs a weight tile for fewer iterations, so the
# DEPENDENCE distance it declares is true for every call (1-token expert queues included).
ENGINE_ACC_DISTANCE = 4
ROUTE_GROUP = 4            # moe_route.h: tokens whose softmax updates interleave (hides the carried S update)
# The one linear engine and the other units the kernel claims to share (one instance each): every
# one is a non-template function with INLINE off, called from the top's scope only, named by an
# ALLOCATION pragma there.  `edgemoe hls-check` counts their instances.
ENGINE_FUNCTION = "linear_engine"
SHARED_FUNCTIONS = (ENGINE_FUNCTION, "layernorm_unit", "residual_unit")


def _lw(*counts) -> int:
    return lcm(*[int(c) for c in counts if c])


@dataclass(frozen=True)
class Design:
    """Parallelism of the generated kernel.

    ``engine_in`` x ``engine_out``: MACs per cycle of the unified linear engine (its weight tiles are
    ``engine_out`` x ``engine_in``, double buffered); ``attn_rows``: query rows the attention unit
    keeps on chip (and the skew of the softmax order); ``attn_lanes``: K / V values the attention unit
    takes per cycle (each of the ``attn_rows`` rows does ``attn_lanes`` MACs per cycle in Q.K^T and A.V);
    ``vec_lanes``: values per cycle of the element-wise passes (LayerNorm, residual adds);
    ``axi_bits``: width of every m_axi port; ``weight_ports``: m_axi bundles (each on its own PS port)
    that read the streamed weights side by side; ``uram_buffers``: on-chip activation buffers bound to
    UltraRAM instead of block RAM; ``batch``: frames the kernel runs together, layer by layer, so
    that every expert's weights are read once for the tokens of all of them (the frames' residual
    streams, MoE inputs and outputs stay on chip).
    """

    name: str = "edge-moe"
    engine_in: int = 16
    engine_out: int = 16
    attn_rows: int = 4
    axi_bits: int = 256
    clock_mhz: float = 300.0
    attn_lanes: int = 8
    vec_lanes: int = 8
    weight_ports: int = 1
    uram_buffers: tuple = ()
    batch: int = 1
    description: str = field(default="", compare=False)
    base: str = field(default="", compare=False)   # the design point a design file started from

    def __post_init__(self):
        for field_name in ("engine_in", "engine_out", "attn_rows", "attn_lanes", "vec_lanes", "weight_ports", "batch"):
            v = getattr(self, field_name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise EdgeMoeError(f"design {self.name!r}: {field_name} must be a positive integer, got {v!r}")
        if self.axi_bits not in AXI_WIDTHS:
            raise EdgeMoeError(f"design {self.name!r}: axi_bits {self.axi_bits} is not one of "
                               f"{', '.join(map(str, AXI_WIDTHS))}")
        if not 1 <= self.weight_ports <= MAX_WEIGHT_PORTS:
            raise EdgeMoeError(f"design {self.name!r}: weight_ports must be 1..{MAX_WEIGHT_PORTS} "
                               f"(the PS slave ports left after activations and scratch), got {self.weight_ports}")
        if self.batch > MAX_BATCH:
            raise EdgeMoeError(f"design {self.name!r}: batch must be 1..{MAX_BATCH} frames, got {self.batch}")
        if isinstance(self.uram_buffers, str) or not all(isinstance(b, str) for b in self.uram_buffers):
            raise EdgeMoeError(f"design {self.name!r}: uram_buffers must be a list of buffer names, got "
                               f"{self.uram_buffers!r}")
        object.__setattr__(self, "uram_buffers", tuple(self.uram_buffers))
        unknown = [b for b in self.uram_buffers if b not in URAM_CANDIDATES]
        if unknown:
            raise EdgeMoeError(f"design {self.name!r}: uram_buffers {unknown} are not activation buffers "
                               f"(known: {', '.join(URAM_CANDIDATES)})")
        object.__setattr__(self, "clock_mhz", check_clock(self.clock_mhz, f"design {self.name!r}: clock_mhz"))

    @property
    def act_partition(self) -> int:
        """Cyclic partition factor of the on-chip activation buffers: every unit's lane count divides it."""
        return lcm(self.engine_in, self.engine_out, self.attn_lanes, self.vec_lanes)

    @property
    def macs_per_cycle(self) -> int:
        return self.engine_in * self.engine_out

    def with_(self, **changes) -> "Design":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["uram_buffers"] = list(self.uram_buffers)
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "design") -> "Design":
        """A design from its fields: every field present (``description`` optional), or ``"base": NAME``
        (a known design point) that the given fields override; nothing is filled in silently."""
        if not isinstance(d, dict):
            raise EdgeMoeError(f"{where}: expected an object with the design's fields, got {type(d).__name__}")
        d = dict(d)
        known = {f for f in cls.__dataclass_fields__}
        extra = sorted(set(d) - known)
        if extra:
            raise EdgeMoeError(f"{where}: unknown field(s) {', '.join(extra)} (known: {', '.join(sorted(known))})")
        base = d.pop("base", None) or None
        if base is not None:
            if base not in DESIGNS:
                raise EdgeMoeError(f"{where}: base {base!r} is not a design point (known: {', '.join(DESIGNS)})")
            d = {**DESIGNS[base].to_dict(), "description": "", **d, "base": base}
            if d["name"] == base and d != {**DESIGNS[base].to_dict(), "description": d["description"], "base": base}:
                d["name"] = f"{base}+custom"   # a changed point never passes for its base
        else:
            missing = sorted(known - set(d) - {"description", "base"})
            if missing:
                raise EdgeMoeError(f"{where}: missing field(s) {', '.join(missing)}; give every field, or "
                                   f"\"base\": \"<design>\" (one of {', '.join(DESIGNS)}) with the fields to change")
        return cls(**{k: (tuple(v) if k == "uram_buffers" and isinstance(v, list) else v) for k, v in d.items()})

    def summary(self) -> str:
        s = (f"{self.engine_in}x{self.engine_out} MACs, {self.attn_rows} attention rows x {self.attn_lanes} lanes, "
             f"{self.vec_lanes} vector lanes, {self.axi_bits}-bit AXI, {self.weight_ports} weight port(s)")
        s += f", URAM: {' '.join(self.uram_buffers)}" if self.uram_buffers else ""
        if self.base in DESIGNS:
            ref = DESIGNS[self.base].to_dict()
            changed = [f"{k}={v}" for k, v in self.to_dict().items() if k not in ("name", "description", "base") and ref[k] != v]
            s += f" (base {self.base}{': ' + ', '.join(changed) if changed else ', unchanged'})"
        return s + (f", {self.batch} frames per expert weight load" if self.batch > 1 else "")

    def validate(self, spec) -> "Design":
        """Raise :class:`EdgeMoeError` unless every dimension of ``spec`` tiles onto this design."""
        checks = [
            ("embed", spec.embed, "engine_in", self.engine_in),
            ("embed", spec.embed, "engine_out", self.engine_out),
            ("3*embed (qkv outputs)", 3 * spec.embed, "engine_out", self.engine_out),
            ("patch_dim (in_chans*patch*patch)", spec.patch_dim, "engine_in", self.engine_in),
            ("head_dim", spec.head_dim, "attn_lanes", self.attn_lanes),
            ("embed", spec.embed, "vec_lanes", self.vec_lanes),
        ]
        if any(not spec.is_moe(b) for b in range(spec.depth)):
            checks += [("mlp_hidden", spec.mlp_hidden, "engine_in", self.engine_in),
                       ("mlp_hidden", spec.mlp_hidden, "engine_out", self.engine_out)]
        if spec.moe_blocks:
            checks += [("expert_hidden", spec.expert_hidden, "engine_in", self.engine_in),
                       ("expert_hidden", spec.expert_hidden, "engine_out", self.engine_out)]
        checks += row_checks(spec, self)
        for dim_name, value, factor_name, factor in checks:
            if value % factor:
                lo = (value // factor) * factor
                near = [v for v in (lo, lo + factor) if v > 0]
                raise EdgeMoeError(
                    f"model {spec.name!r}: {dim_name} = {value} is not a multiple of {factor_name} = "
                    f"{factor} of design {self.name!r} (nearest valid: {' or '.join(map(str, near))})")
        return self


def row_checks(spec, design, act_bits: int = 32, param_bits: int = 16, pixel_bits: int = 8) -> list:
    """(what, value, factor name, factor) for every row size that must be a whole number of words of
    its buffer, so that every run-time row offset is a whole number of words."""
    axi = design.axi_bits
    a = _lw(design.act_partition, axi // storage_bits(act_bits), axi // storage_bits(param_bits), axi // TAP_BITS)
    pix = _lw(design.engine_in, axi // storage_bits(pixel_bits))
    out = [("embed", spec.embed, "the activation words", a),
           ("patch_dim (in_chans*patch*patch)", spec.patch_dim, "the pixel words", pix)]
    if len(spec.moe_blocks) < spec.depth:
        out.append(("mlp_hidden", spec.mlp_hidden, "the activation words", a))
    if spec.moe_blocks:
        out.append(("expert_hidden", spec.expert_hidden, "the activation words", a))
    return out


DESIGNS = {
    "edge-moe": Design("edge-moe", 16, 16, 4, 256, 300.0, attn_lanes=8, vec_lanes=8, description=
                       "the published Edge-MoE design point: 16x16 MACs, 4 attention rows, 8-value blocks "
                       "(256-bit AXI of 32-bit values)"),
    "small": Design("small", 8, 8, 2, 128, 200.0, attn_lanes=4, vec_lanes=8, description=
                    "a small design point for small boards and quick synthesis"),
    # board defaults: the fastest single-frame (batch 1) point `edgemoe explore --batch 1` finds for
    # m3vit-tiny-edge at w16a32 on each board within the utilisation caps (codegen/caps.py: DSP, BRAM36,
    # URAM <= 80%, LUT, FF <= 70%), among the points every preset tiles onto, ties to the least BRAM,
    # as the estimate of the generated kernel scores it
    "zcu104": Design("zcu104", 16, 16, 8, 128, 300.0, attn_lanes=8, vec_lanes=16, weight_ports=4,
                     uram_buffers=("g_hid", "g_qkv", "g_x", "g_lnb", "g_att", "g_tmp", "g_pos", "g_bias"), description=
                     "ZCU104 default: 256 MACs, 8 attention rows x 8 lanes, 16 vector lanes, 128-bit AXI (the PS "
                     "ports' width), 4 weight ports, the activations and biases in UltraRAM (explored: 14.60 ms per "
                     "frame for m3vit-tiny-edge at w16a32; DSP 75%, URAM 75%)"),
    "zcu102": Design("zcu102", 32, 16, 8, 128, 300.0, attn_lanes=8, vec_lanes=32, weight_ports=4, description=
                     "ZCU102 default: 512 MACs, 8 attention rows x 8 lanes, 32 vector lanes, 128-bit AXI, 4 weight "
                     "ports (explored: 10.71 ms per frame for m3vit-tiny-edge at w16a32; DSP 78%)"),
    "kv260": Design("kv260", 8, 8, 8, 128, 250.0, attn_lanes=8, vec_lanes=8, weight_ports=4,
                    uram_buffers=("g_hid", "g_qkv", "g_x", "g_lnb", "g_att", "g_tmp", "g_pos", "g_bias"), description=
                    "KV260 default: 64 MACs, 8 attention rows x 8 lanes, 128-bit AXI, every activation buffer and "
                    "the biases in UltraRAM: the most the K26's 144 BRAM36 and 64 URAM leave room for within the "
                    "caps (explored: 50.9 ms per frame for m3vit-tiny-edge; URAM 78%)"),
}
DEFAULT_DESIGN = "edge-moe"
# the design point a board gets unless told otherwise
BOARD_DESIGNS = {"zcu102": "zcu102", "zcu104": "zcu104", "kv260": "kv260"}


def get_design(name: str) -> Design:
    """A named design point, or a JSON file holding one (``edgemoe explore --json``'s ``design``)."""
    if name in DESIGNS:
        return DESIGNS[name]
    if str(name).endswith(".json"):
        from edgemoe.io import read_json
        d = read_json(name, "design file")
        d = d.get("design", d) if isinstance(d, dict) else d
        return Design.from_dict(d, where=f"design file {name}")
    raise EdgeMoeError(f"unknown design point {name!r} (known: {', '.join(DESIGNS)}, or a design .json "
                       f"from `edgemoe explore --json`)")


def board_default(board: str | None = None) -> Design:
    """The default design point of ``board`` (the Edge-MoE point for unknown or no board)."""
    return get_design(BOARD_DESIGNS.get((board or "").lower(), DEFAULT_DESIGN))


__all__ = ["Design", "DESIGNS", "MAXI_BURST_BEATS", "MAXI_OUTSTANDING", "ENGINE_ACC_DISTANCE", "ROUTE_GROUP", "ENGINE_FUNCTION",
           "SHARED_FUNCTIONS", "DEFAULT_DESIGN", "BOARD_DESIGNS", "get_design", "board_default"]
