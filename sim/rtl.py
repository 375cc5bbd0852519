"""Render the synthesizable Verilog of the Edge-MoE units from the spec.

Each unit is a jinja2 template under ``edgemoe/hls/rtl`` (``<unit>.v.j2``); every width, size and
table comes from the unit's render context in the units layer (``edgemoe/units/<unit>.py``,
``rtl_context``; :func:`unit_context` adds the common part), computed from the model spec, the
:class:`Precision` base types and the :class:`Design` with the golden model's own functions, never
retyped.  The RTL is bit-exact with the golden units called with the precision's types, which must
have no per-tensor overrides: w16a32 has none; for w8a8 and w16a32-fit :func:`block_precision` folds one block's
calibrated types into the types (see :data:`LIMITATIONS`).

``render_unit(name, spec, prec, design, out_dir) -> [Path]`` writes ``<top>.v`` (one file per unit:
the top and its helper modules, prefixed by the top name so that units can be compiled together).
"""
from __future__ import annotations

from pathlib import Path

from edgemoe.errors import EdgeMoeError
from edgemoe.golden.block_types import block_type, role_tables
from edgemoe.golden.precision import Precision
from edgemoe.kernel_interface import storage_bits
from edgemoe.units import LIMITATIONS, UNIT_NAMES, top_name, unit_context


def environment():
    """The project's one jinja2 environment (edgemoe/templates.py): finds the ``hls/rtl`` templates by
    their names (``linear.v.j2``), with the global ``ext`` (``edgemoe.templates.ext_expr``)."""
    from edgemoe.templates import environment as shared_environment
    return shared_environment()


def block_precision(spec, prec: Precision, block: int | None) -> Precision:
    """``prec`` without per-tensor overrides, for one RTL build: block ``block``'s calibrated types
    become the types (each role from the tensor the HLS kernel's D_* table of that role uses:
    ln1 for ln_out, qkv weights for w, ...).  ``block=None``: the nominal types (all offsets 0)."""
    types = dict(prec.types)
    if block is not None:
        if not 0 <= int(block) < spec.depth:
            raise EdgeMoeError(f"block {block} is not a block of {spec.name} (0..{spec.depth - 1})")
        for role, table in role_tables().items():
            types[role] = block_type(spec, prec, int(block), table)
    where = "nominal types" if block is None else f"types of block {int(block)}"
    return Precision(prec.name, types, {}, f"{prec.description} ({where})".strip())


# ---- rendering ------------------------------------------------------------------------------------
def render_unit(name: str, spec, prec: Precision, design, out_dir) -> list:
    """Write ``<out_dir>/<top>.v`` for unit ``name``; returns the written paths."""
    ctx = unit_context(name, spec, prec, design)
    text = environment().get_template(f"{name}.v.j2").render(**ctx)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{ctx['top']}.v"
    path.write_text(text)
    return [path]


__all__ = ["UNIT_NAMES", "LIMITATIONS", "render_unit", "unit_context", "top_name", "storage_bits", "block_precision"]
