"""A throwaway RtlUnit-shaped unit for the runner tests: out = in + 1 (stall=True: never ready;
bug=True: out = in + 2, so every vector mismatches)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PassthruUnit:
    name: str = "passthru"
    top: str = "edgemoe_passthru"
    bench_module: str = "passthru_bench"
    design_rate: float = 1.0
    stall: bool = False
    bug: bool = False

    def render(self, spec, prec, design, out_dir) -> list:
        text = (HERE / "edgemoe_passthru.v").read_text()
        if self.stall:
            text = text.replace("parameter STALL = 0", "parameter STALL = 1")
        if self.bug:
            text = text.replace("in_r_TDATA + 1'b1", "in_r_TDATA + 2'd2")
        out = Path(out_dir) / "edgemoe_passthru.v"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        return [out]
