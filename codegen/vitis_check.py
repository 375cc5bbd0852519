"""``edgemoe vitis-check DIR``: does a Vitis HLS run of a generated project hold what the kernel claims?

C simulation proves the numbers, never the hardware (BRIEF section 6). After csynth, Vitis's log and
reports say whether the kernel became what it was written to be; this reads them and fails loudly on:

* **burst**: a 214-2xx burst-inference failure (single-beat transfers on an m_axi port), naming the
  variable and the source line; the bursts that were inferred (214-115) are listed as information;
* **ii**: a pipelined loop whose final II is above its target (200-1470, or the loop table of the
  csynth reports), with the reasons Vitis gives (200-880 / 200-885 / 200-448);
* **engine**: more than one instance of a function the kernel shares (``SHARED_FUNCTIONS``, the
  linear engine first) in the synthesized hierarchy;
* **resources**: a resource of the top more than 10% above ``edgemoe estimate``.

``edgemoe build`` runs the same check after its HLS step (:func:`check_build_run`).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from edgemoe.errors import EdgeMoeError

from .csynth import csynth_instances, csynth_loops, parse_csynth
from .vitis_log import parse_log

RESOURCE_MARGIN = 0.10          # Vitis may exceed the estimate by this much before it is a failure
RESOURCE_KEYS = ("dsp", "bram36", "uram", "lut", "ff")
LOG_NAMES = ("vitis_hls.log", "hls.log")
SKIP_DIRS = (".staging-", ".old-")   # edgemoe build's temporaries: never a run to check
SEVERITY_ORDER = {"failure": 0, "warning": 1, "info": 2}
EXIT_FAILED = 1
TRAILING_LOC = re.compile(r"\s*\([^()]*:\d+(?::\d+)?\)\.?\s*$")


def _finding(check, severity, where, message, file=None, line=None) -> dict:
    return dict(check=check, severity=severity, where=where, file=file, line=line, message=message)


# ---- finding the run ----------------------------------------------------------------------------
def _visible(path: Path, base: Path) -> bool:
    return not any(part.startswith(SKIP_DIRS) for part in path.relative_to(base).parts)


def _reports(base: Path, top: str) -> list:
    """``syn/report`` folders under ``base`` that hold the top's report (newest first)."""
    hits = {}
    for pattern in (f"{top}_csynth.xml", "csynth.xml"):
        for p in base.glob(f"**/syn/report/{pattern}"):
            if _visible(p, base):
                hits.setdefault(p.parent, p)
    return sorted(hits.values(), key=lambda p: p.stat().st_mtime, reverse=True)


def _top_report(report_dir: Path, top: str) -> Path | None:
    p = report_dir / f"{top}_csynth.xml"
    if p.is_file():
        return p
    summary = report_dir / "csynth.xml"
    if summary.is_file():
        try:
            if parse_csynth(summary, with_modules=False).top == top:
                return summary
        except EdgeMoeError:
            pass
    return None


def _log_near(start: Path, stop: Path) -> Path | None:
    """The HLS log nearest to ``start``, looking in each folder up to ``stop`` (and its ``logs/``):
    v++ keeps ``<work>/hls/hls.log``, vitis_hls writes ``vitis_hls.log`` where it ran, edgemoe build
    captures the tool's output in ``build/logs/hls.log``."""
    d = start
    while True:
        for sub in (d, d / "logs"):
            for name in LOG_NAMES:
                if (sub / name).is_file():
                    return sub / name
        if d == stop or d.parent == d or stop not in d.parents:
            return None
        d = d.parent


