"""Target boards: FPGA part and default clock of each board ``edgemoe generate`` knows."""
from __future__ import annotations

from dataclasses import dataclass

from edgemoe.errors import EdgeMoeError


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    clock_mhz: float
    description: str = ""


BOARDS = {
    "zcu104": Board("zcu104", "xczu7ev-ffvc1156-2-e", 300.0, "Zynq UltraScale+ ZCU104 (XCZU7EV)"),
    "zcu102": Board("zcu102", "xczu9eg-ffvb1156-2-e", 300.0,
                    "Zynq UltraScale+ ZCU102 (XCZU9EG), the published Edge-MoE target"),
    "kv260": Board("kv260", "xck26-sfvc784-2LV-c", 250.0, "Kria KV260 (K26 SOM)"),
}


def get_board(name: str) -> Board:
    try:
        return BOARDS[str(name).lower()]
    except KeyError:
        raise EdgeMoeError(f"unknown board {name!r} (known: {', '.join(BOARDS)})") from None


__all__ = ["Board", "BOARDS", "get_board"]
