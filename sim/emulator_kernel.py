"""The kernel behind ``edgemoe emulate``'s registers: the generated kernel in C simulation (the same C++
and the same ctypes harness as ``edgemoe csim``), run on the bytes in emulated DDR.

Where the kernel's C++ comes from: the package does not contain it. If package_manifest.json's
project.path still holds the project whose data/manifest.json is byte-identical to the package's,
its sources are compiled (cached in its build/ like ``edgemoe csim``; it must be writable). Otherwise the kernel sources
are rendered again from the package's data/manifest.json alone (spec, precision, design: all the
kernel C++ depends on; weights come from emulated DDR as on the board), into ``--workdir`` or a
temporary folder, by the function ``edgemoe generate`` writes them with
(:func:`edgemoe.codegen.generate.write_kernel_sources`, which renders with ``kernel_context``). No model,
checkpoint or torch run is needed for that.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from edgemoe.errors import EdgeMoeError

from .emulator_ddr import DDR, KernelFault


def render_kernel_project(manifest: dict, dst: Path) -> Path:
    """The kernel's sources, csim harness and data/manifest.json from a project manifest alone."""
    from edgemoe.design import Design
    from edgemoe.codegen.generate import TOP, write_kernel_sources
    from edgemoe.golden.precision import Precision
    from edgemoe.spec import ModelSpec
    spec = ModelSpec.from_dict(manifest["spec"])
    prec = Precision.from_dict(manifest["precision"])
    design = Design(**dict(manifest["design"]))
    if manifest.get("top", TOP) != TOP:
        raise EdgeMoeError(f"the package's kernel is {manifest.get('top')!r}; this edgemoe renders {TOP!r}")
    dst = Path(dst)
    (dst / "data").mkdir(parents=True, exist_ok=True)
    write_kernel_sources(dst, spec, prec, design, manifest["board"]["name"], manifest["board"].get("part", ""),
                         dst / "data")
    (dst / "data" / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return dst


def kernel_project(pkg: Path, workdir=None, log=print):
    """(Project, how) for the package's kernel; see the module docstring."""
    from edgemoe.codegen.project import Project
    pm = json.loads((pkg / "package_manifest.json").read_text())
    mf = pkg / "data" / "manifest.json"
    want = hashlib.sha256(mf.read_bytes()).hexdigest()
    proj = Path(pm.get("project", {}).get("path") or "")
    if str(proj) and (proj / "data" / "manifest.json").is_file() and (proj / "src").is_dir() and os.access(proj, os.W_OK):
        if hashlib.sha256((proj / "data" / "manifest.json").read_bytes()).hexdigest() == want:
            return Project(proj), f"the project it was packaged from ({proj})"
        log(f"edgemoe emulate: {proj} changed since packaging: rendering the kernel from the package")
    manifest = json.loads(mf.read_text())
    if workdir is None:
        raise EdgeMoeError("internal: no work folder")
    dst = Path(workdir) / f"kernel-{want[:12]}"
    if not (dst / "data" / "manifest.json").is_file():
        tmp = Path(tempfile.mkdtemp(prefix=".kernel.", dir=workdir))
        render_kernel_project(manifest, tmp)
        tmp.replace(dst) if not dst.exists() else shutil.rmtree(tmp)
    return Project(dst), f"rendered from the package's data/manifest.json into {dst}"


class CsimKernel:
    """The generated kernel (C simulation, ctypes) run on emulated DDR."""

    def __init__(self, project):
        import ctypes
        self.ctypes = ctypes
        self.project = project
        project.compile()
        self.lib = project._lib
        m = project.manifest
        self.wb = int(m["word_bytes"])
        sz = m["sizes"]
        self.weight_words, self.pix_words = int(sz["weight_words"]), int(sz["pix_words"])
        self.out_words, self.scratch_words = int(sz["out_words"]), int(sz["scratch_words"])
        self.tap_none, self.tap_all = int(m["tap_none"]), int(m["tap_all"])
        self.taps = {int(t["id"]): t for t in m["taps"]}
        self.num_tasks = len(m["spec"]["tasks"])
        self._weights_sha = None

    def run(self, mem: DDR, lock, args: dict) -> dict:
        """One ap_start: reads inputs from ``mem`` (under ``lock``), runs, writes results back."""
        c = self.ctypes
        n, task, reload, tap = args["n_images"], args["task"], args["reload"], args["tap_id"]
        info = dict(n_images=n, task=task, reload=reload, tap_id=tap)
        kid = c.c_uint32(0)
        if n <= 0:  # the kernel writes its ID register and returns before touching a buffer
            if self.lib.em_run(None, None, None, 0, task, reload, tap, c.byref(kid)) != 0:
                raise KernelFault("the C-simulation kernel failed on n_images = 0")
            return dict(info, note="n_images <= 0: ID read only", outputs=dict(kernel_id=int(kid.value)))
        wb = self.wb
        tap_stop = tap in self.taps           # a single-tap debug run stops after that stage
        scratch_regions = ([self.taps[tap]] if tap_stop else list(self.taps.values()) if tap == self.tap_all else [])
        # the C-simulated kernel reads every weight port from the one weights buffer: a host that
        # points an extra port (weights1..) elsewhere would get a result the emulation cannot show
        for name, addr in args.items():
            if name.startswith("weights") and name[7:].isdigit() and addr != args["weights"]:
                raise KernelFault(f"weight port {name} (0x{addr:x}) does not point at the weights buffer "
                                  f"(0x{args['weights']:x})")
        with lock:
            pix = mem.read(args["pixels"], n * self.pix_words * wb, "pixels pointer")
            weights = mem.read(args["weights"], self.weight_words * wb, "weights pointer")
            if not tap_stop:
                mem.span(args["out"], n * self.out_words * wb, "out pointer")
            if scratch_regions:
                mem.span(args["scratch"], self.scratch_words * wb, "scratch pointer")
        sha = hashlib.sha256(weights).digest()
        if sha != self._weights_sha:
            if self.lib.em_load_weights(c.c_char_p(weights), c.c_longlong(self.weight_words)) != 0:
                raise KernelFault("the C-simulation library refused the weights")
            self._weights_sha = sha
        out = c.create_string_buffer(n * self.out_words * wb)
        scratch = c.create_string_buffer(self.scratch_words * wb)
        rc = self.lib.em_run(pix, out, scratch, n, task, reload, tap, c.byref(kid))
        if rc != 0:
            raise KernelFault(f"the C-simulation kernel failed (rc {rc})")
        with lock:
            if not tap_stop:
                mem.write(args["out"], out.raw, "out pointer")
            for t in scratch_regions:
                a, b = int(t["word_offset"]) * wb, (int(t["word_offset"]) + int(t["words"])) * wb
                mem.write(args["scratch"] + a, scratch.raw[a:b], "scratch pointer")
        return dict(info, out_written=not tap_stop, scratch_taps=len(scratch_regions),
                    outputs=dict(kernel_id=int(kid.value)))


__all__ = ["render_kernel_project", "kernel_project", "CsimKernel"]
