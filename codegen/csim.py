"""``edgemoe csim``: the generated kernel in C simulation, compared stage by stage with the goldens.

Every tap of the kernel (one run with ``tap_id = TAP_ALL``) is compared bit for bit with the
fixed-point golden; the final output is also compared with the float golden (cosine, max abs error).
Any bit mismatch makes the command exit 1. The result also holds, per stage tap, the fixed golden's error
against the float golden on the same image (key "stages", see :mod:`edgemoe.golden.stage_error`).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from edgemoe.errors import EdgeMoeError
from edgemoe.options import check_number


def _cosine(a, b) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else float(na == nb)


def extra_images(image: np.ndarray, n: int) -> list:
    """``n`` more images for a multi-image run: the input with seeded noise, kept in [0, 1]."""
    return [np.clip(image + 0.2 * np.random.default_rng(k).standard_normal(image.shape), 0.0, 1.0)
            .astype(np.float32) for k in range(1, n + 1)]


def run_csim(project_dir, task=0, input_path=None, output_path=None, taps: str | None = None,
             json_path=None, quiet: bool = False, images: int = 1, show_stages: bool = False,
             calib=None) -> dict:
    """Compile and run the project's kernel; returns the result dict (also written to ``json_path``).
    ``images`` > 1: one more kernel call on that many images (the input, then noisy copies of it),
    every image's output compared with its fixed golden (this runs a batched kernel's batches).
    The result's "stages" holds the fixed golden's error against the float golden at every stage tap
    (:func:`stage_result`); ``show_stages`` prints that table (else its one-line summary).
    The precision is the manifest's (never recalibrated); ``calib``: a folder of calibration images that
    must be the set the project was calibrated on (:func:`check_calib`); the result's "calib" is the
    manifest's record."""
    from edgemoe.io import load_image_npy, save_npy
    from .word_packing import unpack_raw
    from .project import Project, verify_data
    if taps not in (None, "all"):
        raise EdgeMoeError(f"--taps takes 'all', not {taps!r}")
    images = check_number("images", images)   # the one range of --images (the CLI checked it already)
    project = Project(project_dir)
    verify_data(project.path, project.manifest)   # an edited data file is named here, not found as mismatches
    spec = project.spec
    check_calib(project, calib)
    task = spec.task_index(task)
    project.compile()
    if input_path is not None:
        image = load_image_npy(input_path, spec.input_shape)
    else:
        image = project.input_image()
    # the kernel
    t0 = time.perf_counter()
    if taps == "all":
        ktaps, out_raw = project.taps(image, task)
    else:
        raw, _ = project.run(image, task)
        out_raw, ktaps = raw[0], {}
    seconds = time.perf_counter() - t0
    # the fixed-point golden
    if input_path is None and taps is None:
        gdata = (project.path / "data" / f"golden_out_task{task}.bin").read_bytes()
        g_out = unpack_raw(gdata, project.layout.act_t, spec.tokens * spec.embed).reshape(spec.tokens, spec.embed)
        g_taps = {}
        rng = project.golden_range(task)  # generate's record for the project's input
    else:
        g_out, g_taps = project.golden_fixed(image, task, with_taps=taps == "all")
        rng = project.fixed_model().range_counts
        g_taps = g_taps or {}
    rows = []
    total_bad = 0
    for t in project.manifest["taps"]:
        if t["name"] not in ktaps:
            continue
        got, want = ktaps[t["name"]], g_taps[t["name"]]
        bad = int(np.count_nonzero(got != want)) if got.shape == want.shape else int(np.prod(t["shape"]))
        maxd = int(np.abs(got - want).max()) if got.shape == want.shape and got.size else 0
        rows.append(dict(id=t["id"], name=t["name"], shape=t["shape"], mismatches=bad, max_raw_diff=maxd))
        total_bad += bad
    bad_out = int(np.count_nonzero(out_raw != g_out))
    rows.append(dict(id=None, name="output", shape=[spec.tokens, spec.embed], mismatches=bad_out,
                     max_raw_diff=int(np.abs(out_raw - g_out).max())))
    total_bad += bad_out
    if images > 1:
        # every image of one call, batched as the design batches them, against its own golden
        batch = [image] + extra_images(image, int(images) - 1)
        t1 = time.perf_counter()
        raw_all, _ = project.run(np.stack(batch), task)
        seconds += time.perf_counter() - t1
        for k, im in enumerate(batch):
            want = g_out if k == 0 else project.golden_fixed(im, task)[0]
            bad = int(np.count_nonzero(raw_all[k] != want))
            rows.append(dict(id=None, name=f"output[{k}] of {len(batch)}", shape=[spec.tokens, spec.embed],
                             mismatches=bad, max_raw_diff=int(np.abs(raw_all[k] - want).max())))
            total_bad += bad
    y = project.layout.act_t.to_float(out_raw).astype(np.float32)
    y_float = project.golden_float(image if input_path is not None else None, task)
    cos = _cosine(y, y_float)
    mae = float(np.abs(y.astype(np.float64) - y_float).max())
    result = {
        "project": str(project.path), "model": spec.name, "precision": project.prec.name, "task": task,
        "input": str(input_path) if input_path else "data/input.npy", "images": int(images),
        "batch": project.design.batch,
        "taps_compared": len(rows), "mismatches": total_bad, "cosine_vs_float": cos,
        "max_abs_err_vs_float": mae, "seconds": seconds, "compile_seconds": project.compile_seconds,
        "taps": rows, "range": range_result(rng), "calib": project.manifest.get("calib"),
    }
    stages, note = stage_result(project, image, task)
    if stages is not None:
        result["stages"] = stages
    else:
        result["stages_note"] = note
    if output_path is not None:
        save_npy(output_path, y)
    if json_path is not None:
        from edgemoe.io import atomic_path
        with atomic_path(json_path) as tmp:
            Path(tmp).write_text(json.dumps(result, indent=1))
    if not quiet:
        print(format_table(result))
        if result["calib"]:
            print(calib_line(result["precision"], result["calib"]))
        from edgemoe.golden.option_summary import options_line
        opts = options_line(project.prec, project.fixed_model().q)
        if opts:
            print(opts)
        print(result["range"]["summary"], file=sys.stderr)
        if stages is not None:
            from edgemoe.golden.stage_error import format_stage_table, summary_line
            print(format_stage_table(stages) if show_stages else summary_line(stages))
        else:
            print(f"per-stage error vs float: not computed ({note})")
    return result


