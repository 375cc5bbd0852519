"""Small file helpers shared by the commands: checked .npy input, sha256 of a file, and the one writer
of every output. It ships with the host runtime (boards/package.py), so its module-level imports stay
the standard library, numpy and edgemoe.errors.

Every output goes to a temporary name beside its place and is renamed there only when complete, so
a failed or interrupted run never leaves something that looks finished. A folder edgemoe writes
carries a marker file (``.edgemoe``: what wrote it and when); an existing folder is replaced only
with ``force`` and only when it carries that marker, never a user's folder or file. Modes follow the
umask (mkstemp / mkdtemp alone would leave 0600 / 0700).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import EdgeMoeError

MARKER = ".edgemoe"        # the file naming what wrote a folder; its presence makes the folder replaceable
IMAGE_RANGE = (0.0, 1.0)   # pixel values the models were trained on (ToTensor scale)


def umask() -> int:
    """The process's umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def umask_mode(executable: bool, mask: int | None = None) -> int:
    """The mode a new folder or executable (``executable``), or a plain file, gets under the umask."""
    return (0o777 if executable else 0o666) & ~(umask() if mask is None else mask)


def write_marker(folder, command: str, written: str | None = None) -> None:
    """Put edgemoe's marker into ``folder``: what wrote it and when (it makes the folder replaceable);
    ``written``: the time to record in place of now (e.g. an output from before markers existed)."""
    (Path(folder) / MARKER).write_text(json.dumps(dict(
        tool="edgemoe", version=__import__("edgemoe").__version__, command=command,
        written=written or time.strftime("%Y-%m-%dT%H:%M:%S%z"))) + "\n")


def _why(e: OSError) -> str:
    return e.strerror or str(e)


def _about(e: OSError, tmp) -> bool:
    """True when the error is about ``tmp`` or a file inside it (a write of ours, not a bad input)."""
    return any(str(f).startswith(str(tmp)) for f in (e.filename, getattr(e, "filename2", None)) if f)


def check_image(x, expected_shape, where: str = "image") -> np.ndarray:
    """``x`` as float32 (C, H, W) after the checks every command shares: shape, dtype, finite, range."""
    x = np.asarray(x)
    if tuple(x.shape) != tuple(expected_shape):
        raise EdgeMoeError(f"{where}: image has shape {tuple(x.shape)}; expected {tuple(expected_shape)}")
    if not np.issubdtype(x.dtype, np.floating):
        raise EdgeMoeError(f"{where}: image dtype is {x.dtype}; expected float32 values in "
                           f"[{IMAGE_RANGE[0]:g}, {IMAGE_RANGE[1]:g}]")
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise EdgeMoeError(f"{where}: image holds {bad} NaN or infinite value(s)")
    lo, hi = float(x.min()), float(x.max())
    if lo < IMAGE_RANGE[0] or hi > IMAGE_RANGE[1]:
        hint = " (0..255 pixels: divide by 255)" if hi > 1.5 else ""
        raise EdgeMoeError(f"{where}: image values span [{lo:g}, {hi:g}]; accepted range is "
                           f"[{IMAGE_RANGE[0]:g}, {IMAGE_RANGE[1]:g}]{hint}")
    return x.astype(np.float32)


