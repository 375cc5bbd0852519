"""Index expressions of one pipelined loop, for the ``bank`` rule of ``edgemoe hls-check`` (hls_banks).

Every name of an index (already rewritten in the loop's terms) is one of:
  - a *lane*: the variable of a loop inside the pipelined body (Vitis unrolls it), a token ``ln<k>_<iv>``
    enumerated over its values;
  - a *constant*: a number, or a compile-time value hls-check cannot compute (a template member
    ``X<..>::Y``, an undeduced template parameter: ``cst_...``), fixed for the whole loop;
  - *run-time*: anything else (the pipelined loop's variable, outer loops', parameters, values
    changed by hand, calls and array reads).  It takes K random values; a name declared inside an
    unrolled loop (or reached through a call inside one) draws its values per lane, so that lanes
    never look alike by accident.
"""
from __future__ import annotations

import ast
import re
import zlib

from .hls_expr import Unknown, _eval as eval_tree, names_in, opaque_parts, to_python
from .synth_check import _match_paren, _split_top

K = 6              # random assignments of the run-time names
LANE_CAP = 256     # values of one unrolled loop at most
FALLBACK = 8       # values tried for an unrolled loop whose bounds are unknown
_SCOPE_RE = re.compile(r"\b[A-Za-z_]\w*\s*(?:<[^;(){}]*>)?\s*::\s*[A-Za-z_]\w*")
_LANE_RE = re.compile(r"\bln\d+_\w+")


def stable(*key) -> int:
    """A pseudo-random value of ``key``, the same in every process."""
    return zlib.crc32(repr(key).encode()) % 4093 + 3


def draw(name, lanes: tuple, k: int) -> int:
    """Run-time value number k of ``name`` (per lane values ``lanes``): small ones first (0..15: banks
    that only move for small offsets), then large ones."""
    v = zlib.crc32(repr((name, lanes, k)).encode())
    return v % 16 if k < 2 else v % 4093 + 3


def ternary(e: str) -> str:
    """C ``a ? b : c`` -> arithmetic the evaluator knows: ``(a != 0) * (b) + (a == 0) * (c)``."""
    out, i = [], 0
    while i < len(e):
        if e[i] in "([":
            c = _match_paren(e, i, e[i], ")" if e[i] == "(" else "]")
            out.append(e[i] + ternary(e[i + 1:c]) + e[c:c + 1])
            i = c + 1
        else:
            out.append(e[i])
            i += 1
    s = "".join(out)
    depth, q = 0, -1
    for k, ch in enumerate(s):
        depth += (ch in "([") - (ch in ")]")
        if ch == "?" and depth == 0:
            q = k
            break
    if q < 0:
        return s
    depth, nest, colon = 0, 0, -1
    for k in range(q + 1, len(s)):
        ch = s[k]
        depth += (ch in "([") - (ch in ")]")
        if depth == 0 and ch == "?":
            nest += 1
        elif depth == 0 and ch == ":":
            if nest == 0:
                colon = k
                break
            nest -= 1
    if colon < 0:
        return s
    cond, a, b = s[:q], s[q + 1:colon], s[colon + 1:]
    return f"(({cond}) != 0) * ({ternary(a)}) + (({cond}) == 0) * ({ternary(b)})"


class Expr:
    """One index (or condition) in the loop's terms, compiled once and evaluated per lane assignment."""

    def __init__(self, text: str, lanes: dict, rt_deps: dict, consts: dict):
        self.text = text
        e = _SCOPE_RE.sub(lambda m: f"cst_{stable(m.group(0))}", text)
        e, parts = opaque_parts(e)
        py = to_python(ternary(e))
        try:
            self.tree = ast.parse(py, mode="eval") if py.strip() else None
        except SyntaxError:
            self.tree = None
        opaque = dict(parts)
        self.names = []           # (name, kind, value or (key, deps))
        for n in sorted(names_in(py)):
            if n in lanes:
                self.names.append((n, "lane", None))
            elif n.startswith("cst_"):
                self.names.append((n, "const", stable(n)))
            elif n in consts:
                v = consts[n]
                self.names.append((n, "const", v if v is not None else stable(n)))
            elif n in opaque:
                t = opaque[n]
                deps = set(_LANE_RE.findall(t))
                for m in names_in(t):
                    deps.update(rt_deps.get(m, ()))
                self.names.append((n, "rt", (t, tuple(sorted(deps)))))
            else:
                self.names.append((n, "rt", (n, tuple(rt_deps.get(n, ())))))
        self.runtime = [n for n, kind, _ in self.names if kind == "rt"]
        # the lanes the value depends on (directly, or through a run-time name drawn per lane)
        self.lane_deps = tuple(sorted({n for n, kind, _ in self.names if kind == "lane"} |
                                      {d for _, kind, v in self.names if kind == "rt" for d in v[1]}))
        self.static = self.tree is not None and not self.runtime and \
            all(kind != "const" or not n.startswith("cst_") for n, kind, _ in self.names)

    def value(self, lam: dict, k: int, vary: str | None = None, k_var: int = 0):
        """The value under lane assignment ``lam`` and run-time assignment k (``vary``: only that name
        takes assignment ``k_var``, the others assignment 0); None when it cannot be evaluated."""
        if self.tree is None:
            return None
        env = {}
        for n, kind, v in self.names:
            if kind == "lane":
                if n not in lam:
                    return None
                env[n] = lam[n]
            elif kind == "const":
                env[n] = v
            else:
                kk = k if vary is None else (k_var if n == vary else 0)
                env[n] = draw(v[0], tuple(lam.get(d) for d in v[1]), kk)
        try:
            return eval_tree(self.tree, env)
        except (Unknown, RecursionError, ValueError, OverflowError):
            return None

    def static_value(self, lam: dict):
        """The value when only lanes and known constants occur (else None)."""
        return self.value(lam, 0) if self.static else None


