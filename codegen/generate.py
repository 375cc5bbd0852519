"""``edgemoe generate``: a self-contained Vitis HLS project folder for one model, precision, design
and board.

Layout of the folder::

    src/        top kernel ({TOP}.cpp), edgemoe_config.h, edgemoe_layout.h, one header per unit
    tb/tb.cpp   C testbench (reads data/, compares bit for bit)
    csim/       ctypes harness of `edgemoe csim` (not kernel code)
    compat/     what the open ap_types lack (used without Vitis only)
    data/       weights.bin, input.npy, input_pixels.bin, golden_*_task{t}.*, manifest.json
    hls_config.cfg, run_hls.tcl, Makefile, README.md

The folder is written to a temporary folder beside the target and renamed at the very end, so an
interrupted run never leaves a folder that looks complete.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np

from edgemoe.errors import EdgeMoeError

from .config_header import CONFIG_NAME, layout_header, render_config
from edgemoe.io import check_output_dir, output_dir
from edgemoe.kernel_interface import HEADS_NPZ, TAP_ALL, TAP_NONE
from edgemoe.spec import DEFAULT_PRECISION
from edgemoe.options import check_clock

from edgemoe.design import Design, board_default, get_design
from .render import HLS_DIR, INCLUDE_DIR, render_template

TOP = "edgemoe_top"
LAYOUT_NAME = "edgemoe_layout.h"
UNIT_FILES = ("edgemoe_fixed.h", "edgemoe_mem.h", "edgemoe_probe.h", "patch_embed.h", "layernorm.h", "linear.h",
              "attention.h", "softmax.h", "gelu.h", "moe_route.h", "residual.h", "pack2.h")
COMPAT_DIR = HLS_DIR / "compat"
MANIFEST_FORMAT = 1


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def kernel_sources(project_dir) -> list:
    """The kernel's own C++ files in a generated project (what the synthesizability check covers)."""
    src = Path(project_dir) / "src"
    return [src / f"{TOP}.cpp", src / CONFIG_NAME, src / LAYOUT_NAME] + [src / f for f in UNIT_FILES]


def resolve_design(board: str, design: str | None, clock: float | None, batch: int | None = None) -> tuple:
    from edgemoe.board_facts import get_board
    b = get_board(board)
    d = get_design(design) if design else board_default(b.name)
    mhz = check_clock(clock) if clock is not None else b.clock_mhz
    d = d.with_(clock_mhz=mhz)
    return b, d if batch is None else d.with_(batch=batch)


def load_source_model(preset=None, checkpoint=None, onnx=None, seed: int = 0):
    from edgemoe.golden.checkpoint import load_model
    if onnx is None and preset is None:
        raise EdgeMoeError("give --preset P (with --checkpoint PATH for trained weights) or --onnx FILE")
    if onnx is not None and checkpoint is not None:
        raise EdgeMoeError("give either --checkpoint (with --preset) or --onnx, not both")
    return load_model(preset, checkpoint=checkpoint, onnx=onnx, seed=seed)


def generate(out_dir, preset: str | None = None, checkpoint=None, onnx=None, board: str = "zcu104",
             precision: str = DEFAULT_PRECISION, design: str | None = None, clock: float | None = None,
             force: bool = False, seed: int = 0, model=None, quiet: bool = True, batch: int | None = None,
             saturate_params: bool = False, calib=None, min_cosine: float | None = None):
    """Write the project folder ``out_dir`` and return its :class:`~edgemoe.codegen.project.Project`.

    A parameter that does not fit its fixed-point type is an error; ``saturate_params`` clamps such
    values to the type's min / max instead (one warning line; recorded as manifest["saturate"]).

    The model comes from ``preset`` (seeded weights), ``preset`` + ``checkpoint``, ``onnx``, or an
    already built ``model`` (:class:`edgemoe.golden.model.M3ViT`, e.g. of a custom spec).

    ``calib``: a folder of calibration images for a calibrated precision (w8a8; default the seeded sample
    images), read by golden/calib_images.py; the types are calibrated on the model the project is made
    from, and the set is recorded as manifest["calib"] = {"source", "images", "sha256"} (None for a
    precision without calibration).
    """
    from edgemoe.golden.precision import base_precision
    from .project import Project
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    base = base_precision(precision)  # unknown precision: one line before anything is built; calibrated later
    from edgemoe.golden.calib_images import CALIBRATED, calibration_set, check_calib_precision
    check_calib_precision(base.name, calib)
    b, des = resolve_design(board, design, clock, batch)
    check_output_dir(out_dir, force=force)   # a user's folder is refused before anything is built
    cal = None
    if model is None:
        if preset is not None and onnx is None:
            from edgemoe.spec import get_preset
            des.validate(get_preset(preset))  # a bad tiling fails before the model is built
            if calib is not None:             # so do bad calibration images
                cal = calibration_set(calib, get_preset(preset))
        model = load_source_model(preset, checkpoint, onnx, seed)
    spec = model.spec
    des.validate(spec)
    if base.base in CALIBRATED and cal is None:
        cal = calibration_set(calib, spec)    # the user's images, or the seeded samples of this model
    source = dict(preset=None if onnx else (preset or spec.name), seed=seed,
                  checkpoint=str(Path(checkpoint).resolve()) if checkpoint else None,
                  onnx=str(Path(onnx).resolve()) if onnx else None)
    with output_dir(out_dir, force=force, command="generate") as tmp:
        fixed = _write_project(tmp, model, spec, base, des, b, source, out_dir.resolve(), saturate_params, cal,
                               min_cosine)
    if not quiet:   # the precision as made (a budget may have switched an option on)
        print(f"generated {out_dir} ({spec.name}, {fixed.prec.name}, {des.name}, {b.name} {des.clock_mhz:g} MHz) "
              f"in {time.perf_counter() - t0:.1f} s")
        from edgemoe.golden.option_summary import options_line
        opts = options_line(fixed.prec, fixed.q)
        if opts:
            print(opts)
    return Project(out_dir)


