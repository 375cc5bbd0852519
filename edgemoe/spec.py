"""Model specification: every size of an M3ViT encoder and its task heads, and the presets.

This module is numpy/torch free so that every layer of edgemoe (golden, codegen, host) reads the
same spec.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from .errors import EdgeMoeError


@dataclass(frozen=True)
class TaskSpec:
    """One dense-prediction task: its name, kind and output channels."""

    name: str
    kind: str  # "semseg" (logits per class) or "depth" (one channel)
    channels: int


@dataclass(frozen=True)
class ModelSpec:
    name: str
    img_h: int
    img_w: int
    patch: int
    embed: int
    depth: int
    heads: int
    mlp_hidden: int
    num_experts: int
    expert_hidden: int
    top_k: int
    moe_blocks: tuple
    tasks: tuple
    in_chans: int = 3
    ln_eps: float = 1e-6
    qkv_bias: bool = True
    decoder_channels: int = 256
    description: str = ""

    def __post_init__(self):
        checks = [
            (self.img_h % self.patch == 0, f"image height {self.img_h} is not a multiple of patch {self.patch}"),
            (self.img_w % self.patch == 0, f"image width {self.img_w} is not a multiple of patch {self.patch}"),
            (self.embed % self.heads == 0, f"embed {self.embed} is not a multiple of heads {self.heads}"),
            (1 <= self.top_k <= max(self.num_experts, 1), f"top_k {self.top_k} outside 1..{self.num_experts}"),
            (all(0 <= b < self.depth for b in self.moe_blocks), f"MoE blocks {self.moe_blocks} outside 0..{self.depth - 1}"),
            (len(self.tasks) >= 1, "a model needs at least one task"),
        ]
        for ok, msg in checks:
            if not ok:
                raise EdgeMoeError(f"invalid model spec {self.name!r}: {msg}")

    # derived sizes
    @property
    def grid(self) -> tuple:
        return (self.img_h // self.patch, self.img_w // self.patch)

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def tokens(self) -> int:
        return self.num_patches + 1  # CLS at index 0

    @property
    def head_dim(self) -> int:
        return self.embed // self.heads

    @property
    def scale(self) -> float:
        return self.head_dim ** -0.5

    @property
    def patch_dim(self) -> int:
        return self.in_chans * self.patch * self.patch

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def input_shape(self) -> tuple:
        return (self.in_chans, self.img_h, self.img_w)

    @property
    def output_shape(self) -> tuple:
        return (self.tokens, self.embed)

    def is_moe(self, block: int) -> bool:
        return block in self.moe_blocks

    def encoder_macs(self) -> int:
        """Multiply-accumulates of one encoder pass (top-k experts per token)."""
        t, d = self.tokens, self.embed
        macs = self.num_patches * self.patch_dim * d
        for b in range(self.depth):
            macs += t * d * 3 * d + 2 * t * t * d + t * d * d
            if self.is_moe(b):
                macs += t * d * self.num_experts + self.top_k * t * 2 * d * self.expert_hidden
            else:
                macs += t * 2 * d * self.mlp_hidden
        return macs

    def task_index(self, task) -> int:
        """Task by index or name; raises a one-line error naming the known tasks."""
        names = [t.name for t in self.tasks]
        if isinstance(task, str) and not task.lstrip("-").isdigit():
            if task in names:
                return names.index(task)
        else:
            i = int(task)
            if 0 <= i < len(self.tasks):
                return i
        known = ", ".join(f"{i}={n}" for i, n in enumerate(names))
        raise EdgeMoeError(f"unknown task {task!r} for {self.name} (known: {known})")

    # serialisation
    def to_dict(self) -> dict:
        d = asdict(self)
        d["moe_blocks"] = list(self.moe_blocks)
        d["tasks"] = [asdict(t) for t in self.tasks]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        d = dict(d)
        d["moe_blocks"] = tuple(d["moe_blocks"])
        d["tasks"] = tuple(TaskSpec(**t) for t in d["tasks"])
        return cls(**d)

    def with_(self, **changes) -> "ModelSpec":
        return replace(self, **changes)

    def summary(self) -> str:
        moe = ",".join(str(b) for b in self.moe_blocks) or "none"
        tasks = ", ".join(f"{t.name}({t.channels})" for t in self.tasks)
        return (f"{self.in_chans}x{self.img_h}x{self.img_w}, patch {self.patch} -> {self.tokens} tokens; "
                f"embed {self.embed}, {self.heads} heads, {self.depth} blocks (MoE: {moe}); "
                f"MLP {self.mlp_hidden}; {self.num_experts} experts x {self.expert_hidden}, "
                f"top-{self.top_k}; tasks {tasks}")


_SEG_DEPTH = lambda classes: (TaskSpec("semseg", "semseg", classes), TaskSpec("depth", "depth", 1))  # noqa: E731

PRESETS = {
    "micro": ModelSpec(
        name="micro", img_h=32, img_w=64, patch=16, embed=32, depth=4, heads=2, mlp_hidden=64,
        num_experts=4, expert_hidden=32, top_k=2, moe_blocks=(1, 3), tasks=_SEG_DEPTH(8),
        decoder_channels=16, description="tiny model for fast tests"),
    "m3vit-tiny-edge": ModelSpec(
        name="m3vit-tiny-edge", img_h=128, img_w=256, patch=16, embed=192, depth=12, heads=3,
        mlp_hidden=768, num_experts=16, expert_hidden=384, top_k=2,
        moe_blocks=tuple(range(1, 12, 2)), tasks=_SEG_DEPTH(40), decoder_channels=256,
        description="the model of the published Edge-MoE accelerator (ICCAD'23)"),
    "m3vit-small": ModelSpec(
        name="m3vit-small", img_h=480, img_w=640, patch=16, embed=384, depth=12, heads=12,
        mlp_hidden=1536, num_experts=16, expert_hidden=768, top_k=2,
        moe_blocks=tuple(range(1, 12, 2)), tasks=_SEG_DEPTH(40), decoder_channels=256,
        description="M3ViT ViT-S on NYUD-v2 (semseg + depth)"),
}

# ---- the checkpoint format: M3ViT's parameter names ----------------------------------------------------
def block_key(i: int, name: str) -> str:
    """The checkpoint name of tensor ``name`` of encoder block ``i``: ``backbone.blocks.{i}.{name}``."""
    return f"backbone.blocks.{i}.{name}"


# the MLP's tensors (relative to the block) in a dense block and in an MoE block (M3ViT's FMoE experts)
MLP_TENSORS = {
    "fc1": ("mlp.fc1", "mlp.experts.htoh4"),      # embed -> hidden (then GELU)
    "fc2": ("mlp.fc2", "mlp.experts.h4toh"),      # hidden -> embed
    "hidden": ("mlp", "mlp.experts"),             # the GELU output's calibrated type is keyed by this
}


def mlp_tensor(part: str, moe: bool) -> str:
    """``part`` ("fc1", "fc2", "hidden") of a dense (``moe`` False) or an MoE block's MLP, relative to the block."""
    return MLP_TENSORS[part][1 if moe else 0]


