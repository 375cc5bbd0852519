"""The ``instances`` rule of ``edgemoe hls-check``: how many RTL instances Vitis makes of each shared unit.

The synthesis branch of the kernel is compiled by g++ at -O0 without inlining, to assembly: every
function and every template instantiation is a symbol, and every call site a ``call``.  Vitis's view
is rebuilt from it: functions whose body has ``#pragma HLS INLINE`` (not off) are merged into their
callers (their call sites become the caller's), every other function (the top included) is a scope
with its own instances.  A function F gets, in each scope S that calls it, min(call sites of F in S,
the limit of an ALLOCATION pragma for F in S) instances, times the instances of S itself; each
template instantiation (a distinct symbol) counts on its own.  Blind spots: Vitis also inlines small
functions on its own (not modelled: they are counted as scopes), and calls through function
pointers or virtual functions are not seen.
"""
from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

from edgemoe.errors import EdgeMoeError

from .aptypes import compile_cpp
from .hls_rules import allocation_pragmas, directives
from .hls_source import Unit

_TYPE_RE = re.compile(r"^\s*\.type\s+([^,\s]+)\s*,\s*@function")
_LABEL_RE = re.compile(r"^([^\s:#][^\s:]*):")
_CALL_RE = re.compile(r"^\s*(?:call|jmp)\w*\s+([A-Za-z_.$][\w.$@]*)\s*$")


def compile_asm(top: Path, out: Path, include_dirs, syn_flags, defines=()) -> Path:
    """The synthesis branch of ``top`` as -O0 assembly without inlining."""
    flags = ["-S", "-O0", "-fno-inline", "-w"] + [f"-D{d}" for d in defines] + list(syn_flags)
    return compile_cpp(top, out, flags=flags, include_dirs=include_dirs, timeout=900)


def parse_asm(text: str) -> dict:
    """{symbol: [called symbol, ...]} (every call site, in order)."""
    funcs = set()
    for ln in text.splitlines():
        m = _TYPE_RE.match(ln)
        if m:
            funcs.add(m.group(1))
    graph, cur = {}, None
    for ln in text.splitlines():
        m = _LABEL_RE.match(ln)
        if m and m.group(1) in funcs:
            cur = m.group(1)
            graph.setdefault(cur, [])
            continue
        if cur is not None:
            c = _CALL_RE.match(ln)
            if c:
                t = c.group(1).split("@")[0]
                if ln.lstrip().startswith("call") or t in funcs:
                    graph[cur].append(t)
    return graph


def demangle(names) -> dict:
    names = list(names)
    if not names:
        return {}
    try:
        res = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, timeout=120)
        out = res.stdout.split("\n")
    except (OSError, subprocess.TimeoutExpired):
        out = []
    if len(out) < len(names):
        out = names
    return dict(zip(names, out))


def _match_back(s: str, end: int, open_c: str, close_c: str) -> int:
    depth = 0
    for k in range(end, -1, -1):
        if s[k] == close_c:
            depth += 1
        elif s[k] == open_c:
            depth -= 1
            if depth == 0:
                return k
    return 0


def split_symbol(dem: str) -> tuple:
    """(base name, template id) of a demangled function name: ``void f<int>(int)`` -> (f, f<int>)."""
    s = re.sub(r"\s*\[clone [^\]]*\]$", "", dem.strip())
    s = re.sub(r"\s*(const|volatile|&&|&|noexcept)\s*$", "", s)
    if s.endswith(")"):
        s = s[:_match_back(s, len(s) - 1, "(", ")")]
    name = s
    if name.endswith(">") and "operator" not in name:
        name = name[:_match_back(name, len(name) - 1, "<", ">")]
    depth, cut = 0, 0
    for k in range(len(name) - 1, -1, -1):
        c = name[k]
        if c == ">":
            depth += 1
        elif c == "<":
            depth -= 1
        elif depth == 0 and (c == " " or name[k - 1:k + 1] == "::"):
            cut = k + 1
            break
    base = name[cut:]
    tid = s[s.rfind(base, 0, len(name)) if base else 0:]
    return base, tid.replace(" ", "")


