"""Static check that HLS C++ keeps to the synthesizable subset the kernel promises.

Rules (each violation names file, line and rule):
  heap        ``new`` / ``delete`` / ``malloc`` / ``calloc`` / ``realloc`` / ``free``
  stl         STL containers, strings, smart pointers, std::function, or their headers
  exceptions  ``throw`` / ``try`` / ``catch``
  recursion   a function that calls itself, directly or through other functions of the same sources
  loop-bound  a loop whose bound is not a compile-time constant (literals, ALL_CAPS macros/constants,
              template parameters, ``sizeof``) and has no ``#pragma HLS loop_tripcount`` in its body
              before any nested loop; ``while`` / ``do`` loops always need the pragma

Comments and string literals are ignored.  This is a lexical check (no C++ parser): it is meant for
the project's own sources, written to be checked by it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

RULES = ("heap", "stl", "exceptions", "recursion", "loop-bound")

_STL_NAMES = ("vector", "map", "multimap", "set", "multiset", "unordered_map", "unordered_set",
              "unordered_multimap", "unordered_multiset", "list", "forward_list", "deque", "queue",
              "priority_queue", "stack", "string", "wstring", "array", "function", "shared_ptr",
              "unique_ptr", "weak_ptr", "make_shared", "make_unique", "bitset", "valarray")
_STL_HEADERS = ("vector", "map", "set", "list", "forward_list", "deque", "queue", "stack", "string",
                "unordered_map", "unordered_set", "memory", "functional", "array", "bitset", "valarray",
                "stdexcept", "exception")
_HEAP_RE = re.compile(r"\b(new|delete)\b|\b(malloc|calloc|realloc|free)\s*\(")
_STL_RE = re.compile(r"\bstd\s*::\s*(" + "|".join(_STL_NAMES) + r")\b")
_STL_INC_RE = re.compile(r"#\s*include\s*<(" + "|".join(_STL_HEADERS) + r")>")
_EXC_RE = re.compile(r"\b(throw|try|catch)\b")
_KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "catch", "do", "else", "case",
             "static_cast", "reinterpret_cast", "const_cast", "dynamic_cast", "defined", "alignof",
             "decltype", "typeid", "new", "delete", "throw"}
_CONST_TOKEN_RE = re.compile(r"^(?:\d[\w.']*|[A-Z_][A-Z0-9_]*|sizeof|[-+*/%()<>\s]|<<|>>)+$")
_TRIPCOUNT_RE = re.compile(r"#\s*pragma\s+HLS\s+loop_tripcount\b", re.IGNORECASE)


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: [{self.rule}] {self.message}"


def strip_comments(text: str) -> str:
    """Comments and string/char literals replaced by spaces (newlines kept, so lines still match)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * (j - i - 2) + c if j - i >= 2 else text[i:j])
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _match_paren(text: str, pos: int, open_c: str = "(", close_c: str = ")") -> int:
    """Index of the bracket closing the one at ``pos`` (or len(text))."""
    depth = 0
    for j in range(pos, len(text)):
        if text[j] == open_c:
            depth += 1
        elif text[j] == close_c:
            depth -= 1
            if depth == 0:
                return j
    return len(text)


def _split_top(s: str, sep: str = ";") -> list:
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _template_params(text: str) -> set:
    """Names of the int/bool template parameters declared in the text (constants inside templates)."""
    names = set()
    for m in re.finditer(r"template\s*<([^<>]*(?:<[^<>]*>[^<>]*)*)>", text):
        for part in m.group(1).split(","):
            mm = re.match(r"\s*(?:int|unsigned|bool|long|short|char|ap_q_mode|ap_o_mode)\s+(\w+)", part)
            if mm:
                names.add(mm.group(1))
    return names


def _is_constant_expr(expr: str, consts: set) -> bool:
    e = expr.strip()
    if not e:
        return False
    for name in consts:
        e = re.sub(rf"\b{re.escape(name)}\b", "1", e)
    return bool(_CONST_TOKEN_RE.match(e))


def _loop_bound_is_constant(cond: str, consts: set) -> bool:
    m = re.match(r"^\s*(\w+)\s*(<=|>=|<|>|!=)\s*(.+?)\s*$", cond, re.S)
    if m and _is_constant_expr(m.group(3), consts):
        return True
    m = re.match(r"^\s*(.+?)\s*(<=|>=|<|>|!=)\s*(\w+)\s*$", cond, re.S)
    return bool(m and _is_constant_expr(m.group(1), consts))


def _loop_body(text: str, pos: int) -> str:
    """Text of the statement starting at ``pos`` (a braced block or one statement)."""
    m = re.compile(r"\s*").match(text, pos)
    j = m.end()
    while text.startswith("#", j):  # a pragma line before the body's brace
        k = text.find("\n", j)
        j = len(text) if k < 0 else k + 1
        j = re.compile(r"\s*").match(text, j).end()
    if j < len(text) and text[j] == "{":
        return text[pos:_match_paren(text, j, "{", "}") + 1]
    k = text.find(";", j)
    return text[pos:(len(text) if k < 0 else k + 1)]


def _has_tripcount_before_nested(body: str) -> bool:
    nested = re.search(r"\b(for|while|do)\b", body)
    head = body if nested is None else body[:nested.start()]
    return bool(_TRIPCOUNT_RE.search(head))


