"""The weight and activation streams' bandwidth, from the PS ports and the DDR the block design configures.

* Each m_axi bundle reaches the DDR through the PS slave port ``Board.ports`` gives it; a PS port moves
  at most ``PS_PORT_BITS`` per PL cycle, and a long burst stream reaches ``EFFICIENCY`` of that.
* S_AXI_HP1_FPD and S_AXI_HP2_FPD share one port of the DDR controller (UG1085, XPI 4): bundles that
  stream at the same time through PS ports on one DDR controller port get that port's bandwidth once.
* The whole DDR: ``EFFICIENCY`` of the peak of the board's DDR4 (data rate x 64 bits); the best
  measured PS-PL read efficiency on Zynq UltraScale+ is about 75% (FPT'19).
"""
from __future__ import annotations

from dataclasses import dataclass

EFFICIENCY = 0.75          # reachable fraction of a port's or the DDR's peak bandwidth
PS_PORT_BITS = 128         # data width of a ZynqMP HP / HPC slave port
WEIGHT_BUNDLES = ("gmem_w", "gmem_w1", "gmem_w2", "gmem_w3")   # in the order weight_ports takes them


def ddr_ports(board, bundles) -> list:
    """The DDR controller port each bundle's traffic reaches (its PS port when the board has no map)."""
    from edgemoe.board_facts import DDR_PORT_OF
    out = []
    for b in bundles:
        ps = board.ports.get(b, b)
        out.append(DDR_PORT_OF.get(ps, ps))
    return out


@dataclass(frozen=True)
class Bandwidth:
    """AXI words (design.axi_bits each) per kernel cycle that the ports and the DDR sustain."""
    act: float                # gmem_act: pixels in, outputs out
    weights: float            # the weight bundle(s) together
    ddr: float                # the whole DDR
    ddr_bytes_per_s: float
    shared: tuple = ()        # weight bundles that share a DDR controller port with another weight bundle
    word_bytes_per_s: float = 0.0   # one AXI word per cycle, in bytes per second

    @property
    def weight_gbps(self) -> float:
        return self.weights * self.word_bytes_per_s / 1e9

    @property
    def act_gbps(self) -> float:
        return self.act * self.word_bytes_per_s / 1e9

    @classmethod
    def of(cls, design, board, clock_mhz: float) -> "Bandwidth":
        word_bytes = design.axi_bits / 8
        per_port = min(design.axi_bits, PS_PORT_BITS) / design.axi_bits * EFFICIENCY
        ddr_bps = EFFICIENCY * board.ddr.peak_gbps * 1e9
        ddr = ddr_bps / (word_bytes * clock_mhz * 1e6)
        wb = WEIGHT_BUNDLES[:design.weight_ports]
        xpis = ddr_ports(board, wb)
        shared = tuple(b for b, x in zip(wb, xpis) if xpis.count(x) > 1)
        # the weight bundles stream together: one port's worth per DDR controller port they reach
        weights = min(len(set(xpis)) * per_port, ddr)
        # gmem_act moves pixels while patch embedding streams its weights: it shares a weight bundle's
        # DDR controller port then
        act_share = 1 + xpis.count(ddr_ports(board, ["gmem_act"])[0])
        return cls(act=min(per_port / act_share, ddr), weights=weights, ddr=ddr, ddr_bytes_per_s=ddr_bps,
                   shared=shared, word_bytes_per_s=word_bytes * clock_mhz * 1e6)

    def describe(self, board) -> str:
        d = board.ddr
        s = (f"{d.label} assumed ({d.peak_gbps:.2f} GB/s peak on {d.bus_bits} bits; {d.source}), "
             f"{EFFICIENCY:.0%} of peak = {self.ddr_bytes_per_s / 1e9:.1f} GB/s (FPT'19); weights "
             f"{self.weights:.3f} and act {self.act:.3f} AXI words per cycle ({self.weight_gbps:.1f} and "
             f"{self.act_gbps:.1f} GB/s)")
        if self.shared:
            s += f"; {' and '.join(self.shared)} share a DDR controller port (HP1/HP2, UG1085)"
        return s


__all__ = ["Bandwidth", "EFFICIENCY", "PS_PORT_BITS", "WEIGHT_BUNDLES", "ddr_ports"]
