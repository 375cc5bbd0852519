"""The per-block types of the calibrated tensors: which tensor of a block each per-block type of the
kernel is read from (the checkpoint's names, edgemoe/spec.py), written once for the config header's
D_* tables (codegen/config_header.py), the weight packing (codegen/pack.py) and the RTL builds of one
block (sim/rtl.py: block_precision).  The lookups are those of the fixed model
(:class:`edgemoe.golden.fixed_model.FixedM3ViT`: ``prec.t(role, tensor=...)``).
"""
from __future__ import annotations

from edgemoe.spec import MLP_TENSORS, block_key

from .precision import Precision

# in the order of the data flow: (C++ table, role, nominal role, (tensor of a dense block, of a MoE
# block; None: no such tensor, the role's base type), description)
BLOCK_TABLES = (
    ("D_LN1", "ln_out", "ln_out", ("ln1", "ln1"), "norm1 output (ln_out of blocks.i.ln1)"),
    ("D_W_QKV", "w", "w", ("attn.qkv", "attn.qkv"), "qkv weights"),
    ("D_QKV", "qkv", "qkv", ("attn", "attn"), "Q, K, V"),
    ("D_ATTN_OUT", "attn_out", "ln_out", ("attn_out", "attn_out"), "attention output (proj input)"),
    ("D_W_PROJ", "w", "w", ("attn.proj", "attn.proj"), "proj weights"),
    ("D_LN2", "ln_out", "ln_out", ("ln2", "ln2"), "norm2 output (ln_out of blocks.i.ln2)"),
    ("D_W_FC1", "w", "w", MLP_TENSORS["fc1"], "fc1 weights (MoE blocks: expert htoh4)"),
    ("D_HIDDEN", "hidden", "ln_out", MLP_TENSORS["hidden"], "GELU output = fc2 input (MoE blocks: the experts' hidden)"),
    ("D_W_FC2", "w", "w", MLP_TENSORS["fc2"], "fc2 weights (MoE blocks: expert h4toh)"),
    ("D_GATE_W", "gate_w", "gate_w", (None, "mlp.gate"), "MoE gate weights (0 in dense blocks)"),
    ("D_PROB", "prob", "prob", ("attn", "attn"), "attention probabilities (calibrated per block in w8a8)"),
)


def block_type(spec, prec: Precision, block: int, table: str):
    """The type of table ``table``'s tensor in block ``block``."""
    for name, role, _, tensors, _ in BLOCK_TABLES:
        if name == table:
            tensor = tensors[int(spec.is_moe(block))]
            return prec.types[role] if tensor is None else prec.t(role, tensor=block_key(block, tensor))
    raise KeyError(table)


def block_types(spec, prec: Precision) -> dict:
    """``{table: [its type in block i for every block]}``."""
    return {name: [block_type(spec, prec, i, name) for i in range(spec.depth)] for name, *_ in BLOCK_TABLES}


def role_tables() -> dict:
    """``{role: the first table of that role}``: the tensor whose type stands for the role in one block
    (ln1 for ln_out, the qkv weights for w, ...)."""
    out = {}
    for name, role, *_ in BLOCK_TABLES:
        out.setdefault(role, name)
    return out


__all__ = ["BLOCK_TABLES", "block_type", "block_types", "role_tables"]
