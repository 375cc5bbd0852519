"""``edgemoe sim``: run the RTL unit benches (cocotb) on Verilator and/or Icarus and print a table.

Precision: ``--precision w16a32|w8a8|w16a32-fit`` and ``--block N|nominal`` when the parser has them, else
$EDGEMOE_SIM_PRECISION / $EDGEMOE_SIM_BLOCK; default edgemoe.sim.units.DEFAULT_SPEC (w16a32).
``--project DIR`` (a folder written by `edgemoe generate`): the project's spec, design and precision (w8a8
as calibrated on, w16a32-fit as fitted to, the project's model, from its data/manifest.json) instead of the default preset's.

Exit codes: 0 all units ran without mismatches, 1 some unit has mismatches, 2 an error (a missing
simulator, a missing top in --rtl-dir, a bench that hung or failed: reported after the table).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from edgemoe.errors import EdgeMoeError, ToolMissingError
from edgemoe.io import atomic_path

from .runner import check_rtl_dir, get_unit, load_units, resolve_config, run_unit
from .tools import INSTALL_HINTS, SIMULATORS, find_simulators, require_simulator

SUMMARY_KEYS = ("vectors", "mismatches", "cycles", "items_per_cycle", "throughput_cycles", "throughput_items",
                "throughput_workload", "last_handshake", "design_rate", "simulator", "simulator_version", "seconds")
PRECISION_ENV, BLOCK_ENV = "EDGEMOE_SIM_PRECISION", "EDGEMOE_SIM_BLOCK"


def parse_block(value):
    """--block: a block index, or "nominal" (the uncalibrated-offset types, D_* = 0)."""
    if value is None or value == "":
        return None
    if str(value).lower() in ("nominal", "none"):
        return "nominal"
    try:
        return int(value)
    except ValueError:
        raise EdgeMoeError(f"--block must be a block index or 'nominal', not {value!r}") from None


def sim_config(args) -> dict:
    """The simulation config from --project, --precision / --block (or $EDGEMOE_SIM_PRECISION /
    $EDGEMOE_SIM_BLOCK). w8a8 (and w16a32-fit) defaults to block 0's calibrated (fitted) types; with --rtl-dir
    to the nominal types, which are what the Vitis unit tops implement (they call the units with zero fraction-bit offsets).
    With --project the names are the project's (a different --precision is an error) and w8a8's types are
    those calibrated on its model; without, on a seed-0 random model of the preset (cfg["calibrated_on"])."""
    project = getattr(args, "project", None)
    cfg = {} if project else {k: v for k, v in resolve_config(None).items() if k in ("preset", "precision", "design")}
    precision = getattr(args, "precision", None) or os.environ.get(PRECISION_ENV)
    if precision:
        from edgemoe.golden.precision import base_precision
        base_precision(precision)                    # unknown names fail here, with the known ones
        cfg["precision"] = precision
    block = getattr(args, "block", None)
    block = parse_block(block if block is not None else os.environ.get(BLOCK_ENV))
    if block is None and getattr(args, "rtl_dir", None):
        block = "nominal"
    cfg = resolve_config(cfg, project)
    if "block" in cfg and block is not None:     # a precision with per-block types (resolve_config)
        cfg["block"] = None if block == "nominal" else block
    return cfg


def select_units(unit: str) -> dict:
    if unit in (None, "all"):
        units = load_units()
        if not units:
            raise EdgeMoeError("no RTL units are registered (edgemoe.sim.units is missing or its UNITS is empty)")
        return units
    return {unit: get_unit(unit)}


def select_simulators(simulator: str | None) -> dict:
    if simulator:
        return {simulator: require_simulator(simulator)}
    sims = find_simulators()
    if not sims:
        raise ToolMissingError("no HDL simulator found: " + "; ".join(f"{s}: {INSTALL_HINTS[s]}" for s in SIMULATORS))
    return sims


def format_table(rows: list) -> str:
    head = ("unit", "simulator", "vectors", "mismatches", "cycles", "items/cycle", "design rate", "seconds")
    body = []
    for r in rows:
        if "error" in r:
            body.append((r["unit"], r["simulator"], str(r.get("vectors", "")), "FAILED", "-", "-",
                         f"{r.get('design_rate', 0):g}", "-"))
        else:
            body.append((r["unit"], r["simulator"], str(r["vectors"]), str(r["mismatches"]), str(r["cycles"]),
                         f"{float(r['items_per_cycle']):.3f}", f"{float(r['design_rate']):g}",
                         f"{float(r.get('seconds', 0)):.1f}"))
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(b) for b in body])


def sim_document(rows: list, cfg: dict, vectors: int, seed: int, simulators: dict, rtl_dir=None) -> dict:
    """What ``edgemoe sim --json`` writes (schema: edgemoe.codegen.results_schema.SIM, which `edgemoe
    report --sim-json` checks): ``rows`` are :func:`run_unit` results (or {"unit","simulator","error",...}
    for a bench that failed); each unit appears under the first simulator that ran it without error."""
    by_sim: dict = {s: {} for s in simulators}
    for r in rows:
        by_sim.setdefault(r["simulator"], {})[r["unit"]] = {k: r[k] for k in SUMMARY_KEYS + ("error",) if k in r}
    units_out = {}
    for r in rows:
        name = r["unit"]
        if name in units_out:
            continue
        cands = [by_sim[s][name] for s in by_sim if name in by_sim[s] and "error" not in by_sim[s][name]]
        units_out[name] = cands[0] if cands else next(by_sim[s][name] for s in by_sim if name in by_sim[s])
    ok = all("error" not in r and not r.get("mismatches") for r in rows)
    return dict(units=units_out, units_by_simulator=by_sim, config=dict(cfg), vectors=int(vectors), seed=int(seed),
                simulators=dict(simulators), rtl_dir=str(rtl_dir) if rtl_dir else None, ok=ok)


def sim_command(args) -> int:
    if getattr(args, "json", None) and Path(args.json).is_dir():   # before minutes of simulation
        raise EdgeMoeError(f"--json {args.json}: is a folder (give a file name)")
    sims = select_simulators(getattr(args, "simulator", None))
    units = select_units(getattr(args, "unit", "all") or "all")
    vectors = int(getattr(args, "vectors", 10000))
    seed = int(getattr(args, "seed", 0) or 0)
    rtl_dir = getattr(args, "rtl_dir", None)
    rtl = check_rtl_dir(rtl_dir, [u.top for u in units.values()]) if rtl_dir else {}
    cfg = sim_config(args)
    rows, errors = [], []
    for name, unit in units.items():
        for s in sims:
            try:
                r = run_unit(name, s, vectors=vectors, seed=seed, unit=unit, config=cfg,
                             rtl_files=rtl.get(unit.top), build_dir=getattr(args, "build_dir", None))
            except EdgeMoeError as e:
                r = dict(unit=name, simulator=s, vectors=vectors, design_rate=float(unit.design_rate), error=str(e))
                errors.append(str(e))
            r.setdefault("unit", name)
            r.setdefault("simulator", s)
            rows.append(r)
    blk = f" (block {cfg['block'] if cfg['block'] is not None else 'nominal'})" if "block" in cfg else ""
    print(f"preset {cfg['preset']}, precision {cfg['precision']}{blk}, design {cfg['design']}"
          + (f", project {cfg['project']}" if cfg.get("project") else ""))
    if cfg.get("calibrated_on"):
        how = "fitted to" if cfg["precision"] == "w16a32-fit" else "calibrated on"
        print(f"{cfg['precision']} types {how} {cfg['calibrated_on']}")
    print(format_table(rows))
    mismatched = [f"{r['unit']}/{r['simulator']}" for r in rows if r.get("mismatches")]
    if getattr(args, "json", None):
        doc = sim_document(rows, cfg, vectors, seed, {s: i.version for s, i in sims.items()}, rtl_dir)
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(doc, indent=1))
    if errors:
        raise EdgeMoeError("; ".join(errors))
    if mismatched:
        print(f"mismatches in {', '.join(mismatched)}")
        return 1
    return 0


__all__ = ["sim_command", "sim_document", "sim_config", "format_table", "select_units", "select_simulators"]
