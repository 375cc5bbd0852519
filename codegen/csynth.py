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
        raise EdgeMoeError(f"csynth report {p}: not found (run Vitis synthesis first: `edgemoe build PROJECT --until hls`)")
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
    for key in ("dsp", "bram36", "uram", "lut", "ff"):
        v = report.resources.get(key)
        e = est.resources[key]
        rows.append((key, e, v, (e / v) if v else None))
    return rows


def _xml_root(path: Path):
    try:
        return ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None


def csynth_instances(report_dir, top: str) -> list | None:
    """Every module instance under ``top`` as (instance path, module name): from the
    ``RTLDesignHierarchy`` of the top's report or the summary ``csynth.xml`` (Vitis 2021+), else from
    the "Instance" tables of the ``*_csynth.rpt`` files (a table lists one module's children; the
    tree is expanded from the top).  None when no report of the run lists the hierarchy."""
    d = Path(report_dir)
    for name in (f"{top}_csynth.xml", "csynth.xml"):
        root = _xml_root(d / name)
        node = root.find("RTLDesignHierarchy/TopModule") if root is not None else None
        if node is not None and (node.findtext("ModuleName") or top).strip() == top:
            return _xml_hierarchy(node, "", [])
    children = {}
    for rpt in sorted(d.glob("*_csynth.rpt")):
        module, rows = _rpt_instances(rpt)
        if module:
            children[module] = rows
    if top not in children:
        return None
    out = []

    def expand(module, prefix, depth):
        for inst, mod in children.get(module, []):
            out.append((prefix + inst, mod))
            if depth < 32:            # a malformed report must not loop forever
                expand(mod, prefix + inst + "/", depth + 1)
    expand(top, "", 0)
    return out


def _xml_hierarchy(node, prefix: str, out: list) -> list:
    for inst in node.findall("InstancesList/Instance"):
        path = prefix + (inst.findtext("InstName") or "?").strip()
        out.append((path, (inst.findtext("ModuleName") or "").strip()))
        _xml_hierarchy(inst, path + "/", out)
    return out


def _rpt_instances(path: Path) -> tuple:
    """(module the report is for, [(instance, module)]) from a ``<module>_csynth.rpt``: the rows of its
    "* Instance:" tables (listed twice, under latency and under utilization)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None, []
    module, rows, seen, in_table = None, [], set(), False
    for line in lines:
        s = line.strip()
        if module is None and s.startswith("== ") and "Report for '" in s:
            module = s.split("Report for '", 1)[1].split("'", 1)[0]
        if s.startswith("* Instance:"):
            in_table = True
            continue
        if not in_table:
            continue
        if not s or (s.startswith("*") and not s.startswith("* Instance")):
            in_table = False
            continue
        if not s.startswith("|"):
            continue
        cells = [c.strip() for c in s.strip("|").split("|")]
        if len(cells) < 2 or not cells[0] or cells[0] in ("Instance", "Total") or not cells[1] or cells[1] == "Module":
            continue
        if (cells[0], cells[1]) not in seen:
            seen.add((cells[0], cells[1]))
            rows.append((cells[0], cells[1]))
    return module, rows


def _loop_elements(parent, module: str, out: list) -> None:
    for el in list(parent):
        if el.find("TripCount") is None and el.find("PipelineII") is None and el.find("Latency") is None:
            continue
        target = None
        for child in el:
            tag = child.tag.lower()
            if "target" in tag and ("ii" in tag or "interval" in tag):
                target = _num(child.text)
        ptype = (el.findtext("PipelineType") or "").strip().lower()
        ii = _num(el.findtext("PipelineII"))
        out.append(dict(module=module, name=(el.findtext("Name") or el.tag).strip(), ii=ii, target_ii=target,
                        pipelined=isinstance(ii, int) and ptype not in ("no", "-")))
        _loop_elements(el, module, out)     # nested loops sit inside their parent's element


def csynth_loops(report_dir) -> list:
    """Every loop in the reports of one run: {module, name, ii, target_ii, pipelined}, from each
    ``*_csynth.xml`` (its own loops) and the summary ``csynth.xml`` (``ModuleInformation``);
    ``target_ii`` is None where the report does not state it."""
    d = Path(report_dir)
    out = []
    for path in sorted(d.glob("*csynth.xml")):
        root = _xml_root(path)
        if root is None:
            continue
        modules = root.findall("ModuleInformation/Module")
        if modules:
            for m in modules:
                loops = m.find("PerformanceEstimates/SummaryOfLoopLatency")
                if loops is not None:
                    _loop_elements(loops, (m.findtext("Name") or "").strip(), out)
        else:
            loops = root.find("PerformanceEstimates/SummaryOfLoopLatency")
            if loops is not None:
                _loop_elements(loops, (root.findtext("UserAssignments/TopModelName") or path.stem[:-len("_csynth")]).strip(), out)
    seen, uniq = set(), []
    for lp in out:
        key = (lp["module"], lp["name"])
        if key not in seen:
            seen.add(key)
            uniq.append(lp)
    return uniq


__all__ = ["CsynthReport", "parse_csynth", "find_csynth", "compare", "csynth_instances", "csynth_loops"]
