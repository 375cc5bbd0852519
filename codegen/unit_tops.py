"""Standalone Vitis HLS tops of the RTL units (``edgemoe generate`` writes them under ``unit_tops/``).

For each RTL unit of :mod:`edgemoe.units` (gelu, softmax, layernorm, linear, moe_route) a C++ top
function named like the RTL top module (``edgemoe_gelu``, ...) whose ports are exactly the RTL's:
AXI-Stream arguments ``hls::axis<ap_uint<W>, 0, 0, 0, AXIS_ENABLE_LAST>`` (TDATA / TVALID / TREADY /
TLAST, no TKEEP / TSTRB), ``ap_ctrl_none``, and for the linear engine an ``s_axilite`` bundle
``control`` with n_rows / n_in_tiles / mode at the RTL's offsets (``edgemoe.units.linear.LIN_REGS``).  The stream widths and
lane packing come from the RTL's own context (:func:`edgemoe.units.unit_context`, never retyped), the
arithmetic from the unit headers (``hls/include``), so Vitis's RTL of a unit and ours run under one
cocotb bench.  A unit's headers, ports and own values are in its module (``edgemoe/units/<unit>.py``:
``HLS_TOP_HEADERS``, ``hls_top_streams``, ``hls_top_context``).  Each top gets a
``hls_config_<unit>.cfg`` for ``v++ -c --mode hls``.

``unit_top_contexts(spec, precision, design)`` -> {unit: template context};
``write_unit_tops(root, spec, precision, design, part, clock_ns)`` -> [written paths].

The tops call the units with zero fraction-bit offsets: they compute with the config header's
nominal types, i.e. the RTL rendered with ``block_precision(..., None)`` (``edgemoe sim --block
nominal``, the default with ``--rtl-dir``); our RTL at w8a8 otherwise has one block's calibrated
types (see ``edgemoe.units.LIMITATIONS``).
"""
from __future__ import annotations

from pathlib import Path

from edgemoe.units import RTL_UNITS, UNIT_NAMES, unit_context

from .render import render_template

UNIT_TOP_DIR = "unit_tops"
UNIT_TOP_TEMPLATES = {u: f"unit_tops/{u}_top.cpp.j2" for u in UNIT_NAMES}
# unit headers each top includes (beyond edgemoe_config.h and edgemoe_fixed.h)
UNIT_TOP_HEADERS = {u: RTL_UNITS[u].HLS_TOP_HEADERS for u in UNIT_NAMES}
VITIS_MAX_BITS = 4096          # ap_(u)int and AXI-Stream TDATA limit of Vitis HLS


def unit_top_contexts(spec, precision, design, skipped: dict | None = None) -> dict:
    """Template context of every unit top (the RTL unit's context plus the top's own values).
    A unit the RTL generator refuses for this model (e.g. the router with one expert) is left out
    (its reason in ``skipped`` when given)."""
    from edgemoe.errors import EdgeMoeError
    from edgemoe.golden.precision import base_precision
    prec = base_precision(precision if isinstance(precision, str) else precision.name)
    out = {}
    for unit in UNIT_NAMES:
        try:
            ctx = unit_context(unit, spec, prec, design)
        except EdgeMoeError as e:
            if skipped is not None:
                skipped[unit] = str(e)
            continue
        max_bits = max(RTL_UNITS[unit].hls_top_streams(ctx))
        ctx.update(unit=unit, headers=UNIT_TOP_HEADERS[unit], max_bits=max_bits,
                   ap_int_max_w=(-(-max_bits // 1024) * 1024) if max_bits > 1024 else 0)
        ctx.update(RTL_UNITS[unit].hls_top_context(ctx))
        out[unit] = ctx
    return out


def unit_top_file(unit: str) -> str:
    return f"edgemoe_{unit}.cpp"


def write_unit_tops(root, spec, precision, design, part: str, clock_ns: str) -> list:
    """Write ``<root>/unit_tops/edgemoe_<unit>.cpp`` and ``hls_config_<unit>.cfg`` for every unit."""
    d = Path(root) / UNIT_TOP_DIR
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for unit, ctx in unit_top_contexts(spec, precision, design).items():
        p = d / unit_top_file(unit)
        p.write_text(render_template(UNIT_TOP_TEMPLATES[unit], **ctx))
        c = d / f"hls_config_{unit}.cfg"
        c.write_text(render_template("unit_tops/hls_config.cfg.j2", unit=unit, top=ctx["top"], part=part,
                                     clock_ns=clock_ns))
        paths += [p, c]
    return paths


def oversized_units(spec, precision, design) -> dict:
    """{unit: widest stream bits} of the tops that Vitis cannot synthesize (a word over 4096 bits).
    Empty for every shipped design: the linear engine's weight beats carry a few weight rows of a
    tile (``L["w_rows"]``, sized by :func:`edgemoe.units.linear.rtl_context` to stay <= 4096 bits), not a
    whole tile; only an unusually wide custom engine (e.g. 128+ inputs of 32-bit activations) can
    still get there, and its top then refuses synthesis with an ``#error`` (``_common.j2``)."""
    out = {}
    for unit, ctx in unit_top_contexts(spec, precision, design).items():
        if ctx["max_bits"] > VITIS_MAX_BITS:
            out[unit] = ctx["max_bits"]
    return out


__all__ = ["UNIT_TOP_DIR", "unit_top_contexts", "unit_top_file", "write_unit_tops", "oversized_units",
           "VITIS_MAX_BITS"]
