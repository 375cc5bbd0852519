"""Integer expressions of the kernel's C++, for ``edgemoe hls-check``: constant folding of conditions
and the stride of an m_axi index along a loop's induction variable.

C casts are dropped, and the expression is evaluated with C semantics (truncating division) by a
small evaluator over Python's ``ast`` (never ``eval``).  The stride is measured, not derived: the
index is evaluated at several values of the induction variable with the other names set to random
integers, so ``base + iv`` gives 1 whatever base is, ``iv * K`` gives K and ``iv / K`` varies.
"""
from __future__ import annotations

import ast
import random
import re

_INT_TYPES = r"(?:unsigned\s+long\s+long|long\s+long|unsigned\s+long|unsigned\s+int|unsigned|long|int|short|char|" \
             r"size_t|ptrdiff_t|u?int(?:8|16|32|64)_t)"
_FCAST_RE = re.compile(rf"\b{_INT_TYPES}\s*\(")
_CCAST_RE = re.compile(rf"\(\s*(?:const\s+)?(?:signed\s+)?{_INT_TYPES}\s*\)")
_SCAST_RE = re.compile(r"\bstatic_cast\s*<[^<>]*>\s*\(")
_LIT_RE = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b")
_OCT_RE = re.compile(r"(?<![\w.])0+(\d)")


class Unknown(Exception):
    """The expression cannot be evaluated (an unknown construct or name)."""


def _c_div(a: int, b: int) -> int:
    if b == 0:
        raise Unknown("division by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _eval(node, env):
    if isinstance(node, ast.Expression):
        return _eval(node.body, env)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, bool)):
        return int(node.value)
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        raise Unknown(node.id)
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, env)
        ops = {ast.USub: lambda x: -x, ast.UAdd: lambda x: x, ast.Invert: lambda x: ~x, ast.Not: lambda x: int(not x)}
        if type(node.op) in ops:
            return ops[type(node.op)](v)
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, env), _eval(node.right, env)
        op = type(node.op)
        if op is ast.Div:
            return _c_div(a, b)
        if op is ast.Mod:
            return a - b * _c_div(a, b)
        if op in (ast.LShift, ast.RShift) and not 0 <= b < 256:
            raise Unknown("shift")
        ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b, ast.LShift: lambda: a << b,
               ast.RShift: lambda: a >> b, ast.BitAnd: lambda: a & b, ast.BitOr: lambda: a | b,
               ast.BitXor: lambda: a ^ b}
        if op in ops:
            return ops[op]()
    if isinstance(node, ast.BoolOp):
        vals = [_eval(v, env) for v in node.values]
        return int(all(vals)) if isinstance(node.op, ast.And) else int(any(vals))
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        a, b = _eval(node.left, env), _eval(node.comparators[0], env)
        ops = {ast.Lt: a < b, ast.LtE: a <= b, ast.Gt: a > b, ast.GtE: a >= b, ast.Eq: a == b, ast.NotEq: a != b}
        if type(node.ops[0]) in ops:
            return int(ops[type(node.ops[0])])
    raise Unknown(type(node).__name__)


def strip_casts(expr: str) -> str:
    e = _SCAST_RE.sub("(", expr)
    e = _CCAST_RE.sub("", e)
    e = _FCAST_RE.sub("(", e)
    return e


def to_python(expr: str) -> str:
    """C integer expression -> Python syntax (same meaning under the C-semantics evaluator)."""
    e = strip_casts(expr)
    e = _LIT_RE.sub(r"\1", e)
    e = _OCT_RE.sub(r"\1", e)
    e = e.replace("&&", " and ").replace("||", " or ")
    e = re.sub(r"!(?!=)", " not ", e)
    e = re.sub(r"\btrue\b", "1", e)
    e = re.sub(r"\bfalse\b", "0", e)
    return " ".join(e.split())


def evaluate(expr: str, env: dict) -> int:
    try:
        tree = ast.parse(to_python(expr), mode="eval")
    except SyntaxError:
        raise Unknown("syntax") from None
    return _eval(tree, env)


