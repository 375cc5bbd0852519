"""``edgemoe estimate`` and ``edgemoe explore``: the cycle / resource model on the command line."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from edgemoe.errors import EdgeMoeError
from edgemoe.options import check_clock


def resolve_target(project=None, preset=None, board=None, precision=None, design=None, clock=None, batch=None):
    """(spec, precision, design, board, clock) from a generated project or from the options."""
    from edgemoe.board_facts import BOARDS, get_board
    from edgemoe.golden.precision import Precision, base_precision
    from edgemoe.spec import DEFAULT_PRECISION, ModelSpec, get_preset

    from edgemoe.design import Design, board_default, get_design
    if project:
        from edgemoe.project_files import read_manifest
        man = read_manifest(project)
        spec = ModelSpec.from_dict(man["spec"])
        prec = Precision.from_dict(man["precision"])
        des = Design.from_dict(man["design"])
        b = get_board(man["board"]["name"])
        if preset or precision or design:
            raise EdgeMoeError("give either a project DIR or --preset/--precision/--design, not both")
        if board and board.lower() != b.name:
            raise EdgeMoeError(f"{project} was generated for {b.name}, not {board}")
    else:
        if not preset or not board:
            raise EdgeMoeError("give a project DIR, or --preset P and --board B "
                               f"(boards: {', '.join(BOARDS)})")
        spec = get_preset(preset)
        b = get_board(board)
        prec = base_precision(precision or DEFAULT_PRECISION)
        des = get_design(design) if design else board_default(b.name)
    clk = check_clock(clock) if clock is not None else float(des.clock_mhz or b.clock_mhz)
    if clock is not None:
        des = des.with_(clock_mhz=clk)
    if batch is not None:
        des = des.with_(batch=batch)
    return spec, prec, des, b, clk


def format_estimate(est) -> str:
    from .bandwidth import EFFICIENCY
    from edgemoe.design import Design
    clock = est.clock_mhz
    lines = [f"{est.preset} {est.precision} on {est.board} at {clock:g} MHz, design {est.design['name']}: "
             f"{Design.from_dict(est.design).summary()}",
             "", f"{'unit':12s} {'cycles':>11s} {'ms':>8s} {'share':>6s}" + ("  (per frame)" if est.batch > 1 else "")]
    total = est.cycles // est.batch
    for unit, cyc in est.frame_cycles_by_unit():
        lines.append(f"{unit:12s} {cyc:11,d} {cyc / (clock * 1e3):8.3f} {cyc / total:6.1%}")
    lines.append(f"{'total':12s} {total:11,d} {est.latency_ms:8.3f}")
    keys = ("dsp", "bram36", "uram", "lut", "ff")
    head = f"{'resources':12s} " + " ".join(f"{k.upper() if k != 'bram36' else 'BRAM36':>8s}" for k in keys)
    lines += ["", head]
    for unit, r in est.by_unit_resources.items():
        lines.append(f"{unit:12s} " + " ".join(f"{r[k]:8,d}" for k in keys))
    use, over, caps_over = est.utilization(), est.over_budget(), est.over_caps()
    lines.append(f"{'total':12s} " + " ".join(f"{est.resources[k]:8,d}" for k in keys))
    lines.append(f"{est.board:12s} " + " ".join(f"{est.budget[k]:8,d}" for k in keys))
    cells = [f"{use[k]:8.1%}" if est.budget[k] else f"{'-' if not est.resources[k] else 'NONE':>8s}" for k in keys]
    lines.append(f"{'use':12s} " + " ".join(cells))
    lines.append(f"{'cap':12s} " + " ".join(f"{est.caps[k]:8.0%}" for k in keys))
    flags = [f"{k} OVER the board" for k in over] + [f"{k} above the cap" for k in caps_over if k not in over]
    lim, lu = est.limiting_resource(), est.limiting_unit()
    lim_use = f"{lim['use']:.1%}" if lim["use"] is not None else "needed, none on the board"
    lines += [f"limiting resource: {lim['name']} ({lim_use} of the board, cap {lim['cap']:.0%})"
              + (f"; {', '.join(flags)}" if flags else ""),
              f"limiting unit: {lu['name']} ({lu['share']:.1%} of the cycles)"]
    ddr = est.ddr
    lines += ["",
              f"latency {est.latency_ms:.3f} ms per frame, {est.gops:.1f} GOPS ({est.macs / 1e6:.0f} M MAC), "
              f"linear engine busy with useful MACs {est.linear_utilization():.1%}"]
    if est.batch > 1:
        lines.append(f"batch: {est.batch} frames per kernel pass share every expert's weight load; a batch takes "
                     f"{est.batch_latency_ms:.3f} ms (a frame's latency), {est.latency_ms:.3f} ms per frame")
    lines += [
              f"floors: compute {est.compute_floor_ms:.3f} ms (every DSP at this precision's best rate), "
              f"DDR {est.ddr_floor_ms:.3f} ms ({est.bytes_per_frame / 1e6:.1f} MB per frame)"]
    if ddr:
        lines.append(f"DDR: {ddr['label']} assumed ({ddr['peak_gbps']:.2f} GB/s peak, {ddr['source']}), "
                     f"{EFFICIENCY:.0%} of peak (FPT'19) = {ddr['sustained_gbps']:.1f} GB/s; weight stream "
                     f"{est.bandwidth['weights']:.3f} {est.design['axi_bits']}-bit words per cycle"
                     + (f" ({' and '.join(est.bandwidth['shared_ddr_port'])} share a DDR controller port)"
                        if est.bandwidth.get("shared_ddr_port") else ""))
    # the DDR note is the line above
    lines += [f"note: {n}" for n in est.notes if not (ddr and n.startswith("DDR: "))]
    return "\n".join(lines)


def _write_json(path, obj) -> None:
    from edgemoe.io import atomic_path
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=1))


def calib_target(calib, spec, prec, project=None) -> tuple:
    """(precision to estimate with, record for --json or None, lines to print) of ``estimate --calib DIR``.

    Without a project the estimate has no model but the preset's: the precision is calibrated on DIR's
    images with the preset's seed-0 random model (as `edgemoe sim` without --project); calibration moves
    binary points only (widths, hence cycles, stay), so the estimate changes only where it counts
    per-block types. With a project the types are its manifest's (never recalibrated here): DIR is checked
    against the manifest's record and a different set is named."""
    man_rec = None
    if project:
        from edgemoe.project_files import read_manifest
        man_rec = read_manifest(project).get("calib")
    if calib is None:
        return prec, man_rec, []
    from edgemoe.golden.calib_images import calibration_set, check_calib_precision
    check_calib_precision(prec.name, calib)
    cal = calibration_set(calib, spec)
    rec = cal.record()
    head = f"--calib {rec['source']}: {rec['images']} images (sha256 {rec['sha256'][:16]})"
    if project:
        rec["project"] = man_rec
        if man_rec and man_rec.get("sha256") == rec["sha256"]:
            return prec, rec, [f"note: {head}: the set {project}'s {prec.name} types were calibrated on"]
        on = f"{man_rec.get('source')} (sha256 {str(man_rec.get('sha256'))[:16]})" if man_rec else "an unrecorded set"
        return prec, rec, [f"note: {head}: {project} was calibrated on {on}, not on these images; the estimate "
                           f"uses the project's types (regenerate it with --calib to change them)"]
    from edgemoe.golden.calibrate import precision_for
    from edgemoe.golden.model import build_model
    cal_prec = precision_for(prec, spec, build_model(spec, seed=0), images=cal.images)
    rec["model"] = f"seed-0 random model of preset {spec.name}"
    return cal_prec, rec, [f"note: {head}: {prec.name} types calibrated on them with the seed-0 random model of "
                           f"preset {spec.name} (generate a project to calibrate a checkpoint's or ONNX model)"]