class Lane:
    """An unrolled loop: its token, and its values given the outer lanes' values."""

    def __init__(self, token: str, init: Expr | None, cond: Expr | None, inc: tuple):
        self.token, self.init, self.cond, self.inc = token, init, cond, inc

    def values(self, lam: dict) -> list:
        v = self.init.static_value(lam) if self.init is not None else None
        if v is None or self.cond is None or self.inc[1] is None:
            return list(range(v or 0, (v or 0) + FALLBACK))
        out = []
        op, step = self.inc
        while len(out) < LANE_CAP:
            env = dict(lam)
            env[self.token] = v
            c = self.cond.static_value(env)
            if c is None:
                return list(range(out[0] if out else v, (out[0] if out else v) + FALLBACK))
            if not c:
                return out
            out.append(v)
            s = step.static_value(env)
            if s is None:
                return list(range(out[0], out[0] + FALLBACK))
            nv = {"+": v + s, "-": v - s, "*": v * s, "<<": v << s if 0 <= s < 64 else v, ">>": v >> s if 0 <= s < 64 else v,
                  "=": s}.get(op, v)
            if nv == v:
                return out
            v = nv
        return out


def loop_header(code: str, loop) -> tuple:
    """(init text, condition text, (op, step text)) of a ``for`` loop's header (texts may be None)."""
    p = code.find("(", loop.pos)
    c = _match_paren(code, p)
    parts = _split_top(code[p + 1:c], ";")
    if len(parts) != 3 or not loop.iv:
        return None, None, (None, None)
    init, cond, inc = (x.strip() for x in parts)
    m = re.search(rf"\b{re.escape(loop.iv)}\s*=(?!=)\s*(.+)$", init, re.S)
    v = re.escape(loop.iv)
    inc_t = (None, None)
    if re.fullmatch(rf"(?:{v}\s*\+\+|\+\+\s*{v})", inc):
        inc_t = ("+", "1")
    elif re.fullmatch(rf"(?:{v}\s*--|--\s*{v})", inc):
        inc_t = ("-", "1")
    else:
        mm = re.fullmatch(rf"{v}\s*(\+|-|\*|<<|>>)=\s*(.+)", inc, re.S) or \
            re.fullmatch(rf"{v}\s*=\s*{v}\s*(\+|-|\*)\s*(.+)", inc, re.S)
        if mm:
            inc_t = (mm.group(1), mm.group(2))
        else:
            mm = re.fullmatch(rf"{v}\s*=(?!=)\s*(.+)", inc, re.S)
            if mm:
                inc_t = ("=", mm.group(1))
    return (m.group(1) if m else None), (cond or None), inc_t


def assignments(lanes: tuple, info: dict, cap: int) -> tuple:
    """([lane assignment], truncated) over ``lanes`` (outer first)."""
    out = []
    truncated = False

    def rec(i, lam):
        nonlocal truncated
        if len(out) >= cap:
            truncated = True
            return
        if i == len(lanes):
            out.append(dict(lam))
            return
        t = lanes[i]
        lane = info.get(t)
        for v in (lane.values(lam) if lane else [0]):
            lam[t] = v
            rec(i + 1, lam)
            if truncated:
                break
        lam.pop(t, None)

    rec(0, {})
    return out, truncated


__all__ = ["K", "Expr", "Lane", "loop_header", "assignments", "stable", "draw", "ternary"]
