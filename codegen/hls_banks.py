"""The ``bank`` rule of ``edgemoe hls-check``: lane accesses of a pipelined loop into partitioned memories.

Vitis gives an access to a partitioned array (cyclic / block / complete per dimension) a fixed bank
only when it can prove the bank from the index; a bank computed from a run-time value makes the
access a mux over every bank, and the scheduler counts it against every bank's ports.  For every
pipelined loop reached from the top (a template or inlined function once per binding of its array
arguments), every access of an iteration, including those of the functions it calls (parameters
bound to the call's arguments, sub-arrays such as ``tmp[s]`` and the lane-word helpers'
``T (*buf)[NB][G]`` included, template parameters deduced from the bound array), is evaluated:
  - loops nested in the body are unrolled: their variables (lanes) are enumerated;
  - every other name is run-time and takes random values (hls_lanes): a bank that changes with them
    is "any bank" and counts against every bank of the dimension;
  - accesses of one word of a reshaped (wide-word) memory from one site merge into one access;
  - the branches of one if / else share the ports (the larger counts), sequential ifs add up, and
    branches whose condition is a constant for the lane are dropped.
A bank serves 2 accesses per cycle (block RAM, LUTRAM, ROM, a small memory Vitis puts in registers),
an UltraRAM (BIND_STORAGE impl=uram) 2 with at most 1 write.  Banks of a single element are registers:
a run-time index on them is a mux that costs logic, not ports, and is not counted (edgemoe_mem.h's
lw_pick does this on purpose).

Blind spots: arrays without a partition / reshape pragma (one memory, or partitioned by Vitis on its
own); accesses through local pointers or references, ``&a[i]`` arguments, function pointers and
methods; an element passed to a ``T &`` parameter is one read at the call; ``while`` loops in the
body are not enumerated; unrolled loops with bounds hls-check cannot compute take 8 values, and an
access enumerates at most 4096 lane assignments; a bank that moves with run-time values only in
ranges the random draws miss looks fixed; scalar arguments are run-time even when constant at the
call; ``?:`` and ``switch`` count every side.
"""
from __future__ import annotations

import re
from dataclasses import replace

from .hls_arrays import file_constants, find_arrays, is_decl, raw_params, template_params
from .hls_bank_count import count_loop
from .hls_bank_records import ArrayRef, Inst, Site
from .hls_expr import const_value, substitute
from .hls_lanes import Expr, Lane, loop_header, stable
from .hls_maxi import build_scope
from .hls_source import Unit
from .hls_syntax import split_args, stmt_end
from .synth_check import _match_paren

MAX_DEPTH = 8
_CALL_RE = re.compile(r"\b([A-Za-z_]\w*)\s*(<[^;(){}]*>)?\s*\(")
_QUAL_RE = re.compile(r"([A-Za-z_]\w*)\s*(?:<[^;(){}]*>)?\s*::\s*$")
_SKIP = {"if", "for", "while", "switch", "return", "sizeof", "static_assert", "static_cast", "reinterpret_cast",
         "const_cast", "decltype", "alignof"}