def _check_loops(text: str, name: str, consts: set) -> list:
    out = []
    for m in re.finditer(r"\b(for|while|do)\b", text):
        kw = m.group(1)
        pos = m.end()
        if kw == "do":
            if not re.match(r"\s*\{", text[pos:]):
                continue
            body = _loop_body(text, pos)
            if not _has_tripcount_before_nested(body[1:]):
                out.append(Violation(name, _line_of(text, m.start()), "loop-bound",
                                     "do-while loop without '#pragma HLS loop_tripcount'"))
            continue
        p = re.compile(r"\s*\(").match(text, pos)
        if not p:
            continue
        # 'while' closing a do-while: `} while (...);` -- handled with its 'do'
        before = text[:m.start()].rstrip()
        close = _match_paren(text, p.end() - 1)
        if kw == "while" and before.endswith("}") and text[close + 1:].lstrip().startswith(";"):
            continue
        header = text[p.end():close]
        body = _loop_body(text, close + 1)
        if kw == "for":
            parts = _split_top(header)
            cond = parts[1] if len(parts) == 3 else ""
            if _loop_bound_is_constant(cond, consts):
                continue
            what = f"loop bound '{cond.strip()}' is not a compile-time constant"
        else:
            what = "while loop"
        if not _has_tripcount_before_nested(body):
            out.append(Violation(name, _line_of(text, m.start()), "loop-bound",
                                 f"{what} and the loop has no '#pragma HLS loop_tripcount'"))
    return out


def _functions(text: str) -> list:
    """(name, start, body) of every function definition (brace-matched)."""
    funcs = []
    for m in re.finditer(r"\b([A-Za-z_]\w*)\s*\(", text):
        fname = m.group(1)
        if fname in _KEYWORDS:
            continue
        close = _match_paren(text, m.end() - 1)
        rest = re.compile(r"\s*(?:const\s*)?(?:noexcept\s*)?(?::[^;{]*)?\{").match(text, close + 1)
        if not rest:
            continue
        # a definition: the name follows a type or qualifier, not an operator, '.', '->' or 'return'
        prev = text[:m.start()].rstrip()
        if not prev or prev[-1] in "=.,(!|?+-/%[" or prev.endswith("->") or \
                re.search(r"\b(return|else|new|case)$", prev):
            continue
        if re.search(r"\b(if|for|while|switch)\s*$", prev):
            continue
        brace = rest.end() - 1
        end = _match_paren(text, brace, "{", "}")
        funcs.append((fname, m.start(), text[brace:end + 1]))
    return funcs


def _check_recursion(text: str, name: str) -> list:
    funcs = _functions(text)
    defined = {f for f, _, _ in funcs}
    calls = {}
    where = {}
    for fname, start, body in funcs:
        called = {c for c in re.findall(r"\b([A-Za-z_]\w*)\s*(?:<[^;(){}]*>)?\s*\(", body) if c in defined}
        calls.setdefault(fname, set()).update(called)
        where.setdefault(fname, start)
    out = []
    reported = set()
    for f in sorted(calls):
        # is f reachable from itself?
        seen, stack = set(), list(calls[f])
        while stack:
            g = stack.pop()
            if g == f:
                break
            if g in seen:
                continue
            seen.add(g)
            stack.extend(calls.get(g, ()))
        else:
            continue
        if f not in reported:
            reported.add(f)
            how = "calls itself" if f in calls[f] else "calls itself through other functions"
            out.append(Violation(name, _line_of(text, where[f]), "recursion", f"function '{f}' {how}"))
    return out


def check_source(text: str, name: str = "<source>") -> list:
    """Violations of the synthesizable-subset rules in one C++ source text."""
    code = strip_comments(text)
    out = []
    for m in _HEAP_RE.finditer(code):
        out.append(Violation(name, _line_of(code, m.start()), "heap",
                             f"dynamic memory '{(m.group(1) or m.group(2))}'"))
    for m in _STL_RE.finditer(code):
        out.append(Violation(name, _line_of(code, m.start()), "stl", f"STL type 'std::{m.group(1)}'"))
    for m in _STL_INC_RE.finditer(code):
        out.append(Violation(name, _line_of(code, m.start()), "stl", f"STL header <{m.group(1)}>"))
    for m in _EXC_RE.finditer(code):
        out.append(Violation(name, _line_of(code, m.start()), "exceptions", f"exception keyword '{m.group(1)}'"))
    out += _check_recursion(code, name)
    out += _check_loops(code, name, _template_params(code))
    return sorted(out, key=lambda v: (v.file, v.line, v.rule))


def check_files(paths: Iterable) -> list:
    out = []
    for p in paths:
        p = Path(p)
        out += check_source(p.read_text(), str(p))
    return out


def hls_sources() -> list:
    """The project's HLS sources (headers under edgemoe/hls/include and templates)."""
    from .render import INCLUDE_DIR, TEMPLATE_DIR
    return sorted(INCLUDE_DIR.glob("*.h")) + sorted(TEMPLATE_DIR.glob("*.h.j2")) + \
        sorted(TEMPLATE_DIR.glob("*.cpp.j2"))


def check_hls_sources(extra: Iterable = ()) -> list:
    return check_files(list(hls_sources()) + list(extra))


__all__ = ["Violation", "RULES", "check_source", "check_files", "check_hls_sources", "hls_sources",
           "strip_comments"]
