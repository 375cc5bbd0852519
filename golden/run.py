"""The ``edgemoe golden`` command: float or fixed-point encoder output (and task output) of one image."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgemoe.io import load_image_npy, save_npy
from edgemoe.spec import DEFAULT_PRECISION, get_preset


def load_golden_model(preset: str, checkpoint=None, onnx=None, seed: int = 0):
    """(spec, torch model) from a preset, a checkpoint or an exported ONNX file."""
    from .checkpoint import load_model
    model = load_model(preset, checkpoint=checkpoint, onnx=onnx, seed=seed)
    return model.spec, model


def encoder_output(model, spec, image: np.ndarray, task: int, fixed: bool, precision: str = DEFAULT_PRECISION,
                   taps: dict | None = None, saturate_params: bool = False,
                   range_counts: dict | None = None, param_range: list | None = None,
                   calib_images=None, fixed_out: list | None = None, min_cosine: float | None = None) -> np.ndarray:
    """(tokens, embed) float32 output of the float model, or of the fixed model when ``fixed``
    (``saturate_params``: clamp parameters that do not fit their types instead of failing;
    ``range_counts``: receives the activations out of range per stage, see FixedM3ViT.encode;
    ``taps``: receives the fixed model's taps; ``param_range``: the parameters clamped;
    ``calib_images``: the calibration images of a calibrated precision, default the seeded samples;
    ``fixed_out``: receives the fixed model (its calibrated precision, its parameters); ``min_cosine``: the
    error budget, golden/budget.py)."""
    from .model import params_numpy, run_golden
    if not fixed:
        return run_golden(model, image, task)
    from .budget import calibrated
    from .fixed_model import run_fixed
    params = params_numpy(model)
    prec = calibrated(precision, spec, model, params, calib_images, min_cosine, saturate_params=saturate_params)
    return run_fixed(spec, prec, params, image, task, taps=taps, saturate_params=saturate_params,
                     range_counts=range_counts, param_range=param_range, fixed_out=fixed_out)


def task_output(model, tokens: np.ndarray, task: int) -> np.ndarray:
    """[C, H, W] output of the task head on encoder tokens (tokens, embed)."""
    import torch
    with torch.no_grad():
        return model.head(torch.from_numpy(np.asarray(tokens, np.float32))[None], task)[0].numpy()


def write_heads(out_dir, spec, model, tokens, task: int) -> list:
    from .pictures import save_png, task_picture
    out_dir = Path(out_dir)
    t = spec.tasks[task]
    y = task_output(model, tokens, task)
    save_npy(out_dir / f"{t.name}.npy", y.astype(np.float32))
    save_png(out_dir / f"{t.name}.png", task_picture(y, t.kind))
    return [out_dir / f"{t.name}.npy", out_dir / f"{t.name}.png"]


def golden_command(args) -> int:
    from .precision import base_precision
    from edgemoe.errors import EdgeMoeError
    from edgemoe.io import refuse_inputs
    from edgemoe.spec import DEFAULT_PRESET
    base_precision(args.precision)  # reject an unknown precision before the model is built
    calib = getattr(args, "calib", None)
    if calib is not None and not args.fixed:
        raise EdgeMoeError(f"--calib {calib} calibrates the fixed-point model: give --fixed too")
    from .calib_images import check_calib_precision
    check_calib_precision(args.precision, calib)
    if getattr(args, "min_cosine", None) is not None and not args.fixed:
        raise EdgeMoeError("--min-cosine is the fixed-point model's error budget: give --fixed too")
    stages = bool(getattr(args, "stages", False))
    if stages and not args.fixed:
        raise EdgeMoeError("--stages compares the fixed-point model with the float one: give --fixed too")
    if args.onnx and args.preset:
        raise EdgeMoeError("give either --preset (optionally with --checkpoint) or --onnx (the spec is read "
                           "from the file), not both")
    preset = args.preset or DEFAULT_PRESET
    if not args.onnx:
        get_preset(preset)          # unknown preset: one line listing the known ones
    refuse_inputs(args.output, (args.input, args.checkpoint, args.onnx), "--output")
    if args.heads and Path(args.heads).exists() and not Path(args.heads).is_dir():
        raise EdgeMoeError(f"--heads {args.heads}: exists and is not a folder (the task outputs go into a folder)")
    spec, model = load_golden_model(preset, args.checkpoint, args.onnx, args.seed)
    image = load_image_npy(args.input, spec.input_shape)
    task = spec.task_index(args.task)
    cal = None
    if calib is not None:
        from .calib_images import calibration_set
        cal = calibration_set(calib, spec)
    counts = {}
    saturate = bool(getattr(args, "saturate", False))
    fixed_taps = {} if stages else None
    param_range = [] if stages else None
    fixed = []
    y = encoder_output(model, spec, image, task, args.fixed, args.precision, saturate_params=saturate,
                       range_counts=counts, taps=fixed_taps, param_range=param_range,
                       calib_images=None if cal is None else cal.images, fixed_out=fixed,
                       min_cosine=getattr(args, "min_cosine", None))
    prec = fixed[0].prec if fixed else None
    save_npy(args.output, y.astype(np.float32))
    kind = f"fixed-point {prec.name}" if args.fixed else "float"
    print(f"{spec.name} task {task} ({spec.tasks[task].name}), {kind}: wrote {args.output} {y.shape}")
    if cal is not None:
        print(f"{prec.name} types calibrated on {cal.source} ({len(cal.images)} images, sha256 {cal.sha256[:16]})")
    if args.fixed:
        from .option_summary import options_line
        opts = options_line(prec, fixed[0].q)
        if opts:
            print(opts)
    if args.fixed:
        from .range_counts import range_summary
        print(range_summary(counts), file=sys.stderr)
    if stages:
        from .stage_error import float_taps, format_stage_table, stage_errors
        print(format_stage_table(stage_errors(fixed_taps, float_taps(model, image, task, prec), param_range, counts)))
    if args.heads:
        for f in write_heads(args.heads, spec, model, y, task):
            print(f"  wrote {f}")
    return 0