def count_instances(unit: Unit, graph: dict, top: str, wanted, root: Path | None = None) -> dict:
    """{name: {"instances": n, "instantiations": [...], "scopes": [...]}} for every wanted name."""
    dem = demangle(graph)
    info = {s: split_symbol(d) for s, d in dem.items()}
    own = {f.name for f in unit.functions()} | {top}
    inline_names = set()
    by_name = {}
    for f in unit.functions():
        by_name.setdefault(f.name, set()).add(f.inline)
    for name, modes in by_name.items():
        if "on" in modes and "off" not in modes:
            inline_names.add(name)
    project = {s for s, (b, _) in info.items() if b in own}
    scope = {s for s in project if info[s][0] not in inline_names}
    # allocation limits per scope function name: {(scope name, instance name or template id): limit}
    limits = {}
    for inst, limit, _pos, fn in allocation_pragmas(unit):
        if fn and limit is not None:
            limits[(fn, inst.replace(" ", ""))] = limit
    for _f, _l, kind, opts, pos in (directives(root) if root else []):
        if kind == "allocation" and len(pos) >= 2 and opts.get("limit", "").isdigit():
            for inst in pos[1:]:
                limits[(pos[0].split("/")[0], inst.replace(" ", ""))] = int(opts["limit"])

    memo = {}

    def eff(sym, stack=()):
        """Call sites of project symbols in sym once inlined functions are merged (Counter)."""
        if sym in memo:
            return memo[sym]
        c = Counter()
        for t in graph.get(sym, ()):
            if t in project:
                c[t] += 1
            if t not in scope and t in graph and t not in stack:   # merged into sym: its calls are sym's
                c.update(eff(t, stack + (sym,)))
        memo[sym] = c
        return c

    tops = [s for s in scope if info[s][0] == top]
    calls = {s: eff(s) for s in scope}
    inst_memo = {}

    def limit(s, t):
        # a plain function's id is its name; a template instantiation's is name<args> (the bare name
        # of a template matches nothing, as in Vitis)
        return limits.get((info[s][0], info[t][1]))

    def instances(t, stack=()):
        if t in inst_memo:
            return inst_memo[t]
        n = 1 if t in tops else 0
        for s in scope:
            k = calls[s].get(t, 0)
            if k and s != t and s not in stack:
                lim = limit(s, t) if t in scope else None
                n += instances(s, stack + (t,)) * (min(k, lim) if lim else k)
        inst_memo[t] = n
        return n

    out = {}
    for name in wanted:
        syms = sorted(s for s in project if info[s][0] == name)
        total, scopes = 0, []
        for t in syms:
            n_t = instances(t)
            total += n_t
            for s in sorted(scope):
                k = calls[s].get(t, 0)
                if k and s != t:
                    lim = limit(s, t) if t in scope else None
                    scopes.append(dict(scope=info[s][0], instantiation=dem[t], calls=k, limit=lim,
                                       scope_instances=instances(s)))
        out[name] = dict(instances=total, instantiations=[dem[s] for s in syms], scopes=scopes,
                         inlined=name in inline_names)
    return out


def symbol_counts(graph: dict) -> dict:
    """{base name: number of distinct symbols} (template instantiations count separately)."""
    c = Counter()
    for d in demangle(graph).values():
        c[split_symbol(d)[0]] += 1
    return dict(c)


def describe(name: str, rec: dict) -> str:
    """One line: why ``name`` has the number of instances it has."""
    n = rec["instances"]
    if not rec["instantiations"]:
        return f"'{name}' does not exist in the synthesis branch (0 instances)"
    parts = []
    for sc in rec["scopes"]:
        if not sc["scope_instances"]:
            continue   # a caller that is itself never instantiated
        short = sc["instantiation"].split("(")[0]
        lim = f", limit {sc['limit']}" if sc["limit"] else ""
        mult = f" x {sc['scope_instances']} instances of the scope" if sc["scope_instances"] != 1 else ""
        parts.append(f"{sc['calls']} call(s) of {short} in {sc['scope']}{lim}{mult}")
    inst = len(rec["instantiations"])
    how = "inlined (each call is a copy)" if rec["inlined"] else f"{inst} instantiation(s)"
    return f"'{name}' has {n} instance(s) ({how}): " + ("; ".join(parts) if parts else "never called from the top")


def run_instances(unit: Unit, top_file: Path, top: str, wanted, include_dirs, syn_flags, workdir: Path,
                  root: Path | None = None) -> tuple:
    """(records by name, symbol counts) from the -O0 build of the synthesis branch."""
    asm = compile_asm(top_file, Path(workdir) / "synthesis_branch.s", include_dirs, syn_flags)
    graph = parse_asm(asm.read_text(errors="replace"))
    asm.unlink()   # megabytes; the graph is all that is needed
    if not graph:
        raise EdgeMoeError(f"no functions found in the assembly of {top_file.name}")
    return count_instances(unit, graph, top, wanted, root), symbol_counts(graph)


__all__ = ["compile_asm", "parse_asm", "split_symbol", "count_instances", "symbol_counts", "describe", "run_instances"]
