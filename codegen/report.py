"""``edgemoe report DIR``: one HTML page (and its markdown twin) about a generated project.

Sections: the spec; resources against the board; latency per layer (the estimate); the accuracy
ladder float -> fixed -> csim -> RTL -> board with error histograms; the error per stage tap (fixed
golden vs float golden, from the csim results' "stages", plotted across the layers); the Vitis reports
when a run exists. Pictures are embedded in the HTML (one self-contained file) and written beside the markdown.

Result files (--sim-json, --board-json, and csim results) are checked against the schema of the
command that writes them (edgemoe.codegen.results_schema) and against the project: a board run of
another model (its package's identity) or RTL / csim results at another precision are refused, in one
line. A board run on `edgemoe emulate` is shown as emulation (C simulation) seconds, never as board
latency. The report folder is written by edgemoe.io.output_dir: DIR/report is edgemoe's own and is
replaced; an explicit --output that exists needs --force and edgemoe's marker.
"""
from __future__ import annotations

import base64
import html
import json
import sys
import time
from pathlib import Path

import numpy as np

from edgemoe.errors import EdgeMoeError

from .report_format import html_table, md_table, plt_agg
from .report_stages import stage_sets, stages_section

UNIT_COLOURS = {"linear": "#1f77b4", "attention": "#ff7f0e", "layernorm": "#2ca02c", "moe_route": "#d62728",
                "residual": "#9467bd", "patch_embed": "#8c564b", "io": "#7f7f7f"}


