"""The layers of the source tree import downward only (issue 13).

    bottom   edgemoe/*.py but the application modules below: errors, io, options, kernel_interface,
             spec, register_map, design, board_facts, project_files, templates, ...; imports nothing
             of edgemoe above it
    golden   on the bottom layer
    units    edgemoe/units/ (one module per hardware unit), on golden and the bottom layer
    codegen  on units, golden and the bottom layer
    sim      on codegen, units, golden and the bottom layer: sim validates the generated code (C and
             RTL simulation, and the board emulator, which runs the generated kernel in C simulation)
    boards   on the bottom layer only: the board builds with Vivado, packaging
    host     on the bottom layer only, and only on the modules shipped with it to the board
             (boards/package.py ``_copy_runtime``): numpy and pynq besides the standard library
    app      edgemoe/__init__.py, cli.py, cli_parser.py, bench.py, demo.py: the command line and the demos on top of
             everything (they join the layers, e.g. `edgemoe build`: boards' build with codegen's Vivado
             scripts and Vitis check); nothing imports them

Every import counts, at the top of a module or inside a function (a lazy import is still an edge), the
absolute ``edgemoe.X`` ones and the relative ones resolved to their package. The edges against these
rules that remain are listed in ALLOWED_EDGES, each with the work that removes it. No import circle
between modules at their top level, nor through lazy imports but the ones in ALLOWED_LAZY_CIRCLES.
"""
from __future__ import annotations

import ast
import fnmatch
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYNQ_PY = REPO / ".venv-pynq" / "bin" / "python"
# layer: (its folder in the source tree, its package)
FOLDERS = {"golden": ("golden", "edgemoe.golden"), "units": ("edgemoe/units", "edgemoe.units"),
           "codegen": ("codegen", "edgemoe.codegen"), "sim": ("sim", "edgemoe.sim"), "boards": ("boards", "edgemoe.boards"),
           "host": ("host", "edgemoe.host")}
PACKAGES = {pkg for _, pkg in FOLDERS.values()}
APP = {"edgemoe", "edgemoe.cli", "edgemoe.cli_parser", "edgemoe.bench", "edgemoe.demo"}
MAY_IMPORT = {
    "bottom": {"bottom"},
    "golden": {"bottom", "golden"},
    "units": {"bottom", "golden", "units"},
    "codegen": {"bottom", "golden", "units", "codegen"},
    "sim": {"bottom", "golden", "units", "codegen", "sim"},
    "boards": {"bottom", "boards"},
    "host": {"bottom", "host"},
    "app": {"bottom", "golden", "units", "codegen", "sim", "boards", "host", "app"},
}
# (importing module, imported module), fnmatch patterns: edges against MAY_IMPORT still tolerated, each
# with the work that removes it named beside it (none left: issue 13's layering holds). An entry that
# matches no import any more fails test_allow_list_is_current: delete it with its edge.
ALLOWED_EDGES: set = set()
# (shipped module, imported module) imported by a module shipped to the board but not shipped with it
# (e.g. a hint only a command off the board reaches); none now
ALLOWED_UNSHIPPED = set()
HOST_THIRD_PARTY = {"numpy", "pynq"}


@lru_cache(maxsize=None)
def modules() -> dict:
    """{module name: (path, is a package)} of edgemoe/*.py and every module of the folders."""
    out = {}
    for f in sorted((REPO / "edgemoe").glob("*.py")):
        out["edgemoe" if f.stem == "__init__" else f"edgemoe.{f.stem}"] = (f, f.stem == "__init__")
    for folder, pkg in FOLDERS.values():
        for f in sorted((REPO / folder).rglob("*.py")):
            if "__pycache__" in f.parts:
                continue
            parts = f.relative_to(REPO / folder).with_suffix("").parts
            is_pkg = parts[-1] == "__init__"
            out[".".join((pkg,) + (parts[:-1] if is_pkg else parts))] = (f, is_pkg)
    return out


