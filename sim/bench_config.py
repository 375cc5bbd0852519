"""What an RTL unit bench runs with, and how it reaches the bench process.

The configuration ``{"preset", "precision", "design"[, "block"][, "project"]}`` names a point (a w8a8
project's also carries "calib", its manifest's calibration record, reported in the log and the JSON);
:func:`config_objects` gives its :class:`~edgemoe.spec.ModelSpec`, :class:`Precision` and
:class:`~edgemoe.design.Design`: with ``"project"`` (a folder written by ``edgemoe generate``) those of the
project's data/manifest.json (its spec, whatever it is, and the precision calibrated on its model), else
the preset's spec, the named precision (w8a8 calibrated on the preset's seed-0 random model; the config
says so in "calibrated_on") and the named design.

The objects travel as data: :func:`bench_files` gives the JSON files written into the run folder and the
environment variables naming them (EDGEMOE_CONFIG, EDGEMOE_SPEC, EDGEMOE_PRECISION, EDGEMOE_DESIGN);
the bench reads them back with :func:`edgemoe.sim.benches._util.bench_objects` (no preset looked up,
no second calibration).
"""
from __future__ import annotations

import json
from pathlib import Path

from edgemoe.errors import EdgeMoeError
from edgemoe.spec import precision_base

CONFIG_KEYS = ("preset", "precision", "design", "block")     # what names a build (the cache key's part)
# environment variable -> file in the run folder ("{run}" is replaced by the run folder)
BENCH_FILES = {"EDGEMOE_CONFIG": "config.json", "EDGEMOE_SPEC": "spec.json", "EDGEMOE_PRECISION": "precision.json",
               "EDGEMOE_DESIGN": "design.json"}


def default_spec() -> tuple:
    """(preset, precision, design) that `edgemoe sim` builds the units for (sim/units.py)."""
    from .units import DEFAULT_SPEC
    return tuple(DEFAULT_SPEC)


def project_manifest(project) -> dict:
    """A generated project's data/manifest.json (its "spec", "precision" and "design")."""
    path = Path(project) / "data" / "manifest.json"
    if not path.is_file():
        raise EdgeMoeError(f"--project {project}: no data/manifest.json (give a folder written by `edgemoe generate`)")
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise EdgeMoeError(f"{path}: unreadable ({e})") from None
    missing = [k for k in ("spec", "precision", "design") if not isinstance(m.get(k), dict)]
    if missing:
        raise EdgeMoeError(f"{path}: lacks {', '.join(missing)}")
    return m


def calibrated_on(cfg: dict) -> str | None:
    """What the calibrated (or fitted) precision's types come from (None: a precision without either)."""
    from edgemoe.spec import DERIVED_PRECISIONS
    if precision_base(cfg["precision"]) not in DERIVED_PRECISIONS:
        return None
    if cfg.get("project"):
        rec = cfg.get("calib")
        on = (f"; calibration set {rec['source']}, {rec['images']} images, sha256 {rec['sha256'][:16]}"
              if isinstance(rec, dict) else "")
        return f"the model of project {cfg['project']} (its data/manifest.json{on})"
    return f"a seed-0 random model of preset {cfg['preset']} (no project given)"


