"""Lexical structure of the kernel's C++ for ``edgemoe hls-check`` (no C++ parser: written for the
project's own sources, on text whose comments and literals are blanked): function definitions
(template or not, their INLINE pragma), loops (label, induction variable and step, body, PIPELINE),
statement extents, and the branches of a body that run only on some paths.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .synth_check import _match_paren

_KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "catch", "do", "else", "case", "static_cast",
             "reinterpret_cast", "const_cast", "dynamic_cast", "defined", "alignof", "decltype", "typeid", "new",
             "delete", "throw", "static_assert", "operator"}
_INLINE_RE = re.compile(r"^[ \t]*#[ \t]*pragma[ \t]+HLS[ \t]+inline\b([^\n]*)", re.I | re.M)
_PIPELINE_RE = re.compile(r"^[ \t]*#[ \t]*pragma[ \t]+HLS[ \t]+pipeline\b([^\n]*)", re.I | re.M)


@dataclass
class Function:
    name: str
    pos: int            # of the name
    open: int           # the body's '{'
    end: int            # just past the body's '}'
    params: list        # [(type text, name or None)]
    template: bool      # a function template or a member of a class template
    inline: str | None  # "on" (#pragma HLS INLINE), "off", or None
    inline_pos: int = -1


@dataclass
class Loop:
    kw: str             # for / while
    pos: int            # of the keyword
    label: str | None
    label_pos: int
    body: int           # body statement [body, end)
    end: int
    braced: bool
    pipelined: bool
    iv: str | None = None
    step: str | None = None   # the induction variable's increment per iteration (an expression)
    func: Function | None = None


def split_args(s: str, angles: bool = False) -> list:
    """Top-level comma-separated parts of s (``angles``: '<' '>' nest too, for parameter types)."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch in "([{" or (angles and ch == "<"):
            depth += 1
        elif ch in ")]}" or (angles and ch == ">"):
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    last = "".join(cur)
    if last.strip() or parts:
        parts.append(last)
    return parts


def parse_params(text: str) -> list:
    out = []
    for p in split_args(text, angles=True):
        p = p.split("=")[0].strip()
        if not p or p == "void" or p == "...":
            continue
        p = re.sub(r"\[[^\]]*\]", "", p).strip()
        m = re.search(r"([A-Za-z_]\w*)\s*$", p)
        name = m.group(1) if m else None
        typ = p[:m.start()] if m else p
        if name and not re.search(r"[\w>*&]", typ):   # a bare type (unnamed parameter)
            typ, name = p, None
        out.append((typ.strip(), name))
    return out


def _decl_start(code: str, pos: int) -> int:
    """Start of the declaration holding ``pos``: after the previous ';', '{', '}' or preprocessor line."""
    i = max(code.rfind(";", 0, pos), code.rfind("{", 0, pos), code.rfind("}", 0, pos))
    j = code.rfind("\n#", 0, pos)
    if j > i:
        i = code.find("\n", j + 1)
    return i + 1


def _template_class_spans(code: str) -> list:
    spans = []
    for m in re.finditer(r"\b(struct|class)\s+[A-Za-z_]\w*[^;{()]*\{", code):
        if re.search(r"\btemplate\s*<", code[_decl_start(code, m.start()):m.start()]):
            spans.append((m.end() - 1, _match_paren(code, m.end() - 1, "{", "}")))
    return spans


_FUNC_RE = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_AFTER_RE = re.compile(r"\s*(?:const\s*)?(?:noexcept\s*)?(?:->[^;{]*)?(?::[^;{]*)?\{")


def find_functions(code: str) -> list:
    """Every function definition (brace matched) of the code."""
    funcs = []
    tspans = _template_class_spans(code)
    pos = 0
    while True:
        m = _FUNC_RE.search(code, pos)
        if not m:
            break
        pos = m.end()
        name = m.group(1)
        if name in _KEYWORDS:
            continue
        prev = code[max(0, m.start() - 80):m.start()].rstrip()
        if prev and ((prev[-1] in "=.,(!|?+-/%[:" and not prev.endswith("::")) or prev.endswith("->") or
                     re.search(r"\b(return|else|new|case|if|for|while|switch)$", prev)):
            continue
        close = _match_paren(code, m.end() - 1)
        rest = _AFTER_RE.match(code, close + 1)
        if not rest:
            continue
        brace = rest.end() - 1
        end = _match_paren(code, brace, "{", "}") + 1
        prefix = code[_decl_start(code, m.start()):m.start()]
        template = bool(re.search(r"\btemplate\s*<", prefix)) or any(a < m.start() < b for a, b in tspans)
        body = code[brace:end]
        inline, ipos = None, -1
        im = _INLINE_RE.search(body)
        if im:
            inline = "off" if re.search(r"\boff\b", im.group(1), re.I) else "on"
            ipos = brace + im.start()
        funcs.append(Function(name, m.start(), brace, end, parse_params(code[m.end():close]), template, inline, ipos))
        pos = brace + 1   # functions do not nest, but class bodies inside functions are rare: scan on
    return funcs


def skip_space(code: str, pos: int) -> int:
    """Past whitespace and preprocessor (pragma) lines."""
    n = len(code)
    while pos < n:
        m = re.compile(r"\s*").match(code, pos)
        pos = m.end()
        if pos < n and code[pos] == "#":
            k = code.find("\n", pos)
            pos = n if k < 0 else k + 1
            continue
        break
    return pos


_STMT_KW = re.compile(r"(if|for|while|switch|do|else)\b")
_LABEL_RE = re.compile(r"([A-Za-z_]\w*)\s*:(?!:)")


def stmt_end(code: str, pos: int) -> int:
    """End (exclusive) of the statement that starts at ``pos``."""
    n = len(code)
    j = skip_space(code, pos)
    if j >= n:
        return n
    if code[j] == "{":
        return _match_paren(code, j, "{", "}") + 1
    m = _STMT_KW.match(code, j)
    if m:
        kw, k = m.group(1), m.end()
        if kw == "else":
            return stmt_end(code, k)
        if kw == "do":
            e = stmt_end(code, k)
            w = re.compile(r"\s*while\s*\(").match(code, e)
            if w:
                c = _match_paren(code, w.end() - 1)
                s = code.find(";", c)
                return n if s < 0 else s + 1
            return e
        p = re.compile(r"\s*\(").match(code, k)
        if p:
            e = stmt_end(code, _match_paren(code, p.end() - 1) + 1)
            if kw == "if":
                el = re.compile(r"\s*else\b").match(code, e)
                if el:
                    return stmt_end(code, el.end())
            return e
    m = _LABEL_RE.match(code, j)
    if m and m.group(1) not in ("default", "public", "private", "protected") and \
            not re.search(r"\bcase\s*$", code[max(0, j - 20):j]):
        return stmt_end(code, m.end())
    k = scan_to(code, j, n, ";")
    return k + 1 if k < n and code[k] == ";" else k


def scan_to(code: str, pos: int, limit: int, stops: str) -> int:
    """The first position from ``pos`` (before ``limit``) of a character of ``stops`` outside brackets, or
    of a bracket closing one opened before ``pos``; ``limit`` when there is none."""
    depth = 0
    for k in range(pos, limit):
        c = code[k]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return k
        elif c in stops and depth == 0:
            return k
    return limit


def loop_label(code: str, pos: int) -> tuple:
    """(label, position) of the C label right before ``pos``, or (None, -1)."""
    before = code[max(0, pos - 200):pos]
    m = re.search(r"([A-Za-z_]\w*)\s*:\s*$", before)
    if not m or m.group(1) in ("default", "public", "private", "protected", "else", "do"):
        return None, -1
    pre = before[:m.start()].rstrip()
    if pre.endswith(":") or pre.endswith("?") or re.search(r"\bcase$", pre):
        return None, -1
    return m.group(1), max(0, pos - 200) + m.start()


def _induction(header: str) -> tuple:
    parts = header.split(";")
    if len(parts) != 3:
        return None, None
    init, _, inc = parts
    m = re.search(r"([A-Za-z_]\w*)\s*=[^=]", init)
    iv = m.group(1) if m else None
    if iv is None:
        return None, None
    inc = inc.strip()
    v = re.escape(iv)
    if re.fullmatch(rf"(?:{v}\s*\+\+|\+\+\s*{v})", inc):
        return iv, "1"
    if re.fullmatch(rf"(?:{v}\s*--|--\s*{v})", inc):
        return iv, "-1"
    m = re.fullmatch(rf"{v}\s*(\+|-)=\s*(.+)", inc, re.S)
    if m:
        return iv, f"({m.group(2)})" if m.group(1) == "+" else f"-({m.group(2)})"
    m = re.fullmatch(rf"{v}\s*=\s*{v}\s*\+\s*(.+)", inc, re.S)
    if m:
        return iv, f"({m.group(1)})"
    return iv, None


def find_loops(code: str, functions=()) -> list:
    loops = []
    for m in re.finditer(r"\b(for|while)\s*\(", code):
        kw = m.group(1)
        close = _match_paren(code, m.end() - 1)
        if kw == "while" and code[max(0, m.start() - 200):m.start()].rstrip().endswith("}") and \
                code[close + 1:close + 200].lstrip().startswith(";"):
            continue   # the 'while' of a do-while
        body = close + 1
        end = stmt_end(code, body)
        j = skip_space(code, body)
        braced = j < len(code) and code[j] == "{"
        head = code[body:end]
        nested = re.search(r"\b(for|while|do)\b", head)
        head = head if nested is None else head[:nested.start()]
        pm = _PIPELINE_RE.search(head)
        pipelined = bool(pm) and not re.search(r"\boff\b", pm.group(1), re.I)
        label, lpos = loop_label(code, m.start())
        iv, step = _induction(code[m.end():close]) if kw == "for" else (None, None)
        func = None
        for f in functions:
            if f.open < m.start() < f.end and (func is None or f.open > func.open):
                func = f
        loops.append(Loop(kw, m.start(), label, lpos, body, end, braced, pipelined, iv, step, func))
    return loops


def conditional_regions(code: str, start: int, end: int) -> list:
    """[(a, b, state)] inside [start, end): the branches of every if / else / switch; state is
    "dead" or "always" when the condition is a constant expression, else "cond"."""
    from .hls_expr import const_value
    out = []
    for m in re.finditer(r"\b(if|switch)\s*\(", code[start:end]):
        kw = m.group(1)
        p = start + m.end() - 1
        c = _match_paren(code, p)
        cond = const_value(code[p + 1:c]) if kw == "if" else None
        then_end = stmt_end(code, c + 1)
        state = "cond" if cond is None else ("always" if cond else "dead")
        out.append((c + 1, then_end, state))
        if kw == "if":
            el = re.compile(r"\s*else\b").match(code, then_end)
            if el:
                e2 = stmt_end(code, el.end())
                out.append((el.end(), e2, "cond" if cond is None else ("dead" if cond else "always")))
    return out


def in_expression_branch(code: str, stmt_start: int, pos: int) -> bool:
    """True when ``pos`` sits after a '?', ':', '&&' or '||' of its own expression (evaluated only
    on some paths): walks back from pos to the statement start, leaving nested parentheses."""
    depth = 0
    skipping = False   # after a ',' of pos's own group: the other arguments do not guard pos
    k = pos - 1
    while k >= stmt_start:
        c = code[k]
        if c in ")]":
            depth += 1
        elif c in "([":
            if depth == 0:
                skipping = False   # leaving a group that encloses pos: keep looking outside it
            else:
                depth -= 1
        elif depth == 0 and c == ",":
            skipping = True
        elif depth == 0 and skipping and c not in ";{}":
            pass
        elif depth == 0:
            two = code[k - 1:k + 1] if k > 0 else ""
            if two in ("&&", "||"):
                return True
            if c == "?":
                return True
            if c == ":" and code[k - 1:k] != ":" and code[k + 1:k + 2] != ":":
                return True
            if c in ";{}":
                return False
        k -= 1
    return False


def statement_start(code: str, pos: int, floor: int = 0) -> int:
    i = max(code.rfind(";", floor, pos), code.rfind("{", floor, pos), code.rfind("}", floor, pos))
    return max(i + 1, floor)


__all__ = ["Function", "Loop", "split_args", "parse_params", "find_functions", "find_loops", "stmt_end", "skip_space",
           "loop_label", "conditional_regions", "in_expression_branch", "statement_start"]
