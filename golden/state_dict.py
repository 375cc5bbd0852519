"""Copying named tensors into an :class:`M3ViT`, strictly (the checkpoint and ONNX importers share it:
golden/checkpoint.py and golden/onnx_io.py both import this module, neither imports the other at
its top).
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from edgemoe.errors import EdgeMoeError

from .model import M3ViT

EXPERT_KEY = ".mlp.experts."   # the expert tensors of a state_dict (split over the ranks of a checkpoint)
_MAX_LISTED = 8


def key_listing(keys) -> str:
    keys = sorted(keys)
    more = f" ... (+{len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else ""
    return ", ".join(keys[:_MAX_LISTED]) + more


def assign(model: M3ViT, tensors: dict, prefix: str, source, optional=()) -> None:
    """Copy ``tensors`` into every ``prefix``* entry of the model's state_dict, strictly:
    a missing, unexpected or wrongly shaped tensor is a one-line error naming ``source``."""
    own = {k: v for k, v in model.state_dict().items() if k.startswith(prefix)}
    given = {k: v for k, v in tensors.items() if k.startswith(prefix)}
    missing = [k for k in own if k not in given and not k.endswith(optional)]
    if missing:
        raise EdgeMoeError(f"{source}: {len(missing)} missing keys: {key_listing(missing)}")
    unexpected = [k for k in given if k not in own]
    if unexpected:
        raise EdgeMoeError(f"{source}: {len(unexpected)} unexpected keys: {key_listing(unexpected)}")
    for k, v in given.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise EdgeMoeError(f"{source}: {k}: expected {tuple(own[k].shape)}, found {tuple(v.shape)}"
                               + _rank_hint(k, v, own[k], source))
        if v.is_floating_point():
            bad = int((~torch.isfinite(v)).sum())
            if bad:
                raise EdgeMoeError(f"{source}: {k} holds {bad} NaN or infinite value(s) of {v.numel()}; "
                                   f"a model with them computes nothing meaningful")
    with torch.no_grad():
        for k, v in given.items():
            own[k].copy_(v.to(own[k].dtype))


def _rank_hint(key: str, found, want, source) -> str:
    """Why an expert tensor is short: a rank folder whose last rank files are missing."""
    if EXPERT_KEY not in key or not found.dim() or not want.dim():
        return ""
    have, need = found.shape[0], want.shape[0]
    if have >= need or need % have or not Path(source).is_dir():
        return ""
    ranks = len([f for f in Path(source).iterdir() if re.fullmatch(r"\d+\.pth", f.name)])
    per = have // max(ranks, 1)
    if not per or need % per:
        return ""
    missing = ", ".join(f"{r}.pth" for r in range(ranks, need // per))
    return (f": the folder holds {ranks} rank file(s) with {have} of {need} experts; rank file(s) {missing} "
            f"missing?")


__all__ = ["assign", "key_listing", "EXPERT_KEY"]