DEFAULT_PRESET = "m3vit-tiny-edge"
DEFAULT_PRECISION = "w16a32"   # the reference design's types (golden/precision.py defines them)
PRECISION_NAMES = ("w16a32", "w8a8", "w16a32-fit")   # golden/precision.PRECISIONS, named here for the command line
# the precisions whose types come from the model (w8a8: calibrated on images; w16a32-fit: fitted to the
# parameters; golden/calibrate.py precision_for): they have per-block types (per-tensor overrides)
DERIVED_PRECISIONS = ("w8a8", "w16a32-fit")
# switchable options of a precision, written after its name: "w8a8+smooth+wide-attn" (golden/precision.py applies them)
PRECISION_OPTIONS = {
    "w8a8": {
        "smooth": "LayerNorm outliers moved into the next layer's weights (per channel, a power of two: float-exact)",
        "wide-attn": "Q, K, V, scores and attention probabilities at 16 bits (the attention unit's operands)",
        "per-channel": "one power-of-two weight scale per output channel of qkv, proj, fc1 and fc2 (the engine's epilogue)",
    },
}


def split_precision(name: str) -> tuple:
    """``"w8a8+smooth"`` -> ``("w8a8", ("smooth",))``: the base precision and its options in
    PRECISION_OPTIONS order (any order, no repeats, accepted); an unknown name or option is an error."""
    base, *opts = str(name).split("+")
    if base not in PRECISION_NAMES:
        raise EdgeMoeError(f"unknown precision {name!r} (known: {', '.join(PRECISION_NAMES)}{_options_text()})")
    known = PRECISION_OPTIONS.get(base, {})
    for o in opts:
        if o not in known or opts.count(o) > 1:
            why = "repeated" if o in known else "unknown"
            raise EdgeMoeError(f"precision {name!r}: {why} option {o!r} ("
                               + (f"{base} takes {', '.join('+' + k for k in known)}" if known else f"{base} takes no options")
                               + ")")
    return base, tuple(k for k in known if k in opts)


def precision_name(base: str, options=()) -> str:
    """The canonical name of ``base`` with ``options`` (PRECISION_OPTIONS order)."""
    return "+".join((base,) + split_precision("+".join((base,) + tuple(options)))[1])


def precision_base(name: str) -> str:
    """``"w8a8+smooth"`` -> ``"w8a8"``."""
    return split_precision(name)[0]


def _options_text() -> str:
    return "".join(f"; {b} takes options {', '.join('+' + o for o in opts)}" for b, opts in PRECISION_OPTIONS.items())


def get_preset(name: str) -> ModelSpec:
    try:
        return PRESETS[name]
    except KeyError:
        raise EdgeMoeError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})") from None


def preset_table() -> str:
    rows = [("preset", "image", "tokens", "embed", "heads", "depth", "MoE blocks", "experts",
             "top-k", "MLP", "expert hidden", "GMAC")]
    for p in PRESETS.values():
        rows.append((p.name, f"{p.in_chans}x{p.img_h}x{p.img_w}", str(p.tokens), str(p.embed),
                     str(p.heads), str(p.depth), str(len(p.moe_blocks)), str(p.num_experts),
                     str(p.top_k), str(p.mlp_hidden), str(p.expert_hidden),
                     f"{p.encoder_macs() / 1e9:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


__all__ = ["TaskSpec", "ModelSpec", "PRESETS", "DEFAULT_PRESET", "DEFAULT_PRECISION", "PRECISION_NAMES", "DERIVED_PRECISIONS",
           "PRECISION_OPTIONS", "split_precision", "precision_name", "precision_base",
           "get_preset", "preset_table", "block_key", "mlp_tensor", "MLP_TENSORS"]
