"""The Vitis HLS messages that say whether the kernel became the hardware it claims to be.

Parsed from a Vitis HLS log (``vitis_hls.log``, ``hls.log`` or v++'s output), one message a line
(``WARNING: [HLS 214-232] ...``; older tools tag ``[SCHED 204-61]``, ``[XFORM ...]`` or ``[v++ ...]``):

* burst inference (UG1448 "Burst Inference Failure"): 214-224 .. 214-234 name the m_axi variable and
  the source location of an access that fell back to single-beat transfers; 214-115 lists the bursts
  that were inferred;
* pipelining: 200-1470 ``Pipelining result : Target II = X, Final II = Y, Depth = D, loop 'L'`` (older:
  ``Pipelining result: Target II: X, Final II: Y, Depth: D.`` after ``Pipelining loop 'L'.``) and the
  reasons for a missed II: 200-880 (carried dependence), 200-885 (memory / bus ports), 200-448 (lower
  bound from one memory's ports).
"""
from __future__ import annotations

import re

MESSAGE = re.compile(r"(?:^|\s)(?P<sev>INFO|WARNING|ERROR|CRITICAL WARNING):\s*\[(?P<tool>[\w+]+)\s+(?P<code>\d+(?:-\d+)?)\]\s*"
                     r"(?P<text>.*)$")
# the UG1448 pages "Burst Inference Failure 2..12"; a 214-2xx that talks about bursts counts too
BURST_FAILURE_CODES = {f"214-{n}" for n in range(224, 235)}
BURST_INFERRED_CODE = "214-115"
II_CAUSE_CODES = ("200-880", "200-885", "200-448")
SOURCE_LOC = re.compile(r"([^\s(),'\"]+\.(?:cpp|cc|cxx|c|hpp|hh|hxx|h)):(\d+)(?::(\d+))?")
QUOTED = r"'?([A-Za-z_]\w*(?:(?:\.|->)\w+)*(?:\[\w+\])*)'?"
BURST_NAME = re.compile(r"\bon (?:variable |port |array |bundle |argument )?" + QUOTED)
BURST_OK = re.compile(r"(?P<multi>Multiple )?burst (?P<dir>read|write)s? of (?P<len>variable length|VARIABLE LENGTH|length \d+) "
                      r"and bit width (?P<bits>\d+)(?: in loop '(?P<loop>[^']*)')?.*?has been inferred on "
                      r"(?:bundle|port) '(?P<bundle>[^']+)'", re.IGNORECASE)
RESULT_NEW = re.compile(r"Pipelining result\s*:\s*Target II = (?P<target>\w+), Final II = (?P<final>\d+), Depth = (?P<depth>\d+)"
                        r"(?:, (?:loop|function) '(?P<loop>[^']+)')?")
RESULT_OLD = re.compile(r"Pipelining result\s*:\s*Target II:\s*(?P<target>\w+), Final II:\s*(?P<final>\d+), "
                        r"Depth:\s*(?P<depth>\d+)")
PIPELINING = re.compile(r"Pipelining (?:loop|function) '(?P<loop>[^']+)'")
MODULE = re.compile(r"module '([^']+)'")
LOOP = re.compile(r"\(loop '([^']+)'\)")
OBJECT = re.compile(r"on (?:array|port|local variable) '([^']+)'")
II_AT = re.compile(r"\(II = (\d+)")
LOWER_BOUND = re.compile(r"Lower bound of II is (\d+)")
CORE_RAM = re.compile(r"core:RAM:([\w.]+)|accessing '([^']+)'")


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _location(text: str, last: bool = True):
    """(file, line) of the source location a message names (its last one: Vitis ends with the DebugLoc)."""
    hits = SOURCE_LOC.findall(text)
    if not hits:
        return None, None
    f, line, _ = hits[-1] if last else hits[0]
    return f, int(line)


def _loop_of_module(module: str | None) -> str | None:
    """Vitis names a pipelined loop's sub-module ``<function>_Pipeline_<loop>``."""
    if module and "_Pipeline_" in module:
        return module.split("_Pipeline_", 1)[1]
    return None


def messages(text: str):
    """(severity, code, text) of every tagged message, in log order."""
    for raw in text.splitlines():
        m = MESSAGE.search(raw)
        if m:
            yield m.group("sev"), m.group("code"), m.group("text").strip()


