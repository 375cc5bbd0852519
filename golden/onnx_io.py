"""The encoder as ONNX: export with the spec in the metadata, import back into an :class:`M3ViT`.

One graph serves every task: inputs ``image`` [1, 3, H, W] float32 and ``task`` int64 [1]; output
``tokens`` [1, T, d]. The MoE blocks are exported in their dense masked form (every expert over
every token, weighted by the top-k mask), which is mathematically equal to the eager dispatch.
Initializers keep their state_dict names (no constant folding), so import maps them back 1:1.
The task heads are not part of the graph: an imported model gets seeded random heads.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgemoe.errors import EdgeMoeError
from edgemoe.io import atomic_path
from edgemoe.spec import ModelSpec

from .model import M3ViT, build_model
from .state_dict import assign

SPEC_KEY = "edgemoe.spec"
FORMAT_KEY = "edgemoe.format"
FORMAT = "1"
OPSET = 17  # has LayerNormalization; old enough for every common runtime

# Everything the legacy TorchScript exporter emits for our encoder at OPSET (GELU decomposes into
# Erf; the MoE dense form into TopK/ScatterElements/MatMul). Anything else did not come from us.
SUPPORTED_OPS = frozenset({
    "Add", "Cast", "Concat", "Constant", "ConstantOfShape", "Conv", "Div", "Equal", "Erf", "Expand",
    "Gather", "GatherElements", "Identity", "LayerNormalization", "MatMul", "Mul", "ReduceSum", "Reshape",
    "ScatterElements", "Shape", "Slice", "Softmax", "Split", "Squeeze", "TopK", "Transpose",
    "Unsqueeze", "Where",
})


class _Encoder(nn.Module):
    """Holds the backbone under the same attribute name, so initializer names = state_dict keys."""

    def __init__(self, model: M3ViT):
        super().__init__()
        self.backbone = model.backbone

    def forward(self, image, task):
        return self.backbone(image, task, dense=True)


def export_onnx(model: M3ViT, path) -> Path:
    """Write the encoder of ``model`` to ``path`` (.onnx) with its spec in the metadata."""
    import onnx

    spec = model.spec
    path = Path(path)
    args = (torch.zeros(1, *spec.input_shape), torch.zeros(1, dtype=torch.int64))
    was_training = model.training
    model.eval()
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter announces its own deprecation
            torch.onnx.export(_Encoder(model), args, str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=["image", "task"], output_names=["tokens"],
                              do_constant_folding=False, export_params=True)
            proto = onnx.load(str(tmp))
            names = {i.name for i in proto.graph.initializer}
            lost = [k for k in model.state_dict() if k.startswith("backbone.") and k not in names]
            if lost:  # a silent rename would make the file impossible to import
                raise EdgeMoeError(f"ONNX export renamed parameters: {', '.join(lost[:8])}")
            meta = {SPEC_KEY: spec.to_json(), FORMAT_KEY: FORMAT}
            for k, v in meta.items():
                entry = proto.metadata_props.add()
                entry.key, entry.value = k, v
            proto.doc_string = f"edgemoe encoder of {spec.name}: {spec.summary()}"
            onnx.save(proto, str(tmp))
    finally:
        model.train(was_training)
    return path


def check_ops(proto, path) -> None:
    """Reject any node that our exporter does not produce (first one, by name)."""
    for node in proto.graph.node:
        if node.op_type not in SUPPORTED_OPS or node.domain not in ("", "ai.onnx"):
            op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
            raise EdgeMoeError(f"{path}: unsupported ONNX operator {op} at node {node.name!r}")


def read_spec(proto, path) -> ModelSpec:
    meta = {p.key: p.value for p in proto.metadata_props}
    if SPEC_KEY not in meta:
        raise EdgeMoeError(f"{path}: ONNX model has no {SPEC_KEY} metadata (not exported by edgemoe)")
    try:
        return ModelSpec.from_dict(json.loads(meta[SPEC_KEY]))
    except EdgeMoeError:
        raise
    except Exception as e:
        raise EdgeMoeError(f"{path}: unreadable {SPEC_KEY} metadata ({type(e).__name__}: {e})") from None


def import_onnx(path, seed: int = 0) -> M3ViT:
    """Rebuild an :class:`M3ViT` from an ONNX file written by :func:`export_onnx`.

    The encoder weights come from the initializers; the heads are seeded random (``seed``).
    """
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    if not path.is_file():
        raise EdgeMoeError(f"ONNX file {path} not found")
    try:
        proto = onnx.load(str(path))
    except Exception as e:
        raise EdgeMoeError(f"{path}: not an ONNX model ({type(e).__name__})") from None
    if not proto.graph.node:
        raise EdgeMoeError(f"{path}: not an ONNX model (no graph)")
    spec = read_spec(proto, path)
    check_ops(proto, path)
    tensors = {i.name: torch.from_numpy(np.array(numpy_helper.to_array(i), dtype=np.float32))
               for i in proto.graph.initializer if i.name.startswith("backbone.")}
    model = build_model(spec, seed=seed)
    assign(model, tensors, "backbone.", path)
    return model


__all__ = ["export_onnx", "import_onnx", "check_ops", "SUPPORTED_OPS", "SPEC_KEY"]
