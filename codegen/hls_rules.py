"""Pragma and directive rules of ``edgemoe hls-check`` (lexical, on the preprocessed kernel).

  allocation  ``#pragma HLS allocation ... instances=F`` (and the allocation / inline directives of
              hls_config.cfg and run_hls.tcl) must name a function of the kernel sources that is not
              a template: a template is named by its full instantiation (``F<...>``), the bare name
              matches nothing.  ``#pragma HLS INLINE off`` in a template with several instantiations
              makes one instance per instantiation.
  dependence  ``#pragma HLS DEPENDENCE ... false`` (or the directive): it tells the scheduler a
              dependence does not exist, and the hardware is wrong where it does.
  probe       every pipelined loop starts with ``EM_ITER("<its C label>", iv)`` so that the
              instrumented simulation sees its iterations.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

from .hls_source import Unit
from .hls_syntax import skip_space
from .synth_check import Violation

_PRAGMA_RE = re.compile(r"^[ \t]*#[ \t]*pragma[ \t]+HLS[ \t]+(\w+)([^\n]*)", re.I | re.M)
_EM_ITER_RE = re.compile(r'em_iter_scope\s+em_iter_scope_obj_\s*\(\s*\(\s*"')


def pragmas(unit: Unit, directive: str) -> list:
    """[(args, position)] of every ``#pragma HLS <directive>`` of the unit."""
    return [(m.group(2), m.start()) for m in _PRAGMA_RE.finditer(unit.code) if m.group(1).lower() == directive]


def allocation_pragmas(unit: Unit) -> list:
    """[(instance name, limit, position, enclosing function name)] of the function allocation pragmas."""
    out = []
    for args, pos in pragmas(unit, "allocation"):
        if re.search(r"\boperation\b", args, re.I):
            continue
        m = re.search(r"\binstances\s*=\s*([^\s]+(?:<[^>]*>)?)", args, re.I)
        if not m:
            continue
        lim = re.search(r"\blimit\s*=\s*(\d+)", args, re.I)
        fn = unit.function_at(pos)
        out.append((m.group(1), int(lim.group(1)) if lim else None, pos, fn.name if fn else None))
    return out


def _function_kinds(unit: Unit) -> dict:
    kinds = {}
    for f in unit.functions():
        kinds.setdefault(f.name, set()).add("template" if f.template else "plain")
    return kinds


def _name_problem(name: str, kinds: dict) -> str | None:
    base = name.split("<")[0].strip()
    base = base.split("::")[-1]
    if base not in kinds:
        return f"names '{name}', which is not a function of the kernel sources"
    if "<" not in name and kinds[base] == {"template"}:
        return (f"names the function template '{name}': a template is named by its full instantiation "
                f"('{name}<...>'), so the bare name matches nothing")
    return None


def directives(root: Path, files=("hls_config.cfg", "run_hls.tcl")) -> list:
    """[(file, line, kind, options, positional)] of the allocation / inline / dependence directives."""
    out = []
    for name in files:
        p = Path(root) / name
        if not p.is_file():
            continue
        for i, ln in enumerate(p.read_text().splitlines(), 1):
            s = ln.split("#")[0].strip()
            m = re.match(r"syn\.directive\.(allocation|inline|dependence)\s*=\s*(.*)$", s) or \
                re.match(r"set_directive_(allocation|inline|dependence)\b(.*)$", s)
            if not m:
                continue
            try:
                toks = shlex.split(m.group(2))
            except ValueError:
                toks = m.group(2).split()
            opts, pos, k = {}, [], 0
            while k < len(toks):
                t = toks[k]
                if t.startswith("-") and len(t) > 1:
                    val = toks[k + 1] if k + 1 < len(toks) and not toks[k + 1].startswith("-") and \
                        t[1:] in ("limit", "type", "dependent", "variable", "class", "direction", "distance") else ""
                    opts[t[1:].lower()] = val
                    k += 2 if val else 1
                    continue
                if "=" in t:
                    a, b = t.split("=", 1)
                    opts[a.lower()] = b
                elif t.lower() in ("off", "recursive", "inter", "intra", "raw", "war", "waw"):
                    opts[t.lower()] = ""
                else:
                    pos.append(t)
                k += 1
            out.append((name, i, m.group(1), opts, pos))
    return out


