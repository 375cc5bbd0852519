"""What the host runtime reads from a package before it touches the device: package_manifest.json, the
sha256 and size of every file it lists, the model identity the kernel must report, the task-head weights."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from edgemoe.errors import EdgeMoeError
from edgemoe.io import sha256_file
from edgemoe.kernel_interface import HEADS_NPZ

PACKAGE_MANIFEST = "package_manifest.json"
HEADS_FILES = (HEADS_NPZ, f"data/{HEADS_NPZ}")   # where a package may hold the task heads


def read_package_manifest(pkg: Path) -> dict:
    """PKG/package_manifest.json; a missing or broken one is a one-line error."""
    pm_path = pkg / PACKAGE_MANIFEST
    if not pm_path.is_file():
        raise EdgeMoeError(f"{pm_path} not found: {pkg} is not an edgemoe package (make one with "
                           f"`edgemoe package PROJECT -o PKG`)")
    try:
        return json.loads(pm_path.read_text())
    except ValueError as e:
        raise EdgeMoeError(f"{pm_path} is not valid JSON ({e})") from None


def verify_files(pkg: Path, pm: dict) -> None:
    """Raise (one line, naming the file) unless every file matches its size and sha256."""
    files = pm.get("files")
    if not isinstance(files, dict) or not files:
        raise EdgeMoeError(f"{pkg / PACKAGE_MANIFEST} lists no files: not an edgemoe package")
    for rel, rec in sorted(files.items()):
        p = pkg / rel
        if not p.is_file():
            raise EdgeMoeError(f"{p} is missing (listed in {PACKAGE_MANIFEST}); refusing to touch the device")
        if p.stat().st_size != int(rec["size"]) or sha256_file(p) != rec["sha256"]:
            raise EdgeMoeError(f"{p} does not match its sha256 in {PACKAGE_MANIFEST} (changed or corrupted "
                               f"after packaging); refusing to touch the device")


def expected_kernel_id(pkg: Path, pm: dict) -> tuple:
    """(identity record, kernel ID): the ID is the first 8 hex digits of the identity's config_hash."""
    ident = pm.get("identity")
    if not isinstance(ident, dict) or not re.fullmatch(r"[0-9a-fA-F]{8,}", str(ident.get("config_hash", ""))):
        raise EdgeMoeError(f"{pkg / PACKAGE_MANIFEST} records no model identity (config_hash): a package "
                           f"of an older edgemoe; package the project again")
    return ident, int(str(ident["config_hash"])[:8], 16)


def load_heads(pkg: Path, pm: dict, notes: list):
    """{task: {param: float32 array}} from the package's heads.npz (listed in the manifest), or None
    with a note in ``notes``."""
    listed = [f for f in HEADS_FILES if f in pm["files"]]
    if not listed:
        unlisted = [f for f in HEADS_FILES if (pkg / f).is_file()]
        notes.append(f"{unlisted[0]} is not covered by {PACKAGE_MANIFEST}: ignored; " if unlisted else
                     "the package has no task-head weights (heads.npz): the runtime returns the encoder's "
                     "tokens only, no task outputs")
        return None
    heads = {}
    with np.load(pkg / listed[0], allow_pickle=False) as z:
        for key in z.files:  # "heads.{t}.{param}"
            parts = key.split(".", 2)
            if len(parts) == 3 and parts[0] == "heads" and parts[1].isdigit():
                heads.setdefault(int(parts[1]), {})[parts[2]] = np.asarray(z[key], dtype=np.float32)
    return heads


__all__ = ["PACKAGE_MANIFEST", "HEADS_FILES", "read_package_manifest", "verify_files", "expected_kernel_id", "load_heads"]