def const_value(expr: str):
    """The value of a constant integer expression (after preprocessing), or None."""
    py = to_python(expr)
    if not py or names_in(py):
        return None
    try:
        return evaluate(expr, {})
    except (Unknown, RecursionError):
        return None


_OPAQUE_RE = re.compile(r"([A-Za-z_]\w*(?:\s*(?:\.|->|::)\s*[A-Za-z_]\w*)*)\s*(?:<[^<>;()]*>)?\s*([(\[])")


def opaque_parts(expr: str) -> tuple:
    """(expr with every call, subscript and member access replaced by a fresh name, [(name, text)])."""
    parts = []
    e = strip_casts(expr)
    while True:
        m = _OPAQUE_RE.search(e)
        if not m:
            break
        close_c = ")" if m.group(2) == "(" else "]"
        depth, j = 0, m.end() - 1
        for j in range(m.end() - 1, len(e)):
            if e[j] in "([":
                depth += 1
            elif e[j] in ")]":
                depth -= 1
                if depth == 0:
                    break
        if e[j] != close_c and depth != 0:
            break
        name = f"opq_{len(parts)}"
        parts.append((name, e[m.start():j + 1]))
        e = e[:m.start()] + name + e[j + 1:]
    e = re.sub(r"([A-Za-z_]\w*)\s*(?:\.|->)\s*([A-Za-z_]\w*)", r"\1_\2", e)
    return e, parts


def names_in(expr: str) -> set:
    return set(re.findall(r"\b[A-Za-z_]\w*\b", expr)) - {"and", "or", "not"}


def index_stride(expr: str, iv: str | None, step: str | None, advanced: dict) -> tuple:
    """How ``expr`` moves when the loop advances one iteration: ("ok", "") for +1, or (problem, detail)
    with problem one of "advanced" (uses a variable advanced by hand in the loop), "indirect" (the
    induction variable goes through a call, array or member), "none" (does not depend on the loop),
    "stride" (a step other than 1), "unknown"."""
    if iv is None:
        return "unknown", "the loop has no induction variable"
    used = names_in(strip_casts(expr))
    adv = sorted(n for n in used if n in advanced)
    if adv:
        return "advanced", ", ".join(advanced[n] for n in adv)
    e, parts = opaque_parts(expr)
    for _, text in parts:
        if re.search(rf"\b{re.escape(iv)}\b", text):
            return "indirect", text
    if step is None:
        return "unknown", f"the increment of {iv} is not a constant step"
    names = names_in(to_python(e)) - {iv}
    rng = random.Random(len(expr) * 7919 + len(names))
    diffs = set()
    try:
        tree = ast.parse(to_python(e), mode="eval")
        step_tree = ast.parse(to_python(step), mode="eval")
    except SyntaxError:
        return "unknown", "index not understood"
    for _ in range(4):
        env = {n: rng.randint(2, 61) for n in names | names_in(to_python(step))}
        try:
            s = _eval(step_tree, env)
            for t in (0, 1, 6, 19):
                env[iv] = t
                a = _eval(tree, env)
                env[iv] = t + s
                diffs.add(_eval(tree, env) - a)
        except (Unknown, RecursionError) as ex:
            return "unknown", f"index not understood ({ex})"
    if diffs == {1}:
        return "ok", ""
    if diffs == {0}:
        return "none", f"does not depend on {iv}"
    if len(diffs) == 1:
        return "stride", f"stride {diffs.pop()} words per iteration"
    return "stride", "stride not 1 (depends on other values or is not linear)"


def substitute(expr: str, env: dict, rounds: int = 8) -> str:
    """Replace the names of ``env`` (not members, not called functions) by their parenthesised values."""
    if not env:
        return expr
    pat = re.compile(r"(?<![\w.>:])(" + "|".join(re.escape(k) for k in sorted(env, key=len, reverse=True)) +
                     r")\b(?!\s*\()")
    for _ in range(rounds):
        new = pat.sub(lambda m: f"({env[m.group(1)]})", expr)
        if new == expr or len(new) > 20000:
            return new
        expr = new
    return expr


__all__ = ["Unknown", "evaluate", "const_value", "strip_casts", "to_python", "index_stride", "substitute",
           "opaque_parts", "names_in"]