def check_allocation(unit: Unit, root: Path | None = None, symbol_counts: dict | None = None) -> list:
    kinds = _function_kinds(unit)
    out = []
    for name, _limit, pos, _fn in allocation_pragmas(unit):
        problem = _name_problem(name, kinds)
        if problem:
            f, line = unit.where(pos)
            out.append(Violation(f, line, "allocation", f"#pragma HLS allocation {problem}"))
    for fname, line, kind, opts, positional in (directives(root) if root else []):
        if kind == "dependence":
            continue
        names = [positional[0].split("/")[0]] if positional else []
        if kind == "allocation" and opts.get("type", "function") == "function":
            names += positional[1:]
        for n in names:
            if "$" in n or "[" in n:
                continue
            problem = _name_problem(n, kinds)
            if problem:
                out.append(Violation(fname, line, "allocation", f"{kind} directive {problem}"))
    # INLINE off in a template: every instantiation is a module of its own
    counts = symbol_counts or {}
    seen = set()
    for f in unit.functions():
        if f.template and f.inline == "off" and (f.name, f.inline_pos) not in seen:
            seen.add((f.name, f.inline_pos))
            n = counts.get(f.name, 0)
            if n > 1:
                file, line = unit.where(f.inline_pos)
                out.append(Violation(file, line, "allocation",
                                     f"'#pragma HLS INLINE off' in the function template '{f.name}', which has {n} "
                                     f"instantiations: each one is an instance of its own and none can be shared"))
    return out


def check_dependence(unit: Unit, root: Path | None = None) -> list:
    out = []
    for args, pos in pragmas(unit, "dependence"):
        if re.search(r"\bfalse\b", args, re.I):
            f, line = unit.where(pos)
            out.append(Violation(f, line, "dependence",
                                 f"'#pragma HLS DEPENDENCE{args.rstrip()}' declares a dependence false: if it exists, "
                                 "the hardware computes wrongly (csim cannot show it); use a proven distance or "
                                 "buffers that make the dependence impossible"))
    for fname, line, kind, opts, _ in (directives(root) if root else []):
        if kind == "dependence" and opts.get("dependent", "").lower() == "false":
            out.append(Violation(fname, line, "dependence", "dependence directive with dependent=false"))
    return out


def check_probe_labels(unit: Unit) -> tuple:
    """(violations, labels of the pipelined loops): on the unit preprocessed with EDGEMOE_PROBE."""
    out, labels = [], []
    for lp in unit.loops():
        if not lp.pipelined:
            continue
        f, line = unit.where(lp.pos)
        if not lp.label:
            out.append(Violation(f, line, "probe", "pipelined loop without a C label (reports and EM_ITER name "
                                 "loops by label)"))
            continue
        labels.append(lp.label)
        body = unit.code
        j = skip_space(body, lp.body)
        if j < len(body) and body[j] == "{":
            j = skip_space(body, j + 1)
        m = _EM_ITER_RE.match(body, j)
        if m:
            got = unit.text[m.end():unit.text.find('"', m.end())]
            if got != lp.label:
                out.append(Violation(f, line, "probe", f"loop {lp.label} starts with EM_ITER(\"{got}\", ...): the "
                                     "label string must be the loop's C label"))
            continue
        anywhere = _EM_ITER_RE.search(body, lp.body, lp.end)
        what = "its EM_ITER is not the first statement of the body" if anywhere else \
            f"does not start with EM_ITER(\"{lp.label}\", iv)"
        out.append(Violation(f, line, "probe", f"pipelined loop {lp.label} {what}: the instrumented simulation "
                             "cannot see its iterations"))
    return out, labels


__all__ = ["pragmas", "allocation_pragmas", "directives", "check_allocation", "check_dependence", "check_probe_labels"]
