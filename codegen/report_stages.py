"""The report's "Error per stage" section: the fixed golden against the float golden at every stage
tap (golden/stage_error.py), from the csim results' "stages" or computed on the project's input, plotted
across the layers with the weakest stages of each run in a table."""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from .report_format import html_table, md_table, plt_agg


def plot_stages(sets: list, path) -> None:
    """The fixed golden's error against the float golden at every stage tap, across the layers: cosine
    (top) and max error / range (bottom), one line per (label, rows) in ``sets`` (a task or an input)."""
    plt = plt_agg()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.2), sharex=True)
    names = []
    for label, rows in sets:
        x = np.arange(len(rows))
        top.plot(x, [r["cosine"] for r in rows], marker=".", lw=1, label=label)
        bottom.plot(x, [max(r["max_err_rel"], 1e-9) for r in rows], marker=".", lw=1, label=label)
        if len(rows) > len(names):
            names = [r["stage"] for r in rows]
    # a tick where each block starts (the first point, before block 0, is the patch embedding)
    ticks = [(i, "b" + n.split(".")[1]) for i, n in enumerate(names) if n.startswith("blocks.") and n.endswith(".ln1")]
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        for i, _ in ticks:
            ax.axvline(i, color="k", lw=0.4, alpha=0.3)
    bottom.set_xticks([i for i, _ in ticks], [t for _, t in ticks], fontsize=8)
    top.set_ylabel("cosine vs float")
    bottom.set_ylabel("max |err| / range")
    bottom.set_yscale("log")
    bottom.set_xlabel("stage taps: the patch embedding, then each block's ln1, q, k, v, scores, ... out", fontsize=8)
    top.set_title("fixed-point golden against the float golden at every stage tap", fontsize=10)
    top.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def stage_sets(project, results: dict, compute: bool, say=print) -> list:
    """[(label, rows)] of the per-stage errors: from the csim results given (key "stages"), else, when
    ``compute``, from the project's goldens on its input, every task (nothing when its float model is gone)."""
    names = [t.name for t in project.spec.tasks]

    def label(task, extra=""):
        return f"task {task} ({names[task] if task < len(names) else task}){extra}"
    sets = [(label(c["task"], f", {Path(c['input']).name}"), c["stages"]) for c in results["csim"] if c.get("stages")]
    if sets or not compute:
        return sets
    from .csim import stage_result
    say("  stages: the fixed golden against the float golden at every stage tap, every task")
    image = project.input_image()
    for t in range(project.spec.num_tasks):
        rows, why = stage_result(project, image, t)
        if rows is None:
            say(f"  stages: not computed ({why})")
            return []
        sets.append((label(t), rows))
    return sets


def stages_section(stages: list, tmp: Path, img) -> tuple:
    """The "Error per stage" section: the plot and, per task or input, its weakest stages."""
    from edgemoe.golden.stage_error import summary_line
    title = "Error per stage (fixed golden vs float golden)"
    if not stages:
        text = ("Not computed: give `edgemoe csim DIR --json J` results that hold \"stages\" (--csim-json J), or "
                "let the report run the C simulation rung (without --no-csim).")
        return title, text, f"<p>{html.escape(text)}</p>"
    plot_stages(stages, tmp / "stages.png")
    head = ["task / input", "stage", "cosine", "max err / range", "saturated", "rounded to zero"]
    rows = []
    for lab, st in stages:
        for r in sorted(st, key=lambda r: r["cosine"])[:3]:
            rows.append((lab, r["stage"], f"{r['cosine']:.6f}", f"{r['max_err_rel']:.3%}", f"{r['saturated']:.2%}",
                         f"{r['zero']:.2%}"))
    lines = [f"{lab}: {summary_line(st)}" for lab, st in stages]
    text = ("Each stage tap of the fixed-point golden against the float golden on the same image; the error "
            "accumulates along the layers, so the first stage whose cosine drops is where the precision breaks. "
            "The three weakest stages of each run:")
    md = text + "\n\n" + md_table(head, rows) + "\n\n" + "\n".join(f"- {x}" for x in lines) + "\n\n![](stages.png)"
    page = (f"<p>{html.escape(text)}</p>" + html_table(head, rows) + "<ul>" + "".join(
        f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>" + img("stages.png"))
    return title, md, page


__all__ = ["plot_stages", "stage_sets", "stages_section"]
