"""``make demo`` / ``edgemoe demo``: the whole flow that exists, on the default model.

Today: float golden and bit-accurate fixed-point golden (w16a32 and w8a8) on a sample image, both
tasks, with the task outputs as pictures; then the generated Vitis HLS project, C-simulated (g++)
and compared tap by tap with the fixed golden, and checked against Vitis's rules (`edgemoe hls-check`);
the RTL units in cocotb; the board package run on the
emulated board (`edgemoe emulate`) by the host runtime through the real pynq client; and a summary.
Each later capability (generate, csim, RTL sim, package, emulated board, estimate) adds its step.

The report (report/) gets the demo's own results: csim_<task>.json (`edgemoe csim --json`),
rtl_sim.json (as `edgemoe sim --json` writes it) and board_run.json (`edgemoe-host run --json`, on the
emulator: its time is emulation seconds, never board latency), so report and summary agree.

The output folder (--out) is written by edgemoe.io.output_dir: the steps write into a temporary
folder beside it (named when the demo starts), which replaces --out when the demo completes. --out
may be new, empty, or the demo's own earlier output (replaced without a flag); another command's
output, a user's folder or a file is refused in one line before any work.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .io import atomic_path, save_npy
from .spec import get_preset


def _step(n: int, total: int, text: str) -> float:
    print(f"[{n}/{total}] {text}", flush=True)
    return time.time()


def cosine(a, b) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def _rtl_units(out: Path) -> dict:
    """Each RTL unit's bench on Verilator (a short run; `edgemoe sim` runs the full 10,000 vectors).
    Writes ``out``/rtl_sim.json as `edgemoe sim --json` does (the report's RTL rung reads it)."""
    from edgemoe.errors import EdgeMoeError
    from edgemoe.sim.cli_sim import sim_document
    from edgemoe.sim.runner import resolve_config, run_unit
    from edgemoe.sim.tools import find_simulators
    from edgemoe.sim.units import UNITS
    vectors, seed = 1000, 0
    cfg = resolve_config(None)
    res, rows = {}, []
    for name, unit in UNITS.items():
        try:
            r = run_unit(name, "verilator", vectors=vectors, seed=seed, config=cfg)
            res[name] = {k: r.get(k) for k in ("vectors", "mismatches", "cycles", "items_per_cycle")}
            res[name]["design_rate"] = unit.design_rate
        except EdgeMoeError as e:
            r = dict(vectors=vectors, design_rate=float(unit.design_rate), error=str(e))
            res[name] = {"error": str(e)}
        rows.append(dict(r, unit=name, simulator="verilator"))
        print(f"    {name}: {res[name]}", flush=True)
    version = next((r["simulator_version"] for r in rows if r.get("simulator_version")), None)
    if version is None:
        sim = find_simulators().get("verilator")
        version = getattr(sim, "version", None)
    doc = sim_document(rows, cfg, vectors, seed, {"verilator": version})
    with atomic_path(out / "rtl_sim.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=1))
    return res


def _emulated_board(project: Path, out: Path) -> dict:
    """`edgemoe package`, then `edgemoe emulate` and `edgemoe-host run` (the PYNQ env) against it; the
    host's results go to ``out``/board_run.json (the report's board rung reads it)."""
    import os
    import subprocess
    import sys

    from edgemoe.boards.package import package
    pkg = out / "board_package"
    package(project, pkg, force=True)
    host = Path(sys.prefix).parent / ".venv-pynq" / "bin" / "edgemoe-host"
    if not host.exists():
        return {"error": f"{host} not found: run `make setup` (it builds the PYNQ environment)"}
    emu = subprocess.Popen([sys.executable, "-m", "edgemoe.cli", "emulate", "--package", str(pkg), "--port", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        line = emu.stdout.readline()
        if "127.0.0.1:" not in line:
            return {"error": f"the emulator did not start: {line.strip() or emu.stderr.read().strip()}"}
        port = line.split("127.0.0.1:")[1].split()[0]
        j = out / "board_run.json"
        r = subprocess.run([str(host), "run", str(pkg), "--images", "2", "--json", str(j), "--timeout", "120"],
                           capture_output=True, text=True, timeout=600,
                           env=dict(os.environ, PYNQ_REMOTE_DEVICES="127.0.0.1", EDGEMOE_PYNQ_PORT=port))
        if not j.exists():
            return {"error": ((r.stderr or r.stdout).strip().splitlines() or ["edgemoe-host run wrote no results"])[-1]}
        res = json.loads(j.read_text())
        return {k: res.get(k) for k in ("frames", "mismatches", "latency_ms", "target", "device")}
    finally:
        emu.terminate()
        try:
            emu.wait(10)
        except subprocess.TimeoutExpired:
            emu.kill()


def _legacy_demo_output(out: Path) -> bool:
    """True for a demo output written before edgemoe marked its folders (no marker, but the demo's
    own summary files); it is marked as the demo's then, so that rerunning the demo replaces it."""
    md, js = out / "summary.md", out / "summary.json"
    try:
        return (md.is_file() and md.read_text().startswith("# edgemoe demo:") and js.is_file()
                and {"preset", "tasks"} <= set(json.loads(js.read_text())) and (out / "hls_project").is_dir())
    except (OSError, ValueError):
        return False


def _check_out(out: Path) -> None:
    """--out may be new, empty, or the demo's own earlier output (replaced without a flag); another
    command's output, a user's folder or a file is refused in one line, before any work."""
    from .errors import EdgeMoeError
    from .io import MARKER, check_output_dir, made_by_edgemoe, write_marker
    if out.is_dir() and not out.is_symlink():
        if made_by_edgemoe(out):
            try:
                command = json.loads((out / MARKER).read_text()).get("command")
            except (OSError, ValueError, AttributeError):
                command = None
            if command != "demo":
                raise EdgeMoeError(f"--out {out}: folder was written by `edgemoe {command or '?'}`, not by the demo; "
                                   f"it is left alone: name a new folder")
        elif _legacy_demo_output(out):
            write_marker(out, "demo", written="before markers")
    check_output_dir(out, force=True, option="--out")


def run_demo(args) -> int:
    """The demo into a temporary folder beside --out that replaces --out when the demo completes
    (edgemoe.io.output_dir: a failed run leaves nothing that looks complete); the steps print as
    they run, and the folder being written is named at the start."""
    from .io import output_dir
    out = Path(args.out)
    _check_out(out)
    with output_dir(out, force=True, command="demo", option="--out") as work:
        print(f"writing into {work} (it becomes {out} when the demo completes)", flush=True)
        rc, last = _run(args, Path(work), out)
    print(last)
    return rc


def _run(args, out: Path, final: Path) -> tuple:
    """The demo's steps, writing into ``out`` (the folder that becomes ``final``): (exit code, last line)."""
    from edgemoe.golden.calibrate import precision_for
    from edgemoe.golden.fixed_model import run_fixed
    from edgemoe.golden.model import build_model, params_numpy, run_golden, sample_image
    from edgemoe.golden.pictures import image_to_rgb, save_overview, save_png, task_picture
    from edgemoe.golden.run import task_output

    spec = get_preset(args.preset)
    total = 10
    t0 = _step(1, total, f"building {spec.name} (seed {args.seed}): {spec.summary()}")
    model = build_model(spec, seed=args.seed)
    params = params_numpy(model)
    image = sample_image(spec, seed=0)
    save_npy(out / "input.npy", image)
    save_png(out / "input.png", image_to_rgb(image))
    summary = {"preset": spec.name, "seed": args.seed, "tokens": spec.tokens, "embed": spec.embed,
               "gmac": spec.encoder_macs() / 1e9, "tasks": {}}
    panels = [("input", image_to_rgb(image))]
    _step(2, total, "float golden (PyTorch) on both tasks")
    floats = {}
    for task, t in enumerate(spec.tasks):
        ts = time.time()
        y = run_golden(model, image, task)
        floats[task] = y
        head = task_output(model, y, task)
        save_npy(out / f"float_tokens_{t.name}.npy", y)
        save_npy(out / f"{t.name}.npy", head)
        pic = task_picture(head, t.kind)
        save_png(out / f"{t.name}.png", pic)
        panels.append((f"{t.name} (float)", pic))
        summary["tasks"][t.name] = {"float_seconds": round(time.time() - ts, 3)}
    for step, prec_name in ((3, "w16a32"), (4, "w8a8")):
        _step(step, total, f"fixed-point golden {prec_name} on both tasks")
        prec = precision_for(prec_name, spec, model, params)
        for task, t in enumerate(spec.tasks):
            ts = time.time()
            yq = run_fixed(spec, prec, params, image, task)
            head = task_output(model, yq, task)
            save_npy(out / f"fixed_{prec_name}_tokens_{t.name}.npy", yq)
            if prec_name == "w16a32":
                panels.append((f"{t.name} (fixed {prec_name})", task_picture(head, t.kind)))
            summary["tasks"][t.name][prec_name] = {
                "cosine_vs_float": round(cosine(yq, floats[task]), 6),
                "max_abs_err_vs_float": float(np.abs(yq - floats[task]).max()),
                "seconds": round(time.time() - ts, 3)}
    _step(5, total, "generate the Vitis HLS project (zcu104 and its default design, w16a32)")
    from edgemoe.codegen.csim import run_csim
    from edgemoe.codegen.generate import generate
    project = generate(out / "hls_project", preset=spec.name, board="zcu104", precision="w16a32",
                       seed=args.seed, force=True, quiet=True)
    _step(6, total, "C simulation of the generated kernel (g++), every tap against the fixed golden")
    summary["csim"] = {}
    csim_json = []
    for task, t in enumerate(spec.tasks):
        csim_json.append(out / f"csim_{t.name}.json")
        res = run_csim(project.path, task=task, taps="all", quiet=True, json_path=csim_json[-1])
        summary["csim"][t.name] = {k: res[k] for k in ("taps_compared", "mismatches", "cosine_vs_float",
                                                      "max_abs_err_vs_float", "seconds")}
    _step(7, total, "the kernel against Vitis's rules (edgemoe hls-check: instances, bursts, banks, ROM ports)")
    from edgemoe.codegen.hls_check import hls_check
    hc = hls_check(project.path)
    with atomic_path(out / "hls_check.json") as tmp:
        tmp.write_text(json.dumps(hc, indent=1, default=str))
    summary["hls_check"] = dict(violations=len(hc["violations"]), engine_instances=hc["engine_instances"],
                                instances=hc["instances"], bank_conflicts=len(hc["bank_conflicts"]),
                                rom_oversubscribed=len(hc["rom_oversubscribed"]),
                                bursts={p: b["contiguous"] for p, b in hc["bursts"].items()})
    _step(8, total, "RTL units in cocotb (Verilator), bit for bit against the fixed golden")
    summary["rtl"] = _rtl_units(out)
    _step(9, total, "package for the board and run it on the emulated board with the real pynq client")
    summary["board"] = _emulated_board(project.path, out)
    _step(10, total, "estimate latency and resources of the kernel on zcu104, and write the report")
    from edgemoe.codegen.estimate import estimate
    from edgemoe.codegen.perf_commands import resolve_target
    from edgemoe.codegen.report import board_timing, write_report
    est = estimate(*resolve_target(str(project.path))[:4])
    summary["estimate"] = {k: v for k, v in est.to_dict().items() if k not in ("layers", "by_unit_resources")}
    board_json = out / "board_run.json"
    write_report(project.path, out / "report", run_csim=False, csim_json=csim_json, sim_json=out / "rtl_sim.json",
                 board_json=board_json if board_json.exists() else None, say=lambda m: None)
    save_overview(out / "overview.png", panels, f"{spec.name}: task outputs (random weights, seed {args.seed})")
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    lines = [f"# edgemoe demo: {spec.name}", "", spec.summary(), "",
             "| task | precision | cosine vs float | max abs err | seconds |", "|---|---|---|---|---|"]
    for name, r in summary["tasks"].items():
        for p in ("w16a32", "w8a8"):
            c = r[p]
            lines.append(f"| {name} | {p} | {c['cosine_vs_float']:.6f} | {c['max_abs_err_vs_float']:.3g} | {c['seconds']} |")
    lines += ["", "C simulation of the generated HLS kernel (hls_project/), bit for bit against the fixed golden:", "",
              "| task | taps compared | bit mismatches | cosine vs float | seconds |", "|---|---|---|---|---|"]
    for name, r in summary["csim"].items():
        lines.append(f"| {name} | {r['taps_compared']} | {r['mismatches']} | {r['cosine_vs_float']:.6f} | {r['seconds']:.2f} |")
    h = summary["hls_check"]
    lines += ["", f"The kernel against Vitis's rules (`edgemoe hls-check`, hls_check.json): {h['violations']} violations, "
              f"{h['engine_instances']} linear engine, "
              f"{sum(h['bursts'].values())} of {len(h['bursts'])} m_axi ports bursting in every loop, "
              f"{h['bank_conflicts']} bank conflicts, {h['rom_oversubscribed']} ROM over-subscriptions"]
    lines += ["", "RTL units (cocotb, Verilator, micro spec):", "",
              "| unit | vectors | bit mismatches | items/cycle | design rate |", "|---|---|---|---|---|"]
    for name, r in summary["rtl"].items():
        lines.append(f"| {name} | {r.get('vectors')} | {r.get('mismatches')} | {r.get('items_per_cycle', 0):.3f} | "
                     f"{r.get('design_rate')} |" if "error" not in r else f"| {name} | - | - | - | {r['error']} |")
    b = summary["board"]
    lines += ["", "Emulated board (edgemoe emulate + edgemoe-host run in .venv-pynq, real pynq client): "
              + (f"{b['frames']} frames, {b['mismatches']} bit mismatches, {board_timing(b)}"
                 if "error" not in b else b["error"])]
    e = summary["estimate"]
    lines += ["", f"Estimate of the generated kernel on {e['board']} at {e['clock_mhz']:g} MHz (`edgemoe estimate`): "
              f"{e['latency_ms']:.2f} ms per frame, {e['gops']:.1f} GOPS, DSP {e['dsp']}, BRAM36 {e['bram36']}, "
              f"URAM {e['uram']}, LUT {e['lut']}, FF {e['ff']} ({'fits' if e['fits'] else 'does NOT fit'}); "
              "report: report/report.html"]
    lines += ["", "Results the report reads (checked against their writers' schemas): "
              + ", ".join(f"csim_{t.name}.json" for t in spec.tasks) + ", rtl_sim.json"
              + (", board_run.json" if board_json.exists() else "")]
    lines += ["", "Pictures: overview.png, input.png, " + ", ".join(f"{t.name}.png" for t in spec.tasks)]
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[4:-2]))
    if any(r.get("mismatches") for r in summary["rtl"].values()) or summary["board"].get("mismatches"):
        return 1, "RTL or emulated board does NOT match bit for bit"
    if any(r["mismatches"] for r in summary["csim"].values()):
        return 1, "C simulation does NOT match the fixed-point golden bit for bit"
    if summary["hls_check"]["violations"]:
        return 1, (f"the kernel breaks Vitis's rules: see {final}/hls_check.json "
                   f"(`edgemoe hls-check {final}/hls_project`)")
    return 0, f"done in {time.time() - t0:.1f} s; outputs in {final}/ (overview.png, summary.md, report/report.html)"
