"""Counting for the ``bank`` rule (hls_banks): the accesses of one pipelined loop's iteration per bank.

Each access site is evaluated for every lane assignment (hls_lanes): its bank on every partitioned
dimension (a value, or "any" when it moves with run-time values).  Lane copies of one site that name
the same word are one access (the lanes of one reshaped word, or an index no lane changes).  The accesses
are then counted per bank, for every bank an access names plus "any other" bank: an "any" access
counts against all of them, the branches of one if / else count their larger side.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product

from .hls_lanes import K, assignments
from .synth_check import Violation

ANY, OTHER = "any", "other"
ASSIGN_CAP = 4096
_TOKEN_RE = re.compile(r"\b(?:ln|rt)\d+_\w+\b")


@dataclass
class Item:
    bank: tuple
    r: int
    w: int
    path: tuple
    site: object
    matches: list = None


def _concrete(path, lam):
    """The branch path under a lane assignment, or None when a branch on it is dead for these lanes."""
    out = []
    for uid, lanes, br, cond in path:
        if cond is not None:
            v = cond.static_value(lam)
            if v is not None:
                if bool(v) != (br == 0):
                    return None
                continue
        out.append(((uid, tuple(lam.get(t) for t in lanes)), br))
    return tuple(out)


def _tally(items, n, depth=0):
    tot = [[0, 0] for _ in range(n)]
    groups = {}
    for it in items:
        if len(it.path) == depth:
            for ci in it.matches:
                tot[ci][0] += it.r
                tot[ci][1] += it.w
        else:
            key, br = it.path[depth]
            groups.setdefault(key, {}).setdefault(br, []).append(it)
    for branches in groups.values():
        best = [[0, 0] for _ in range(n)]
        for b_items in branches.values():
            sub = _tally(b_items, n, depth + 1)
            for ci in range(n):
                best[ci][0] = max(best[ci][0], sub[ci][0])
                best[ci][1] = max(best[ci][1], sub[ci][1])
        for ci in range(n):
            tot[ci][0] += best[ci][0]
            tot[ci][1] += best[ci][1]
    return tot


def _site_items(ck, s, info):
    """The distinct accesses of one site over its lanes.  Two lane copies are one access when they
    name the same bank and the same word: the same value of every lane their indices depend on,
    except on a completely reshaped dimension (one wide word)."""
    ref = s.ref
    exprs = [ck.expr(t) for t in list(ref.prefix) + list(s.subs)]
    bdims = [d for d in range(len(exprs)) if ref.adef.part(d)]
    r, w = {"r": (1, 0), "w": (0, 1), "rw": (1, 1)}[s.kind]
    lams, truncated = assignments(s.lanes, ck.lanes, ASSIGN_CAP)
    seen, items, anyd = set(), [], {}
    for lam in lams:
        path = _concrete(s.path, lam)
        if path is None:
            continue
        bank, word = [], []
        for d, e in enumerate(exprs):
            rs = ref.adef.reshape(d)
            if d in bdims:
                bs = set()
                for k in range(K):
                    v = e.value(lam, k)
                    bs.add("?" if v is None else ref.adef.bank_addr(d, ref.dims[d], v)[0])
                b = next(iter(bs)) if len(bs) == 1 and "?" not in bs else ANY
                bank.append(b)
                if b == ANY:
                    anyd.setdefault(d, lam)
            if rs is not None and rs.kind == "complete":
                word.append(0)
            elif rs is not None:
                word.append(tuple(None if v is None else ref.adef.bank_addr(d, ref.dims[d], v)[1]
                                  for v in (e.value(lam, k) for k in range(K))))
            else:
                word.append(tuple(lam.get(t) for t in e.lane_deps))
        key = (tuple(bank), tuple(word), path)
        if key not in seen:
            seen.add(key)
            items.append(Item(tuple(bank), r, w, path, s))
    info[s.uid] = dict(instances=len(items), any=anyd, exprs=exprs, bdims=bdims, truncated=truncated)
    return items


def _show(ck, text):
    return _TOKEN_RE.sub(lambda m: ck.display.get(m.group(0), m.group(0)).split(" (in ")[0], text)


def _culprits(ck, s, info) -> dict:
    """{dim: [what makes its bank run-time]} of a site with "any" banks."""
    out = {}
    for d, lam in info["any"].items():
        e = info["exprs"][d]
        names = []
        for n, kind, v in e.names:
            if kind != "rt":
                continue
            banks = {s.ref.adef.bank_addr(d, s.ref.dims[d], x)[0] if x is not None else None
                     for x in (e.value(lam, 0, vary=n, k_var=k) for k in range(K))}
            if len(banks) > 1:
                names.append(_show(ck, v[0]) if v[0] != n else ck.display.get(n, n))
        out[d] = names or [f"index '{_show(ck, e.text)}' not understood" if e.tree is None else "run-time values"]
    return out


def _where(ck, s) -> str:
    f, line = ck.unit.where(s.top)
    via = ""
    if s.via:
        af, al = ck.unit.where(s.pos)
        via = f", in {s.via} at {af}:{al}"
    return f"{f}:{line}{via}"


def _split_desc(adef, d) -> str:
    p = adef.part(d)
    return f"{p.kind}" + (f" factor {p.factor}" if p.kind != "complete" else "") + f" on dim {d + 1}"


def count_loop(ck, loop) -> tuple:
    """(violations, summary entries) of the sites the checker collected for ``loop``."""
    unit = ck.unit
    lf, ll = unit.where(loop.pos)
    label = loop.label or f"(unlabelled loop at {lf}:{ll})"
    per, info = {}, {}
    for s in ck.sites:
        per.setdefault(s.ref.uid, (s.ref, []))[1].extend(_site_items(ck, s, info))
    violations, summary = [], []
    for ref, items in per.values():
        if not items:
            continue
        bdims = [d for d in range(len(ref.dims)) if ref.adef.part(d)]
        values = []
        for j, d in enumerate(bdims):
            st = sorted({it.bank[j] for it in items if it.bank[j] != ANY}, key=str)
            nb = ref.adef.banks(d, ref.dims[d])
            if any(it.bank[j] == ANY for it in items) and (nb is None or nb > len(st)):
                st.append(OTHER)
            values.append(st or [OTHER])
        cands = list(product(*values))[:4096]
        for it in items:
            it.matches = [ci for ci, c in enumerate(cands) if all(b == ANY or b == c[j] for j, b in enumerate(it.bank))]
        tot = _tally(items, len(cands))
        total, wmax = ref.adef.ports()
        excess = [max(r + w - total, (w - wmax) if wmax else 0) for r, w in tot]
        ci = max(range(len(cands)), key=lambda i: (excess[i], sum(tot[i])))
        anysites = [s for s in {it.site.uid: it.site for it in items}.values() if info[s.uid]["any"]]
        runtime = []
        for s in anysites:
            cul = _culprits(ck, s, info[s.uid])
            runtime.append(f"{s.shown} ({_where(ck, s)}): " + "; ".join(
                f"dim {d + 1} by {', '.join(v)}" for d, v in sorted(cul.items())))
        if anysites or excess[ci] > 0:
            summary.append(dict(loop=label, array=ref.label, accesses=len(items), worst=sum(tot[ci]), ports=total,
                                within_ports=excess[ci] <= 0, runtime_banks=runtime))
        if excess[ci] <= 0:
            continue
        r, w = tot[ci]
        bank = ", ".join(f"{('any other' if len(vals) > 1 else 'each') if c == OTHER else c} ({_split_desc(ref.adef, d)})"
                         for c, d, vals in zip(cands[ci], bdims, values))
        hits = [it for it in items if ci in it.matches]
        bysite = {}
        for it in hits:
            bysite.setdefault(it.site.uid, [it.site, 0, False])
            bysite[it.site.uid][1] += 1
            bysite[it.site.uid][2] |= ANY in it.bank
        culprit = next((v for v in bysite.values() if v[2]), None) or max(bysite.values(), key=lambda v: v[1])
        s, n, is_any = culprit
        if is_any:
            cul = _culprits(ck, s, info[s.uid])
            cause = (f"{s.shown} ({_where(ck, s)}) may hit any bank (" + "; ".join(
                f"dim {d + 1}: its index moves with {', '.join(v)}" for d, v in sorted(cul.items())) +
                f"): Vitis cannot prove its bank, so its {n} access(es) count against every bank")
        else:
            cause = f"{s.shown} ({_where(ck, s)}) accesses this bank {n} time(s)"
        others = [v for v in bysite.values() if v is not culprit]
        if others:
            cause += f"; with {sum(v[1] for v in others)} access(es) of " + ", ".join(
                f"{v[0].shown} ({_where(ck, v[0])})" for v in others[:3]) + (", ..." if len(others) > 3 else "")
        limit = f"{total} ports" + (f", at most {wmax} write(s)" if wmax else "")
        f, line = unit.where(s.top)
        violations.append(Violation(f, line, "bank", f"loop {label}: {ref.label} {ref.adef.memory()} bank "
                                    f"[{bank or 'the only one'}]: {r} read(s) + {w} write(s) in one iteration at worst, "
                                    f"{limit}: {cause}"))
    return violations, summary


__all__ = ["count_loop", "ANY", "OTHER"]