def estimate_command(args) -> int:
    from .csynth import compare, find_csynth, parse_csynth
    from .estimate import caps_warning, check_fits, estimate
    spec, prec, des, board, clock = resolve_target(args.project, args.preset, args.board, args.precision,
                                                   args.design, args.clock, args.batch)
    cal_prec, calib_rec, calib_lines = calib_target(getattr(args, "calib", None), spec, prec, args.project)
    est = estimate(spec, cal_prec, des, board, clock)
    if cal_prec is not prec:   # what calibrating on the images changed in the estimate (only per-block types can)
        e0 = estimate(spec, prec, des, board, clock)
        diff = [f"{k} {e0.resources[k]:,} -> {est.resources[k]:,}" for k in est.resources
                if est.resources[k] != e0.resources[k]]
        if est.cycles != e0.cycles:
            diff.insert(0, f"cycles {e0.cycles:,} -> {est.cycles:,}")
        calib_rec["affects_estimate"] = bool(diff)
        calib_lines.append("note: against the uncalibrated types: " + ("; ".join(diff) if diff else
                           "the same cycles and resources (calibration moves binary points, not widths)"))
    print(format_estimate(est))
    for line in calib_lines:
        print(line)
    warning = caps_warning(est)
    if warning:
        print(warning, file=sys.stderr)
    out = est.to_dict()
    if calib_rec is not None:
        out["calib"] = calib_rec
    report = None
    if args.csynth:
        report = parse_csynth(args.csynth)
    elif args.project:
        from .generate import TOP
        found = find_csynth(args.project, TOP)
        if found is not None:
            report = parse_csynth(found)
    if report is not None:
        rows = compare(report, est)
        out["csynth"] = dict(report=report.to_dict(), compare=[dict(what=w, estimate=e, vitis=v, ratio=r)
                                                                for w, e, v, r in rows])
        print(f"\nagainst Vitis ({report.path}):")
        for w, e, v, r in rows:
            print(f"  {w:18s} estimate {e!s:>12s}  Vitis {v!s:>12s}  " + (f"ratio {r:.2f}" if r else "(undef)"))
    if args.json:
        _write_json(args.json, out)
        print(f"wrote {args.json}")
    check_fits(est)
    return 0


