"""Partitioned arrays of the kernel, for the ``bank`` rule of ``edgemoe hls-check`` (hls_banks).

The ARRAY_PARTITION / ARRAY_RESHAPE / BIND_STORAGE pragmas name arrays: globals (wherever the pragma
sits), or locals of the function holding the pragma.  An :class:`ArrayDef` keeps, per dimension, the
partition (cyclic / block / complete with its factor) and the reshape, and maps an index to the bank
of that dimension and the word address inside the bank.  The preprocessor leaves ``#pragma HLS``
lines alone, so their factors and dims are evaluated with the macro table of the build
(:func:`macro_table`, ``cpp -dM``).
"""
from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass, field

from .hls_expr import const_value
from .hls_source import Unit
from .hls_syntax import Function, split_args
from .synth_check import _match_paren

_PRAGMA_RE = re.compile(r"^[ \t]*#[ \t]*pragma[ \t]+HLS[ \t]+(array_partition|array_reshape|bind_storage)\b([^\n]*)",
                        re.I | re.M)
_DEFINE_RE = re.compile(r"^#define\s+([A-Za-z_]\w*)(?!\()\s*(.*)$")
_NAME_RE = re.compile(r"\b[A-Za-z_]\w*\b")
_NOT_TYPES = {"return", "else", "case", "do", "sizeof", "throw", "new", "delete", "goto", "co_return"}