def kernel_context(spec, prec, design: Design, board_name: str, part: str = "", data_dir="data") -> dict:
    """The context every kernel, harness and script template renders with."""
    from .buffers import buffer_context, declarations
    from .kernel_plan import KERNEL_PLAN
    buffers = buffer_context(spec, prec, design)
    return dict(spec=spec, prec=prec, design=design, top=TOP, board=board_name, part=part,
                clock_mhz=f"{design.clock_mhz:g}", clock_ns=f"{1000.0 / design.clock_mhz:.4g}",
                axi_bits=design.axi_bits, headers=[CONFIG_NAME, LAYOUT_NAME] + list(UNIT_FILES),
                data_dir=str(data_dir), buffers=buffers, buffer_decls=declarations(spec, prec, design),
                generated_by=f"edgemoe {__import__('edgemoe').__version__}", plan=KERNEL_PLAN)


def write_kernel_sources(root: Path, spec, prec, design: Design, board_name: str, part: str, data_dir,
                         layout=None) -> dict:
    """src/ (the kernel: config, layout, top, unit headers), csim/ (the ctypes harness) and compat/
    under ``root``; returns the template context (the scripts and the testbench render with it)."""
    from .pack import Layout
    layout = layout or Layout(spec, prec, design)
    ctx = kernel_context(spec, prec, design, board_name, part, data_dir)
    for sub in ("src", "csim", "compat"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    src = root / "src"
    (src / CONFIG_NAME).write_text(render_config(spec, prec, design, layout))   # with EDGEMOE_KERNEL_ID
    (src / LAYOUT_NAME).write_text(layout_header(spec, prec, design, layout))
    (src / f"{TOP}.cpp").write_text(render_template("edgemoe_top.cpp.j2", **ctx))
    for f in UNIT_FILES:
        shutil.copyfile(INCLUDE_DIR / f, src / f)
    (root / "csim" / "edgemoe_csim.cpp").write_text(render_template("csim/edgemoe_csim.cpp.j2", **ctx))
    for f in sorted(COMPAT_DIR.glob("*.h")):
        shutil.copyfile(f, root / "compat" / f.name)
    return ctx


def _write_project(root: Path, model, spec, base, design: Design, board, source: dict,
                   final_dir: Path, saturate_params: bool = False, cal=None, min_cosine: float | None = None):
    """``base``: the named Precision (golden/precision.py), calibrated on ``model`` here when it needs it,
    on ``cal`` (golden/calib_images.py CalibrationSet; None: a precision without calibration);
    ``min_cosine``: the error budget of every stage (golden/budget.py: attention kept wider, or an error).
    Returns the fixed golden model it built (its precision and quantised parameters)."""
    from edgemoe.golden.apfixed import Fx
    from edgemoe.golden.budget import calibrated
    from edgemoe.golden.fixed_model import FixedM3ViT
    from edgemoe.golden.model import params_numpy, run_golden, sample_image
    from edgemoe.golden.units.patch_embed import patchify
    from .pack import Layout
    from .word_packing import pack_raw

    params = params_numpy(model)
    prec = calibrated(base, spec, model, params, None if cal is None else cal.images, min_cosine, design.attn_rows,
                      saturate_params)
    layout = Layout(spec, prec, design)
    fixed = FixedM3ViT(spec, prec, params, attn_rows=design.attn_rows, saturate_params=saturate_params)
    layout.fill(params, quantized=fixed.q)  # the fixed golden's own codes: parameters checked (or clamped) once
    for sub in ("tb", "data"):
        (root / sub).mkdir()
    data = root / "data"
    buffers = layout.write_weights(data / "weights.bin")
    # golden input and outputs
    image = sample_image(spec, seed=0)
    np.save(data / "input.npy", image.astype(np.float32))
    pix = Fx.from_float(patchify(image.astype(np.float64), spec.patch), prec.t("pixel")).raw
    pix_bytes = layout.pack_pixels(pix)
    (data / "input_pixels.bin").write_bytes(pix_bytes)
    files = [dict(name="input_pixels", file="input_pixels.bin", shape=[spec.num_patches, spec.patch_dim],
                  type=layout.pix_t.cpp, byte_offset=0, size=len(pix_bytes), sha256=_sha(pix_bytes))]
    ranges = {}
    for t in range(spec.num_tasks):
        y = fixed.encode(image, t)
        ranges[str(t)] = fixed.range_counts  # activations out of range per stage (csim reports them)
        np.save(data / f"golden_fixed_task{t}.npy", y.to_float().astype(np.float32))
        ob = pack_raw(y.raw, layout.act_t, design.axi_bits)
        (data / f"golden_out_task{t}.bin").write_bytes(ob)
        files.append(dict(name=f"golden_out_task{t}", file=f"golden_out_task{t}.bin",
                          shape=[spec.tokens, spec.embed], type=layout.act_t.cpp, byte_offset=0,
                          size=len(ob), sha256=_sha(ob)))
        np.save(data / f"golden_float_task{t}.npy", run_golden(model, image, t).astype(np.float32))
    # sources
    ctx = write_kernel_sources(root, spec, prec, design, board.name, board.part, final_dir / "data", layout)
    (root / "tb" / "tb.cpp").write_text(render_template("csim/tb.cpp.j2", **ctx))
    for name in ("hls_config.cfg", "run_hls.tcl", "Makefile", "README.md"):
        (root / name).write_text(render_template(f"scripts/{name}.j2", **ctx))
    from .unit_tops import write_unit_tops
    write_unit_tops(root, spec, base, design, board.part, ctx["clock_ns"])  # unit_tops/: HLS tops of the RTL units
    manifest = dict(
        format=MANIFEST_FORMAT, top=TOP, spec=spec.to_dict(), precision=prec.to_dict(),
        design=design.to_dict(), board=dict(name=board.name, part=board.part), clock_mhz=design.clock_mhz,
        source=source, axi_bits=design.axi_bits, word_bytes=design.axi_bits // 8,
        sizes=dict(weight_words=layout.weight_words, onetime_words=layout.onetime_words,
                   pix_words=layout.pix_words, out_words=layout.out_words,
                   scratch_words=layout.scratch_words),
        types=dict(pixel=layout.pix_t.cpp, act=layout.act_t.cpp),
        buffers=buffers, files=files, taps=layout.tap_manifest(), tap_none=TAP_NONE, tap_all=TAP_ALL,
        golden=dict(input="input.npy", fixed=[f"golden_fixed_task{t}.npy" for t in range(spec.num_tasks)],
                    float=[f"golden_float_task{t}.npy" for t in range(spec.num_tasks)],
                    out=[f"golden_out_task{t}.bin" for t in range(spec.num_tasks)]))
    manifest["saturate"] = bool(saturate_params)  # the project's golden rebuilds the same fixed model
    manifest["calib"] = None if cal is None else cal.record()  # what "precision"'s calibrated types come from
    manifest["range"] = ranges
    from .project import project_identity, record_data_files
    manifest["identity"] = project_identity(root, manifest)  # model, precision, design, board, config hash, weights
    (data / "manifest.json").write_text(json.dumps(manifest, indent=1))
    from .pack_heads import write_heads
    write_heads(root, data / HEADS_NPZ, model=model)  # the task heads the board runs on its CPU
    record_data_files(root)  # data_files: sha256 + size of every data file (package and csim verify them)
    from .vivado_files import write_vivado_files
    write_vivado_files(root)  # vivado/build_bd.tcl, vivado/hls_ip.tcl, hls_config_ip.cfg (`edgemoe build`)
    return fixed


__all__ = ["generate", "TOP", "UNIT_FILES", "kernel_sources", "write_kernel_sources", "kernel_context",
           "resolve_design", "load_source_model"]
