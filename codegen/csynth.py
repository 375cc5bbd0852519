"""Vitis HLS synthesis reports (``<top>_csynth.xml``) parsed into the estimate's table.

Vitis writes one report per synthesised function next to the top's (``syn/report/*_csynth.xml``):
``PerformanceEstimates`` (latency in cycles, ``undef`` for loops without a trip count, estimated
clock period) and ``AreaEstimates/Resources`` (BRAM_18K, DSP, FF, LUT, URAM).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgemoe.errors import EdgeMoeError

RESOURCE_TAGS = {"dsp": ("DSP", "DSP48E"), "bram18": ("BRAM_18K",), "uram": ("URAM",), "lut": ("LUT",), "ff": ("FF",)}


@dataclass
class CsynthReport:
    path: str
    top: str
    target_ns: float | None
    estimated_ns: float | None
    latency_best: int | None       # cycles; None where Vitis says "undef"
    latency_worst: int | None
    resources: dict                # dsp, bram36, uram, lut, ff
    available: dict
    loops: list = field(default_factory=list)   # {name, trip_count, latency, ii, depth}
    modules: list = field(default_factory=list)  # per-function reports next to the top's: {name, latency, dsp, ...}

    def to_dict(self) -> dict:
        return asdict(self)


def _num(text):
    if text is None:
        return None
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None                   # "undef", "-"


def _resources(node) -> dict:
    out = {}
    if node is None:
        return out
    for key, tags in RESOURCE_TAGS.items():
        for tag in tags:
            el = node.find(tag)
            if el is not None and _num(el.text) is not None:
                out[key] = _num(el.text)
                break
    if "bram18" in out:
        out["bram36"] = out["bram18"] / 2
    return out


def parse_csynth(path, with_modules: bool = True) -> CsynthReport:
    """Parse one ``*_csynth.xml``; a missing or malformed file is a one-line error naming it."""
    p = Path(path)
    if not p.is_file():
        raise EdgeMoeError(f"csynth report {p}: not found (run Vitis synthesis first: `edgemoe build --step hls`)")
    try:
        root = ET.parse(p).getroot()
    except ET.ParseError as e:
        raise EdgeMoeError(f"csynth report {p}: malformed XML ({e})") from None
    perf = root.find("PerformanceEstimates")
    area = root.find("AreaEstimates")
    if perf is None or area is None:
        raise EdgeMoeError(f"csynth report {p}: no PerformanceEstimates / AreaEstimates (not a Vitis csynth.xml?)")
    lat = perf.find("SummaryOfOverallLatency")
    loops = []
    loop_root = perf.find("SummaryOfLoopLatency")
    for el in list(loop_root) if loop_root is not None else []:
        name = el.findtext("Name") or el.tag
        loops.append(dict(name=name, trip_count=_num(el.findtext("TripCount")), latency=_num(el.findtext("Latency")),
                          ii=_num(el.findtext("PipelineII")), depth=_num(el.findtext("PipelineDepth"))))
    rep = CsynthReport(
        path=str(p), top=root.findtext("UserAssignments/TopModelName") or p.name.replace("_csynth.xml", ""),
        target_ns=_num(root.findtext("UserAssignments/TargetClockPeriod")),
        estimated_ns=_num(perf.findtext("SummaryOfTimingAnalysis/EstimatedClockPeriod")),
        latency_best=_num(lat.findtext("Best-caseLatency")) if lat is not None else None,
        latency_worst=_num(lat.findtext("Worst-caseLatency")) if lat is not None else None,
        resources=_resources(area.find("Resources")), available=_resources(area.find("AvailableResources")),
        loops=loops)
    if with_modules:
        for other in sorted(p.parent.glob("*_csynth.xml")):
            if other == p:
                continue
            try:
                sub = parse_csynth(other, with_modules=False)
            except EdgeMoeError:
                continue                  # a broken per-function report does not hide the top's figures
            rep.modules.append(dict(name=sub.top, latency=sub.latency_worst, **sub.resources))
    return rep


def find_csynth(project_dir, top: str) -> Path | None:
    """The top's report of a Vitis run inside a generated project, if there is one (2023.2+ work
    dirs and legacy solution folders both keep it under ``syn/report``)."""
    hits = sorted(Path(project_dir).glob(f"**/syn/report/{top}_csynth.xml"))
    return hits[0] if hits else None


def compare(report: CsynthReport, est) -> list:
    """Rows (what, estimate, Vitis, ratio) of the estimate against a Vitis report."""
    rows = []
    cyc = report.latency_worst
    rows.append(("cycles per frame", est.cycles, cyc, (est.cycles / cyc) if cyc else None))
    for key in ("dsp", "bram36", "uram", "lut"):
        v = report.resources.get(key)
        e = est.resources[key]
        rows.append((key, e, v, (e / v) if v else None))
    return rows


__all__ = ["CsynthReport", "parse_csynth", "find_csynth", "compare"]
