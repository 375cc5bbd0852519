"""The ``maxi`` rule of ``edgemoe hls-check``: m_axi accesses inside pipelined loops must burst.

Vitis infers a burst only for accesses in a loop that are unconditional, indexed from the loop
variable with stride 1 in increasing order, and the only access to their port in the loop.  For
every pipelined loop, every m_axi access in its body (``p[e]``, ``axi_rd(p, e)``, ``axi_wr(p, e, v)``
with p an ``axi_word_t *``), including those of the functions it calls with an m_axi argument (their
parameters bound to the call's arguments, as inlining does), is checked for:
  - a condition: inside an if / else / switch branch or after ?: && || (constant conditions fold);
  - its index: the loop-body locals are substituted back to the loop variable, then the index is
    evaluated at several iterations: it must advance by exactly one word per iteration, and must not
    use a variable advanced by hand in the loop (``k++`` / ``k = 0``) or go through an array or call;
  - a second access to the same port in the iteration (or one inside an unrolled inner loop).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .hls_expr import index_stride, substitute
from .hls_source import Unit
from .hls_syntax import Function, conditional_regions, in_expression_branch, scan_to, split_args, statement_start
from .synth_check import Violation, _match_paren

MAX_DEPTH = 6
_DECL_ASSIGN_RE = re.compile(r"(?<![\w.>:])([A-Za-z_]\w*)\s*=(?!=)")
_MOD_RE = re.compile(r"(?<![\w.>])([A-Za-z_]\w*)\s*(?:\+\+|--|(?:[+\-*/%&|^]|<<|>>)=)|(?:\+\+|--)\s*([A-Za-z_]\w*)")
_CALL_RE = re.compile(r"\b([A-Za-z_]\w*)\s*(?:<[^;(){}]*>)?\s*\(")
_AXI_RD_RE = re.compile(r"\baxi_(rd|wr)\s*(?:<[^;(){}]*>)?\s*\(")
_PTR_RE = re.compile(r"^\s*\(*\s*([A-Za-z_]\w*)\s*\)*\s*(?:([+-])\s*(.+?))?\s*$", re.S)
_TYPE_END = re.compile(r"[\w*&>]$")


def is_axi_type(t: str) -> bool:
    return "axi_word_t" in t and "*" in t


@dataclass
class Scope:
    fn: Function
    decls: dict = field(default_factory=dict)    # name -> [(pos, init expr)]
    mods: dict = field(default_factory=dict)     # name -> [pos] (assignments, ++, --, op=)
    axi: dict = field(default_factory=dict)      # axi-typed name -> alias init (None for a parameter)


def build_scope(code: str, fn: Function) -> Scope:
    sc = Scope(fn)
    a, b = fn.open + 1, fn.end - 1
    for _, name in fn.params:
        if name:
            sc.decls.setdefault(name, []).append((fn.pos, None))
    for typ, name in fn.params:
        if name and is_axi_type(typ):
            sc.axi[name] = None
    for m in _DECL_ASSIGN_RE.finditer(code, a, b):
        name, p = m.group(1), m.start()
        before = code[max(a, p - 60):p].rstrip()
        prev_word = re.search(r"(\w+)$", before)
        c = before[-1:] if before else ""
        if c and _TYPE_END.search(c) and not (prev_word and prev_word.group(1) in ("return", "else", "do", "case")):
            decl = True
        elif c == ",":
            head = code[statement_start(code, p, a):p]
            decl = bool(re.match(r"\s*(?:const\s+|static\s+)*[A-Za-z_][\w:<>, ]*[\s*&]+[A-Za-z_]\w*\s*=", head))
        else:
            decl = False
        init_end = scan_to(code, m.end(), b, ",;")
        if decl:
            sc.decls.setdefault(name, []).append((p, code[m.end():init_end].strip()))
            typ = code[statement_start(code, p, a):p]
            if "axi_word_t" in typ and "*" in typ or re.search(r"\bauto\b", typ):
                sc.axi[name] = code[m.end():init_end].strip()
        else:
            sc.mods.setdefault(name, []).append(p)
    for m in _MOD_RE.finditer(code, a, b):
        sc.mods.setdefault(m.group(1) or m.group(2), []).append(m.start())
    # an 'auto' alias only counts when it is initialised from an m_axi pointer
    for name, init in list(sc.axi.items()):
        if init is not None:
            pm = _PTR_RE.match(init)
            if not pm or pm.group(1) not in sc.axi:
                del sc.axi[name]
    return sc


@dataclass
class Access:
    port: str           # the pipelined loop's function's m_axi name
    shown: str          # the access as written
    index: str          # in the loop's terms
    cond: bool
    multiple: bool
    site: int           # position reported (in the loop body)
    pos: int            # the access itself
    via: str = ""       # the called function it sits in


def _split_ptr(expr: str):
    m = _PTR_RE.match(expr)
    if not m:
        return None, None
    off = "0" if not m.group(2) else (m.group(3) if m.group(2) == "+" else f"-({m.group(3)})")
    return m.group(1), off


class _Walker:
    def __init__(self, unit: Unit):
        self.unit = unit
        self.code = unit.code
        self.by_name = {}
        for f in unit.functions():
            self.by_name.setdefault(f.name, []).append(f)
        self.scopes = {}

    def scope(self, fn: Function) -> Scope:
        if fn.pos not in self.scopes:
            self.scopes[fn.pos] = build_scope(self.code, fn)
        return self.scopes[fn.pos]

    def walk(self, fn, start, end, subst, params, axi_env, cond, mult, site, depth, out, advanced, stack):
        """Accesses of code[start:end] (in fn) into ``out``; ``subst``: fn's locals, ``params``: fn's
        parameters (already in the loop's terms), ``axi_env``: fn name -> (port, offset)."""
        code = self.code
        regions = conditional_regions(code, start, end)
        nested = [(lp.pos, lp.end) for lp in self.unit.loops() if start <= lp.pos < end]

        def state(pos):
            if any(a <= pos < b and s == "dead" for a, b, s in regions):
                return None
            c = cond or any(a <= pos < b and s == "cond" for a, b, s in regions) or \
                in_expression_branch(code, statement_start(code, pos, start), pos)
            return c, mult or any(a <= pos < b for a, b in nested)

        def resolve(text):
            return substitute(substitute(text, subst), params, rounds=1)

        def port_of(ptr_text):
            base, off = _split_ptr(ptr_text)
            if base is None or base not in axi_env:
                return None, None
            port, off0 = axi_env[base]
            return port, f"({off0}) + ({resolve(off)})"

        def record(pos, ptr_text, idx_text, shown):
            st = state(pos)
            if st is None:
                return
            port, off = port_of(ptr_text)
            if port is None:
                return
            out.append(Access(port, shown, f"{off} + ({resolve(idx_text)})", st[0], st[1],
                              pos if site is None else site, pos, fn.name if depth else ""))

        for m in _AXI_RD_RE.finditer(code, start, end):
            close = _match_paren(code, m.end() - 1)
            args = split_args(code[m.end():close])
            if len(args) >= 2:
                record(m.start(), args[0], args[1], code[m.start():close + 1])
        if axi_env:
            names = "|".join(re.escape(n) for n in axi_env)
            for m in re.finditer(rf"(?<![\w.>:])({names})\s*\[", code[start:end]):
                p = start + m.start()
                close = _match_paren(code, start + m.end() - 1, "[", "]")
                record(p, m.group(1), code[start + m.end():close], code[p:close + 1])
        if depth >= MAX_DEPTH:
            return
        for m in _CALL_RE.finditer(code, start, end):
            name = m.group(1)
            if name in ("axi_rd", "axi_wr") or name not in self.by_name:
                continue
            close = _match_paren(code, m.end() - 1)
            args = split_args(code[m.end():close])
            callee = next((f for f in self.by_name[name] if len(f.params) == len(args)), None)
            if callee is None or callee.pos in stack:
                continue
            c_axi, c_params = {}, {}
            for (typ, pname), arg in zip(callee.params, args):
                if not pname:
                    continue
                if is_axi_type(typ):
                    port, off = port_of(arg)
                    if port is not None:
                        c_axi[pname] = (port, off)
                else:
                    c_params[pname] = resolve(arg)
            if not c_axi:
                continue   # no m_axi argument: nothing of this call touches a port
            st = state(m.start())
            if st is None:
                continue
            c_subst, c_adv = self.callee_env(callee)
            advanced.update(c_adv)
            self.walk(callee, callee.open + 1, callee.end - 1, c_subst, c_params, c_axi, st[0], st[1],
                      m.start() if site is None else site, depth + 1, out, advanced, stack | {callee.pos})

    def callee_env(self, fn: Function) -> tuple:
        sc = self.scope(fn)
        params = {n for _, n in fn.params if n}
        subst, adv = {}, {}
        for name, lst in sc.decls.items():
            if name in params or name in sc.axi:
                continue
            if len(lst) == 1 and name not in sc.mods:
                subst[name] = lst[0][1]
            else:
                tag = f"adv_{fn.name}_{name}"
                subst[name] = tag
                adv[tag] = f"{name} (changed by hand in {fn.name})"
        return subst, adv


def _axi_env(sc: Scope) -> dict:
    env = {}
    for name, init in sc.axi.items():
        if init is None:
            env[name] = (name, "0")
    for _ in range(3):   # aliases of aliases
        for name, init in sc.axi.items():
            if init is not None and name not in env:
                base, off = _split_ptr(init)
                if base in env:
                    env[name] = (env[base][0], f"({env[base][1]}) + ({off})")
    return env


def loop_accesses(unit: Unit, loop, walker: _Walker | None = None) -> tuple:
    """(accesses, advanced) of one pipelined loop: every m_axi access of an iteration."""
    walker = walker or _Walker(unit)
    fn = loop.func
    sc = walker.scope(fn)
    in_loop = lambda p: loop.body <= p < loop.end
    mods = {n for n, ps in sc.mods.items() if any(in_loop(p) for p in ps)}
    subst, advanced = {}, {}
    for name, lst in sc.decls.items():
        if name == loop.iv or name in sc.axi:
            continue
        inside = [e for p, e in lst if in_loop(p)]
        if name in mods:
            advanced[name] = f"{name} (advanced by hand in the loop)"
        elif len(inside) == 1:
            subst[name] = inside[0]
    out = []
    walker.walk(fn, loop.body, loop.end, subst, {}, _axi_env(sc), False, False, None, 0, out, advanced,
                frozenset({fn.pos}))
    return out, advanced


def _violation(unit: Unit, acc: Access, loop_name: str, kind: str, msg: str) -> Violation:
    f, line = unit.where(acc.site)
    via = ""
    if acc.via:
        af, al = unit.where(acc.pos)
        via = f" (in {acc.via}, {af}:{al})"
    return Violation(f, line, "maxi", f"loop {loop_name}: m_axi {kind} {acc.port}: {acc.shown}{via} {msg}")


def check_maxi(unit: Unit, top: str | None = None) -> list:
    """Violations of the maxi rule; accesses are named by the m_axi pointer of the loop's function (the
    port itself in ``top``, a parameter elsewhere)."""
    walker = _Walker(unit)
    out = []
    for loop in unit.loops():
        if not loop.pipelined or loop.func is None:
            continue
        accesses, advanced = loop_accesses(unit, loop, walker)
        if not accesses:
            continue
        lf, ll = unit.where(loop.pos)
        name = loop.label or f"(unlabelled loop at {lf}:{ll})"
        kind_of = "port" if loop.func.name == top else "argument"
        per_port = {}
        for acc in accesses:
            per_port.setdefault(acc.port, []).append(acc)
            if acc.cond:
                out.append(_violation(unit, acc, name, kind_of, "is conditional (if / else / switch / ?: / && / ||): "
                                      "no burst"))
            if acc.multiple:
                out.append(_violation(unit, acc, name, kind_of, "sits in an unrolled inner loop: several accesses "
                                      "per iteration, no burst"))
                continue
            kind, detail = index_stride(acc.index, loop.iv, loop.step, advanced)
            if kind == "ok":
                continue
            what = {"advanced": f"is indexed by {detail}, not by the loop variable {loop.iv}",
                    "indirect": f"is indexed through {detail}",
                    "none": f"index {detail}",
                    "stride": f"is strided ({detail}): not consecutive words",
                    "unknown": f"index cannot be proven consecutive ({detail})"}[kind]
            out.append(_violation(unit, acc, name, kind_of, what + ": no burst"))
        for port, accs in per_port.items():
            if len(accs) > 1:
                lines = ", ".join(str(unit.where(a.site)[1]) for a in accs)
                out.append(_violation(unit, accs[1], name, kind_of, f"is one of {len(accs)} accesses to {port} in one "
                                      f"iteration (lines {lines}): a port bursts only when it is the loop's only access"))
    return sorted(set(out), key=lambda x: (x.file, x.line, x.message))


__all__ = ["check_maxi", "loop_accesses", "build_scope", "Access", "is_axi_type"]
