"""Open resource estimate of the RTL units: Yosys ``synth_xilinx -family xcup -noiopad; stat``.

``estimate_unit(name, spec, prec, design)`` -> {"lut", "ff", "dsp", "bram", "carry", "lutram"} from
the cell counts of the synthesised netlist (LUT1..6; FD*; DSP48E2; RAMB36E2 = 1, RAMB18E2 = 0.5;
CARRY8; distributed-RAM cells), ``synth_estimate(...)`` tabulates every unit.  Yosys is not Vivado:
the numbers are an estimate (no timing-driven optimisation, no retiming), good for comparisons.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from edgemoe.errors import EdgeMoeError

FIELDS = ("lut", "ff", "dsp", "bram", "carry")
INSTALL_HINT = "yosys not found: install it with `apt-get install yosys` (Yosys 0.23 or newer)"


def require_yosys() -> str:
    exe = shutil.which("yosys")
    if not exe:
        raise EdgeMoeError(INSTALL_HINT)
    return exe


def _classify(cells: dict) -> dict:
    out = dict(lut=0, ff=0, dsp=0, bram=0.0, carry=0, lutram=0)
    for cell, n in cells.items():
        c = cell.lstrip("\\").upper()
        if re.fullmatch(r"LUT[1-6]", c):
            out["lut"] += n
        elif re.fullmatch(r"FD[RSCP]E(_1)?", c) or c in ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE"):
            out["ff"] += n
        elif c.startswith("DSP48"):
            out["dsp"] += n
        elif c.startswith("RAMB36"):
            out["bram"] += n
        elif c.startswith("RAMB18"):
            out["bram"] += 0.5 * n
        elif c.startswith("CARRY"):
            out["carry"] += n
        elif c.startswith("RAM") or c.startswith("SRL"):
            out["lutram"] += n
    if float(out["bram"]).is_integer():
        out["bram"] = int(out["bram"])
    return out


def estimate_files(files, top: str, timeout: float = 1800) -> dict:
    exe = require_yosys()
    reads = "; ".join(f"read_verilog {f}" for f in files)
    with tempfile.TemporaryDirectory(prefix="edgemoe_yosys_") as tmp:
        out = Path(tmp) / "stat.json"
        script = f"{reads}; synth_xilinx -family xcup -noiopad -flatten -top {top}; tee -q -o {out} stat -json"
        r = subprocess.run([exe, "-q", "-p", script], capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise EdgeMoeError(f"yosys failed on {top}: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        text = out.read_text() if out.is_file() else ""
    try:
        stat = json.loads(text[text.find("{"):])
    except (ValueError, json.JSONDecodeError):
        raise EdgeMoeError(f"could not read yosys' stat of {top}: {text[:200]!r} {r.stderr[-300:]!r}") from None
    mods = stat.get("modules", {})
    design = stat.get("design") or mods.get(f"\\{top}") or next(iter(mods.values()), {})
    return _classify(design.get("num_cells_by_type", {}))


def estimate_unit(name: str, spec, prec, design, work_dir=None) -> dict:
    from .units import UNITS
    if name not in UNITS:
        raise EdgeMoeError(f"unknown RTL unit {name!r} (known: {', '.join(UNITS)})")
    unit = UNITS[name]
    with tempfile.TemporaryDirectory(prefix="edgemoe_synth_") as tmp:
        out = Path(work_dir) if work_dir else Path(tmp)
        files = unit.render(spec, prec, design, out / name)
        return estimate_files(files, unit.top)


def synth_estimate(units, spec, prec, design) -> dict:
    return {u: estimate_unit(u, spec, prec, design) for u in units}


def format_table(res: dict) -> str:
    rows = [("unit", "LUT", "FF", "DSP48E2", "BRAM36", "CARRY8", "LUTRAM")]
    for u, r in res.items():
        rows.append((u, str(r["lut"]), str(r["ff"]), str(r["dsp"]), str(r["bram"]), str(r["carry"]),
                     str(r.get("lutram", 0))))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(r)) for r in rows]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)


def synth_estimate_command(args) -> int:
    from edgemoe.design import get_design
    from edgemoe.golden.precision import base_precision
    from edgemoe.spec import get_preset

    from .units import DEFAULT_SPEC, UNITS
    require_yosys()
    names = sorted(UNITS) if args.unit in (None, "all") else [args.unit]
    for n in names:
        if n not in UNITS:
            raise EdgeMoeError(f"unknown RTL unit {n!r} (known: {', '.join(sorted(UNITS))}, all)")
    spec = get_preset(args.preset or DEFAULT_SPEC[0])
    prec = base_precision(args.precision or DEFAULT_SPEC[1])
    design = get_design(args.design or DEFAULT_SPEC[2])
    res = synth_estimate(names, spec, prec, design)
    print(f"Yosys synth_xilinx -family xcup estimate: preset {spec.name}, precision {prec.name}, design {design.name}")
    print(format_table(res))
    if args.json:
        Path(args.json).write_text(json.dumps({"config": dict(preset=spec.name, precision=prec.name,
                                                              design=design.name),
                                               "units": {u: {k: r[k] for k in FIELDS} for u, r in res.items()}},
                                              indent=1))
    return 0


__all__ = ["estimate_unit", "estimate_files", "synth_estimate", "format_table", "synth_estimate_command",
           "FIELDS", "INSTALL_HINT"]