def explore_command(args) -> int:
    from edgemoe.board_facts import get_board
    from edgemoe.golden.precision import base_precision
    from edgemoe.spec import get_preset

    from .caps import describe_caps, parse_max_util
    from edgemoe.design import Design
    from .explore import BATCHES, explore, plot_front
    caps = parse_max_util(getattr(args, "max_util", None))
    if args.batch:
        Design(batch=args.batch)    # a batch out of range: one line before the search
    spec = get_preset(args.preset)
    board = get_board(args.board)
    prec = base_precision(args.precision)
    _, _, _, _, clock = resolve_target(None, args.preset, args.board, args.precision, None, args.clock)

    def progress(i, n):
        print(f"\r  exploring: {i}/{n} design points", end="" if i < n else "\n", file=sys.stderr, flush=True)
    best, front, points = explore(spec, prec, board, clock, progress=progress,
                                  batches=(args.batch,) if args.batch else BATCHES, caps=caps)
    print(f"{len(points)} design points of {spec.name} ({prec.name}) fit {board.name} at {clock:g} MHz within the "
          f"utilisation caps ({describe_caps(caps)}); Pareto front (latency vs DSP and BRAM36), fastest first:")
    print(f"  {'latency ms':>10s} {'DSP':>5s} {'BRAM36':>6s} {'URAM':>4s} {'LUT':>7s} {'FF':>7s}  design")
    for p in front[:args.top]:
        mark = " <- best" if p is best else ""
        print(f"  {p.latency_ms:10.3f} {p.dsp:5d} {p.bram36:6.0f} {p.uram:4d} {p.lut:7d} {p.ff:7d}  "
              f"{p.design.summary()}{mark}")
    if len(front) > args.top:
        print(f"  ... {len(front) - args.top} more (all in --json)")
    best_design = best.design.with_(name=f"explore-{board.name}-{prec.name}",
                                    description=f"edgemoe explore: fastest fitting point for {spec.name} "
                                                f"{prec.name} on {board.name}")
    lim, lu = best.estimate.limiting_resource(), best.estimate.limiting_unit()
    print(f"\nbest: {best_design.summary()}: {best.latency_ms:.3f} ms per frame; limiting resource {lim['name']} "
          f"({lim['use']:.1%} of the board, cap {lim['cap']:.0%}), limiting unit {lu['name']} "
          f"({lu['share']:.1%} of the cycles)")
    plot = Path(args.plot or (Path(args.json).with_suffix(".png") if args.json else f"explore_{board.name}_{prec.name}.png"))
    plot_front(points, front, best, plot, f"{spec.name} {prec.name} on {board.name} at {clock:g} MHz: "
               f"{len(points)} fitting design points")
    print(f"wrote {plot}")
    if args.json:
        out = dict(design=best_design.to_dict(), estimate=best.estimate.to_dict(), preset=spec.name,
                   precision=prec.name, board=board.name, clock_mhz=clock,
                   caps=caps, pareto=[dict(design=p.design.to_dict(), latency_ms=p.latency_ms, dsp=p.dsp,
                                           bram36=p.bram36, uram=p.uram, lut=p.lut, ff=p.ff) for p in front])
        out["estimate"].pop("layers", None)
        _write_json(args.json, out)
        print(f"wrote {args.json} (pass it to `edgemoe generate --design {args.json}`)")
    return 0


__all__ = ["estimate_command", "explore_command", "resolve_target", "format_estimate"]
