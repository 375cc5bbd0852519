"""The kernel plan: the unit calls of one batch of frames, written once.

The top template (hls/templates/edgemoe_top.cpp.j2) renders its calls from this plan and the cycle
model (codegen/estimate.py: ``schedule``) costs the same calls, so the schedule exists in one place.

The plan is a sequence of phases, each a tuple of :class:`Step` (the loops of the top kernel):

* ``frame_in``    per image of the batch (loop ``batch_in``): the patch embedding;
* ``front``       per block, per image (``batch_front``): the attention half and LayerNorm 2, then
  ``front_moe`` (a MoE block: the gate logits and the routing into the batch's expert queues) or
  ``front_dense`` (a dense block: fc1, fc2 and the second residual add);
* ``experts``     a MoE block, once per batch (``experts`` / ``expert_chunks``): every expert on its
  merged queue, in engine calls of at most TOKENS rows (``n``);
* ``back``        a MoE block, per image (``batch_back``): the expert slots added to the residual stream;
* ``frame_out``   per image (``batch_out``): the residual stream written out.

A step names its unit (the cycle model's), the C++ function the top calls and its arguments (C++
expressions of the top's run-time names: ``xw`` the image's first word, ``b`` the image, ``i`` the
block, ``e`` the expert, ``n`` / ``q`` the expert chunk's rows / queue offset), its engine mode and
source buffer (ENG_* of edgemoe_config.h), rows and in / out dims (header names, valued by
:func:`sizes`), the role of its weights' width (:class:`~edgemoe.codegen.model_common.Widths`) and
the stages it taps (codegen/tap_stages.py: BLOCK_STAGES). :meth:`KernelPlan.calls` unrolls the plan for a
spec, a batch size and the experts' queue lengths, in the order the kernel runs the calls.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .config_header import ENGINE_MODE

WRAP = 120            # the top's call statements are wrapped at this column (continuations under the '(')
EMBED_TAP = "embed"   # tap 0: the patch embedding (the blocks' taps are the stages of codegen/tap_stages.py)
# the engine's source buffers (linear.h: engine_call); ENG_POS etc. are ENGINE_MODE's names
ENGINE_SOURCES = ("ENG_SRC_PIX", "ENG_SRC_LNB", "ENG_SRC_ATT", "ENG_SRC_HID")
KINDS = ("patch_embed", "engine", "layernorm", "attention", "residual", "route", "write_out")


@dataclass(frozen=True)
class Tap:
    """A stage the top may dump to scratch after a step: ``n`` values of buffer ``buf``; ``prep``: a
    statement that fills the buffer first, only when the stage is dumped."""
    stage: str
    buf: str
    n: str
    prep: str | None = None

    @property
    def c_id(self) -> str:
        """The tap id in the top's C++."""
        return "0" if self.stage == EMBED_TAP else f"id0 + ST_{self.stage.upper()}"


@dataclass(frozen=True)
class Step:
    """One unit call of the top kernel."""
    name: str                    # the cycle model's layer name (its block and image prefixes aside)
    kind: str                    # one of KINDS: how the cycle model costs it and the template writes it
    unit: str                    # the cycle model's unit: linear | patch_embed | layernorm | attention | ...
    func: str                    # the C++ function called (engine steps: engine_call inside ENGINE(...))
    args: tuple                  # its C++ arguments ({rows} and {slots} stand for those fields); engine
    #                              steps: the arguments after mode, source and dims
    rows: str = "TOKENS"         # header name (or run-time name) of the rows
    ind: str = "EMBED"           # values per row in
    outd: str = "EMBED"          # values per row out (an engine call's output rows of weights)
    mode: str | None = None      # engine steps: ENG_* mode
    src: str | None = None       # engine steps: ENG_SRC_* source buffer
    weights: str | None = None   # engine steps: the Widths role of the weights' width (w, gate_w, patch_w)
    mac_out: str | None = None   # outputs that count as MACs when outd is padded (the gate: NUM_EXPERTS)
    slots: str = "1"             # residual steps: output slots added (MoE: NUM_SLOTS)
    taps: tuple = ()
    comment: str | None = None   # a comment line the top writes before the call

    @property
    def is_engine(self) -> bool:
        return self.kind in ("engine", "patch_embed")

    def cpp_args(self) -> list:
        """The call's C++ arguments."""
        if self.is_engine:
            return [self.mode, self.src, self.rows, self.ind, self.outd, *self.args]
        return [a.format(rows=self.rows, slots=self.slots) for a in self.args]

    def cpp(self, indent: int) -> str:
        """The call statement, indented by ``indent`` spaces, wrapped at WRAP columns."""
        head = f"ENGINE({self.func}(" if self.is_engine else f"{self.func}("
        return wrap_call(head, self.cpp_args(), "));" if self.is_engine else ");", indent)


