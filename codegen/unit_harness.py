"""A shared library of every HLS unit, for bit-exact tests against the golden units.

:func:`build_unit_library` renders ``edgemoe_config.h`` for (spec, precision, design), renders the
harness (``hls/templates/csim/unit_harness.cpp.j2``: ``extern "C"`` wrappers that take raw int64 arrays,
each value's ap_fixed bit pattern, sign- or zero-extended), compiles it with ``-Wall -Wextra -Werror``
(ap_types on ``-isystem``) and loads it with ctypes: :class:`~edgemoe.codegen.unit_lib.UnitLib` calls the
units with numpy arrays of raw codes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from edgemoe.design import DEFAULT_DESIGN, Design, get_design
from edgemoe.units import HLS_HEADERS

from .aptypes import compile_cpp
from .config_header import CONFIG_NAME, DELTA_TABLES, render_config
from .render import INCLUDE_DIR, render_template
from .unit_lib import BIAS_B, BIAS_QKV, HARNESS_SIZES, LIN_ACT, LIN_GELU, LIN_QKV, LIN_SCATTER, UnitLib

UNIT_HEADERS = HLS_HEADERS    # every unit's header (edgemoe/units/<unit>.py HLS_HEADER)
CXX_FLAGS = ("-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas", "-Wno-unused-label", "-O0")
HARNESS_TEMPLATE = "csim/unit_harness.cpp.j2"
# em_route_logits: the logit of the route's padded rows (GATE_ROWS beyond NUM_EXPERTS), high enough to
# win top-k if the route ever read them
PAD_LOGIT = 100


def harness_context(spec, prec, design) -> dict:
    from .buffers import declarations
    return dict(unit_headers=UNIT_HEADERS, declarations=declarations(spec, prec, design),
                sizes=list(HARNESS_SIZES.values()), delta_names=[name for name, *_ in DELTA_TABLES],
                BIAS_QKV=BIAS_QKV, pad_logit=PAD_LOGIT)


def harness_source(spec, prec, design) -> str:
    """The harness's C++ for (spec, precision, design)."""
    return render_template(HARNESS_TEMPLATE, **harness_context(spec, prec, design))


def build_unit_library(spec, prec, design: Design | None = None, out_dir=None) -> UnitLib:
    """Render the config, write the harness, compile (cached by content hash) and load it."""
    import tempfile
    design = design or get_design(DEFAULT_DESIGN)
    config = render_config(spec, prec, design)
    src = harness_source(spec, prec, design)
    headers = "".join((INCLUDE_DIR / h).read_text() for h in ("edgemoe_fixed.h", "edgemoe_mem.h", "edgemoe_probe.h",
                                                              "pack2.h") + UNIT_HEADERS)
    key = hashlib.sha256((config + src + headers + " ".join(CXX_FLAGS)).encode()).hexdigest()[:16]
    out_dir = Path(out_dir) if out_dir is not None else Path(tempfile.gettempdir()) / "edgemoe_units"
    build = out_dir / f"units_{prec.name}_{key}"
    build.mkdir(parents=True, exist_ok=True)
    (build / CONFIG_NAME).write_text(config)
    (build / "harness.cpp").write_text(src)
    lib = build / "libedgemoe_units.so"
    if not lib.is_file():
        compile_cpp(build / "harness.cpp", build / "libedgemoe_units.tmp.so", flags=CXX_FLAGS,
                    include_dirs=[build, INCLUDE_DIR], shared=True)
        (build / "libedgemoe_units.tmp.so").rename(lib)
    return UnitLib(lib, spec, prec, design)


__all__ = ["build_unit_library", "UnitLib", "harness_source", "harness_context", "HARNESS_TEMPLATE", "UNIT_HEADERS",
           "CXX_FLAGS", "LIN_QKV", "LIN_ACT", "LIN_GELU", "LIN_SCATTER", "BIAS_QKV", "BIAS_B"]
