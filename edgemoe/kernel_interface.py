"""What the host and the generated kernel agree on, written once (bottom layer: imports nothing of
edgemoe, ships with the host runtime to the board).

The config and layout headers are generated from these values (codegen/config_header.py, pack.py),
the host runtime and the emulator read them from here, so no side types them again.
"""
from __future__ import annotations

MAX_IMAGES = 64       # images per kernel call at most (the kernel's MAX_IMAGES, the host's buffers)
TAP_NONE = -1         # tap_id: run, dump nothing
TAP_ALL = -2          # tap_id: run and dump every stage to scratch

__all__ = ["MAX_IMAGES", "TAP_NONE", "TAP_ALL"]
