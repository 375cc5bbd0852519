"""The HLS templates' rendering, for codegen: the project's one jinja2 environment and the ``hls``
folder's paths live in :mod:`edgemoe.templates` (the bottom layer, shared with sim/ and boards/);
this module hands them to codegen's modules (``render_template``, ``INCLUDE_DIR``, ...).
"""
from __future__ import annotations

from edgemoe.templates import (HLS_DIR, INCLUDE_DIR, TEMPLATE_DIR, c_array, c_bool, c_int_type, c_literal,
                               environment, render_template)

__all__ = ["HLS_DIR", "TEMPLATE_DIR", "INCLUDE_DIR", "environment", "render_template",
           "c_array", "c_int_type", "c_bool", "c_literal"]
