"""``edgemoe-host run PKG``: run a package's golden input(s) on the board, compare bit for bit.

    edgemoe-host run PKG [--task T] [--images N] [--json J] [--timeout S] [--no-program]

--json J: frames, mismatches, latency_ms (per frame, wall clock), energy, one row per task, notes, and
"target": "emulator" (`edgemoe emulate`: the kernel in C simulation, so the times are emulation
seconds, not board latency) or "board", "device", and "identity" (the package's model: model,
precision, design, board, config_hash, weights_sha256 as recorded). `edgemoe report --board-json J`
checks it against the schema in edgemoe.codegen.results_schema (BOARD) and against its project.

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


EMULATOR_SIGNATURE = "(edgemoe emulate)"   # in /proc/version of `edgemoe emulate`'s board (sim/emulator_board.py)
IDENTITY_KEYS = ("model", "precision", "design", "board", "config_hash", "weights_sha256")


def _loopback(host: str) -> bool:
    h = host.strip().strip("[]").lower()
    return h == "localhost" or h == "::1" or h.startswith("127.")


def run_target(pynq) -> tuple:
    """("emulator" | "board", the device described) for where the kernel ran.

    A PYNQ.remote device is asked for its /proc/version: `edgemoe emulate` answers with
    EMULATOR_SIGNATURE. If that cannot be read, a remote device on this machine (PYNQ_REMOTE_DEVICES
    a loopback address) counts as the emulator, so an emulated time is never taken for board latency;
    a local pynq device (the kernel on this board) is the board."""
    dev = None
    try:
        dev = pynq.Device.active_device if pynq is not None else None
    except Exception:  # noqa: BLE001 -- a pynq without devices (or a stand-in): decided below
        dev = None
    remote = [h.strip() for h in os.environ.get("PYNQ_REMOTE_DEVICES", "").split(",") if h.strip()]
    if dev is not None and (getattr(dev, "capabilities", None) or {}).get("REMOTE"):
        where = f"PYNQ.remote {getattr(dev, 'ip_addr', '?')}:{getattr(dev, 'port', '?')}"
        try:
            version = bytes(dev.read_file("/proc/version")).decode(errors="replace")
        except Exception:  # noqa: BLE001 -- the device went away after the run: decide by its address
            version = None
        if version is not None:
            if EMULATOR_SIGNATURE in version:
                return "emulator", f"{where} (edgemoe emulate: the kernel in C simulation)"
            return "board", f"{where} ({getattr(dev, 'name', None) or 'remote board'})"
        host = str(getattr(dev, "ip_addr", "") or "")
        return ("emulator" if _loopback(host) else "board"), where
    if remote:
        return ("emulator" if _loopback(remote[0]) else "board"), f"PYNQ.remote {remote[0]}"
    name = getattr(dev, "name", None) if dev is not None else None
    return "board", f"local pynq device{' ' + str(name) if name else ''}"


def package_identity(pm: dict, manifest: dict) -> dict:
    """The package's model identity: package_manifest.json "identity" (else data/manifest.json's),
    else what its project / board entries name (packages made before the identity was recorded)."""
    ident = pm.get("identity") or manifest.get("identity")
    if isinstance(ident, dict) and ident:
        return {k: ident[k] for k in IDENTITY_KEYS if ident.get(k) is not None}
    proj = pm.get("project") or {}
    out = dict(model=proj.get("model") or manifest.get("spec", {}).get("name"),
               precision=proj.get("precision") or manifest.get("precision", {}).get("name"),
               design=proj.get("design") or manifest.get("design", {}).get("name"),
               board=(pm.get("board") or {}).get("name") or manifest.get("board", {}).get("name"))
    return {k: v for k, v in out.items() if v is not None}


def _write_json(path, doc) -> None:
    """``doc`` to ``path`` through a temporary file renamed when complete (no half-written results)."""
    import tempfile
    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise EdgeMoeError(f"--json {path}: is a folder (give a file name)")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part", dir=os.path.dirname(path))
    except OSError as e:
        raise EdgeMoeError(f"--json {path}: cannot write ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except OSError as e:
        raise EdgeMoeError(f"--json {path}: cannot write ({e.strerror or e})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cmd_run(args) -> int:
    from .runtime import MAX_IMAGES, EdgeMoeRuntime
    from edgemoe.options import check_number   # the one range of every numeric option (shipped with the host)
    args.timeout = check_number("timeout", args.timeout)
    args.images = check_number("frames", args.images, "--images")
    if args.json and os.path.isdir(args.json):
        raise EdgeMoeError(f"--json {args.json}: is a folder (give a file name)")
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
        target, device = run_target(rt._pynq)
    finally:
        rt.close()

    print(f"{'task':<14}{'frames':>7}{'mismatch':>10}{'values':>8}{'max|err|':>10}{'ms/frame':>10}"
          f"{'mJ/frame':>10}  head output")
    for r in rows:
        head = "x".join(map(str, r["head_output"])) + f" ({r['head_ms']:.1f} ms)" if r["head_output"] else "-"
        print(f"{str(r['task']) + ' ' + r['name']:<14}{r['frames']:>7}{r['mismatches']:>10}{r['mismatched_values']:>8}"
              f"{r['max_abs_error']:>10.3g}{r['latency_ms']:>10.3f}{_fmt(r['energy_mj_per_frame']):>10}  {head}")
    if target == "emulator":
        rt.notes.append(f"the kernel ran on {device}: the times are emulation (C simulation) seconds, "
                        f"not board latency")
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
                       task=tasks[0] if len(tasks) == 1 else tasks, tasks=rows, notes=notes, ok=total_bad == 0,
                       target=target, device=device, identity=package_identity(rt.pm, rt.manifest))
        _write_json(args.json, summary)
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
