"""A generated project as a Python object, in the spirit of hls4ml's ``compile`` / ``predict``.

    project = edgemoe.generate("out", preset="micro", board="zcu104")
    project.compile()                       # g++ -> shared library (ctypes)
    y = project.predict(image, task=0)      # (tokens, embed) float32 from the C-simulated kernel
    taps = project.taps(image, task=0)      # every stage, raw codes, one kernel run

The shared library is built from the project's own sources (``src/``, ``csim/``) with g++ against
``$XILINX_HLS/include`` when set, else the hls4ml wheel's ap_types plus ``compat/``.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from edgemoe.errors import EdgeMoeError
from edgemoe.io import check_image, sha256_file
from edgemoe.kernel_interface import CONFIG_NAME, kernel_id_of, read_kernel_id
from edgemoe.project_files import record_data_files, verify_data  # re-exported: the project's data files

from .aptypes import compile_cpp, find_ap_types, find_cxx

# our own code: every warning is an error; ap_types come in through -isystem (compile_cpp)
STRICT_FLAGS = ("-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas", "-Wno-unused-label")
# the strict check of our code: every warning of -Wall -Wextra, as errors, at -O0
STRICT_CHECK_FLAGS = STRICT_FLAGS + ("-O0",)
# ap_private.h's own temporaries give false (maybe-)uninitialized reports once gcc's flow analysis
# runs (-O1 and above), and its reversed-range loop (never taken: our ranges are high >= low) an
# aggressive-loop-optimizations report: those three are off for the optimised csim build only
CSIM_FLAGS = STRICT_FLAGS + ("-Wno-maybe-uninitialized", "-Wno-uninitialized",
                             "-Wno-aggressive-loop-optimizations", "-O2")


class Project:
    """A project folder written by :func:`edgemoe.codegen.generate.generate`."""

    def __init__(self, path):
        from edgemoe.golden.precision import Precision
        from edgemoe.spec import ModelSpec
        from edgemoe.design import Design
        from .pack import Layout
        self.path = Path(path)
        mf = self.path / "data" / "manifest.json"
        if not mf.is_file():
            raise EdgeMoeError(f"{self.path} is not a generated project (no data/manifest.json)")
        try:
            self.manifest = json.loads(mf.read_text())
        except ValueError as e:
            raise EdgeMoeError(f"{mf}: unreadable manifest ({e})") from None
        m = self.manifest
        self.top = m["top"]
        self.spec = ModelSpec.from_dict(m["spec"])
        self.prec = Precision.from_dict(m["precision"])
        d = dict(m["design"])
        self.design = Design(**d)
        self.layout = Layout(self.spec, self.prec, self.design)
        if self.layout.weight_words != m["sizes"]["weight_words"]:
            raise EdgeMoeError(f"{mf}: weight layout does not match this version of edgemoe")
        self.taps_table = {t["id"]: t for t in m["taps"]}
        self._lib = None
        self._lib_path = None
        self._weights_loaded = False
        self._fixed = None
        self._float = None
        self.compile_seconds = 0.0

    # ---- build --------------------------------------------------------------------------------
    def include_dirs(self) -> list:
        import os
        dirs = [self.path / "src"]
        if not os.environ.get("XILINX_HLS"):
            dirs.append(self.path / "compat")
        return dirs

    def compile(self, flags=CSIM_FLAGS, force: bool = False) -> Path:
        """Build (or reuse, by content hash) the C-simulation library; returns its path."""
        find_cxx()
        ap = find_ap_types()
        sources = [self.path / "src" / f"{self.top}.cpp", self.path / "csim" / "edgemoe_csim.cpp"]
        h = hashlib.sha256()
        for f in sorted((self.path / "src").glob("*")) + [sources[1]] + sorted((self.path / "compat").glob("*")):
            h.update(f.name.encode() + f.read_bytes())
        h.update(" ".join(flags).encode() + str(ap).encode())
        build = self.path / "build"
        lib = build / f"libedgemoe_csim_{h.hexdigest()[:12]}.so"
        t0 = time.perf_counter()
        if force or not lib.is_file():
            tmp = build / (lib.name + ".tmp")
            compile_cpp(sources, tmp, flags=list(flags), include_dirs=self.include_dirs(), shared=True, timeout=900)
            tmp.replace(lib)
        self.compile_seconds = time.perf_counter() - t0
        self._load(lib)
        return lib

    def _load(self, lib: Path) -> None:
        if self._lib_path == lib:
            return
        self._lib = ctypes.CDLL(str(lib))
        self._lib_path = lib
        self._weights_loaded = False
        info = np.zeros(16, dtype=np.int64)
        n = self._lib.em_info(info.ctypes.data_as(ctypes.POINTER(ctypes.c_longlong)))
        got = dict(zip(("axi_bits", "weight_words", "pix_words", "out_words", "scratch_words"), info[:n]))
        for k, v in got.items():
            want = self.design.axi_bits if k == "axi_bits" else self.manifest["sizes"][k]
            if int(v) != int(want):
                raise EdgeMoeError(f"compiled kernel has {k} = {v}, the manifest says {want}")
        self._lib.em_run.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                     ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_uint32)]

    def _ensure(self):
        if self._lib is None:
            self.compile()
        if not self._weights_loaded:
            data = (self.path / "data" / "weights.bin").read_bytes()
            wb = self.design.axi_bits // 8
            if len(data) != self.layout.weight_words * wb:
                raise EdgeMoeError(f"weights.bin has {len(data)} bytes, expected {self.layout.weight_words * wb}")
            rc = self._lib.em_load_weights(ctypes.c_char_p(data), ctypes.c_longlong(self.layout.weight_words))
            if rc != 0:
                raise EdgeMoeError("the C-simulation library refused weights.bin")
            self._reload = True
            self._weights_loaded = True

    # ---- inputs and outputs ------------------------------------------------------------------
    def pixels_raw(self, image) -> np.ndarray:
        from edgemoe.golden.apfixed import Fx
        from edgemoe.golden.units.patch_embed import patchify
        image = check_image(image, self.spec.input_shape, where=f"{self.spec.name} input")
        return Fx.from_float(patchify(image.astype(np.float64), self.spec.patch), self.prec.t("pixel")).raw

    def run(self, images, task: int = 0, tap_id: int = -1):
        """Run the kernel on a batch (N, C, H, W) or one image; returns (out raw [N, T, d], scratch bytes)."""
        from .word_packing import unpack_raw
        self._ensure()
        task = self.spec.task_index(task)
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        n = images.shape[0]
        pix = b"".join(self.layout.pack_pixels(self.pixels_raw(im)) for im in images)
        wb = self.design.axi_bits // 8
        out = ctypes.create_string_buffer(n * self.layout.out_words * wb)
        scratch = ctypes.create_string_buffer(self.layout.scratch_words * wb)
        kid = ctypes.c_uint32(0)
        rc = self._lib.em_run(pix, out, scratch, n, task, int(self._reload), int(tap_id), ctypes.byref(kid))
        if rc != 0:
            raise EdgeMoeError("the C-simulation kernel run failed")
        self._reload = False
        self.last_kernel_id = int(kid.value)   # what the kernel wrote to its ID register
        T, d = self.spec.tokens, self.spec.embed
        per_img = self.layout.out_words * wb
        raw = np.stack([unpack_raw(out.raw[i * per_img:(i + 1) * per_img], self.layout.act_t, T * d).reshape(T, d)
                        for i in range(n)])
        return raw, scratch.raw

    def kernel_id(self) -> int:
        """The kernel's ID register after a call with n_images = 0 (the kernel writes it and returns)."""
        if self._lib is None:
            self.compile()
        kid = ctypes.c_uint32(0)
        if self._lib.em_run(None, None, None, 0, 0, 0, -1, ctypes.byref(kid)) != 0:
            raise EdgeMoeError("the C-simulation kernel's ID read failed")
        return int(kid.value)

    def predict(self, x, task: int = 0) -> np.ndarray:
        """Encoder output of the C-simulated kernel: (tokens, embed) float32, or (N, tokens, embed)."""
        x = np.asarray(x, dtype=np.float32)
        raw, _ = self.run(x, task)
        y = self.layout.act_t.to_float(raw).astype(np.float32)
        return y[0] if x.ndim == 3 else y

    def decode_tap(self, scratch: bytes, tap: dict) -> np.ndarray:
        from edgemoe.golden.apfixed import FixedType
        wb = self.design.axi_bits // 8
        n = int(np.prod(tap["shape"]))
        t = FixedType.parse(tap["type"])
        start = tap["word_offset"] * wb
        v = np.frombuffer(scratch[start:start + n * 4], dtype="<i4" if t.signed else "<u4", count=n)
        return v.astype(np.int64).reshape(tap["shape"])

    def taps(self, image, task: int = 0):
        """Every stage of one kernel run (TAP_ALL): ({tap name: raw codes}, output raw [T, d])."""
        raw, scratch = self.run(image, task, tap_id=self.manifest["tap_all"])
        return {t["name"]: self.decode_tap(scratch, t) for t in self.manifest["taps"]}, raw[0]

    def tap(self, image, task: int, tap_id: int) -> np.ndarray:
        """Run until stage ``tap_id`` and return its tensor (raw codes)."""
        if tap_id not in self.taps_table:
            raise EdgeMoeError(f"unknown tap id {tap_id} (valid: {min(self.taps_table)}..{max(self.taps_table)})")
        _, scratch = self.run(image, task, tap_id=tap_id)
        return self.decode_tap(scratch, self.taps_table[tap_id])

    # ---- goldens -----------------------------------------------------------------------------
    def golden_params(self) -> dict:
        return self.layout.params_from_weights((self.path / "data" / "weights.bin").read_bytes())

    def fixed_model(self):
        if self._fixed is None:
            from edgemoe.golden.fixed_model import FixedM3ViT
            # the parameters come from weights.bin (already in range, smoothed when the precision smooths);
            # "saturate" as generate had it
            self._fixed = FixedM3ViT(self.spec, self.prec, self.golden_params(), attn_rows=self.design.attn_rows,
                                     saturate_params=bool(self.manifest.get("saturate", False)), smoothed=True)
        return self._fixed

    def golden_range(self, task: int = 0) -> dict:
        """Activations out of range per stage of the fixed golden on the project's input
        (``{stage: {"saturated", "wrapped", "values"}}``): generate's record, else a golden run."""
        task = self.spec.task_index(task)
        rec = self.manifest.get("range", {}).get(str(task))
        if rec is not None:
            return rec
        self.golden_fixed(self.input_image(), task)
        return self.fixed_model().range_counts

    def golden_fixed(self, image, task: int = 0, with_taps: bool = False):
        """The fixed-point golden: (output raw [T, d], {tap name: raw} in the kernel's layout or None)."""
        fx = self.fixed_model()
        g = {} if with_taps else None
        y = fx.encode(image, self.spec.task_index(task), g)
        return y.raw, (kernel_taps(self.spec, g) if with_taps else None)

    def input_image(self) -> np.ndarray:
        return np.load(self.path / "data" / "input.npy")

    def golden_float(self, image=None, task: int = 0) -> np.ndarray:
        """Float golden output: stored for the project's input, else from the source model."""
        task = self.spec.task_index(task)
        if image is None:
            return np.load(self.path / "data" / f"golden_float_task{task}.npy")
        from edgemoe.golden.model import run_golden
        return run_golden(self.float_model(), image, task)

    def float_model(self):
        """The project's source model in float (built once: csim's stage table and the report's ask for it
        per task)."""
        if self._float is None:
            self._float = self._load_float_model()
        return self._float

    def _load_float_model(self):
        from edgemoe.golden.checkpoint import load_model
        src = self.manifest.get("source", {})
        for key in ("checkpoint", "onnx"):
            if src.get(key) and not Path(src[key]).exists():
                raise EdgeMoeError(f"the float model's {key} {src[key]} no longer exists")
        if src.get("onnx"):
            return load_model(None, onnx=src["onnx"], seed=src.get("seed", 0))
        if src.get("preset") == self.spec.name or src.get("checkpoint"):
            return load_model(src["preset"], checkpoint=src.get("checkpoint"), seed=src.get("seed", 0))
        # a custom spec: the float model from the same seed
        from edgemoe.golden.model import build_model
        return build_model(self.spec, seed=src.get("seed", 0))


