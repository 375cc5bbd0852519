"""The instrumented C simulation of ``edgemoe hls-check``: build, run, and turn its report into violations.

The probe build compiles the same kernel sources with ``-DEDGEMOE_PROBE`` (the EM_* hooks of
edgemoe_probe.h become calls) together with the recorder ``hls/probe/edgemoe_probe.cpp`` into a
shared library of its own, cached by content hash in the project's build folder like the csim
library.  One kernel call on the project's own input (a batched design: batch + 1 images, a full and
a partial batch) records per pipelined-loop iteration the banks and ROM copies used and, per m_axi
port, whether each loop's accesses form one burst.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import shutil
import time
from pathlib import Path

from edgemoe.errors import EdgeMoeError
from edgemoe.kernel_interface import TAP_NONE

from .aptypes import compile_cpp, find_ap_types, find_cxx
from .render import HLS_DIR, INCLUDE_DIR
from .synth_check import Violation

RECORDER = HLS_DIR / "probe" / "edgemoe_probe.cpp"
PROBE_HEADER = INCLUDE_DIR / "edgemoe_probe.h"
TAP_ALL = -2


def probe_flags(axi_bits: int | None) -> list:
    return ["-DEDGEMOE_PROBE"] + ([f"-DEM_PROBE_AXI_BITS={int(axi_bits)}"] if axi_bits else [])


def with_probe_header(include_dirs, where) -> list:
    """``include_dirs``, plus a folder holding edgemoe's edgemoe_probe.h when none of them has one (the
    header alone: the project's other headers must not be shadowed)."""
    dirs = [Path(d) for d in include_dirs]
    if not any((d / PROBE_HEADER.name).is_file() for d in dirs):
        inc = Path(where) / "probe_include"
        inc.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROBE_HEADER, inc / PROBE_HEADER.name)
        dirs.append(inc)
    return dirs


def build_probe_library(sources, output: Path, include_dirs, axi_bits: int | None = None, flags=()) -> Path:
    """Compile ``sources`` + the recorder with -DEDGEMOE_PROBE into the shared library ``output``."""
    output = Path(output)
    include_dirs = with_probe_header(include_dirs, output.parent)
    tmp = output.with_name(output.name + ".tmp")
    compile_cpp(list(sources) + [RECORDER], tmp, flags=list(flags) + probe_flags(axi_bits),
                include_dirs=include_dirs, shared=True, timeout=900)
    tmp.replace(output)
    return output


class ProbeLib:
    """A probe library loaded with ctypes: the kernel's entry points plus the recorder's."""

    def __init__(self, path):
        self.path = Path(path)
        self.lib = ctypes.CDLL(str(self.path))
        self.lib.em_probe_report_json.argtypes = [ctypes.c_char_p, ctypes.c_long]
        self.lib.em_probe_report_json.restype = ctypes.c_long
        self.lib.em_probe_set_word_bytes.argtypes = [ctypes.c_long]

    def reset(self) -> None:
        self.lib.em_probe_reset()

    def set_word_bytes(self, n: int) -> None:
        self.lib.em_probe_set_word_bytes(int(n))

    def report(self) -> dict:
        cap = 1 << 20
        while True:
            buf = ctypes.create_string_buffer(cap)
            n = self.lib.em_probe_report_json(buf, cap)
            if n < cap:
                return json.loads(buf.value.decode())
            cap = n + 1


def _project_library(prj: Path, manifest: dict) -> Path:
    import os
    from .project import CSIM_FLAGS
    top = manifest["top"]
    sources = [prj / "src" / f"{top}.cpp", prj / "csim" / "edgemoe_csim.cpp"]
    include_dirs = [prj / "src"] + ([] if os.environ.get("XILINX_HLS") else [prj / "compat"])
    find_cxx()
    h = hashlib.sha256()
    for f in sorted((prj / "src").glob("*")) + [sources[1]] + sorted((prj / "compat").glob("*")) + [RECORDER, PROBE_HEADER]:
        if f.is_file():
            h.update(f.name.encode() + f.read_bytes())
    h.update((" ".join(CSIM_FLAGS) + str(find_ap_types()) + str(manifest["axi_bits"])).encode())
    lib = prj / "build" / f"libedgemoe_probe_{h.hexdigest()[:12]}.so"
    if not lib.is_file():
        build_probe_library(sources, lib, include_dirs, manifest["axi_bits"], CSIM_FLAGS)
    return lib


