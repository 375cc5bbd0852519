"""``edgemoe-host run PKG``: run a package's golden input(s) on the board, compare bit for bit.

    edgemoe-host run PKG [--task T] [--images N] [--json J] [--timeout S] [--no-program]

Exit codes: 0 all frames match the golden outputs, 1 a mismatch, 2 an error (one line on stderr;
EDGEMOE_DEBUG=1 shows the traceback), 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from edgemoe.errors import EdgeMoeError

EXIT_MISMATCH = 1
EXIT_ERROR = 2


def _compare(out: bytes, golden: bytes, act, n_values: int):
    """(differing values, max |difference| as float) between two output frames."""
    if out == golden:
        return 0, 0.0
    if len(out) != len(golden):
        return n_values, float("inf")
    a = act.raw_from_bytes(out, n_values)
    b = act.raw_from_bytes(golden, n_values)
    n = int(np.count_nonzero(a != b))
    pad = 0 if out[n_values * act.storage_bits // 8:] == golden[n_values * act.storage_bits // 8:] else 1
    return n + pad, float(np.max(np.abs(act.to_float(a) - act.to_float(b)))) if n else 0.0


def _fmt(v, spec="{:.3f}"):
    return "-" if v is None else spec.format(v)


def cmd_run(args) -> int:
    from .runtime import MAX_IMAGES, EdgeMoeRuntime
    if args.images < 1:
        raise EdgeMoeError("--images must be at least 1")
    if args.timeout <= 0:
        raise EdgeMoeError("--timeout must be positive")
    rt = EdgeMoeRuntime(args.package, timeout_s=args.timeout)
    batch = int(rt.manifest.get("design", {}).get("batch", 1))
    if batch > 1 and args.images % batch:
        # the kernel shares each expert's weight load among `batch` frames of one call
        rt.notes.append(f"the kernel runs frames in batches of {batch}; --images {args.images} leaves a "
                        f"partial batch (a multiple of {batch} gives the lowest time per frame)")
    tasks = [rt.spec.task_index(args.task)] if args.task is not None else list(range(rt.num_tasks))
    T, d = rt.spec.output_shape
    if not args.no_program:
        rt.program()
    rows, total_frames, total_bad, lat, energy = [], 0, 0, [], []
    try:
        for t in tasks:
            golden = rt.golden_out(t)
            left, bad_frames, bad_values, max_err, t_lat, t_en, head_shape, head_ms = args.images, 0, 0, 0.0, [], [], None, None
            while left > 0:
                n = min(left, MAX_IMAGES)
                res = rt.run(task=t, n_images=n, with_head=not args.no_head)
                for frame in res.out_bytes:
                    nv, err = _compare(frame, golden, rt.act, T * d)
                    bad_frames += nv > 0
                    bad_values += nv
                    max_err = max(max_err, err)
                t_lat += [res.latency_s] * n
                if res.energy_j is not None:
                    t_en += [res.energy_j] * n
                if res.heads:
                    head_shape, head_ms = tuple(res.heads[0].shape), res.head_s * 1e3
                left -= n
            row = dict(task=t, name=rt.spec.tasks[t].name, frames=args.images, mismatches=bad_frames,
                       mismatched_values=bad_values, max_abs_error=max_err, latency_ms=float(np.mean(t_lat)) * 1e3,
                       energy_mj_per_frame=float(np.mean(t_en)) * 1e3 if t_en else None,
                       head_output=list(head_shape) if head_shape else None, head_ms=head_ms)
            rows.append(row)
            total_frames += args.images
            total_bad += bad_frames
            lat += t_lat
            energy += t_en
    finally:
        rt.close()

    print(f"{'task':<14}{'frames':>7}{'mismatch':>10}{'values':>8}{'max|err|':>10}{'ms/frame':>10}"
          f"{'mJ/frame':>10}  head output")
    for r in rows:
        head = "x".join(map(str, r["head_output"])) + f" ({r['head_ms']:.1f} ms)" if r["head_output"] else "-"
        print(f"{str(r['task']) + ' ' + r['name']:<14}{r['frames']:>7}{r['mismatches']:>10}{r['mismatched_values']:>8}"
              f"{r['max_abs_error']:>10.3g}{r['latency_ms']:>10.3f}{_fmt(r['energy_mj_per_frame']):>10}  {head}")
    notes = list(dict.fromkeys(rt.notes))
    for n in notes:
        print(f"note: {n}")
    verdict = "all frames match the golden outputs bit for bit" if total_bad == 0 else \
        f"MISMATCH: {total_bad} of {total_frames} frames differ from the golden outputs"
    print(verdict)
    if args.json:
        summary = dict(package=os.path.abspath(args.package), frames=total_frames, mismatches=total_bad,
                       latency_ms=float(np.mean(lat)) * 1e3,
                       energy_mj_per_frame=float(np.mean(energy)) * 1e3 if energy else None,
                       task=tasks[0] if len(tasks) == 1 else tasks, tasks=rows, notes=notes, ok=total_bad == 0)
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0 if total_bad == 0 else EXIT_MISMATCH


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgemoe-host", description="Edge-MoE host runtime (PYNQ)")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the package's golden input(s) on the kernel and compare bit for bit")
    p.add_argument("package", metavar="PKG", help="package folder (from `edgemoe package`)")
    p.add_argument("--task", default=None, help="task index or name (default: every task)")
    p.add_argument("--images", type=int, default=1, metavar="N", help="frames per task (default 1)")
    p.add_argument("--json", default=None, metavar="J", help="write a JSON summary to J")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds to wait for ap_done (default 10)")
    p.add_argument("--no-program", action="store_true", help="do not load the bitstream (it is loaded already)")
    p.add_argument("--no-head", action="store_true", help="skip the task heads on the CPU")
    p.set_defaults(func=cmd_run)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except EdgeMoeError as e:
        if os.environ.get("EDGEMOE_DEBUG"):
            raise
        print(f"edgemoe-host: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("edgemoe-host: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
