"""The control registers of a Vitis HLS kernel, read from its driver header ``x<top>_hw.h`` (bottom
layer: kernel interface; imports nothing of edgemoe above edgemoe.errors).

``edgemoe package`` takes the argument offsets from the header a build left (boards/package.py), the
kernel-level RTL bench drives the AXI-Lite port with them (sim/kernel_bench.py, which re-exports both
names).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import EdgeMoeError


@dataclass(frozen=True)
class RegisterMap:
    top: str
    bundle: str
    ap_ctrl: int
    gie: int
    ier: int
    isr: int
    args: dict                      # name (lower case) -> (offset, bits)
    header: str = ""
    outputs: frozenset = frozenset()  # output scalars (read-only data register + ap_vld control word)

    def regs(self) -> dict:
        return dict(ap_ctrl=self.ap_ctrl, gie=self.gie, ier=self.ier, isr=self.isr)


_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)\s+(0[xX][0-9a-fA-F]+|\d+)\b", re.M)


def parse_register_map(header, top: str | None = None, bundle: str = "control") -> RegisterMap:
    """Parse ``#define X<TOP>_<BUNDLE>_ADDR_<ARG>_DATA 0x10`` / ``..._BITS_<ARG>_DATA 64`` lines; an argument
    with an ``..._ADDR_<ARG>_CTRL`` word too is an output scalar (its data register is read-only)."""
    header = Path(header)
    try:
        text = header.read_text(errors="replace")
    except OSError as e:
        raise EdgeMoeError(f"cannot read the driver header {header}: {e}") from None
    if top is None:
        m = re.fullmatch(r"x(\w+)_hw\.h", header.name)
        if not m:
            raise EdgeMoeError(f"{header}: cannot tell the top's name (expected x<top>_hw.h)")
        top = m.group(1)
    prefix = f"X{top.upper()}_{bundle.upper()}_"
    defs = {k[len(prefix):]: int(v, 0) for k, v in _DEFINE.findall(text) if k.startswith(prefix)}
    if "ADDR_AP_CTRL" not in defs:
        found = sorted({k.rsplit("_ADDR_", 1)[0] for k, _ in _DEFINE.findall(text) if "_ADDR_" in k})
        raise EdgeMoeError(f"{header}: no {prefix}ADDR_AP_CTRL (defines found for: {', '.join(found) or 'nothing'})")
    args, outputs = {}, set()
    for k, off in defs.items():
        m = re.fullmatch(r"ADDR_(\w+)_DATA", k)
        if m:
            name = m.group(1)
            args[name.lower()] = (off, defs.get(f"BITS_{name}_DATA", 32))
            if f"ADDR_{name}_CTRL" in defs:
                outputs.add(name.lower())
    return RegisterMap(top=top, bundle=bundle, ap_ctrl=defs["ADDR_AP_CTRL"], gie=defs.get("ADDR_GIE", 0x04),
                       ier=defs.get("ADDR_IER", 0x08), isr=defs.get("ADDR_ISR", 0x0C), args=args, header=str(header),
                       outputs=frozenset(outputs))


__all__ = ["RegisterMap", "parse_register_map"]
