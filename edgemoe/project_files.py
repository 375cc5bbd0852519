"""A generated project folder's file layout, written once (bottom layer: imports nothing of edgemoe above
it), for the code that writes the project (codegen) and the code that builds and packages it (boards):

* ``data/manifest.json`` (:func:`read_manifest`) and the sha256 + size of every data file it records
  (:func:`record_data_files`, checked by :func:`verify_data`);
* the top kernel's interface, read from its C++ (:func:`kernel_interface`);
* the Vivado / Vitis HLS IP build files' names (codegen/vivado_files.py writes them, boards/build.py runs
  them) and the build folder with its completion record (:func:`finished_build`).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import EdgeMoeError
from .io import atomic_path, read_json, sha256_file

DATA_DIR = "data"
MANIFEST_NAME = "manifest.json"

BD_NAME = "edgemoe"           # block design name: build outputs are edgemoe.bit / edgemoe.hwh
VIVADO_DIR = "vivado"
BD_TCL = "build_bd.tcl"
HLS_IP_TCL = "hls_ip.tcl"
HLS_IP_CFG = "hls_config_ip.cfg"

BUILD_DIR = "build"
BUILD_INFO = "build_info.json"

_PRAGMA_MAXI = re.compile(r"#pragma\s+HLS\s+INTERFACE\s+m_axi\b[^\n]*?\bport\s*=\s*(\w+)[^\n]*?\bbundle\s*=\s*(\w+)")


def read_manifest(project_dir) -> dict:
    mf = Path(project_dir) / DATA_DIR / MANIFEST_NAME
    if not mf.is_file():
        raise EdgeMoeError(f"{project_dir} is not a generated project (no data/manifest.json)")
    return read_json(mf, "manifest")


# ---- data integrity -------------------------------------------------------------------------------
def _write_manifest(data_dir: Path, manifest: dict) -> None:
    with atomic_path(data_dir / MANIFEST_NAME) as tmp:
        Path(tmp).write_text(json.dumps(manifest, indent=1))


def record_data_files(project_dir, names=None) -> dict:
    """Record sha256 and size of the files of PROJECT/data (every file but manifest.json, or only
    ``names``) in data/manifest.json's ``data_files``; returns that dict. ``edgemoe generate`` records
    every file; a tool that rewrites one of them on purpose (write_heads) records that one again."""
    data = Path(project_dir) / DATA_DIR
    manifest = json.loads((data / MANIFEST_NAME).read_text())
    rec = dict(manifest.get("data_files") or {}) if names is not None else {}
    files = [data / n for n in names] if names is not None else \
        sorted(f for f in data.iterdir() if f.is_file() and f.name != MANIFEST_NAME and not f.name.startswith("."))
    for f in files:
        rec[f.name] = dict(sha256=sha256_file(f), size=f.stat().st_size)
    manifest["data_files"] = dict(sorted(rec.items()))
    _write_manifest(data, manifest)
    return manifest["data_files"]


def verify_data(project_dir, manifest: dict | None = None) -> list:
    """Check every data file of a generated project against data/manifest.json (sha256 and size, as
    ``edgemoe generate`` recorded them); returns the names checked. A file that is missing or differs
    is a one-line error naming it: ``package`` and ``csim`` call this first, so an edited file is named
    as the cause instead of surfacing as bit mismatches."""
    root = Path(project_dir)
    data = root / DATA_DIR
    if manifest is None:
        manifest = read_json(data / MANIFEST_NAME, "project manifest")
    records = manifest.get("data_files")
    if not isinstance(records, dict) or not records:
        # a project of an older edgemoe: what its manifest records (per-file sha256 of the packed inputs
        # and golden outputs) is checked, the rest cannot be
        records = {f["file"]: dict(sha256=f["sha256"], size=f.get("size")) for f in manifest.get("files", [])
                   if f.get("sha256") and f.get("byte_offset", 0) == 0}
    for name, rec in sorted(records.items()):
        p = data / name
        rel = f"data/{name}"
        if not p.is_file():
            raise EdgeMoeError(f"{rel} is missing from {root} (listed in the project's manifest): generate the "
                               f"project again")
        got = sha256_file(p)
        if got != rec["sha256"] or (rec.get("size") is not None and p.stat().st_size != int(rec["size"])):
            raise EdgeMoeError(f"{rel} differs from the project's manifest (sha256 {got[:16]}..., manifest "
                               f"{rec['sha256'][:16]}...): the project was edited after `edgemoe generate`; "
                               f"generate it again")
    return sorted(records)


# ---- the top kernel's interface -------------------------------------------------------------------
def kernel_interface(project_dir, top: str) -> dict:
    """The top kernel's arguments (in order, pointer or 32-bit scalar) and its m_axi bundles, read
    from ``src/{top}.cpp`` (so the scripts follow the kernel, not a copy of its signature). A pointer
    without an m_axi bundle (``unsigned int *kernel_id``) is an output scalar on s_axilite: a
    read-only register (``output``: True, ``pointer``: False)."""
    src = Path(project_dir) / "src" / f"{top}.cpp"
    if not src.is_file():
        raise EdgeMoeError(f"{src} not found: is {project_dir} a generated project?")
    text = src.read_text()
    m = re.search(r'extern\s+"C"\s+void\s+' + re.escape(top) + r"\s*\(([^)]*)\)", text)
    if not m:
        raise EdgeMoeError(f"{src}: no extern \"C\" void {top}(...) found")
    args = []
    for a in m.group(1).split(","):
        a = " ".join(a.split())
        name = re.findall(r"(\w+)\s*$", a)
        if not name:
            continue
        args.append(dict(name=name[0], pointer="*" in a, decl=a))
    bundles, port_bundle = [], {}
    for port, bundle in _PRAGMA_MAXI.findall(text):
        port_bundle[port] = bundle
        if bundle not in bundles:
            bundles.append(bundle)
    if not bundles:
        raise EdgeMoeError(f"{src}: no m_axi bundle found in the INTERFACE pragmas")
    for a in args:
        a["bundle"] = port_bundle.get(a["name"])
        if a["pointer"] and a["bundle"] is None:
            a.update(pointer=False, output=True)
    return dict(top=top, args=args, bundles=bundles)


# ---- the build folder -----------------------------------------------------------------------------
def finished_build(project_dir) -> dict | None:
    """build_info.json of a finished build of ``project_dir`` (None when there is none)."""
    p = Path(project_dir) / BUILD_DIR / BUILD_INFO
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except ValueError:
        return None


__all__ = ["DATA_DIR", "MANIFEST_NAME", "BD_NAME", "VIVADO_DIR", "BD_TCL", "HLS_IP_TCL", "HLS_IP_CFG", "BUILD_DIR",
           "BUILD_INFO", "read_manifest", "record_data_files", "verify_data", "kernel_interface", "finished_build"]