class BankChecker:
    def __init__(self, unit: Unit, macros: dict):
        self.unit, self.code = unit, unit.code
        self.defs = find_arrays(unit, macros)
        self.consts = file_constants(unit, macros)
        self.by_name, self.struct_of = {}, {}
        for f in unit.functions():
            self.by_name.setdefault(f.name, []).append(f)
        for m in re.finditer(r"\b(?:struct|class)\s+([A-Za-z_]\w*)\s*(?:<[^;{}()]*>)?\s*(?::[^;{}()]*)?\{", self.code):
            end = _match_paren(self.code, m.end() - 1, "{", "}")
            for f in unit.functions():
                if m.end() <= f.pos < end:
                    self.struct_of[f.pos] = m.group(1)
        self.globals = {}
        for key, d in self.defs.items():
            if key[0] == "global":
                dims = tuple(self._dim(t, {}) for t in d.dims)
                self.globals[d.name] = ArrayRef(d, dims, (), key, d.name, d.is_register(list(dims)))
        self._cache = {}
        self._relevant = self._relevance()
        self.violations, self.summary, self.seen = [], [], set()

    # ---- helpers ------------------------------------------------------------------------------
    def _dim(self, text, params):
        v = const_value(substitute(text, {k: str(self.consts[k]) for k in self.consts if self.consts[k] is not None}))
        if v is None and params:
            v = const_value(substitute(substitute(text, params, rounds=3),
                                       {k: str(v) for k, v in self.consts.items() if v is not None}))
        return v

    def _memo(self, kind, fn, make):
        key = (kind, fn.pos)
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def _relevance(self) -> dict:
        """{function pos: True} for the functions that touch a tracked memory (directly or by calls)."""
        names = [n for n, r in self.globals.items() if not r.register]
        pat = re.compile(r"(?<![\w.>])(" + "|".join(map(re.escape, names)) + r")\b") if names else None
        direct, calls = {}, {}
        for f in self.unit.functions():
            body = self.code[f.open:f.end]
            direct[f.pos] = bool(pat and pat.search(body)) or any(k[0] == "local" and k[1] == f.pos for k in self.defs)
            calls[f.pos] = {m.group(1) for m in _CALL_RE.finditer(body)} & set(self.by_name)
        rel = dict(direct)
        for _ in range(MAX_DEPTH + 4):
            changed = False
            for f in self.unit.functions():
                if not rel[f.pos] and any(rel[g.pos] for n in calls[f.pos] for g in self.by_name[n]):
                    rel[f.pos] = changed = True
            if not changed:
                break
        return rel

    def candidates(self, name, qual, nargs) -> list:
        """The definitions a call may run: a qualified call names its struct (every specialization is a
        candidate), a plain one the functions outside structs; the argument count must fit."""
        out = []
        for f in self.by_name.get(name, []):
            if self.struct_of.get(f.pos) != qual:
                continue
            ps = self._memo("params", f, lambda f=f: raw_params(self.code, f))
            if sum(1 for p in ps if p[2] is None) <= nargs <= len(ps):
                out.append(f)
        return out

    def calls(self, start, end):
        """[(pos, name, template args, qualifier, args)] of the calls in code[start:end]."""
        out = []
        for m in _CALL_RE.finditer(self.code, start, end):
            name = m.group(1)
            if name in _SKIP or name not in self.by_name:
                continue
            q = _QUAL_RE.search(self.code[max(0, m.start() - 200):m.start()])
            close = _match_paren(self.code, m.end() - 1)
            out.append((m.start(), name, m.group(2), q.group(1) if q else None, split_args(self.code[m.end():close])))
        return out

    def array_arg(self, arg, arrays, resolve):
        """The ArrayRef an argument passes (a whole array or a sub-array), or None."""
        s = arg.strip()
        while s.startswith("(") and _match_paren(s, 0) == len(s) - 1:
            s = s[1:-1].strip()
        m = re.match(r"([A-Za-z_]\w*)\s*", s)
        if not m or m.group(1) not in arrays:
            return None
        ref, k, subs = arrays[m.group(1)], m.end(), []
        while k < len(s) and s[k] == "[":
            c = _match_paren(s, k, "[", "]")
            subs.append(s[k + 1:c])
            k = c + 1
            while k < len(s) and s[k] == " ":
                k += 1
        if k != len(s) or len(ref.prefix) + len(subs) >= len(ref.dims):
            return None
        return replace(ref, prefix=ref.prefix + tuple(resolve(x) for x in subs))

    def bind(self, callee, args, targs, resolve, arrays, chain):
        """(scalar params, template values, arrays) of a call of ``callee``."""
        tps = self._memo("tparams", callee, lambda: template_params(self.code, callee))
        rps = self._memo("params", callee, lambda: raw_params(self.code, callee))
        tvals = {}
        if targs:
            for (tn, is_val, _), a in zip(tps, split_args(targs.strip()[1:-1], angles=True)):
                if is_val:
                    v = const_value(resolve(a))
                    tvals[tn] = str(v) if v is not None else f"cst_{stable(a, callee.pos)}"
        scal, arrs = {}, {}
        tnames = {t for t, v, _ in tps if v}
        for i, (pn, pdims, default) in enumerate(rps):
            a = args[i] if i < len(args) else default
            if a is None:
                continue
            ref = self.array_arg(a, arrays, resolve if i < len(args) else (lambda t: t))
            if ref is None:
                scal[pn] = f"({resolve(a)})" if i < len(args) else f"({a})"
                continue
            rem = ref.dims[len(ref.prefix):]
            for k, dt in enumerate(pdims):
                if dt in tnames and dt not in tvals and k < len(rem) and rem[k] is not None:
                    tvals[dt] = str(rem[k])
            arrs[pn] = ref
        for tn, is_val, default in tps:
            if is_val and tn not in tvals:
                v = const_value(substitute(default, tvals)) if default else None
                tvals[tn] = str(v) if v is not None else f"cst_{stable(tn, callee.pos)}"
        arrs.update(self.local_arrays(callee, tvals, chain))
        body = self.code[callee.open:callee.end]
        for name, ref in self.globals.items():
            if name not in arrs and name not in scal and name in body:
                arrs[name] = ref
        return scal, tvals, arrs

    def local_arrays(self, fn, tvals, chain) -> dict:
        """The partitioned local arrays of one inlined copy of ``fn``."""
        out = {}
        for key, d in self.defs.items():
            if key[0] == "local" and key[1] == fn.pos:
                dims = tuple(self._dim(t, tvals) for t in d.dims)
                out[d.name] = ArrayRef(d, dims, (), (key, chain), f"{d.name} ({fn.name})", d.is_register(list(dims)))
        return out

    # ---- the call tree from the top: one analysis per pipelined loop and array binding ----------
    def visit(self, fn, tvals, arrs, depth=0):
        key = (fn.pos, tuple(sorted(tvals.items())),
               tuple(sorted((n, r.uid, tuple(p if const_value(p) is not None else "?" for p in r.prefix))
                            for n, r in arrs.items())))
        if key in self.seen or depth > 2 * MAX_DEPTH:
            return
        self.seen.add(key)
        inst = Inst(fn, dict(tvals), arrs, stack=frozenset({fn.pos}))
        loops = [lp for lp in self.unit.loops() if lp.func is fn and lp.pipelined]
        outer = [lp for lp in loops if not any(o is not lp and o.body <= lp.pos < o.end for o in loops)]
        for lp in outer:
            self.analyze(lp, inst)
        fresh = iter(range(10 ** 9))

        def resolve(t):
            v = const_value(substitute(t, inst.params))
            return str(v) if v is not None else f"ctx{next(fresh)}_{depth}"
        for pos, name, targs, qual, args in self.calls(fn.open + 1, fn.end - 1):
            if any(lp.pos <= pos < lp.end for lp in outer):
                continue
            for callee in self.candidates(name, qual, len(args)):
                if callee.pos == fn.pos:
                    continue
                _, tv, a = self.bind(callee, args, targs, resolve, arrs, ())
                if self._relevant.get(callee.pos) or any(not r.register for r in a.values()):
                    self.visit(callee, tv, a, depth + 1)

    # ---- one pipelined loop ---------------------------------------------------------------------
    def analyze(self, loop, inst):
        self.lanes, self.rt_deps, self.sites, self.exprs, self.display = {}, {}, [], {}, {}
        self.walk(replace(inst, lanes=(), path=(), chain=(), site=None, depth=0), loop.body, loop.end)
        v, s = count_loop(self, loop)
        self.violations += v
        self.summary += s

    def expr(self, text):
        if text not in self.exprs:
            self.exprs[text] = Expr(text, self.lanes, self.rt_deps, self.consts)
        return self.exprs[text]

    def _ifs(self, start, end):
        out = []
        for m in re.finditer(r"\bif\s*\(", self.code[start:end]):
            p = start + m.end() - 1
            c = _match_paren(self.code, p)
            then_end = stmt_end(self.code, c + 1)
            el = re.compile(r"\s*else\b").match(self.code, then_end)
            out.append((start + m.start(), self.code[p + 1:c], (c + 1, then_end),
                        (el.end(), stmt_end(self.code, el.end())) if el else None))
        return out

    def walk(self, inst, start, end):
        code = self.code
        loops = [lp for lp in self.unit.loops() if start <= lp.pos < end and lp.iv]
        tok = {}
        for lp in loops:
            tok[lp.pos] = f"ln{len(self.display)}_{lp.iv}"
            self.display[tok[lp.pos]] = lp.iv
            self.lanes[tok[lp.pos]] = None   # known as a lane before any expression names it

        def around(p):
            return [lp for lp in loops if lp.body <= p < lp.end]

        def lanes_at(p):
            return inst.lanes + tuple(tok[lp.pos] for lp in around(p))

        sc = self._memo("scope", inst.fn, lambda: build_scope(code, inst.fn))
        pnames = {n for n, _, _ in self._memo("params", inst.fn, lambda: raw_params(code, inst.fn))}
        local = {}
        for name, lst in sc.decls.items():
            if name in pnames:
                continue
            inside = [(p, e) for p, e in lst if start <= p < end]
            mods = sc.mods.get(name, [])
            ok = (len(inside) == 1 and not any(start <= p < end for p in mods)) if inside else (len(lst) == 1 and not mods)
            init = (inside or lst)[0][1]
            if ok and init:
                local[name] = init
                continue
            token = name if inst.depth == 0 else f"rt{len(self.display)}_{name}"
            self.display[token] = name if inst.depth == 0 else f"{name} (in {inst.fn.name})"
            deps = set(inst.lanes)
            for p, _ in inside:
                deps.update(lanes_at(p))
            self.rt_deps[token] = tuple(sorted(deps | set(self.rt_deps.get(token, ()))))
            if token != name:
                local[name] = token
        params = dict(inst.params)
        for pn in pnames:
            if pn in sc.mods and pn in params:
                token = f"rt{len(self.display)}_{pn}"
                self.display[token] = f"{pn} (in {inst.fn.name})"
                self.rt_deps[token] = tuple(inst.lanes)
                params[pn] = token

        def resolve(text, p):
            env = dict(local)
            env.update({lp.iv: tok[lp.pos] for lp in around(p)})
            return substitute(substitute(text, env), params, rounds=1)

        for lp in loops:
            texts = loop_header(code, lp)
            init, cond, step = (self.expr(resolve(t, lp.body)) if t else None for t in (texts[0], texts[1], texts[2][1]))
            self.lanes[tok[lp.pos]] = Lane(tok[lp.pos], init, cond, (texts[2][0], step))
        ifs = self._ifs(start, end)

        def path_at(p):
            out = list(inst.path)
            for ipos, cond, th, el in ifs:
                br = 0 if th[0] <= p < th[1] else 1 if el and el[0] <= p < el[1] else None
                if br is not None:
                    out.append((("if", inst.chain, ipos), lanes_at(ipos), br, self.expr(resolve(cond, ipos))))
            return tuple(out)

        self._accesses(inst, start, end, lanes_at, path_at, resolve)
        if inst.depth >= MAX_DEPTH:
            return
        for pos, name, targs, qual, args in self.calls(start, end):
            cands = [c for c in self.candidates(name, qual, len(args)) if c.pos not in inst.stack]
            for i, callee in enumerate(cands):
                chain = inst.chain + (pos,)
                scal, tv, arrs = self.bind(callee, args, targs, lambda t, p=pos: resolve(t, p), inst.arrays, chain)
                if not (self._relevant.get(callee.pos) or any(not r.register for r in arrs.values())):
                    continue
                path = path_at(pos)
                if len(cands) > 1:   # overloads / specializations: one of them is the code
                    path += ((("alt", inst.chain, pos), lanes_at(pos), i, None),)
                sub = Inst(callee, {**scal, **tv}, arrs, lanes_at(pos), path, chain,
                           inst.site if inst.site is not None else pos, inst.depth + 1, inst.stack | {callee.pos})
                self.walk(sub, callee.open + 1, callee.end - 1)

    def _accesses(self, inst, start, end, lanes_at, path_at, resolve):
        names = [n for n, r in inst.arrays.items() if not r.register]
        if not names:
            return
        code = self.code
        pat = re.compile(r"(?<![\w.>:])(" + "|".join(map(re.escape, names)) + r")\s*\[")
        for m in pat.finditer(code, start, end):
            p = m.start()
            ref = inst.arrays[m.group(1)]
            if is_decl(code, p) or code[max(0, p - 1):p] == "&" and not code[max(0, p - 2):p] == "&&":
                continue
            subs, k = [], m.end() - 1
            while k < end and code[k] == "[":
                c = _match_paren(code, k, "[", "]")
                subs.append(code[k + 1:c])
                k = c + 1
                while k < end and code[k] in " \t\n":
                    k += 1
            if len(ref.prefix) + len(subs) != len(ref.dims):
                continue   # a sub-array (an argument): its accesses are the callee's
            after = code[k:k + 3]
            before = code[max(start, p - 2):p]
            if after.startswith("=") and not after.startswith("=="):
                kind = "w"
            elif re.match(r"(\+\+|--|(?:[+\-*/%&|^]|<<|>>)=)", after) or before in ("++", "--"):
                kind = "rw"
            else:
                kind = "r"
            self.sites.append(Site(ref, [resolve(s, p) for s in subs], kind, lanes_at(p), path_at(p), (inst.chain, p),
                                   p, inst.site if inst.site is not None else p, inst.fn.name if inst.depth else "",
                                   " ".join(code[p:k].split())))

    def run(self, top: str) -> tuple:
        fn = next((f for f in self.unit.functions() if f.name == top), None)
        if fn is not None and self.defs:
            self.visit(fn, {}, {**self.globals, **self.local_arrays(fn, {}, ())})
        return self.violations, self.summary


def check_banks(unit: Unit, top: str, macros: dict) -> tuple:
    """(violations, summary) of the bank rule on the kernel whose top function is ``top``."""
    return BankChecker(unit, macros).run(top)


__all__ = ["check_banks", "BankChecker"]
