"""``edgemoe hls-check PRJ``: the generated kernel against the rules Vitis HLS applies and csim cannot show.

Without Vitis.  Static rules on the synthesis branch of the sources (preprocessed with __SYNTHESIS__):
``allocation`` (hls_rules), ``dependence`` (hls_rules), ``maxi`` (hls_maxi), ``bank`` (hls_banks:
accesses of a pipelined loop per bank of the partitioned memories, run-time banks counted against
every bank), ``probe`` (hls_rules),
``instances`` (hls_instances: the shared units counted in an -O0 build), and the synthesizable-subset
rules of synth_check (heap, stl, exceptions, recursion, loop-bound).  Dynamic rules from the
instrumented C simulation (probe): ``bank-conflict``, ``rom-ports`` and ``burst``.  Exit 1 on any
violation.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from edgemoe.errors import EdgeMoeError

from edgemoe.design import ENGINE_FUNCTION, SHARED_FUNCTIONS
from .synth_check import Violation, check_source

JSON_KEYS = ("violations", "engine_instances", "instances", "bursts", "bank_conflicts", "rom_oversubscribed", "banks",
             "build", "probe")


def _label_locator(unit, top_file: str):
    where = {}
    for lp in unit.loops():
        if lp.label and lp.label not in where:
            where[lp.label] = unit.where(lp.label_pos)

    def locate(label):
        return where.get(label, (top_file, 0)) if label else (top_file, 0)
    return locate


def _shared_definitions(unit, shared) -> list:
    """A shared unit must be a plain function with INLINE off: Vitis inlines small functions on its own,
    and an inlined function cannot be shared."""
    out = []
    for name in shared:
        for f in (f for f in unit.functions() if f.name == name):
            file, line = unit.where(f.pos)
            if f.template:
                out.append(Violation(file, line, "instances", f"shared unit '{name}' is a template: every "
                                     "instantiation is a function of its own"))
            elif f.inline != "off":
                out.append(Violation(file, line, "instances", f"shared unit '{name}' has no '#pragma HLS INLINE off': "
                                     "Vitis may inline it, and an inlined function cannot be shared"))
    return out


def check_kernel(top_file, src_dir, root, top: str, include_dirs=(), shared=SHARED_FUNCTIONS, engine=ENGINE_FUNCTION,
                 workdir=None, probe_report: dict | None = None) -> dict:
    """Every rule on one kernel: ``top_file`` (the top function ``top``) and the headers under ``src_dir``;
    file names are given relative to ``root`` (where hls_config.cfg / run_hls.tcl are looked for)."""
    import tempfile
    from .hls_arrays import macro_table
    from .hls_banks import check_banks
    from .hls_instances import describe, run_instances
    from .hls_maxi import check_maxi
    from .hls_rules import allocation_pragmas, check_allocation, check_dependence, check_probe_labels
    from .hls_source import preprocess, synthesis_flags, unit_from_files
    from .probe import probe_violations, with_probe_header
    top_file, src_dir, root = Path(top_file).resolve(), Path(src_dir).resolve(), Path(root).resolve()
    include_dirs = [Path(d).resolve() for d in include_dirs] or [src_dir]
    own_tmp = None
    if workdir is None:
        own_tmp = tempfile.TemporaryDirectory(prefix="edgemoe_hls_check_")
        workdir = own_tmp.name
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    include_dirs = with_probe_header(include_dirs, workdir)
    t0 = time.perf_counter()
    violations = []
    syn_flags, how = synthesis_flags(workdir / "synthesis_prelude.h", top_file, include_dirs)
    build = dict(synthesis=how, preprocessed=True, compiled=False)
    fallback = sorted(src_dir.glob("*.h")) + [top_file]
    try:
        unit = preprocess(top_file, include_dirs, [src_dir], root, syn_flags)
    except EdgeMoeError as e:
        build.update(preprocessed=False, error=str(e))
        violations.append(Violation(str(top_file.relative_to(root)), 0, "instances", f"synthesis branch: {e}"))
        unit = unit_from_files(fallback, root)
    try:
        probe_unit = preprocess(top_file, include_dirs, [src_dir], root, syn_flags, defines=["EDGEMOE_PROBE"])
    except EdgeMoeError:
        probe_unit = unit
    top_rel = str(top_file.relative_to(root)) if top_file.is_relative_to(root) else str(top_file)
    # instances of the shared units (and of every function an allocation pragma names)
    alloc = allocation_pragmas(unit)
    wanted = list(dict.fromkeys(list(shared) + [n for n, *_ in alloc if "<" not in n]))
    records, counts = {}, {}
    try:
        records, counts = run_instances(unit, top_file, top, wanted, include_dirs, syn_flags, workdir, root)
        build["compiled"] = True
    except EdgeMoeError as e:
        build["error"] = str(e)
        violations.append(Violation(top_rel, 0, "instances", f"the synthesis branch does not compile: {e}"))
    build["seconds"] = round(time.perf_counter() - t0, 2)
    instances = {n: r["instances"] for n, r in records.items()}
    top_fn = next((f for f in unit.functions() if f.name == top), None)
    top_where = unit.where(top_fn.pos) if top_fn else (top_rel, 0)
    if records:
        for name in shared:
            rec = records[name]
            if rec["instances"] != 1:
                where = next(((unit.where(p)) for n, _, p, _ in alloc if n == name), top_where)
                violations.append(Violation(where[0], where[1], "instances",
                                            describe(name, rec) + " (a shared unit must have exactly 1)"))
    violations += _shared_definitions(unit, shared)
    violations += check_allocation(unit, root, counts)
    violations += check_dependence(unit, root)
    violations += check_maxi(unit, top)
    bank_v, bank_summary = [], []
    if build["preprocessed"]:   # the raw fallback has its macros unexpanded: no bank can be told
        bank_v, bank_summary = check_banks(unit, top, macro_table(top_file, include_dirs, syn_flags))
    violations += bank_v
    label_v, _ = check_probe_labels(probe_unit)
    violations += label_v
    if probe_report is not None:
        violations += probe_violations(probe_report, _label_locator(unit, top_rel))
    # the synthesizable subset, on every kernel file as written
    for f in fallback:
        violations += check_source(f.read_text(), str(f.relative_to(root)) if f.is_relative_to(root) else str(f))
    if own_tmp is not None:
        own_tmp.cleanup()
    rep = probe_report or {}
    return {
        "violations": [dict(rule=v.rule, file=v.file, line=v.line, message=v.message)
                       for v in sorted(set(violations), key=lambda v: (v.file, v.line, v.rule, v.message))],
        "engine_instances": instances.get(engine) if records else None,
        "instances": instances,
        "bursts": {p: dict(b) for p, b in rep.get("bursts", {}).items()},
        "bank_conflicts": rep.get("bank_conflicts", []),
        "rom_oversubscribed": rep.get("rom_oversubscribed", []),
        "banks": bank_summary,
        "build": build,
        "instance_details": records,
    }


def hls_check(project_dir, probe: bool = True) -> dict:
    """Every rule on a generated project; see the module docstring for the keys."""
    import os
    from .generate import kernel_sources
    from .probe import run_project_probe
    prj = Path(project_dir)
    mf = prj / "data" / "manifest.json"
    if not mf.is_file():
        raise EdgeMoeError(f"{prj} is not a generated project (no data/manifest.json)")
    manifest = json.loads(mf.read_text())
    top = manifest.get("top", "edgemoe_top")
    src = prj / "src"
    if not (src / f"{top}.cpp").is_file():
        raise EdgeMoeError(f"{prj}: the top kernel src/{top}.cpp is missing")
    include_dirs = [src] + ([] if os.environ.get("XILINX_HLS") else [prj / "compat"])
    probe_info = dict(ran=False, reason="disabled (--no-probe)")
    report = None
    if probe:
        try:
            r = run_project_probe(prj)
            report = r.pop("report")
            probe_info = dict(ran=True, **r, report=report)
        except EdgeMoeError as e:
            probe_info = dict(ran=False, reason=str(e))
    res = check_kernel(src / f"{top}.cpp", src, prj, top, include_dirs, workdir=prj / "build" / "hls_check",
                       probe_report=report)
    if probe and not probe_info["ran"]:
        res["violations"].append(dict(rule="probe", file=f"src/{top}.cpp", line=0,
                                      message=f"the instrumented C simulation did not run: {probe_info['reason']}"))
    elif probe and not report.get("bursts"):
        res["violations"].append(dict(rule="probe", file="csim/edgemoe_csim.cpp", line=0, message=(
            "the instrumented C simulation registered no m_axi port (em_probe_port under EDGEMOE_PROBE): "
            "its bursts are unchecked")))
    res["probe"] = probe_info
    res["project"] = str(prj)
    res["sources"] = [str(p.relative_to(prj)) for p in kernel_sources(prj) if p.is_file()]
    return res


def format_summary(res: dict) -> str:
    lines = [f"{v['file']}:{v['line']}: [{v['rule']}] {v['message']}" for v in res["violations"]]
    eng = res["engine_instances"]
    inst = ", ".join(f"{n} {k}" for n, k in res["instances"].items())
    lines.append(f"engine instances ({ENGINE_FUNCTION}): {'not counted' if eng is None else eng}"
                 + (f"; instances: {inst}" if inst else ""))
    lines.append(f"synthesis branch: {res['build']['synthesis']}")
    muxed = [b for b in res.get("banks", []) if b["within_ports"]]
    lines.append(f"static banks: {sum(len(b['runtime_banks']) for b in muxed)} run-time-bank access(es) within the ports "
                 f"({len(muxed)} loop/array pair(s)), {len(res.get('banks', [])) - len(muxed)} over")
    pr = res.get("probe", {})
    if pr.get("ran"):
        loops = pr["report"].get("loops", {})
        bufs = pr["report"].get("buffers", {})
        nb = [b for b in bufs.values() if b["kind"] == "buffer"]
        nr = [b for b in bufs.values() if b["kind"] == "rom"]
        lines.append(f"probe: {len(loops)} pipelined loops seen, {sum(v['iterations'] for v in loops.values())} "
                     f"iterations, {pr['images']} image(s), {pr['seconds']:.2f} s; {len(nb)} banked buffers "
                     f"({sum(b['accesses'] for b in nb)} accesses), {len(nr)} ROMs ({sum(b['accesses'] for b in nr)} reads)")
        for port, b in sorted(res["bursts"].items()):
            state = "contiguous" if b["contiguous"] else "NOT contiguous: " + ", ".join(
                f"{p['kind']} in {p['loop'] or 'no loop'}" for p in b["problems"][:4])
            lines.append(f"  m_axi {port} ({b.get('bundle', '')}): {b['accesses']} accesses in "
                         f"{len(b['loops'])} loop(s), {state}")
        lines.append(f"  bank conflicts: {len(res['bank_conflicts'])}, ROM over-subscription: "
                     f"{len(res['rom_oversubscribed'])}")
    else:
        lines.append(f"probe: not run ({pr.get('reason', '')})")
    by_rule = {}
    for v in res["violations"]:
        by_rule[v["rule"]] = by_rule.get(v["rule"], 0) + 1
    if res["violations"]:
        lines.append(f"{len(res['violations'])} violation(s): " + ", ".join(f"{k} {n}" for k, n in sorted(by_rule.items())))
    else:
        lines.append("no violations")
    return "\n".join(lines)


def hls_check_command(args) -> int:
    res = hls_check(args.project, probe=not getattr(args, "no_probe", False))
    if args.json:
        from edgemoe.io import atomic_path
        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(json.dumps(res, indent=1, default=str))
    print(format_summary(res))
    return 1 if res["violations"] else 0


__all__ = ["hls_check", "check_kernel", "hls_check_command", "format_summary", "JSON_KEYS"]