def plot_layers(est, path) -> None:
    """Stacked bars: cycles of each block by unit, in ms."""
    plt = plt_agg()
    groups = ["patch"] + [f"b{i}" for i in range(max(l.block for l in est.layers) + 1)] + ["out"]
    per = {u: np.zeros(len(groups)) for u in UNIT_COLOURS}
    for l in est.layers:
        g = 0 if l.unit == "patch_embed" else (len(groups) - 1 if l.block < 0 else l.block + 1)
        per[l.unit][g] += l.cycles / est.batch / (est.clock_mhz * 1e3)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    bottom = np.zeros(len(groups))
    for u, vals in per.items():
        if vals.any():
            ax.bar(groups, vals, bottom=bottom, color=UNIT_COLOURS[u], label=u)
            bottom += vals
    ax.set_ylabel("ms")
    ax.set_title(f"estimated latency per layer: {est.latency_ms:.2f} ms per frame at {est.clock_mhz:g} MHz", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_resources(est, path) -> None:
    """Use of each resource against the board, split by unit."""
    plt = plt_agg()
    keys = ["dsp", "bram36", "uram", "lut", "ff"]
    fig, ax = plt.subplots(figsize=(7, 2.8))
    left = np.zeros(len(keys))
    units = list(est.by_unit_resources)
    cmap = plt.get_cmap("tab10")
    for i, u in enumerate(units):
        vals = np.array([est.by_unit_resources[u][k] / est.budget[k] if est.budget[k] else 0 for k in keys]) * 100
        ax.barh(keys, vals, left=left, color=UNIT_COLOURS.get(u, cmap(i)), label=u)
        left += vals
    ax.axvline(100, color="k", lw=1)
    ax.set_xlabel(f"% of {est.board}")
    ax.legend(fontsize=7, ncol=4, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_errors(rungs: list, path) -> None:
    """Histograms of |rung - float golden| for every rung that has values."""
    plt = plt_agg()
    with_vals = [r for r in rungs if r.get("errors") is not None and np.size(r["errors"])]
    fig, axes = plt.subplots(1, max(len(with_vals), 1), figsize=(3.4 * max(len(with_vals), 1), 2.8), squeeze=False)
    for ax, r in zip(axes[0], with_vals):
        e = np.abs(np.asarray(r["errors"], dtype=np.float64)).ravel()
        e = e[e > 0]
        if e.size:
            ax.hist(np.log10(e), bins=50, color="#1f77b4")
        ax.set_title(f"{r['rung']} vs float", fontsize=9)
        ax.set_xlabel("log10 |error|")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_results(project, sim_json=None, board_json=None, csim_json=None) -> dict:
    """The result files given to the report, each checked against the schema of the command that writes
    it and against the project (model identity, precision): {"sim", "board", "csim"} (csim: a list)."""
    from .results_schema import check_identity, check_precision, describe, load_results, project_identity
    ours = project_identity(project.manifest)
    out = dict(sim=None, board=None, csim=[])
    if sim_json:
        sim = load_results(sim_json, "sim")
        check_precision(sim["config"]["precision"], ours.get("precision"), sim_json, "--sim-json")
        out["sim"] = sim
    if board_json:
        b = load_results(board_json, "board")
        check_identity(b["identity"], ours, board_json)
        out["board"] = b
    if isinstance(csim_json, (str, Path)):
        csim_json = [csim_json]
    tasks = len(project.manifest["spec"].get("tasks", []))
    for j in csim_json or []:
        c = load_results(j, "csim")
        if c["model"] != ours.get("model"):
            raise EdgeMoeError(f"--csim-json {j}: results of model {c['model']}, not of this project "
                               f"({describe(ours)})")
        check_precision(c["precision"], ours.get("precision"), j, "--csim-json")
        if c["task"] >= tasks:
            raise EdgeMoeError(f"--csim-json {j}: task {c['task']}, but the project has {tasks} task(s)")
        out["csim"].append(c)
    return out


def _csim_rung(docs: list, task_names: list) -> dict:
    """The csim rung from `edgemoe csim --json` results (one per task run)."""
    names = ", ".join(task_names[c["task"]] if c["task"] < len(task_names) else str(c["task"]) for c in docs)
    taps = sum(c["taps_compared"] for c in docs)
    secs = sum(c["seconds"] for c in docs)
    ranged = [c["range"]["out_of_range"] for c in docs if "range" in c]
    rng = f"; {sum(ranged)} fixed-golden activations out of range" if ranged else ""
    return dict(rung="csim", what=f"generated C++ under g++ (`edgemoe csim`, task(s) {names}: {taps} tensors "
                f"compared, {secs:.1f} s{rng})", mismatches=sum(c["mismatches"] for c in docs), errors=None,
                out_of_range=sum(ranged) if ranged else None,
                tensors=taps, max_abs_error=max(c["max_abs_err_vs_float"] for c in docs),
                cosine=min(c["cosine_vs_float"] for c in docs), tasks=[c["task"] for c in docs])


def _rtl_rung(sim: dict) -> dict:
    units = sim["units"]
    ran = {n: u for n, u in units.items() if "error" not in u}
    failed = [n for n, u in units.items() if "error" in u]
    vec = sum(int(u["vectors"]) for u in ran.values())
    cfg = sim["config"]
    what = (f"cocotb unit benches ({', '.join(sim['simulators'])}; preset {cfg['preset']}, {cfg['precision']}): "
            f"{', '.join(ran) or 'none ran'} ({vec} vectors)" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return dict(rung="RTL", what=what, mismatches=sum(int(u["mismatches"]) for u in ran.values()) if ran else None,
                errors=None, units=units, failed=failed)


def board_timing(b: dict) -> str:
    """The board results' time per frame, labelled by where it ran: an emulator's time is emulation
    (the kernel in C simulation), never board latency."""
    if b.get("target") == "emulator":
        return f"emulation (C simulation) {b['latency_ms'] / 1e3:.3f} s/frame, not board latency"
    return f"{b['latency_ms']:.3f} ms per frame on the board"


def _board_rung(b: dict) -> dict:
    emulated = b["target"] == "emulator"
    where = ("emulated board (`edgemoe emulate`, the kernel in C simulation)" if emulated
             else f"board ({b.get('device', 'edgemoe-host run')})")
    energy = b.get("energy_mj_per_frame")
    what = (f"{where}, `edgemoe-host run`: {b['frames']} frames, {board_timing(b)}"
            + (f", {energy:.3f} mJ per frame" if energy is not None and not emulated else ""))
    return dict(rung="board", what=what, mismatches=b["mismatches"], errors=None, target=b["target"],
                latency_ms=None if emulated else b["latency_ms"],
                emulation_s_per_frame=b["latency_ms"] / 1e3 if emulated else None,
                energy_mj_per_frame=None if emulated else energy, identity=b["identity"])


def accuracy_ladder(project, run_csim: bool, sim_json=None, board_json=None, say=print, csim_json=None,
                    results: dict | None = None) -> list:
    """Rungs float / fixed / csim / RTL / board: what was compared, mismatches, errors vs float.
    ``results``: :func:`read_results` already called (else it is called here on the files given)."""
    if results is None:
        results = read_results(project, sim_json, board_json, csim_json)
    data = project.path / "data"
    man = project.manifest
    rungs = [dict(rung="float", what="PyTorch float golden (reference)", mismatches=None, errors=None)]
    fixed = [np.load(data / f) for f in man["golden"]["fixed"]]
    flt = [np.load(data / f) for f in man["golden"]["float"]]
    err = np.concatenate([(a.astype(np.float64) - b).ravel() for a, b in zip(fixed, flt)])
    cos = [float(a.ravel() @ b.ravel() / np.linalg.norm(a) / np.linalg.norm(b)) for a, b in zip(fixed, flt)]
    rungs.append(dict(rung="fixed", what="numpy fixed-point golden, every task", mismatches=None, errors=err,
                      max_abs_error=float(np.abs(err).max()), cosine=min(cos)))
    if results["csim"]:
        rungs.append(_csim_rung(results["csim"], [t.name for t in project.spec.tasks]))
    elif run_csim:
        say("  csim: compiling and running the kernel on the golden input, every task")
        project.compile()
        image = project.input_image()
        bad, errs = 0, []
        t0 = time.perf_counter()
        for t in range(project.spec.num_tasks):
            y = project.predict(image, t)
            bad += int(np.count_nonzero(y != fixed[t]))
            errs.append((y.astype(np.float64) - flt[t]).ravel())
        e = np.concatenate(errs)
        rungs.append(dict(rung="csim", what=f"generated C++ under g++ ({time.perf_counter() - t0:.1f} s)",
                          mismatches=bad, values=int(e.size), errors=e, max_abs_error=float(np.abs(e).max())))
    else:
        rungs.append(dict(rung="csim", what="not run (--no-csim)", mismatches=None, errors=None))
    if results["sim"] is not None:
        rungs.append(_rtl_rung(results["sim"]))
    else:
        rungs.append(dict(rung="RTL", what="no results given (`edgemoe sim --json J`, then --sim-json J)",
                          mismatches=None, errors=None))
    if results["board"] is not None:
        rungs.append(_board_rung(results["board"]))
    else:
        rungs.append(dict(rung="board", what="no results given (`edgemoe-host run PKG --json J`, then --board-json J)",
                          mismatches=None, errors=None))
    return rungs


REPORT_FILES = {"report.html", "report.md", "report.json", "resources.png", "layers.png", "errors.png", "stages.png"}


def _check_report_dir(out_dir: Path, project_dir: Path, inputs, force: bool, own: bool) -> str:
    """The option name to use in messages; refuses a report folder that holds the project or an input.
    The default DIR/report written before edgemoe marked its folders (only the report's own files in
    it) is taken as edgemoe's: it gets the marker, so that it is replaced."""
    from edgemoe.io import check_output_dir, made_by_edgemoe, write_marker
    option = "--output (default)" if own else "--output"
    full = out_dir.resolve()
    proj = project_dir.resolve()
    if full == proj or full in proj.parents:
        raise EdgeMoeError(f"{option} {out_dir}: is the project folder or holds it; name another folder")
    for i in inputs:
        if i and (full in Path(i).resolve().parents):
            raise EdgeMoeError(f"{option} {out_dir}: holds the input {i}, which writing the report would remove; "
                               f"name another folder")
    if own and out_dir.is_dir() and not out_dir.is_symlink() and not made_by_edgemoe(out_dir):
        names = {p.name for p in out_dir.iterdir()}
        if names and names <= REPORT_FILES and {"report.html", "report.md"} <= names:
            write_marker(out_dir, "report", written="before markers")
    check_output_dir(out_dir, force=force, option=option)
    return option


def write_report(project_dir, out_dir=None, run_csim: bool = True, sim_json=None, board_json=None,
                 say=print, csim_json=None, force: bool = False) -> Path:
    """Write the report folder (default DIR/report, edgemoe's own: replaced when it carries edgemoe's
    marker). An explicit ``out_dir`` that exists is replaced only with ``force`` and only if edgemoe made
    it; a folder of the user's is refused. The result files are checked before any work."""
    from edgemoe.io import output_dir

    from .csynth import compare, find_csynth, parse_csynth
    from .estimate import estimate
    from .generate import TOP
    from .perf_commands import resolve_target
    from .project import Project
    project_dir = Path(project_dir)
    spec, prec, des, board, clock = resolve_target(str(project_dir))
    project = Project(project_dir)
    results = read_results(project, sim_json, board_json, csim_json)
    default = project_dir / "report"
    out_dir = Path(out_dir) if out_dir else default
    own = out_dir.resolve() == default.resolve()
    inputs = [sim_json, board_json] + ([csim_json] if isinstance(csim_json, (str, Path)) else list(csim_json or []))
    option = _check_report_dir(out_dir, project_dir, inputs, force=True if own else force, own=own)
    say(f"[1/4] estimate: {spec.name} {prec.name}, design {des.name}, {board.name}")
    est = estimate(spec, prec, des, board, clock)
    say("[2/4] accuracy ladder")
    rungs = accuracy_ladder(project, run_csim, say=say, results=results)
    stages = stage_sets(project, results, compute=run_csim, say=say)
    csyn_path = find_csynth(project_dir, TOP)
    csyn = parse_csynth(csyn_path) if csyn_path else None
    say("[3/4] plots")
    sections = []           # (title, markdown, html)
    spec_rows = [(k, v) for k, v in spec.to_dict().items() if k not in ("description", "tasks")]
    spec_rows.append(("tasks", ", ".join(f"{t.name} ({t.kind}, {t.channels})" for t in spec.tasks)))
    spec_rows += [("precision", prec.name), ("design", des.summary()), ("board", f"{board.name} ({board.part})"),
                  ("clock", f"{clock:g} MHz")]
    from edgemoe.golden.option_summary import options_line
    opts = options_line(prec, project.fixed_model().q if "per-channel" in prec.options else None)
    if opts:
        spec_rows.append(("precision options", opts.split(": ", 1)[1]))
    cal = project.manifest.get("calib")
    if isinstance(cal, dict):
        spec_rows.append(("calibration", f"{cal['source']} ({cal['images']} images, sha256 {cal['sha256'][:16]})"))
    sections.append(("Spec", md_table(["field", "value"], spec_rows), html_table(["field", "value"], spec_rows)))
    res_rows = [(k, est.resources[k], est.budget[k], f"{est.resources[k] / est.budget[k]:.1%}" if est.budget[k] else "-")
                for k in ("dsp", "bram36", "uram", "lut", "ff")]
    unit_rows = [(u, r["dsp"], r["bram36"], r["uram"], r["lut"], r["ff"]) for u, r in est.by_unit_resources.items()]
    unit_cols = ["unit", "DSP", "BRAM36", "URAM", "LUT", "FF"]
    frame = est.cycles // est.batch
    lat_rows = [(u, f"{c:,}", f"{c / (clock * 1e3):.3f}", f"{c / frame:.1%}") for u, c in est.frame_cycles_by_unit()]
    lat_rows.append(("total", f"{frame:,}", f"{est.latency_ms:.3f}", ""))
    with output_dir(out_dir, force=True if own else force, command="report", option=option) as tmp:
        tmp = Path(tmp)
        plot_resources(est, tmp / "resources.png")
        plot_layers(est, tmp / "layers.png")
        plot_errors(rungs, tmp / "errors.png")

        def img(name):
            b64 = base64.b64encode((tmp / name).read_bytes()).decode()
            return f'<img src="data:image/png;base64,{b64}" alt="{name}">'
        fits = "fits" if est.fits else "does NOT fit: " + ", ".join(
            f"{k} {n} of {a}" for k, (n, a) in est.over_budget().items())
        sections.append(("Resources against the board",
                         f"The design {fits} {board.name}.\n\n" + md_table(["resource", "estimate", board.name, "use"], res_rows)
                         + "\n\n" + md_table(unit_cols, unit_rows) + "\n\n![](resources.png)",
                         f"<p>The design {html.escape(fits)} {board.name}.</p>"
                         + html_table(["resource", "estimate", board.name, "use"], res_rows)
                         + html_table(unit_cols, unit_rows) + img("resources.png")))
        summary = (f"{est.latency_ms:.3f} ms per frame, {est.gops:.1f} GOPS; floors: compute {est.compute_floor_ms:.3f} ms, "
                   f"DDR {est.ddr_floor_ms:.3f} ms; linear engine doing useful MACs {est.linear_utilization():.1%} "
                   f"of its cycles. " + (f"Batches of {est.batch} frames share every expert's weight load; a batch "
                                         f"takes {est.batch_latency_ms:.3f} ms. " if est.batch > 1 else "")
                   + " ".join(est.notes))
        sections.append(("Latency per layer (estimate)",
                         summary + "\n\n" + md_table(["unit", "cycles", "ms", "share"], lat_rows) + "\n\n![](layers.png)",
                         f"<p>{html.escape(summary)}</p>" + html_table(["unit", "cycles", "ms", "share"], lat_rows)
                         + img("layers.png")))
        lad_rows = []
        for r in rungs:
            mm = "-" if r.get("mismatches") is None else r["mismatches"]
            extra = []
            if r.get("max_abs_error") is not None:
                extra.append(f"max abs error vs float {r['max_abs_error']:.3g}")
            if r.get("cosine") is not None:
                extra.append(f"cosine {r['cosine']:.6f}")
            lad_rows.append((r["rung"], r["what"], mm, "; ".join(extra)))
        lad_text = ("Each rung is compared bit for bit with the fixed-point golden (mismatches) and, where it has "
                    "values, with the float golden (errors).")
        sections.append(("Accuracy ladder", lad_text + "\n\n" + md_table(["rung", "what", "mismatches vs fixed", "error"],
                                                                           lad_rows) + "\n\n![](errors.png)",
                         f"<p>{lad_text}</p>" + html_table(["rung", "what", "mismatches vs fixed", "error"], lad_rows)
                         + img("errors.png")))
        sections.append(stages_section(stages, tmp, img))
        if csyn is not None:
            rows = [(w, e, v, f"{r:.2f}" if r else "undef") for w, e, v, r in compare(csyn, est)]
            sections.append((f"Vitis report ({csyn.path})", md_table(["what", "estimate", "Vitis", "ratio"], rows),
                             html_table(["what", "estimate", "Vitis", "ratio"], rows)))
        else:
            sections.append(("Vitis report", "No Vitis run in this project (`edgemoe build DIR` writes one).",
                             "<p>No Vitis run in this project (<code>edgemoe build DIR</code> writes one).</p>"))
        say("[4/4] writing the report")
        title = f"edgemoe report: {spec.name} {prec.name} on {board.name}"
        md = f"# {title}\n\n" + "\n\n".join(f"## {t}\n\n{m}" for t, m, _ in sections) + "\n"
        css = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
               "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
               "font-size:13px;text-align:left}img{max-width:100%}")
        page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                f"<style>{css}</style></head><body><h1>{html.escape(title)}</h1>"
                + "".join(f"<h2>{html.escape(t)}</h2>{h}" for t, _, h in sections) + "</body></html>")
        (tmp / "report.md").write_text(md)
        (tmp / "report.html").write_text(page)
        (tmp / "report.json").write_text(json.dumps(dict(
            estimate={k: v for k, v in est.to_dict().items() if k != "layers"},
            ladder=[{k: v for k, v in r.items() if k != "errors"} for r in rungs],
            stages=[dict(label=lab, stages=rows) for lab, rows in stages],
            csynth=csyn.to_dict() if csyn else None), indent=1, default=str))
    say(f"wrote {out_dir / 'report.html'} and {out_dir / 'report.md'}")
    return out_dir / "report.html"


def report_command(args) -> int:
    csim_json = getattr(args, "csim_json", None)
    write_report(args.project, args.output, run_csim=not args.no_csim and not csim_json, sim_json=args.sim_json,
                 board_json=args.board_json, csim_json=csim_json, force=bool(getattr(args, "force", False)),
                 say=lambda m: print(m, file=sys.stdout, flush=True))
    return 0


__all__ = ["write_report", "report_command", "accuracy_ladder", "read_results", "board_timing"]