def wrap_call(head: str, args: list, close: str, indent: int, width: int = WRAP) -> str:
    """``head`` + the arguments joined by ", " + ``close``, greedily filled up to ``width`` columns,
    the continuation lines under the first argument."""
    lines, line = [], " " * indent + head
    cont = " " * (indent + len(head))
    for k, a in enumerate(args):
        piece = a + (close if k == len(args) - 1 else ",")
        if line.endswith("("):
            line += piece
        elif len(line) + 1 + len(piece) > width:
            lines.append(line)
            line = cont + piece
        else:
            line += " " + piece
    return "\n".join(lines + [line])


def _engine(name, mode, src, rows, ind, outd, weights, *args, unit="linear", kind="engine", **kw) -> Step:
    """An engine call: engine_call(mode, src, rows, ind, outd, *args) (linear.h)."""
    assert mode in ENGINE_MODE and src in ENGINE_SOURCES, (mode, src)
    return Step(name, kind, unit, "engine_call", tuple(args), rows, ind, outd, mode, src, weights, **kw)


def _unit(name, kind, unit, func, *args, **kw) -> Step:
    return Step(name, kind, unit, func, tuple(args), **kw)


def _tap(stage, buf, n="ACT_ELEMS", prep=None) -> Tap:
    return Tap(stage, buf, n, prep)


class Call(NamedTuple):
    """One unit call of a batch: a step of the plan with its image (None: the whole batch's expert
    pass), block (-1: outside the blocks), expert and chunk of its queue, and its rows."""
    step: Step
    image: int | None
    block: int
    rows: int
    expert: int | None = None
    chunk: int = 0


