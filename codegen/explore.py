"""Design-space exploration: the fastest design point of the generated kernel that fits a board.

The search walks engine width (engine_in x engine_out: the weight tiling), attention rows and
lanes, element-wise lanes, the number of weight ports (port mapping), which activation buffers
go to UltraRAM and the batch; every point is scored by :func:`edgemoe.codegen.estimate.estimate`, so
a point found here describes C++ that ``edgemoe generate --design best.json`` writes. Only points
within the utilisation caps (codegen/caps.py: DSP, BRAM36, URAM <= 80%, LUT, FF <= 70% of the board
by default) count: fuller designs rarely close timing at 300 MHz.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from edgemoe.errors import EdgeMoeError

from .caps import UTIL_CAPS, describe_caps, use_of
from edgemoe.design import Design, MAX_WEIGHT_PORTS
from .estimate import Bandwidth, Estimate, estimate, schedule
from .estimate_resources import dsp_count, resources, totals
from .model_common import Widths

ENGINE_SIDES = (8, 16, 32, 64)
ATTN_ROWS = (2, 4, 8, 16)
LANES = (4, 8, 16, 32)
VEC_LANES = (8, 16, 32)
BATCHES = (1, 2, 4)       # frames per kernel pass sharing every expert's weight load
# m_axi widths: a PS port moves 128 bits per cycle either way; 128-bit words halve the m_axi FIFOs and
# the lanes the AXI word forces on the buffers (what a small board's block RAM needs)
AXI_CHOICES = (256, 128)
# activation buffers moved to UltraRAM, biggest first (the hidden layer, then Q/K/V, then the rest)
URAM_CHOICES = ((), ("g_hid",), ("g_hid", "g_qkv"), ("g_hid", "g_qkv", "g_lnb", "g_att", "g_tmp"),
                ("g_hid", "g_qkv", "g_x", "g_lnb", "g_att", "g_tmp", "g_pos"),
                ("g_hid", "g_qkv", "g_x", "g_lnb", "g_att", "g_tmp", "g_pos", "g_bias"))


@dataclass
class Point:
    design: Design
    latency_ms: float
    dsp: int
    bram36: int
    uram: int
    lut: int
    ff: int
    estimate: Estimate | None = None


def candidates(spec, axi_choices=AXI_CHOICES, clock_mhz: float = 300.0, board_uram: bool = True, batches=BATCHES):
    """Every design point whose sizes tile onto ``spec`` (batches > 1 only when it has experts)."""
    uram_choices = URAM_CHOICES if board_uram else ((),)
    batches = batches if spec.moe_blocks else (1,)
    for ei, eo, r, l, v, wp, ur, bt, ax in itertools.product(ENGINE_SIDES, ENGINE_SIDES, ATTN_ROWS, LANES, VEC_LANES,
                                                             range(1, MAX_WEIGHT_PORTS + 1), uram_choices, batches,
                                                             axi_choices):
        d = Design(f"{ei}x{eo}-r{r}l{l}-v{v}-w{wp}" + (f"-u{len(ur)}" if ur else "") + (f"-b{bt}" if bt > 1 else "")
                   + (f"-a{ax}" if ax != 256 else ""),
                   ei, eo, r, ax, clock_mhz, attn_lanes=l, vec_lanes=v, weight_ports=wp, uram_buffers=ur, batch=bt)
        try:
            d.validate(spec)
        except EdgeMoeError:
            continue
        yield d


def pareto(points: list) -> list:
    """Points no other point beats in latency, DSP and BRAM at once, fastest first."""
    front = []
    for p in sorted(points, key=lambda q: (q.latency_ms, q.dsp, q.bram36)):
        if not any(q.dsp <= p.dsp and q.bram36 <= p.bram36 and q.latency_ms <= p.latency_ms for q in front):
            front.append(p)
    return front


def explore(spec, prec, board, clock_mhz: float | None = None, progress=None, batches=BATCHES, caps=None) -> tuple:
    """(best point, Pareto front, every point within the caps) for ``spec`` at ``prec`` on ``board``;
    latency is per frame (a batch's time over its frames); ``caps``: resource -> the largest fraction
    of the board a point may use (default ``UTIL_CAPS``)."""
    clock = float(clock_mhz or board.clock_mhz)
    caps = dict(caps or UTIL_CAPS)
    budget = board.resources.to_dict()
    designs = list(candidates(spec, clock_mhz=clock, board_uram=budget["uram"] > 0, batches=batches))
    if not designs:
        raise EdgeMoeError(f"explore: no design point tiles onto {spec.name} (embed {spec.embed}, "
                           f"head_dim {spec.head_dim})")
    fitting = []
    closest = None
    wd = Widths.of(prec)
    schedules = {}   # the schedule does not depend on the UltraRAM binding: one per other choice
    for i, d in enumerate(designs):
        if progress and i % 500 == 0:
            progress(i, len(designs))
        # DSPs first (cheap): most points that break a cap break the DSP cap
        dsp_over = use_of({"dsp": dsp_count(spec, wd, d)}, budget)["dsp"] / caps["dsp"]
        if dsp_over > 1 and closest is not None and dsp_over >= closest[0]:
            continue
        tot = totals(resources(spec, prec, d))
        use = use_of(tot, budget)
        over = max(use[k] / caps[k] for k in caps)
        if over > 1:
            if closest is None or over < closest[0]:
                closest = (over, d, tot, use)
            continue
        key = d.with_(name="", uram_buffers=())
        if key not in schedules:
            schedules[key] = schedule(spec, prec, d, Bandwidth.of(d, board, clock))
        est = estimate(spec, prec, d, board, clock, published=False, layers=schedules[key], caps=caps)
        fitting.append(Point(d, est.latency_ms, tot["dsp"], tot["bram36"], tot["uram"], tot["lut"], tot["ff"], est))
    if progress:
        progress(len(designs), len(designs))
    if not fitting:
        over, d, tot, use = closest
        worst = [f"{k} {tot[k]} ({use[k]:.0%} of {budget[k]}, cap {caps[k]:.0%})" for k in caps if use[k] > caps[k]]
        raise EdgeMoeError(f"explore: no design point of {spec.name} ({prec.name}) fits {board.name} within the "
                           f"utilisation caps ({describe_caps(caps)}); the closest ({d.summary()}) needs "
                           f"{', '.join(worst)}; --max-util changes the caps")
    # fastest; among equally fast points (within 0.5%) the one with the fewest DSPs, then BRAM
    fastest = min(p.latency_ms for p in fitting)
    best = min((p for p in fitting if p.latency_ms <= fastest * 1.005), key=lambda p: (p.dsp, p.bram36, p.lut))
    return best, pareto(fitting), fitting


def plot_front(points: list, front: list, best: Point, path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in ((axes[0], "dsp", "DSP48E2"), (axes[1], "bram36", "BRAM36")):
        ax.scatter([getattr(p, key) for p in points], [p.latency_ms for p in points], s=6, c="#bbbbbb",
                   label="fitting points")
        fr = sorted(front, key=lambda p: getattr(p, key))
        ax.plot([getattr(p, key) for p in fr], [p.latency_ms for p in fr], "o", ms=4, c="#1f77b4", label="Pareto front")
        ax.plot([getattr(best, key)], [best.latency_ms], "*", ms=14, c="#d62728", label="best")
        ax.set_xlabel(label)
        ax.set_ylabel("latency per frame (ms)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["Point", "candidates", "pareto", "explore", "plot_front"]