def run_project_probe(project_dir) -> dict:
    """Build (or reuse) the probe library of a generated project and run one kernel call on its own
    input: {"report", "images", "seconds", "compile_seconds"}."""
    prj = Path(project_dir)
    manifest = json.loads((prj / "data" / "manifest.json").read_text())
    t0 = time.perf_counter()
    lib = ProbeLib(_project_library(prj, manifest))
    compile_s = time.perf_counter() - t0
    k = lib.lib
    # the last argument: where the harness puts the kernel's ID register (None: not asked for)
    k.em_run.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                         ctypes.c_int, ctypes.POINTER(ctypes.c_uint32)]
    sizes = manifest["sizes"]
    wb = int(manifest["axi_bits"]) // 8
    weights = (prj / "data" / "weights.bin").read_bytes()
    if k.em_load_weights(ctypes.c_char_p(weights), ctypes.c_longlong(sizes["weight_words"])) != 0:
        raise EdgeMoeError("the probe library refused weights.bin")
    batch = int(manifest["design"].get("batch", 1))
    n = batch + 1 if batch > 1 else 1   # a full and a partial batch
    pix = (prj / "data" / "input_pixels.bin").read_bytes() * n
    out = ctypes.create_string_buffer(n * sizes["out_words"] * wb)
    scratch = ctypes.create_string_buffer(sizes["scratch_words"] * wb)
    lib.reset()
    t1 = time.perf_counter()
    if k.em_run(pix, out, scratch, n, 0, 1, TAP_NONE, None) != 0:
        raise EdgeMoeError("the probed kernel run failed")
    runs = [f"{n} image(s), task 0, no taps"]
    if manifest.get("taps"):
        # a second call dumping every stage (the debug taps' loops) on the other task's gates
        task = 1 if len(manifest.get("spec", {}).get("tasks", [])) > 1 else 0
        if k.em_run(pix, out, scratch, 1, task, 0, TAP_ALL, None) != 0:
            raise EdgeMoeError("the probed kernel run with every tap failed")
        runs.append(f"1 image, task {task}, every tap")
    seconds = time.perf_counter() - t1
    return dict(report=lib.report(), images=n, runs=runs, seconds=seconds, compile_seconds=compile_s,
                library=str(lib.path))


def probe_violations(report: dict, locate) -> list:
    """Violations from a recorder report; ``locate(loop label)`` gives (file, line)."""
    out = []
    for c in report.get("bank_conflicts", []):
        f, line = locate(c["loop"])
        mem = "UltraRAM word" if c.get("uram") else "block RAM bank"
        writes = f" ({c['max_writes']} writes)" if c.get("uram") or c["max_writes"] > 1 else ""
        out.append(Violation(f, line, "bank-conflict",
                             f"loop {c['loop']}: buffer {c['buffer']} {mem} {c['bank']}: {c['max_accesses']} accesses"
                             f"{writes} in one iteration, {c['ports']} ports ({c['iterations']} iterations)"))
    for r in report.get("rom_oversubscribed", []):
        f, line = locate(r["loop"])
        out.append(Violation(f, line, "rom-ports",
                             f"loop {r['loop']}: ROM {r['rom']} copy {r['copy']}: {r['max_reads']} reads in one "
                             f"iteration, 2 ports ({r['iterations']} iterations): more copies needed"))
    for port, b in report.get("bursts", {}).items():
        for p in b.get("problems", []):
            f, line = locate(p["loop"])
            where = f"loop {p['loop']}" if p["loop"] else "outside any pipelined loop"
            what = {"conditional": "iterations without an access (conditional)",
                    "multiple": "iterations with several accesses",
                    "non-contiguous": "address steps other than +1 word",
                    "outside-loop": "single accesses"}.get(p["kind"], p["kind"])
            out.append(Violation(f, line, "burst", f"{where}: m_axi port {port} ({b.get('bundle', '')}): "
                                 f"{p['kind']}: {p['count']} {what}: no burst"))
    top_file, top_line = locate(None)
    unreg = report.get("unregistered", {})
    for kind, n in unreg.items():
        if n:
            out.append(Violation(top_file, top_line, "probe", f"{n} EM_{kind.upper()} accesses to unregistered memory "
                                 "(register it with em_probe_buffer / em_probe_rom_table / em_probe_port)"))
    if report.get("bad_banks"):
        out.append(Violation(top_file, top_line, "probe", f"{report['bad_banks']} EM_MEM accesses name a bank past the buffer's "
                             f"banks ({'; '.join(report.get('errors', []))})"))
    return out


__all__ = ["RECORDER", "PROBE_HEADER", "with_probe_header", "build_probe_library", "ProbeLib", "run_project_probe",
           "probe_violations", "probe_flags"]