def find_run(project_dir, top: str, run_dir=None) -> dict:
    """{"run", "csynth" (top report or None), "reports" (its folder or None), "log" (or None), "others"}."""
    root = Path(project_dir)
    base = Path(run_dir) if run_dir else root
    if run_dir and not base.is_dir():
        raise EdgeMoeError(f"--run {base}: not a folder")
    stop = base.parent if run_dir else root
    reports = _reports(base, top)
    if reports:
        rep = reports[0]
        run = rep.parent.parent.parent          # <run>/syn/report/<top>_csynth.xml
        return dict(run=run, csynth=_top_report(rep.parent, top), reports=rep.parent, log=_log_near(run, stop),
                    others=[str(p.parent.parent.parent) for p in reports[1:]])
    logs = sorted((p for name in LOG_NAMES for p in base.glob(f"**/{name}") if _visible(p, base)),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    log = _log_near(base, stop) if run_dir else None
    log = log or (logs[0] if logs else None)
    if log is None:
        where = f"--run {base}" if run_dir else str(root)
        raise EdgeMoeError(f"no Vitis run found in {where} (no syn/report/{top}_csynth.xml, no vitis_hls.log or hls.log): "
                           f"`edgemoe build {root} --until hls` makes one")
    run = base if run_dir else (log.parent.parent / "hls" if log.parent.name == "logs" else log.parent)
    return dict(run=run if run.is_dir() else log.parent, csynth=None, reports=None, log=log,
                others=[str(p) for p in logs if p != log])


# ---- the checks ---------------------------------------------------------------------------------
def _where_loc(file, line) -> str:
    return f" ({file}:{line})" if file else ""


def check_bursts(parsed: dict) -> list:
    out = []
    for b in parsed["burst_failures"]:
        name = b["name"] or "?"
        text = TRAILING_LOC.sub("", b["text"])       # the location has its own column
        out.append(_finding("burst", "failure", name, f"[HLS {b['code']}] {text}: no burst on '{name}', "
                            "single-beat m_axi transfers", b["file"], b["line"]))
    return out


def _result_text(r) -> str:
    target = "NA" if r["target"] is None else r["target"]
    return f"Target II = {target}, Final II = {r['final']}, Depth = {r['depth']}"


def check_ii(parsed: dict | None, loops: list) -> list:
    out, named = [], set()
    for r in (parsed or {}).get("pipelining", []):
        if r["target"] is not None and r["final"] > r["target"]:
            where = r["loop"] or "?"
            named.add(where)
            out.append(_finding("ii", "failure", where, f"loop '{where}' misses its II pragma: {_result_text(r)}"))
    for c in (parsed or {}).get("ii_causes", []):
        r = c["result"]
        violated = r is None or (r["target"] is not None and r["final"] > r["target"])
        where = c["loop"] or c["module"] or "?"
        named.add(where)
        on = f" on '{c['object']}'" if c["object"] else ""
        why = {"200-880": "carried dependence", "200-885": "limited memory / bus ports",
               "200-448": "lower bound of II from one memory's ports"}[c["code"]]
        state = (f"({_result_text(r)})" if r else "(no pipelining result in the log)") if violated else \
            f"(informational: {_result_text(r)}{', no II pragma' if r['target'] is None else ''})"
        out.append(_finding("ii", "failure" if violated else "warning", where,
                            f"[HLS {c['code']}] {why}{on} in loop '{where}'" + (f" at II {c['ii']}" if c["ii"] else "")
                            + f" {state}", c["file"], c["line"]))
    untargeted = {r["loop"] for r in (parsed or {}).get("pipelining", []) if r["target"] is None}
    for lp in loops:
        if not lp["pipelined"] or lp["name"] in named or not isinstance(lp["ii"], (int, float)):
            continue
        target = lp["target_ii"]
        if target is not None:
            if lp["ii"] > target:
                out.append(_finding("ii", "failure", lp["name"], f"loop '{lp['name']}' in {lp['module']}: "
                                    f"II {lp['ii']:g} > target {target:g} (csynth report)"))
        elif lp["ii"] > 1:
            auto = lp["name"] in untargeted       # pipelined by Vitis itself, no pragma asked for an II
            out.append(_finding("ii", "warning" if auto else "failure", lp["name"],
                                f"pipelined loop '{lp['name']}' in {lp['module']} runs at II {lp['ii']:g} "
                                + ("(Vitis pipelined it without a pragma: Target II = NA)" if auto else
                                   "(csynth report; the kernel's pipelines claim II 1)")))
        named.add(lp["name"])
    return out


def _engine_copy(module: str, function: str) -> bool:
    """``linear_engine``, and Vitis's copies or specialisations of it (``linear_engine_1``,
    ``linear_engine_s``); never its sub-modules (``linear_engine_Pipeline_MAC``)."""
    if module == function:
        return True
    if not module.startswith(function + "_"):
        return False
    rest = module[len(function) + 1:].split("_")
    return all(p.isdigit() or p == "s" for p in rest)


def check_engine(instances: list | None, functions) -> tuple:
    """(findings, {function: [instance paths]})."""
    out, found = [], {}
    if instances is None:
        out.append(_finding("engine", "warning", functions[0], "the reports list no design hierarchy: instances of "
                            f"{', '.join(functions)} not counted"))
        return out, None
    for fn in functions:
        paths = [p for p, mod in instances if _engine_copy(mod, fn)]
        found[fn] = paths
        if len(paths) > 1:
            out.append(_finding("engine", "failure", fn, f"{len(paths)} instances of {fn} (the kernel shares one): "
                                + ", ".join(paths)))
        elif not paths:
            listed = f"the report lists {len(instances)} other instances" if instances else "the report lists no instances"
            out.append(_finding("engine", "warning", fn, f"no instance of {fn} in the hierarchy ({listed}): "
                                "inlined or renamed, so it is not shared as one unit"))
    return out, found


def check_resources(report, est) -> tuple:
    out, table = [], {}
    for key in RESOURCE_KEYS:
        e, v = est.get(key), report.resources.get(key)
        if e is None or v is None:
            continue
        ratio = (v / e) if e else None
        table[key] = dict(estimate=e, vitis=v, ratio=round(ratio, 3) if ratio is not None else None)
        if v > e * (1 + RESOURCE_MARGIN):
            how = f"{ratio:.2f}x the estimate" if ratio is not None else "where the estimate has none"
            out.append(_finding("resources", "failure", key, f"{key}: Vitis {v:g}, estimate {e:g} ({how}; "
                                f"more than {RESOURCE_MARGIN:.0%} above `edgemoe estimate`)"))
    return out, table


def vitis_check(project_dir, run_dir=None) -> dict:
    """Check the Vitis run of a generated project (the newest under DIR, or ``run_dir``); the result
    dict is what ``--json`` writes. Raises :class:`EdgeMoeError` when there is no run."""
    from edgemoe.design import ENGINE_FUNCTION, SHARED_FUNCTIONS
    from edgemoe.project_files import read_manifest
    root = Path(project_dir)
    manifest = read_manifest(root)
    top = manifest.get("top", "edgemoe_top")
    run = find_run(root, top, run_dir)
    findings, parsed = [], None
    if run["log"] is not None:
        parsed = parse_log(run["log"].read_text(errors="replace"))
        findings += check_bursts(parsed)
    else:
        findings.append(_finding("burst", "warning", "log", "no Vitis HLS log next to the run (vitis_hls.log, hls.log): "
                                 "burst and pipelining messages not checked"))
    loops = csynth_loops(run["reports"]) if run["reports"] else []
    findings += check_ii(parsed, loops)
    result = dict(project=str(root), run=str(run["run"]), log=str(run["log"]) if run["log"] else None,
                  csynth=str(run["csynth"]) if run["csynth"] else None, other_runs=run["others"], findings=findings,
                  failures=0, bursts_inferred=parsed["bursts_inferred"] if parsed else [],
                  engine_instances=None, instances=None, resources={})
    functions = tuple(dict.fromkeys((ENGINE_FUNCTION,) + tuple(SHARED_FUNCTIONS)))
    if run["reports"] is None:
        findings.append(_finding("engine", "warning", top, "no csynth report in the run: engine instances and "
                                 "resources not checked (did csynth finish?)"))
    else:
        eng, found = check_engine(csynth_instances(run["reports"], top), functions)
        findings += eng
        if found is not None:
            result["instances"] = found
            result["engine_instances"] = len(found[ENGINE_FUNCTION])
        if run["csynth"] is not None:
            from .estimate import estimate
            from .perf_commands import resolve_target
            est = estimate(*resolve_target(project=root))
            res, table = check_resources(parse_csynth(run["csynth"], with_modules=False), est.resources)
            findings += res
            result["resources"] = table
        else:
            findings.append(_finding("resources", "warning", top, f"no {top}_csynth.xml in {run['reports']}: "
                                     "resources not compared with the estimate"))
    findings.sort(key=lambda f: SEVERITY_ORDER[f["severity"]])
    result["failures"] = sum(f["severity"] == "failure" for f in findings)
    result["ok"] = result["failures"] == 0
    return result


# ---- output -------------------------------------------------------------------------------------
def format_finding(f: dict) -> str:
    loc = f"{f['file']}:{f['line']}" if f["file"] else "-"
    return f"{f['severity'].upper():7s} {f['check']:9s} {f['where'] or '-':24s} {loc:28s} {f['message']}"


def format_result(res: dict) -> str:
    lines = [f"vitis-check {res['project']}: run {res['run']}",
             f"  log: {res['log'] or '(none)'}", f"  report: {res['csynth'] or '(none)'}"]
    if res["other_runs"]:
        lines.append(f"  (also found: {', '.join(res['other_runs'])}; --run DIR checks another)")
    lines.append("")
    lines += [format_finding(f) for f in res["findings"]] or ["no findings"]
    if res["bursts_inferred"]:
        lines.append(f"\nbursts inferred ({len(res['bursts_inferred'])}):")
        for b in res["bursts_inferred"]:
            n = "variable length" if b["length"] is None else f"length {b['length']}"
            lines.append(f"  {b['bundle']:14s} {b['direction']:5s} {n}, {b['bit_width']} bits"
                         + (f" in loop '{b['loop']}'" if b["loop"] else "") + _where_loc(b["file"], b["line"]))
    if res["engine_instances"] is not None:
        lines.append(f"\nengine instances: {res['engine_instances']}"
                     + (f" ({', '.join(res['instances'].get(next(iter(res['instances'])), []))})" if res["instances"] else ""))
    if res["resources"]:
        lines.append("\nresources (Vitis vs edgemoe estimate):")
        for k, r in res["resources"].items():
            ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
            lines.append(f"  {k:7s} Vitis {r['vitis']:>9g}  estimate {r['estimate']:>9g}  ratio {ratio}")
    n = res["failures"]
    lines.append(f"\n{n} failure{'s' if n != 1 else ''}" if n else "\nno failures")
    return "\n".join(lines)


def _write_json(path, obj) -> None:
    from edgemoe.io import atomic_path
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=1))


