"""M3ViT checkpoints: the sharded per-rank format (a folder of ``{rank}.pth``) and single files.

M3ViT trains with FastMoE expert parallelism: rank 0 saves every shared weight plus its own experts,
the other ranks save only their experts; on load the expert tensors (``*.mlp.experts.*``) of all
ranks are concatenated along dim 0 in rank order. Task decoders are saved as
``decoders.{task name}.*``; ours are ``heads.{task index}.*`` with the same layer names, so both load.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import torch

from edgemoe.errors import EdgeMoeError
from edgemoe.spec import get_preset

from .model import M3ViT, build_model
from .state_dict import EXPERT_KEY, assign, key_listing


def _torch_load(path: Path) -> object:
    try:
        # weights_only: a checkpoint is data; never run code from a pickle
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EdgeMoeError(f"{path}: not a PyTorch checkpoint ({reason[:160]})") from None


def _state_dict_of(obj, path: Path) -> dict:
    """The state_dict inside a loaded file: raw, or under 'state_dict' / 'model'; 'module.' stripped."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise EdgeMoeError(f"{path}: not a checkpoint (no state_dict of tensors inside)")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def read_checkpoint(path) -> dict:
    """The merged state_dict of a rank folder or a single .pth file."""
    path = Path(path)
    if not path.exists():
        raise EdgeMoeError(f"checkpoint {path} not found")
    if path.is_file():
        return _state_dict_of(_torch_load(path), path)
    ranks = sorted(int(f.stem) for f in path.iterdir() if re.fullmatch(r"\d+\.pth", f.name))
    if not ranks:
        raise EdgeMoeError(f"checkpoint folder {path} holds no {{rank}}.pth files")
    if ranks != list(range(len(ranks))):
        missing = sorted(set(range(max(ranks) + 1)) - set(ranks))
        names = ", ".join(f"{r}.pth" for r in missing)
        raise EdgeMoeError(f"checkpoint folder {path}: rank files {names} missing")
    merged = _state_dict_of(_torch_load(path / "0.pth"), path / "0.pth")
    for r in ranks[1:]:
        part = _state_dict_of(_torch_load(path / f"{r}.pth"), path / f"{r}.pth")
        for k, v in part.items():
            if EXPERT_KEY in k and k in merged:
                merged[k] = torch.cat([merged[k], v], dim=0)
            elif k not in merged:
                merged[k] = v  # shared weights live on rank 0; copies elsewhere are ignored
    return merged


def _decoder_keys(sd: dict, model: M3ViT) -> dict:
    """M3ViT's ``decoders.{task name}.*`` renamed to our ``heads.{index}.*``."""
    out = {}
    for i, t in enumerate(model.spec.tasks):
        pre = f"decoders.{t.name}."
        out.update({f"heads.{i}." + k[len(pre):]: v for k, v in sd.items() if k.startswith(pre)})
    return out


def load_checkpoint(model: M3ViT, path) -> list:
    """Load an M3ViT checkpoint into ``model``; returns warnings (one line each).

    ``backbone.*`` must match exactly (missing, unexpected or mis-shaped keys are errors). Task heads
    load from ``heads.*`` or M3ViT's ``decoders.{task}.*``; without either they keep their random
    weights and that is a warning.
    """
    sd = read_checkpoint(path)
    if not any(k.startswith("backbone.") for k in sd):
        raise EdgeMoeError(f"{path}: no backbone.* keys: not an M3ViT checkpoint")
    assign(model, sd, "backbone.", path)
    warnings = []
    heads = {k: v for k, v in sd.items() if k.startswith("heads.")} or _decoder_keys(sd, model)
    if heads:
        assign(model, heads, "heads.", path, optional=("num_batches_tracked",))
    else:
        warnings.append(f"{path}: no task heads (heads.* or decoders.<task>.*); "
                        "the heads keep random weights")
    used = ("backbone.", "heads.") + tuple(f"decoders.{t.name}." for t in model.spec.tasks)
    ignored = [k for k in sd if not k.startswith(used)]
    if ignored:
        warnings.append(f"{path}: ignored {len(ignored)} keys outside the encoder and heads: "
                        f"{key_listing(ignored)}")
    return warnings


def save_checkpoint(model: M3ViT, folder, ranks: int = 2) -> Path:
    """Write ``model`` in M3ViT's sharded format: ``folder/{rank}.pth``, experts split evenly."""
    e = model.spec.num_experts
    if ranks < 1 or e % ranks:
        raise EdgeMoeError(f"{e} experts cannot be split evenly over {ranks} ranks")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sd = model.state_dict()
    per = e // ranks
    for r in range(ranks):
        # clone: a slice saved as a view would carry the storage of all experts with it
        part = {k: v[r * per:(r + 1) * per].clone() for k, v in sd.items() if EXPERT_KEY in k}
        if r == 0:
            part.update({k: v.clone() for k, v in sd.items() if EXPERT_KEY not in k})
        torch.save({"state_dict": part, "epoch": 0, "rank": r, "spec": model.spec.to_json()},
                   folder / f"{r}.pth")
    return folder


def load_model(preset_name: str, checkpoint=None, onnx=None, seed: int = 0) -> M3ViT:
    """The model the CLI runs: an exported ONNX file, or a preset with seeded weights and an
    optional checkpoint on top. Warnings go to stderr."""
    if onnx is not None and checkpoint is not None:
        raise EdgeMoeError("give either a checkpoint or an ONNX file, not both")
    if onnx is not None:
        from .onnx_io import import_onnx
        return import_onnx(onnx, seed=seed)
    model = build_model(get_preset(preset_name), seed=seed)
    if checkpoint is not None:
        for w in load_checkpoint(model, checkpoint):
            print(f"warning: {w}", file=sys.stderr)
    return model


__all__ = ["load_checkpoint", "save_checkpoint", "read_checkpoint", "load_model", "assign"]