def kernel_taps(spec, g: dict) -> dict:
    """Golden fixed-model taps rearranged to the kernel's tap names and layouts (raw codes)."""
    from edgemoe.golden.apfixed import Fx
    from .tap_stages import BLOCK_STAGES, DENSE_ONLY, MOE_ONLY

    def raw(v):
        return v.raw if isinstance(v, Fx) else np.asarray(v, dtype=np.int64)

    def merge(x):
        h, t, hd = x.shape
        return x.raw.transpose(1, 0, 2).reshape(t, h * hd)

    out = {"patch_embed": raw(g["patch_embed"])}
    for i in range(spec.depth):
        p = f"blocks.{i}."
        moe = spec.is_moe(i)
        for stage in BLOCK_STAGES:
            if (stage in DENSE_ONLY and moe) or (stage in MOE_ONLY and not moe):
                continue
            if stage == "qkv":
                out[p + stage] = np.concatenate([merge(g[p + n]) for n in "qkv"], 1)
            else:
                out[p + stage] = raw(g[p + stage])
    return out


# ---- identity ------------------------------------------------------------------------------------
def project_identity(project_dir, manifest: dict) -> dict:
    """The model's identity as ``edgemoe generate`` records it (manifest key ``identity``): model,
    precision, design and board names, the config hash of the kernel's generated headers (its first
    8 hex digits are the kernel's ID register, EDGEMOE_KERNEL_ID) and the sha256 of data/weights.bin."""
    from .config_header import config_hash
    root = Path(project_dir)
    config = (root / "src" / CONFIG_NAME).read_text()
    h = config_hash(config, (root / "src" / "edgemoe_layout.h").read_text())
    if read_kernel_id(config) != kernel_id_of(h):
        raise EdgeMoeError(f"{root / 'src' / CONFIG_NAME}: its EDGEMOE_KERNEL_ID is not its config hash's "
                           f"0x{kernel_id_of(h):08X} (edited after generation?)")
    return dict(model=manifest["spec"]["name"], precision=manifest["precision"]["name"],
                design=manifest["design"]["name"], board=manifest["board"]["name"], config_hash=h,
                weights_sha256=sha256_file(root / "data" / "weights.bin"))


__all__ = ["Project", "kernel_taps", "STRICT_FLAGS", "STRICT_CHECK_FLAGS", "CSIM_FLAGS", "verify_data",
           "record_data_files", "project_identity"]
