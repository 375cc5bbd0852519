"""Small file helpers shared by the commands: checked .npy input, atomic output."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import EdgeMoeError


def load_image_npy(path, expected_shape) -> np.ndarray:
    """A float32 image (C, H, W) from ``path``, with one-line errors for every way it can be wrong."""
    p = Path(path)
    if not p.is_file():
        raise EdgeMoeError(f"input file {p} not found")
    try:
        x = np.load(p, allow_pickle=False)
    except Exception as e:  # numpy raises several types for a file that is not .npy
        raise EdgeMoeError(f"{p} is not a .npy array ({type(e).__name__}: {e})") from None
    if tuple(x.shape) != tuple(expected_shape):
        raise EdgeMoeError(f"{p}: image has shape {tuple(x.shape)}; expected {tuple(expected_shape)}")
    if not np.issubdtype(x.dtype, np.floating):
        raise EdgeMoeError(f"{p}: image dtype is {x.dtype}; expected float32 values in [0, 1]")
    if not np.all(np.isfinite(x)):
        raise EdgeMoeError(f"{p}: image holds NaN or infinite values")
    return x.astype(np.float32)


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds,
    so a failed run never leaves a half-written file that looks complete."""
    path = Path(path)
    if path.is_dir():
        raise EdgeMoeError(f"cannot write {path}: it is a folder (give a file name)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise EdgeMoeError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        yield Path(tmp)
        try:
            os.replace(tmp, path)
        except OSError as e:
            raise EdgeMoeError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_json(path, what: str):
    """``path`` parsed as JSON; a missing or unreadable file is a one-line error naming ``what`` and it."""
    import json
    p = Path(path)
    if not p.is_file():
        raise EdgeMoeError(f"{what} {p}: not found")
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise EdgeMoeError(f"{what} {p}: not readable JSON ({e})") from None


@contextmanager
def atomic_dir(path):
    """Yield a temporary folder beside ``path``; it replaces ``path`` only if the block succeeds, so
    an interrupted run never leaves a half-written folder that looks complete."""
    import shutil
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def save_npy(path, array) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, np.asarray(array))