@dataclass(frozen=True)
class KernelPlan:
    frame_in: tuple
    front: tuple
    front_moe: tuple
    front_dense: tuple
    experts: tuple
    back: tuple
    frame_out: tuple

    PHASES = ("frame_in", "front", "front_moe", "front_dense", "experts", "back", "frame_out")

    def steps(self) -> list:
        """Every step in the order the top's source writes them (the MoE branch before the dense one)."""
        return [s for p in self.PHASES for s in getattr(self, p)]

    def block_steps(self, moe: bool) -> list:
        """The steps of one image through one block, in order (a MoE block's expert pass included)."""
        return list(self.front) + (list(self.front_moe + self.experts + self.back) if moe else list(self.front_dense))

    def calls(self, spec, batch: int, counts, design=None) -> list:
        """Every unit call of one batch of ``batch`` images, in the kernel's order; ``counts``: per MoE
        block, the queue length of every expert for one image (the batch's merged queue is ``batch``
        times as long; an empty queue is never read)."""
        dims = sizes(spec, design)
        T = spec.tokens
        out = [Call(s, b, -1, dims[s.rows]) for b in range(batch) for s in self.frame_in]
        counts = iter(counts)
        for i in range(spec.depth):
            moe = spec.is_moe(i)
            out += [Call(s, b, i, dims[s.rows]) for b in range(batch)
                    for s in self.front + (self.front_moe if moe else self.front_dense)]
            if not moe:
                continue
            for e, n in enumerate(next(counts)):
                for c0 in range(0, batch * n, T):       # chunks of at most TOKENS rows
                    out += [Call(s, None, i, min(T, batch * n - c0), e, c0 // T) for s in self.experts]
            out += [Call(s, b, i, dims[s.rows]) for b in range(batch) for s in self.back]
        out += [Call(s, b, -1, dims[s.rows]) for b in range(batch) for s in self.frame_out]
        return out


def sizes(spec, design=None) -> dict:
    """The header names of the plan's rows and dims -> their values for ``spec`` (edgemoe_config.h's
    sizes; GATE_ROWS, moe_route.h's NUM_EXPERTS rounded up to ENGINE_OUT, needs the design)."""
    d = dict(NUM_PATCHES=spec.num_patches, PATCH_DIM=spec.patch_dim, TOKENS=spec.tokens, EMBED=spec.embed,
             QKV_DIM=3 * spec.embed, MLP_HIDDEN=spec.mlp_hidden, EXPERT_HIDDEN=spec.expert_hidden,
             NUM_EXPERTS=spec.num_experts, TOP_K=spec.top_k, NUM_SLOTS=spec.top_k if spec.moe_blocks else 1)
    d["1"] = 1
    if design is not None:
        d["GATE_ROWS"] = -(-spec.num_experts // design.engine_out) * design.engine_out
    return d


# ---- the plan -----------------------------------------------------------------------------------
_ATTN = "attention half"
_MLP = "MLP half"

KERNEL_PLAN = KernelPlan(
    frame_in=(
        _engine("patch_embed", "ENG_POS", "ENG_SRC_PIX", "NUM_PATCHES", "PATCH_DIM", "EMBED", "patch_w",
                "0", "b * IMG_WORDS + EMBED / X_LANES", "0", "W_OFF_PATCH_W", "0", "0",
                unit="patch_embed", kind="patch_embed", taps=(_tap(EMBED_TAP, "g_x"),),
                comment="the patch embedding: the image's pixels on chip once, CLS, then the patches on the engine"),
    ),
    front=(
        _unit("ln1", "layernorm", "layernorm", "layernorm_unit",
              "g_x", "xw", "g_ln", "lnw", "lnw + ew", "g_lnb", "xw", "{rows}", "D_LN1[i]",
              taps=(_tap("ln1", "g_lnb"),), comment=_ATTN),
        _engine("qkv", "ENG_QKV", "ENG_SRC_LNB", "TOKENS", "EMBED", "QKV_DIM", "w",
                "xw", "0", "i * QKV_DIM", "W_OFF_QKV[i]", "D_LN1[i] + D_W_QKV[i]", "D_QKV[i]",
                taps=(_tap("qkv", "g_qkv", "TOKENS * QKV_DIM"),)),
        _unit("attention", "attention", "attention", "attention_unit",
              "g_qkv", "g_att", "{rows}", "D_QKV[i]", "D_ATTN_OUT[i]", "D_PROB[i]",
              taps=(_tap("attn_out", "g_att"),)),
        _engine("proj", "ENG_ACT", "ENG_SRC_ATT", "TOKENS", "EMBED", "EMBED", "w",
                "0", "xw", "B_OFF_PROJ[i]", "W_OFF_PROJ[i]", "D_ATTN_OUT[i] + D_W_PROJ[i]", "0",
                taps=(_tap("proj", "g_tmp[0]"),)),
        _unit("res1", "residual", "residual", "residual_unit", "g_x", "g_tmp", "xw", "xw", "{slots}",
              taps=(_tap("res1", "g_x"),)),
        _unit("ln2", "layernorm", "layernorm", "layernorm_unit",
              "g_x", "xw", "g_ln", "lnw + 2 * ew", "lnw + 3 * ew", "g_lnb", "xw", "{rows}", "D_LN2[i]",
              taps=(_tap("ln2", "g_lnb"),), comment=_MLP),
    ),
    front_moe=(
        # GATE_ROWS: the experts padded to ENGINE_OUT with zero weights; the task selects the gate
        _engine("gate", "ENG_GATE", "ENG_SRC_LNB", "TOKENS", "EMBED", "GATE_ROWS", "gate_w",
                "xw", "0", "0", "W_OFF_GATE[i] + long(t) * GATE_TASK_WORDS", "D_LN2[i] + D_GATE_W[i]", "0",
                mac_out="NUM_EXPERTS",
                comment="the gate logits on the engine; the task selects the gate: only its address depends on it"),
        _unit("route", "route", "moe_route", "moe_route_unit",
              "g_logits", "{rows}", "g_probs", "g_topk_idx", "g_topk_score", "g_qtok", "g_qslot", "g_qscore",
              "g_qlen", "b * TOKENS", "BATCH_ROWS", "true", ind="NUM_EXPERTS", outd="TOP_K",
              taps=(_tap("gate_logits", "g_lgtap", "TOKENS * NUM_EXPERTS",
                         prep="gate_logits_tap(g_logits, g_lgtap, TOKENS)"),
                    _tap("gate_probs", "g_probs", "TOKENS * NUM_EXPERTS"),
                    _tap("topk_idx", "g_topk_idx", "TOKENS * TOP_K"),
                    _tap("topk_score", "g_topk_score", "TOKENS * TOP_K"))),
    ),
    front_dense=(
        _engine("fc1", "ENG_GELU", "ENG_SRC_LNB", "TOKENS", "EMBED", "MLP_HIDDEN", "w",
                "xw", "0", "B_OFF_FC1[i]", "W_OFF_FC1[i]", "D_LN2[i] + D_W_FC1[i]", "D_HIDDEN[i]",
                taps=(_tap("fc1", "g_hid", "TOKENS * MLP_HIDDEN"),)),
        _engine("fc2", "ENG_ACT", "ENG_SRC_HID", "TOKENS", "MLP_HIDDEN", "EMBED", "w",
                "0", "xw", "B_OFF_FC2[i]", "W_OFF_FC2[i]", "D_HIDDEN[i] + D_W_FC2[i]", "0",
                taps=(_tap("mlp_out", "g_tmp[0]"),)),
        _unit("res2", "residual", "residual", "residual_unit", "g_x", "g_tmp", "xw", "xw", "{slots}",
              taps=(_tap("out", "g_x"),)),
    ),
    experts=(   # gathers queue rows q.. of g_lnb; fc1 / fc2: the expert's weights (W_OFF_FC*[i] + e * words)
        _engine("fc1", "ENG_GELU", "ENG_SRC_LNB", "n", "EMBED", "EXPERT_HIDDEN", "w",
                "0", "0", "B_OFF_FC1[i] + e * EXPERT_HIDDEN", "fc1", "D_LN2[i] + D_W_FC1[i]", "D_HIDDEN[i]",
                "true", "q"),
        _engine("fc2", "ENG_SCATTER", "ENG_SRC_HID", "n", "EXPERT_HIDDEN", "EMBED", "w",
                "0", "0", "B_OFF_FC2[i] + e * EMBED", "fc2", "D_HIDDEN[i] + D_W_FC2[i]", "0", "false", "q"),
    ),
    back=(
        _unit("res2", "residual", "residual", "residual_unit", "g_x", "g_tmp", "b * IMG_WORDS", "b * IMG_WORDS",
              "{slots}", slots="NUM_SLOTS", taps=(_tap("mlp_out", "g_tmp[0]"), _tap("out", "g_x"))),
    ),
    frame_out=(
        _unit("write_out", "write_out", "io", "write_out", "out", "long(n0 + b) * OUT_WORDS", "b"),
    ),
)

assert all(s.kind in KINDS for s in KERNEL_PLAN.steps())

__all__ = ["KERNEL_PLAN", "KernelPlan", "Step", "Tap", "Call", "sizes", "wrap_call", "EMBED_TAP", "ENGINE_SOURCES",
           "KINDS", "WRAP"]
