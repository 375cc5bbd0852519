"""The stages of one encoder block that the kernel can dump to scratch (its debug taps), in order, and
the tap ids they are numbered by: id 0 is the patch embedding, stage ``s`` of block ``b`` is
``1 + STAGES_PER_BLOCK * b + BLOCK_STAGES.index(s)`` (``DENSE_ONLY`` / ``MOE_ONLY``: the stages of one
kind of block only).  The layout header carries them (``STAGES_PER_BLOCK``, ``NUM_TAP_IDS``, the stage
names); each tap's shape, type and scratch offset are in the tap table of
:class:`edgemoe.codegen.pack.Layout`.
"""
from __future__ import annotations

from edgemoe.spec import ModelSpec

#: stages of one block, in order; a block's tap id is 1 + STAGES_PER_BLOCK * block + position
BLOCK_STAGES = ("ln1", "qkv", "attn_out", "proj", "res1", "ln2", "fc1", "gate_logits", "gate_probs",
                "topk_idx", "topk_score", "mlp_out", "out")
DENSE_ONLY = ("fc1",)
MOE_ONLY = ("gate_logits", "gate_probs", "topk_idx", "topk_score")
STAGES_PER_BLOCK = len(BLOCK_STAGES)


def num_tap_ids(spec: ModelSpec) -> int:
    return 1 + STAGES_PER_BLOCK * spec.depth



def tap_id(block: int, stage: str) -> int:
    return 1 + STAGES_PER_BLOCK * block + BLOCK_STAGES.index(stage)



__all__ = ["BLOCK_STAGES", "DENSE_ONLY", "MOE_ONLY", "STAGES_PER_BLOCK", "num_tap_ids", "tap_id"]