def resolve_config(config=None, project=None) -> dict:
    """{"preset","precision","design"} from a dict, a (preset, precision, design) tuple or the default.
    w8a8 also gets "block": whose calibrated types the RTL has (default 0; None: the nominal types) and
    "calibrated_on". ``project`` (or config["project"]): the names come from its manifest (a name given
    in ``config`` that differs from the project's is an error)."""
    if config is None:
        config = {} if project is not None else default_spec()
    if isinstance(config, dict):
        cfg = dict(config)
    else:
        preset, precision, design = config
        cfg = dict(preset=preset, precision=precision, design=design)
    if project is not None:
        cfg["project"] = project
    if cfg.get("project"):
        cfg["project"] = str(Path(cfg["project"]).resolve())
        m = project_manifest(cfg["project"])
        for key, value in (("preset", m["spec"]["name"]), ("precision", m["precision"]["name"]),
                           ("design", m["design"]["name"])):
            if cfg.get(key) not in (None, value):
                raise EdgeMoeError(f"--project {cfg['project']} has {key} {value}, not {cfg[key]}")
            cfg[key] = value
        if precision_base(m["precision"]["name"]) == "w8a8":
            cfg["calib"] = m.get("calib")   # the manifest's calibration record (None: a project from before it)
    else:
        cfg.pop("project", None)
        cfg.pop("calib", None)
    missing = {"preset", "precision", "design"} - set(cfg)
    if missing:
        raise EdgeMoeError(f"simulation config lacks {', '.join(sorted(missing))}")
    from edgemoe.spec import DERIVED_PRECISIONS
    if precision_base(cfg["precision"]) in DERIVED_PRECISIONS:    # per-block types (w8a8 calibrated, w16a32-fit fitted)
        cfg.setdefault("block", 0)
        cfg["calibrated_on"] = calibrated_on(cfg)
    else:
        cfg.pop("block", None)      # only calibrated precisions have per-block types
        cfg.pop("calibrated_on", None)
        cfg.pop("calib", None)
    return cfg


def sim_precision(cfg: dict, spec, prec=None):
    """The Precision the RTL is rendered with and the bench's golden uses (no per-tensor overrides):
    ``prec`` (a project's calibrated precision) or the named one, w8a8 calibrated on the preset's seed-0
    model; then block cfg["block"]'s types are folded in."""
    from edgemoe.golden.precision import base_precision
    from .rtl import block_precision
    from edgemoe.spec import DERIVED_PRECISIONS
    if precision_base(cfg["precision"]) not in DERIVED_PRECISIONS:
        return prec if prec is not None else base_precision(cfg["precision"])
    if prec is None:
        from edgemoe.golden.calibrate import precision_for
        from edgemoe.golden.model import build_model
        prec = precision_for(cfg["precision"], spec, build_model(spec, seed=0))
    return block_precision(spec, prec, cfg.get("block", 0))


def config_objects(cfg: dict) -> tuple:
    """(ModelSpec, Precision, Design) for RtlUnit.render: a project's (cfg["project"]) or the named ones."""
    from edgemoe.design import Design, get_design
    from edgemoe.spec import ModelSpec, get_preset
    if cfg.get("project"):
        from edgemoe.golden.precision import Precision
        m = project_manifest(cfg["project"])
        spec = ModelSpec.from_dict(m["spec"])
        return (spec, sim_precision(cfg, spec, Precision.from_dict(m["precision"])),
                Design.from_dict(m["design"], where=f"{cfg['project']}: design"))
    spec = get_preset(cfg["preset"])
    return spec, sim_precision(cfg, spec), get_design(cfg["design"])


def build_config(cfg: dict) -> dict:
    """The part of ``cfg`` that names a build (not where it came from)."""
    return {k: cfg[k] for k in CONFIG_KEYS if k in cfg}


def bench_files(cfg: dict, spec, prec, design) -> tuple:
    """(environment, files) that carry the config and the objects to the bench: {variable: "{run}/<file>"},
    {file name: JSON text} (written into the run folder)."""
    texts = {"EDGEMOE_CONFIG": json.dumps(cfg), "EDGEMOE_SPEC": spec.to_json(), "EDGEMOE_PRECISION": prec.to_json(),
             "EDGEMOE_DESIGN": json.dumps(design.to_dict(), sort_keys=True)}
    return ({var: "{run}/" + f for var, f in BENCH_FILES.items()},
            {BENCH_FILES[var]: text for var, text in texts.items()})


__all__ = ["resolve_config", "config_objects", "sim_precision", "default_spec", "project_manifest", "calibrated_on",
           "bench_files", "build_config", "BENCH_FILES", "CONFIG_KEYS"]