def load_npy(path, what: str = "input") -> np.ndarray:
    """An array from a .npy file, with one-line errors for a missing, non-.npy or pickled file."""
    p = Path(path)
    if not p.is_file():
        raise EdgeMoeError(f"{what} file {p} not found")
    try:
        with open(p, "rb") as f:
            magic = f.read(6)
    except OSError as e:
        raise EdgeMoeError(f"{what} file {p}: cannot read ({_why(e)})") from None
    if magic != b"\x93NUMPY":
        raise EdgeMoeError(f"{p} is not a .npy file (no NumPy header; save arrays with numpy.save)")
    try:
        return np.load(p, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise EdgeMoeError(f"{p} holds pickled (object) data; expected a float32 array") from None
        raise EdgeMoeError(f"{p} is not a readable .npy array ({e})") from None
    except Exception as e:  # numpy raises several types for a damaged file
        raise EdgeMoeError(f"{p} is not a readable .npy array ({type(e).__name__}: {e})") from None


def load_image_npy(path, expected_shape) -> np.ndarray:
    """A float32 image (C, H, W) from ``path``, checked by :func:`check_image`."""
    return check_image(load_npy(path), expected_shape, where=str(path))


def same_file(a, b) -> bool:
    """True when the two paths name one file (the output would overwrite an input)."""
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def sha256_file(path, chunk: int = 1 << 20) -> str:
    """The sha256 of the file at ``path`` (hex), read in ``chunk``-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def refuse_inputs(output, inputs, option: str) -> None:
    """One-line error when ``output`` is one of the command's ``inputs`` (it would be overwritten)."""
    for i in inputs:
        if i is not None and same_file(output, i):
            raise EdgeMoeError(f"{option} {output} is also an input of this command; give another file name")


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
        raise EdgeMoeError(f"cannot write {path}: {_why(e)}") from None
    try:
        yield Path(tmp)
        try:
            if os.path.exists(tmp):
                os.chmod(tmp, umask_mode(False))
            os.replace(tmp, path)
        except OSError as e:
            raise EdgeMoeError(f"cannot write {path}: {_why(e)}") from None
    except OSError as e:  # the block's own writes (disk full, read-only): one line, nothing left behind
        if not _about(e, tmp):
            raise
        raise EdgeMoeError(f"cannot write {path}: {_why(e)}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_json(path, what: str):
    """``path`` parsed as JSON; a missing or unreadable file is a one-line error naming ``what`` and it."""
    p = Path(path)
    if not p.is_file():
        raise EdgeMoeError(f"{what} {p}: not found")
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise EdgeMoeError(f"{what} {p}: not readable JSON ({e})") from None


def check_output_file(path, option: str) -> None:
    """Refuse, before any work, a file output that cannot be written: a folder in its place, or a
    parent that is a file or where no file can be made (read-only, permissions). Creates nothing."""
    path = Path(path)
    if path.is_dir():
        raise EdgeMoeError(f"{option} {path}: is a folder (give a file name)")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise EdgeMoeError(f"{option} {path}: {parent} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".edgemoe-probe.", dir=parent)
        os.close(fd)
        os.unlink(probe)
        if parent != path.parent:   # the missing folders must be creatable too
            probe_dir = tempfile.mkdtemp(prefix=".edgemoe-probe.", dir=parent)
            os.rmdir(probe_dir)
    except OSError as e:
        missing = path.parent.relative_to(parent) if parent != path.parent else None
        where = f"cannot create {missing} in {parent}" if missing else f"no file can be made in {parent}"
        raise EdgeMoeError(f"{option} {path}: cannot write there: {where} ({_why(e)})") from None


def made_by_edgemoe(path) -> bool:
    """True when ``path`` is a folder that carries edgemoe's marker."""
    return (Path(path) / MARKER).is_file()


def check_output_dir(path, *, force: bool, option: str = "-o") -> None:
    """Refuse, before any work, an output folder that edgemoe may not write (see :func:`output_dir`)."""
    path = Path(path)
    here = Path.cwd().resolve()
    full = path.resolve()
    if full == here or full in here.parents:
        raise EdgeMoeError(f"{option} {path}: refusing to write over the current folder or one of its parents; "
                           f"name a new folder")
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise EdgeMoeError(f"{option} {path}: exists and is not a folder; edgemoe replaces only folders it made")
    if path.is_dir() and any(path.iterdir()):
        if not made_by_edgemoe(path):
            raise EdgeMoeError(f"{option} {path}: folder exists and was not made by edgemoe (no {MARKER} file); "
                               f"it is left alone: name a new folder")
        if not force:
            raise EdgeMoeError(f"{option} {path}: folder exists (use --force to replace it)")


def _set_modes(root: Path) -> None:
    mask = umask()
    os.chmod(root, umask_mode(True, mask))
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(dirpath, d), umask_mode(True, mask))
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                os.chmod(p, umask_mode(bool(os.stat(p).st_mode & 0o111), mask))


@contextmanager
def output_dir(path, *, force: bool = False, command: str = "edgemoe", option: str = "-o"):
    """Yield a temporary folder beside ``path``; when the block succeeds it gets edgemoe's marker and
    replaces ``path``. ``path`` may be new, an empty folder, or (with ``force``) a folder edgemoe made;
    anything else is refused (checked again here, as the block may have run for minutes)."""
    path = Path(path)
    check_output_dir(path, force=force, option=option)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    except OSError as e:
        raise EdgeMoeError(f"cannot write {path}: {_why(e)}") from None
    old = None
    try:
        yield tmp
        check_output_dir(path, force=force, option=option)
        try:
            write_marker(tmp, command)
            _set_modes(tmp)
            if path.is_dir():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
                os.replace(path, old / path.name)
            os.replace(tmp, path)
        except OSError as e:
            if old is not None and (old / path.name).exists() and not path.exists():
                os.replace(old / path.name, path)   # put the previous folder back
            raise EdgeMoeError(f"cannot write {path}: {_why(e)}") from None
    except OSError as e:
        if not _about(e, tmp):
            raise
        raise EdgeMoeError(f"cannot write {path}: {_why(e)}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def save_npy(path, array) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, np.asarray(array))
