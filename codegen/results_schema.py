"""The JSON results `edgemoe report` reads, each checked against the schema of the command that writes it.

* ``SIM``: ``edgemoe sim --json J`` (sim/cli_sim.py :func:`sim_document`), the RTL rung;
* ``BOARD``: ``edgemoe-host run PKG --json J`` (host/cli.py), the board rung; where it ran
  (``"target": "emulator" | "board"``) and the package's model identity are part of it;
* ``CSIM``: ``edgemoe csim PRJ --json J`` (codegen/csim.py :func:`run_csim`), the csim rung.

The schemas are plain Python (no dependency): required keys, types, value ranges; keys a writer adds
later are free to appear. :func:`load_results` reads a file and raises one :class:`EdgeMoeError` line
naming the file, the key and what was expected, e.g. ``--sim-json r.json: not the output of `edgemoe
sim --json` (missing key 'units')``. :func:`check_identity` and :func:`check_precision` then refuse
results of another model.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from edgemoe.errors import EdgeMoeError

IDENTITY_KEYS = ("model", "precision", "design", "board", "config_hash", "weights_sha256")
TARGETS = ("emulator", "board")


class _Mismatch(Exception):
    def __init__(self, msg: str, key: str | None = None):
        super().__init__(msg)
        self.key = key   # the key whose own value is wrong (None: a key inside it, or a missing one)


def _got(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "an object" if v else "an empty object"
    if isinstance(v, list):
        return "a list" if v else "an empty list"
    s = json.dumps(v) if isinstance(v, str) else repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


class T:
    """One value's schema. kind: int | num | str | bool | obj | map | list | any; ``null``: None is
    accepted too; int/num: ``lo``/``hi`` bounds (``finite`` False lets num be +-inf); str: ``choices``;
    obj: ``fields`` {key: T} (``optional`` keys may be absent); map: ``values`` T for every entry
    (``nonempty``: at least one); list: ``items`` T for every item."""

    def __init__(self, kind, *, null=False, lo=None, hi=None, finite=True, choices=None, fields=None,
                 optional=(), values=None, items=None, nonempty=False, also=None):
        self.kind, self.null, self.lo, self.hi, self.finite = kind, null, lo, hi, finite
        self.choices, self.fields, self.optional = choices, fields or {}, set(optional)
        self.values, self.items, self.nonempty = values, items, nonempty
        self.also = also   # another T a value may match instead (e.g. int or list of ints)

    def expected(self) -> str:
        k = self.kind
        if k == "int" or k == "num":
            s = "an integer" if k == "int" else "a number"
            if self.lo is not None and self.hi is not None:
                s += f" in [{self.lo:g}, {self.hi:g}]"
            elif self.lo is not None:
                s += f" >= {self.lo:g}"
            elif self.hi is not None:
                s += f" <= {self.hi:g}"
        elif k == "str":
            s = ("one of " + ", ".join(json.dumps(c) for c in self.choices)) if self.choices else "a string"
        elif k == "bool":
            s = "true or false"
        elif k == "obj":
            req = [f for f in self.fields if f not in self.optional]
            s = "an object" + (f" with key(s) {', '.join(repr(f) for f in req)}" if req else "")
        elif k == "map":
            s = "an object of named entries" + (" (at least one)" if self.nonempty else "")
        elif k == "list":
            s = "a non-empty list" if self.nonempty else "a list"
        else:
            s = "a value"
        if self.also is not None:
            s += " or " + self.also.expected()
        return s + (" or null" if self.null else "")

    def check(self, v, key: str) -> None:
        try:
            self._check(v, key)
        except _Mismatch:
            if self.also is None:
                raise
            try:
                self.also.check(v, key)
            except _Mismatch as e:
                if e.key == key:   # the value fits neither form: name both
                    self._fail(v, key)
                raise

    def _fail(self, v, key):
        where = f"key '{key}' is {_got(v)}" if key else f"it holds {_got(v)}"
        raise _Mismatch(f"{where}; expected {self.expected()}", key)

    def _check(self, v, key: str) -> None:
        if v is None:
            if self.null:
                return
            self._fail(v, key)
        k = self.kind
        if k == "any":
            return
        if k in ("int", "num"):
            ok = isinstance(v, int) and not isinstance(v, bool) if k == "int" else \
                isinstance(v, (int, float)) and not isinstance(v, bool)
            if not ok or (k == "num" and (math.isnan(v) or (self.finite and math.isinf(v)))):
                self._fail(v, key)
            if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
                self._fail(v, key)
        elif k == "str":
            if not isinstance(v, str) or (self.choices and v not in self.choices):
                self._fail(v, key)
        elif k == "bool":
            if not isinstance(v, bool):
                self._fail(v, key)
        elif k == "obj":
            if not isinstance(v, dict):
                self._fail(v, key)
            for f, sub in self.fields.items():
                sub_key = f"{key}.{f}" if key else f
                if f not in v:
                    if f in self.optional:
                        continue
                    raise _Mismatch(f"missing key '{sub_key}'")
                sub.check(v[f], sub_key)
        elif k == "map":
            if not isinstance(v, dict) or (self.nonempty and not v):
                self._fail(v, key)
            for name, item in v.items():
                self.values.check(item, f"{key}.{name}" if key else str(name))
        elif k == "list":
            if not isinstance(v, list) or (self.nonempty and not v):
                self._fail(v, key)
            if self.items is not None:
                for i, item in enumerate(v):
                    self.items.check(item, f"{key}[{i}]")


def _int(lo=0, **kw):
    return T("int", lo=lo, **kw)


def _num(lo=None, **kw):
    return T("num", lo=lo, **kw)


_STR = T("str")
_NAMES = T("list", items=_STR)

# ---- `edgemoe sim --json` (sim/cli_sim.py sim_document) -------------------------------------------
_SIM_UNIT_OK = T("obj", fields=dict(vectors=_int(), mismatches=_int(), cycles=_int(null=True),
                                   items_per_cycle=_num(0, null=True), design_rate=_num(0, null=True),
                                   simulator=_STR),
                 optional=("cycles", "items_per_cycle", "design_rate", "simulator"))
# a unit whose bench failed records the error instead of its counts
_SIM_UNIT = T("obj", fields=dict(error=_STR, vectors=_int(), design_rate=_num(0, null=True), simulator=_STR),
              optional=("vectors", "design_rate", "simulator"), also=_SIM_UNIT_OK)
SIM = T("obj", fields=dict(
    units=T("map", values=_SIM_UNIT, nonempty=True),
    units_by_simulator=T("map", values=T("map", values=_SIM_UNIT)),
    config=T("obj", fields=dict(preset=_STR, precision=_STR, design=_STR, block=_int(null=True)),
             optional=("block",)),
    vectors=_int(1), seed=T("int"), simulators=T("map", values=T("str", null=True), nonempty=True),
    rtl_dir=T("str", null=True), ok=T("bool")))

# ---- `edgemoe-host run PKG --json` (host/cli.py cmd_run) ------------------------------------------
IDENTITY = T("obj", fields=dict(model=_STR, precision=_STR, design=_STR, board=_STR, config_hash=_STR,
                                weights_sha256=_STR),
             optional=("board", "config_hash", "weights_sha256"))
_BOARD_TASK = T("obj", fields=dict(
    task=_int(), name=_STR, frames=_int(1), mismatches=_int(), mismatched_values=_int(),
    max_abs_error=_num(0, finite=False), latency_ms=_num(0), energy_mj_per_frame=_num(0, null=True),
    head_output=T("list", items=_int(), null=True), head_ms=_num(0, null=True)),
    optional=("mismatched_values", "max_abs_error", "energy_mj_per_frame", "head_output", "head_ms"))
BOARD = T("obj", fields=dict(
    package=_STR, frames=_int(1), mismatches=_int(), latency_ms=_num(0), energy_mj_per_frame=_num(0, null=True),
    task=_int(also=T("list", items=_int(), nonempty=True)), tasks=T("list", items=_BOARD_TASK, nonempty=True),
    notes=_NAMES, ok=T("bool"), target=T("str", choices=TARGETS), device=_STR, identity=IDENTITY),
    optional=("device",))

# ---- `edgemoe csim PRJ --json` (codegen/csim.py run_csim) -----------------------------------------
_CSIM_TAP = T("obj", fields=dict(id=_int(null=True), name=_STR, shape=T("list", items=_int()), mismatches=_int(),
                                 max_raw_diff=_int()))
# the fixed golden's error against the float golden per stage tap (golden/stage_error.py json_rows)
_SHARE = T("num", lo=0, hi=1)
_CSIM_STAGE = T("obj", fields=dict(stage=_STR, cosine=_num(-1.000001, hi=1.000001), max_err=_num(0), max_err_rel=_num(0),
                                   saturated=_SHARE, zero=_SHARE, type=_STR, values=_int(), casts_out=_SHARE,
                                   routes_differ=_SHARE, params_clamped=_int()),
                optional=("type", "values", "casts_out", "routes_differ", "params_clamped"))
CSIM = T("obj", fields=dict(
    project=_STR, model=_STR, precision=_STR, task=_int(), input=_STR, images=_int(1), batch=_int(1),
    taps_compared=_int(1), mismatches=_int(), cosine_vs_float=_num(-1.000001, hi=1.000001),
    max_abs_err_vs_float=_num(0), seconds=_num(0), compile_seconds=_num(0, null=True),
    taps=T("list", items=_CSIM_TAP, nonempty=True),
    range=T("obj", fields=dict(out_of_range=_int(), summary=_STR), optional=("summary",)),
    stages=T("list", items=_CSIM_STAGE)),
    optional=("images", "batch", "compile_seconds", "range", "stages"))

WRITERS = {"sim": ("--sim-json", "edgemoe sim --json", SIM),
           "board": ("--board-json", "edgemoe-host run PKG --json", BOARD),
           "csim": ("--csim-json", "edgemoe csim DIR --json", CSIM)}


def check_results(doc, kind: str, path, option: str | None = None) -> dict:
    """``doc`` if it is what the writer of ``kind`` ("sim" | "board" | "csim") writes, else one line."""
    opt, writer, schema = WRITERS[kind]
    try:
        schema.check(doc, "")
    except _Mismatch as e:
        raise EdgeMoeError(f"{option or opt} {path}: not the output of `{writer}` ({e})") from None
    if kind == "board" and doc["mismatches"] > doc["frames"]:
        raise EdgeMoeError(f"{option or opt} {path}: not the output of `{writer}` (key 'mismatches' is "
                           f"{doc['mismatches']}; expected at most 'frames', {doc['frames']})")
    return doc


def load_results(path, kind: str, option: str | None = None) -> dict:
    """The JSON file ``path`` checked by :func:`check_results`; unreadable or not JSON: one line."""
    opt = option or WRITERS[kind][0]
    p = Path(path)
    if not p.is_file():
        raise EdgeMoeError(f"{opt} {p}: not found" + (" (it is a folder)" if p.is_dir() else ""))
    try:
        doc = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise EdgeMoeError(f"{opt} {p}: not readable JSON ({e})") from None
    return check_results(doc, kind, p, opt)


def project_identity(manifest: dict) -> dict:
    """A project's identity: data/manifest.json "identity", else what its spec / precision / design /
    board entries name (projects generated before the identity was recorded)."""
    ident = manifest.get("identity")
    if isinstance(ident, dict) and ident:
        return {k: ident[k] for k in IDENTITY_KEYS if ident.get(k) is not None}
    out = dict(model=manifest.get("spec", {}).get("name"), precision=manifest.get("precision", {}).get("name"),
               design=manifest.get("design", {}).get("name"), board=manifest.get("board", {}).get("name"))
    return {k: v for k, v in out.items() if v is not None}


def describe(ident: dict) -> str:
    s = " ".join(str(ident.get(k, "?")) for k in ("model", "precision", "design"))
    return s + (f" on {ident['board']}" if ident.get("board") else "")


def check_identity(theirs: dict, ours: dict, path, option: str = "--board-json") -> None:
    """Refuse results whose model identity differs from the project's, in one line naming both.
    Keys either side lacks (older packages or projects) are not compared; model, precision and
    design always are (the schema requires them)."""
    diff = [k for k in IDENTITY_KEYS if theirs.get(k) is not None and ours.get(k) is not None
            and str(theirs[k]) != str(ours[k])]
    if not diff:
        return

    def short(v):
        v = str(v)
        return v[:12] + "..." if len(v) > 16 else v
    keys = "; ".join(f"{k} {short(theirs[k])!r}, this project's {short(ours[k])!r}" for k in diff)
    raise EdgeMoeError(f"{option} {path}: results of another model ({describe(theirs)}), not of this project "
                       f"({describe(ours)}): {keys}")


def check_precision(recorded, ours: str, path, option: str) -> None:
    """Refuse results recorded at another precision than the project's (when they record one)."""
    if recorded is not None and str(recorded) != str(ours):
        raise EdgeMoeError(f"{option} {path}: results at precision {recorded}, but this project is {ours} "
                           f"(run them again at {ours})")


__all__ = ["SIM", "BOARD", "CSIM", "IDENTITY", "TARGETS", "check_results", "load_results", "project_identity",
           "check_identity", "check_precision", "describe"]