def stage_result(project, image, task: int):
    """(rows, None): the fixed golden's error against the float golden at every stage tap on ``image``
    (:mod:`edgemoe.golden.stage_error`, the JSON key "stages"), or (None, why) when the project's float
    model cannot be had (e.g. its checkpoint is gone)."""
    from edgemoe.golden.stage_error import float_taps, json_rows, stage_errors
    try:
        model = project.float_model()
    except EdgeMoeError as e:
        return None, str(e)
    fx = project.fixed_model()
    taps = {}
    fx.encode(image, task, taps)
    return json_rows(stage_errors(taps, float_taps(model, image, task, fx.prec), fx.param_range, fx.range_counts)), None


def calib_line(precision: str, rec: dict) -> str:
    """One line naming a manifest's calibration record."""
    return (f"{precision} types from data/manifest.json, calibrated on {rec['source']} ({rec['images']} images, "
            f"sha256 {rec['sha256'][:16]})")


def check_calib(project, calib) -> None:
    """One-line error unless the images of folder ``calib`` are the set the project's types were calibrated
    on (the manifest's "calib" sha256): the types are in the generated kernel, so csim cannot recalibrate."""
    if calib is None:
        return
    from edgemoe.golden.calib_images import check_calib_precision, load_calibration_set
    check_calib_precision(project.prec.name, calib)
    rec = project.manifest.get("calib")
    _, sha = load_calibration_set(calib, project.spec)
    if not rec:
        raise EdgeMoeError(f"--calib {calib}: {project.path} records no calibration set (generated before --calib "
                           f"existed); regenerate it with `edgemoe generate --calib {calib}`")
    if sha != rec.get("sha256"):
        raise EdgeMoeError(f"--calib {calib}: {project.path} was calibrated on {rec.get('source')} (sha256 "
                           f"{str(rec.get('sha256'))[:16]}), not on these images (sha256 {sha[:16]}); csim uses the "
                           f"project's types: regenerate with `edgemoe generate --calib {calib}`")


def range_result(counts: dict) -> dict:
    """The fixed golden's activations out of range: {"out_of_range": n, "summary": line, "stages": counts}."""
    from edgemoe.golden.range_counts import range_summary, range_total
    return {"out_of_range": range_total(counts), "summary": range_summary(counts), "stages": counts}


def format_table(result: dict) -> str:
    rows = [("id", "stage", "shape", "mismatches", "max |diff| (lsb)")]
    for r in result["taps"]:
        rows.append(("" if r["id"] is None else str(r["id"]), r["name"], "x".join(map(str, r["shape"])),
                     str(r["mismatches"]), str(r["max_raw_diff"])))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * x for x in w))
    verdict = "bit-exact" if result["mismatches"] == 0 else f"{result['mismatches']} BIT MISMATCHES"
    lines.append(f"{result['model']} {result['precision']} task {result['task']}: {result['taps_compared']} "
                 f"tensors compared with the fixed-point golden: {verdict}")
    lines.append(f"vs float golden: cosine {result['cosine_vs_float']:.6f}, max abs error "
                 f"{result['max_abs_err_vs_float']:.4g}; csim {result['seconds']:.2f} s "
                 f"(compile {result['compile_seconds']:.1f} s)")
    return "\n".join(lines)


def csim_command(args) -> int:
    res = run_csim(args.project, task=args.task, input_path=args.input, output_path=args.output,
                   taps=args.taps, json_path=args.json, images=args.images,
                   show_stages=bool(getattr(args, "stages", False)), calib=getattr(args, "calib", None))
    return 1 if res["mismatches"] else 0


__all__ = ["run_csim", "csim_command", "format_table"]