def layer(name: str) -> str:
    if name in APP:
        return "app"
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or name in PACKAGES else "bottom"


@lru_cache(maxsize=None)
def imports(name: str) -> tuple:
    """((imported name, at top level, line), ...) of every import statement of module ``name``."""
    path, is_pkg = modules()[name]
    package = name if is_pkg else name.rpartition(".")[0]
    out = []

    def visit(node, top: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                out.extend((a.name, top, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[:len(package.split(".")) - child.level + 1]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module
                for a in child.names:  # `from pkg import module` imports the module
                    out.append((f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules() else mod, top, child.lineno))
            visit(child, top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(), str(path)), True)
    return tuple(out)


def edgemoe_edges(top_only: bool = False) -> set:
    """{(importer, imported module, line)} between our modules."""
    return {(m, t, line) for m in modules() for t, top, line in imports(m)
            if (t == "edgemoe" or t.startswith("edgemoe.")) and (top or not top_only)}


def allowed(src: str, dst: str) -> bool:
    return any(fnmatch.fnmatchcase(src, a) and fnmatch.fnmatchcase(dst, b) for a, b in ALLOWED_EDGES)


def test_modules_are_found():
    names = modules()
    assert {"edgemoe.errors", "edgemoe.register_map", "edgemoe.host.runtime", "edgemoe.golden.state_dict",
            "edgemoe.codegen.pack_heads", "edgemoe.sim.benches.kernel_top", "edgemoe.boards.package"} <= set(names)
    # every layer has modules (units: once edgemoe/units/ exists)
    assert {layer(n) for n in names} == set(MAY_IMPORT) - (set() if (REPO / "edgemoe" / "units").is_dir() else {"units"})
    assert layer("edgemoe.kernel_interface") == "bottom" and layer("edgemoe.codegen") == "codegen"
    unknown = sorted(t for _, t, _ in edgemoe_edges() if t not in names)
    assert not unknown, f"imports of modules that do not exist: {unknown}"


def test_imports_go_downward():
    wrong = sorted(f"{modules()[m][0].relative_to(REPO)}:{line}: {m} ({layer(m)}) imports {t} ({layer(t)})"
                   for m, t, line in edgemoe_edges()
                   if layer(t) not in MAY_IMPORT[layer(m)] and not allowed(m, t))
    assert not wrong, "imports against the layers (issue 13):\n" + "\n".join(wrong)


def test_allow_list_is_current():
    used = {(a, b) for a, b in ALLOWED_EDGES for m, t, _ in edgemoe_edges()
            if fnmatch.fnmatchcase(m, a) and fnmatch.fnmatchcase(t, b) and layer(t) not in MAY_IMPORT[layer(m)]}
    assert ALLOWED_EDGES == used, f"no such import any more, delete from ALLOWED_EDGES: {sorted(ALLOWED_EDGES - used)}"


def find_circle(graph: dict):
    """One circle of ``graph`` ({node: set of nodes}) as [a, b, ..., a], or None."""
    state, path = {}, []

    def dfs(m):
        state[m] = "open"
        path.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                return path[path.index(t):] + [t]
            if t not in state:
                circle = dfs(t)
                if circle:
                    return circle
        state[m] = "done"
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state:
            circle = dfs(m)
            if circle:
                return circle
    return None


def module_graph(top_only: bool, leave_out=frozenset()) -> dict:
    graph = {m: set() for m in modules()}
    for m, t, _ in edgemoe_edges(top_only=top_only):
        if t != m and (m, t) not in leave_out:
            graph[m].add(t)
    return graph


def test_no_import_circle_at_top_level():
    circle = find_circle(module_graph(top_only=True))
    assert circle is None, "import circle at top level: " + " -> ".join(circle)


# Circles closed by an import inside a function (so they load): none left (the last one, config_header
# <-> pack through block_types, went with golden/block_types.py)
ALLOWED_LAZY_CIRCLES: set = set()


def test_no_import_circle_with_lazy_imports():
    """Lazy imports included: checkpoint <-> onnx_io and host.pack_heads <-> codegen.generate were such circles."""
    lazy = {(m, t) for m, t, _ in edgemoe_edges()} - {(m, t) for m, t, _ in edgemoe_edges(top_only=True)}
    assert ALLOWED_LAZY_CIRCLES <= lazy, f"not a lazy import any more: {sorted(ALLOWED_LAZY_CIRCLES - lazy)}"
    for edge in ALLOWED_LAZY_CIRCLES:   # each one still closes its circle (else delete it)
        assert find_circle(module_graph(False, ALLOWED_LAZY_CIRCLES - {edge})), f"{edge} closes no circle any more"
    circle = find_circle(module_graph(top_only=False, leave_out=ALLOWED_LAZY_CIRCLES))
    assert circle is None, "import circle: " + " -> ".join(circle)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """(runtime folder, its module names) as boards/package.py ships it."""
    from edgemoe.boards.package import RUNTIME_DIR, _copy_runtime
    dst = tmp_path_factory.mktemp("pkg")
    files = _copy_runtime(dst)
    names = {".".join(Path(f).with_suffix("").parts).removesuffix(".__init__") for f in files if f.endswith(".py")}
    return dst / RUNTIME_DIR, names


def test_host_imports_only_what_ships_with_it(runtime):
    _, shipped = runtime
    host = {m for m in modules() if layer(m) == "host"}
    assert host <= shipped and {"edgemoe.errors", "edgemoe.kernel_interface"} <= shipped
    wrong = []
    for m in sorted(shipped):
        for t, _, line in imports(m):
            top = t.split(".")[0]
            if top == "edgemoe":
                if t not in shipped and (m, t) not in ALLOWED_UNSHIPPED:
                    wrong.append(f"{m}:{line} imports {t}, which the package does not ship")
            elif top not in sys.stdlib_module_names and top not in HOST_THIRD_PARTY:
                wrong.append(f"{m}:{line} imports {t} (the board has {', '.join(sorted(HOST_THIRD_PARTY))} only)")
    assert not wrong, "\n".join(wrong)


@pytest.mark.skipif(not PYNQ_PY.exists(), reason=".venv-pynq missing: run `make setup`")
def test_shipped_runtime_imports_in_isolation(runtime):
    """Every module of the shipped runtime imports from the copy alone, in the board's environment,
    without torch and without any other part of edgemoe."""
    folder, _ = runtime
    code = f"""
import pkgutil, sys
# the installed (editable) edgemoe out of reach: only the copy on PYTHONPATH
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
for heavy in ("torch", "onnx", "jinja2", "cocotb"):
    sys.modules[heavy] = None   # importing one of them fails
import edgemoe.host
for m in pkgutil.iter_modules(edgemoe.host.__path__, "edgemoe.host."):
    if not m.name.endswith("__main__"):
        __import__(m.name)
assert edgemoe.host.runtime.__file__.startswith({str(folder)!r}), edgemoe.host.runtime.__file__
try:
    import edgemoe.design   # bottom layer, not shipped
except ImportError:
    pass
else:
    raise AssertionError("edgemoe.design imported from " + edgemoe.design.__file__ + ": not isolated")
loaded = sorted(m for m, v in sys.modules.items() if v is not None and
                m.startswith(("edgemoe.golden", "edgemoe.codegen", "edgemoe.boards", "edgemoe.sim", "torch")))
assert not loaded, loaded
print(len([m for m in sys.modules if m.startswith("edgemoe.")]))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "EDGEMOE"))}
    env["PYTHONPATH"] = str(folder)
    p = subprocess.run([str(PYNQ_PY), "-c", code], capture_output=True, text=True, env=env, cwd=folder, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert int(p.stdout.split()[-1]) >= 8   # the host's modules and the bottom layer's it uses