def vitis_check_command(args) -> int:
    res = vitis_check(args.project, run_dir=args.run)
    print(format_result(res))
    if args.json:
        _write_json(args.json, res)
        print(f"wrote {args.json}")
    return EXIT_FAILED if res["failures"] else 0


# ---- edgemoe build ------------------------------------------------------------------------------
def check_build_run(work, project, logs) -> dict:
    """``edgemoe build``'s hook after its HLS step: check the staged run in ``work``, write
    ``logs/vitis_check.json`` and raise :class:`EdgeMoeError` naming every failure."""
    work, logs = Path(work), Path(logs)
    res = vitis_check(project, run_dir=work)
    stage = work.parent
    for key in ("run", "log", "csynth"):   # the staging folder is renamed: keep paths relative to it
        if res[key]:
            res[key] = os.path.relpath(res[key], stage)
    res["relative_to"] = "the build folder (DIR/build, or DIR/build/last_failed when this check failed)"
    _write_json(logs / "vitis_check.json", res)
    fails = [f for f in res["findings"] if f["severity"] == "failure"]
    if fails:
        lines = [f"vitis-check: {len(fails)} failure{'s' if len(fails) > 1 else ''} in the Vitis HLS run "
                 f"(details in logs/vitis_check.json):"]
        lines += ["  " + format_finding(f) for f in fails]
        raise EdgeMoeError("\n".join(lines))
    return dict(check="vitis-check", failures=0, warnings=sum(f["severity"] == "warning" for f in res["findings"]),
                report="logs/vitis_check.json")


__all__ = ["vitis_check", "vitis_check_command", "check_build_run", "find_run", "format_result",
           "RESOURCE_MARGIN"]
