"""The patch embedding: golden/units/patch_embed.py, hls/include/patch_embed.h (the CLS / position rows;
the patches' matrix product runs on the one linear engine, costed as an engine call), no RTL unit.

Here: its harness entries.
"""
from __future__ import annotations

# its C++ (hls/include/) and its extern "C" wrappers in the unit test harness (csim/unit_harness.cpp.j2)
HLS_HEADER = "patch_embed.h"
HARNESS_ENTRIES = ("em_patch_embed",)

__all__ = ["HLS_HEADER", "HARNESS_ENTRIES"]