def macro_table(top, include_dirs, syn_flags, defines=()) -> dict:
    """{name: body} of the object-like macros of the build (``cpp -dM``); {} when it fails."""
    from .aptypes import CXX_STD, find_ap_types, find_cxx
    cmd = [find_cxx(), f"-std={CXX_STD}", "-E", "-dM", "-isystem", str(find_ap_types())]
    cmd += [f"-I{d}" for d in include_dirs] + [f"-D{d}" for d in defines] + list(syn_flags) + [str(top)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    out = {}
    for ln in res.stdout.splitlines():
        m = _DEFINE_RE.match(ln)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def expand_macros(text: str, macros: dict, rounds: int = 10) -> str:
    for _ in range(rounds):
        new = _NAME_RE.sub(lambda m: f"({macros[m.group(0)]})" if m.group(0) in macros else m.group(0), text)
        if new == text or len(new) > 5000:
            return new
        text = new
    return text


def macro_value(text: str, macros: dict):
    return const_value(expand_macros(text, macros)) if text else None


@dataclass
class Split:
    kind: str                 # cyclic / block / complete
    factor: int | None = None


@dataclass
class ArrayDef:
    key: tuple                # ("global", name) or ("local", function pos, name)
    name: str
    fn: Function | None
    dims: list                # dimension texts of the declaration
    decl_pos: int
    parts: dict = field(default_factory=dict)      # dim (1-based; 0: every dim) -> Split
    reshapes: dict = field(default_factory=dict)
    storage: tuple = ("", "")                       # BIND_STORAGE (type, impl), lower case

    def part(self, d: int):
        return self.parts.get(d + 1) or self.parts.get(0)

    def reshape(self, d: int):
        return None if self.part(d) else (self.reshapes.get(d + 1) or self.reshapes.get(0))

    def is_register(self, dims: list) -> bool:
        """Every dimension split down to one element: each bank is one register (or one reshaped word
        held in a register), read by any number of consumers; a run-time index on it is a mux."""
        def single(d, n):
            s = self.part(d) or self.reshape(d)
            if n == 1 or (s is not None and s.kind == "complete"):
                return True
            return s is not None and n is not None and s.factor is not None and s.factor >= n
        return all(single(d, n) for d, n in enumerate(dims))

    def banks(self, d: int, n):
        """Banks of dimension d (None: not partitioned or unknown)."""
        s = self.part(d)
        if s is None:
            return None
        if s.kind == "complete":
            return n
        return min(s.factor, n) if n else s.factor

    def bank_addr(self, d: int, n, i: int) -> tuple:
        """(bank of dimension d or None when d is not partitioned, the index's address within the bank);
        bank "?" when it cannot be told (a block partition of unknown size)."""
        s = self.part(d)
        if s is not None:
            if s.kind == "complete":
                return i, 0
            if s.kind == "cyclic":
                return i % s.factor, i // s.factor
            if n is None:
                return "?", i
            b = math.ceil(n / s.factor)
            return i // b, i % b
        r = self.reshape(d)
        if r is None:
            return None, i
        if r.kind == "complete":
            return None, 0
        if r.kind == "cyclic":
            return None, i // r.factor
        return None, (i % math.ceil(n / r.factor) if n else i)

    def ports(self) -> tuple:
        """(accesses, writes) one bank serves per cycle (None: no separate limit)."""
        typ, impl = self.storage
        if typ in ("ram_1p", "rom_1p", "ram_1wnr"):
            return 1, None
        if impl == "uram":
            return 2, 1
        if typ == "ram_s2p":
            return 2, 1
        return 2, None

    def memory(self) -> str:
        typ, impl = self.storage
        if impl == "uram":
            return "UltraRAM"
        return {"bram": "block RAM", "lutram": "LUTRAM"}.get(impl, "ROM" if typ.startswith("rom") else "memory")


_DECL_HEAD_RE = re.compile(r"\s*(?:(?:const|static|volatile|constexpr)\s+)*[A-Za-z_][\w:]*\s*(?:<[^;{}]*>)?[\s*&]+"
                           r"[A-Za-z_]\w*\s*\[")


def is_decl(code: str, pos: int) -> bool:
    """True when the name at ``pos`` is being declared: a type right before it, or a ',' of a
    declaration statement (``T a[N], b[N];``)."""
    lines = code[max(0, pos - 400):pos].split("\n")
    before = "\n".join(ln for ln in lines if not ln.lstrip().startswith("#")).rstrip()
    m = re.search(r"([A-Za-z_]\w*)$", before)
    if m:
        return m.group(1) not in _NOT_TYPES
    if before.endswith(","):
        start = max(before.rfind(";"), before.rfind("{"), before.rfind("}"), before.rfind("("))
        return before[start:start + 1] != "(" and bool(_DECL_HEAD_RE.match(before[start + 1:]))
    return bool(re.search(r"[A-Za-z_]\w*\s*<[^;(){}]*>$", before))


def array_decl(code: str, name: str, start: int, end: int) -> tuple:
    """(position, [dimension texts]) of the declaration of array ``name`` in code[start:end], or None."""
    for m in re.finditer(rf"(?<![\w.>:]){re.escape(name)}\s*\[", code[start:end]):
        p = start + m.start()
        if not is_decl(code, p):
            continue
        dims, k = [], start + m.end() - 1
        while k < len(code) and code[k] == "[":
            c = _match_paren(code, k, "[", "]")
            dims.append(code[k + 1:c].strip())
            k = c + 1
            while k < len(code) and code[k] in " \t":
                k += 1
        if code[k:k + 1] in (";", "=", ",", "{", ")"):
            return p, dims
    return None


def _at_file_scope(unit: Unit, pos: int) -> bool:
    return unit.function_at(pos) is None


def global_decl(unit: Unit, name: str) -> tuple:
    """The file-scope declaration of ``name`` (not a parameter of a prototype)."""
    code = unit.code
    start = 0
    while True:
        hit = array_decl(code, name, start, len(code))
        if hit is None:
            return None
        p = hit[0]
        head = code[max(code.rfind(";", 0, p), code.rfind("}", 0, p), code.rfind("{", 0, p)) + 1:p]
        if _at_file_scope(unit, p) and head.count("(") == head.count(")"):
            return hit
        start = p + len(name)


def parse_split(args: str, macros: dict) -> tuple:
    """(variable, Split, dim) of a partition / reshape pragma's arguments."""
    var, kind, factor, dim = None, "complete", None, 1
    for tok in args.split():
        k, _, v = tok.partition("=")
        k = k.lower()
        if k == "variable":
            var = v
        elif k == "type":
            kind = v.lower()
        elif k == "factor":
            factor = macro_value(v, macros)
        elif k == "dim":
            d = macro_value(v, macros)
            dim = d if d is not None else 1
        elif not v and k in ("cyclic", "block", "complete"):
            kind = k
    if kind in ("cyclic", "block") and not factor:
        factor = 1   # Vitis requires a factor: without one the dimension is not split
    return var, Split(kind, factor), dim


def find_arrays(unit: Unit, macros: dict) -> dict:
    """{key: ArrayDef} of every array a partition / reshape pragma names (BIND_STORAGE attached)."""
    code = unit.code
    defs, storage = {}, []
    for m in _PRAGMA_RE.finditer(code):
        directive, args = m.group(1).lower(), m.group(2)
        fn = unit.function_at(m.start())
        if directive == "bind_storage":
            v = re.search(r"\bvariable\s*=\s*(\w+)", args, re.I)
            typ = re.search(r"\btype\s*=\s*(\w+)", args, re.I)
            impl = re.search(r"\bimpl\s*=\s*(\w+)", args, re.I)
            if v:
                storage.append((fn, v.group(1), (typ.group(1).lower() if typ else "", impl.group(1).lower() if impl else "")))
            continue
        var, split, dim = parse_split(args, macros)
        if not var:
            continue
        key = _resolve(unit, fn, var)
        if key is None:
            continue
        if key not in defs:
            hit = global_decl(unit, var) if key[0] == "global" else array_decl(code, var, fn.open, fn.end)
            if hit is None:
                continue
            defs[key] = ArrayDef(key, var, fn if key[0] == "local" else None, hit[1], hit[0])
        (defs[key].parts if directive == "array_partition" else defs[key].reshapes)[dim] = split
    for fn, var, st in storage:
        key = _resolve(unit, fn, var)
        if key in defs:
            defs[key].storage = st
    return defs


def _resolve(unit: Unit, fn, var: str):
    """The array a pragma in ``fn`` names: a local of fn, else a global (a parameter: not followed)."""
    if fn is not None:
        if array_decl(unit.code, var, fn.open, fn.end):
            return ("local", fn.pos, var)
        if any(n == var for _, n in fn.params):
            return None
    return ("global", var)


def template_params(code: str, fn: Function) -> list:
    """[(name, is_value, default text)] of the template header right before ``fn``."""
    from .hls_syntax import _decl_start
    prefix = code[_decl_start(code, fn.pos):fn.pos]
    m = re.search(r"\btemplate\s*<", prefix)
    if not m:
        return []
    start = m.end() - 1
    depth, end = 0, len(prefix)
    for k in range(start, len(prefix)):
        depth += {"<": 1, ">": -1}.get(prefix[k], 0)
        if depth == 0:
            end = k
            break
    out = []
    for p in split_args(prefix[start + 1:end], angles=True):
        head, _, default = p.partition("=")
        nm = re.search(r"([A-Za-z_]\w*)\s*$", head.strip())
        if nm:
            is_value = not re.match(r"\s*(class|typename)\b", head)
            out.append((nm.group(1), is_value, default.strip() or None))
    return out


def raw_params(code: str, fn: Function) -> list:
    """[(name, dims, default text)] of fn's parameters: dims are the declared array dimension texts,
    with None first for a pointer (``T *p``, ``T (*p)[N]``) and none for a reference to an array's
    first dimension (``T (&p)[N]``: dims [N])."""
    open_p = code.find("(", fn.pos)
    close = _match_paren(code, open_p)
    out = []
    for p in split_args(code[open_p + 1:close], angles=True):
        p, _, default = p.partition("=")
        default = default.strip() or None
        m = re.search(r"\(\s*([*&])\s*([A-Za-z_]\w*)\s*\)\s*((?:\[[^\]]*\]\s*)+)$", p.strip())
        if m:
            dims = re.findall(r"\[([^\]]*)\]", m.group(3))
            out.append((m.group(2), ([None] if m.group(1) == "*" else []) + [d.strip() for d in dims], default))
            continue
        m = re.search(r"([A-Za-z_]\w*)\s*((?:\[[^\]]*\]\s*)+)$", p.strip())
        if m:
            out.append((m.group(1), [d.strip() for d in re.findall(r"\[([^\]]*)\]", m.group(2))], default))
            continue
        m = re.search(r"(\*?)\s*&?\s*([A-Za-z_]\w*)\s*$", p.strip())
        if m and m.group(2) not in ("void",):
            out.append((m.group(2), [None] if m.group(1) else [], default))
    return out


def file_constants(unit: Unit, macros: dict) -> dict:
    """{name: value or None} of the file-scope integer constants and enumerators (None: not evaluable)."""
    code = unit.code
    out = {}
    for m in re.finditer(r"\benum\s*(?:class\s+)?\w*\s*(?::\s*\w+\s*)?\{([^}]*)\}", code):
        val = 0
        for item in split_args(m.group(1)):
            name, _, v = item.partition("=")
            name = name.strip()
            if not re.fullmatch(r"[A-Za-z_]\w*", name):
                continue
            if v.strip():
                val = const_value(_subst_consts(v, out))
            out[name] = val
            val = val + 1 if val is not None else None
    for m in re.finditer(r"\bstatic\s+const(?:expr)?\s+(?:unsigned\s+|signed\s+)?(?:int|long|bool|short|char)\s+"
                         r"([A-Za-z_]\w*)\s*=\s*([^;]+);", code):
        if _at_file_scope(unit, m.start()):
            out[m.group(1)] = const_value(_subst_consts(m.group(2), out))
    return out


def _subst_consts(text: str, consts: dict) -> str:
    return _NAME_RE.sub(lambda m: str(consts[m.group(0)]) if consts.get(m.group(0)) is not None else m.group(0), text)


__all__ = ["ArrayDef", "Split", "macro_table", "macro_value", "expand_macros", "find_arrays", "array_decl", "is_decl",
           "template_params", "raw_params", "file_constants"]