def parse_log(text: str) -> dict:
    """The burst and pipelining messages of one Vitis HLS log: ``{"burst_failures", "bursts_inferred",
    "pipelining", "ii_causes"}``; every II cause carries the pipelining result of its loop (None when
    the log has none), found by the ``Pipelining loop`` context it appeared in or by the loop's name."""
    burst_fail, burst_ok, results, causes = [], [], [], []
    seen_fail, seen_ok = set(), set()
    context = None            # the loop being pipelined: causes between its start and its result belong to it
    open_causes = []
    for sev, code, msg in messages(text):
        if code in BURST_FAILURE_CODES or (code.startswith("214-2") and "burst" in msg.lower()):
            name = BURST_NAME.search(msg)
            f, line = _location(msg)
            rec = dict(code=code, severity=sev, name=name.group(1) if name else None, file=f, line=line, text=msg)
            key = (code, rec["name"], f, line)
            if key not in seen_fail:
                seen_fail.add(key)
                burst_fail.append(rec)
            continue
        if code == BURST_INFERRED_CODE:
            m = BURST_OK.search(msg)
            if m:
                f, line = _location(msg)
                length = m.group("len").lower()
                rec = dict(direction=m.group("dir").lower(), length=None if "variable" in length else int(length.split()[1]),
                           bit_width=int(m.group("bits")), loop=m.group("loop") or None, bundle=m.group("bundle"),
                           file=f, line=line, multiple=bool(m.group("multi")))
                key = tuple(rec.values())
                if key not in seen_ok:
                    seen_ok.add(key)
                    burst_ok.append(rec)
            continue
        m = PIPELINING.search(msg)
        if m and "result" not in msg:
            context, open_causes = m.group("loop"), []
            continue
        m = RESULT_NEW.search(msg) or RESULT_OLD.search(msg)
        if m:
            loop = m.groupdict().get("loop") or context
            res = dict(loop=loop, target=_int(m.group("target")), final=int(m.group("final")), depth=int(m.group("depth")),
                       code=code)
            results.append(res)
            for c in open_causes:
                c["result"] = res
            context, open_causes = None, []
            continue
        if code in II_CAUSE_CODES:
            module = MODULE.search(msg)
            loop = LOOP.search(msg)
            obj = OBJECT.search(msg)
            f, line = _location(msg, last=False)
            if code == "200-448":
                ii = LOWER_BOUND.search(msg)
                ram = CORE_RAM.search(msg)
                obj_name = (ram.group(1) or ram.group(2)) if ram else (obj.group(1) if obj else None)
            else:
                ii = II_AT.search(msg)
                obj_name = obj.group(1) if obj else None
            module_name = module.group(1) if module else None
            rec = dict(code=code, module=module_name,
                       loop=(loop.group(1) if loop else None) or _loop_of_module(module_name) or context,
                       object=obj_name, ii=_int(ii.group(1)) if ii else None, file=f, line=line, text=msg, result=None)
            causes.append(rec)
            if context is not None:
                open_causes.append(rec)
    # causes logged outside a "Pipelining loop" context: the (last) result of the loop they name
    by_loop = {r["loop"]: r for r in results if r["loop"]}
    for c in causes:
        if c["result"] is None and c["loop"] in by_loop:
            c["result"] = by_loop[c["loop"]]
    return dict(burst_failures=burst_fail, bursts_inferred=burst_ok, pipelining=results, ii_causes=_merge_causes(causes))


def _merge_causes(causes: list) -> list:
    """One record per (code, loop, object): Vitis repeats 200-885 for every II it tries; keep the highest."""
    out, index = [], {}
    for c in causes:
        key = (c["code"], c["loop"] or c["module"], c["object"])
        if key in index:
            kept = index[key]
            if (c["ii"] or 0) > (kept["ii"] or 0):
                kept["ii"] = c["ii"]
            kept["result"] = kept["result"] or c["result"]
            continue
        index[key] = c
        out.append(c)
    return out


__all__ = ["parse_log", "messages", "BURST_FAILURE_CODES", "BURST_INFERRED_CODE", "II_CAUSE_CODES"]
