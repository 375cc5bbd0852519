"""heads.npz: the task-head weights the host runtime runs on the board's CPU (host/heads.py).

Written on the toolkit side at build time (needs the model, so torch; ``generate`` calls it) and read
on the board with numpy only (host/package_files.py, by the name HEADS_NPZ of edgemoe/kernel_interface.py).
Keys are the model's own state_dict names, ``heads.{t}.{param}`` (no ``num_batches_tracked``),
float32. ``generate`` writes PROJECT/data/heads.npz; to write it again (or elsewhere)::

    from edgemoe.codegen.pack_heads import write_heads
    write_heads(project_dir, stage / "heads.npz")       # or the default: project_dir/data/heads.npz

``edgemoe package`` lists the file in package_manifest.json like every other file (the runtime
ignores a heads.npz that the package manifest does not cover).
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from edgemoe.errors import EdgeMoeError
from edgemoe.kernel_interface import HEADS_NPZ

from .project import record_data_files


def head_arrays(model) -> dict:
    """{"heads.{t}.{param}": float32 array} for every task head of an M3ViT (torch only here)."""
    from edgemoe.golden.model import head_params_numpy
    out = {}
    for t in range(model.spec.num_tasks):
        for k, v in head_params_numpy(model, t).items():
            out[f"heads.{t}.{k}"] = np.ascontiguousarray(v, dtype=np.float32)
    return out


def _source_model(manifest: dict):
    from edgemoe.golden.checkpoint import load_model   # torch
    src = manifest.get("source") or {}
    if not src.get("preset") and not src.get("onnx"):
        raise EdgeMoeError("the project records no preset or ONNX source to rebuild its task heads from; "
                           "pass the model to write_heads(model=...)")
    return load_model(src.get("preset"), checkpoint=src.get("checkpoint"), onnx=src.get("onnx"),
                      seed=int(src.get("seed") or 0))


def write_heads(project_dir, out=None, model=None) -> Path:
    """Write the task heads of the project's model to ``out`` (default PROJECT/data/heads.npz)."""
    root = Path(project_dir)
    manifest = json.loads((root / "data" / "manifest.json").read_text())
    if model is None:
        model = _source_model(manifest)
    want = manifest.get("spec", {})
    have = model.spec.to_dict()
    diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k) and k != "description")
    if diff:
        raise EdgeMoeError(f"the model for the heads differs from the project's spec in {', '.join(diff)}")
    arrays = head_arrays(model)
    out = Path(out) if out is not None else root / "data" / HEADS_NPZ
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if manifest.get("data_files") and out.resolve() == (root / "data" / HEADS_NPZ).resolve():
        # the project's own heads rewritten on purpose: its record in data/manifest.json follows
        record_data_files(root, [HEADS_NPZ])
    return out


__all__ = ["write_heads", "head_arrays", "HEADS_NPZ"]
