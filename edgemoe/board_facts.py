"""Target boards: what ``edgemoe generate`` and ``edgemoe build`` need to know about each board.

A :class:`Board` holds the FPGA part and default PL clock (used by the HLS project), and for the
Vivado block design: the board part (board preset of the Zynq UltraScale+ PS), which PS slave port
each of the kernel's ``m_axi`` bundles is connected to, the PS master port of the kernel's
``s_axilite`` control, the address the block design gives the control registers, the DDR the PS
sees and a resource budget.

Sources (checked where possible against public Vivado scripts):

* board parts: ``xilinx.com:zcu104:part0:1.1`` and ``xilinx.com:zcu102:part0:3.4`` appear in many
  public Vivado scripts; ``get_board_parts *kv260*`` in Vivado 2024.2 lists
  ``xilinx.com:kv260_som:part0:1.2/1.3/1.4`` (KV260 board files come from the Xilinx board store,
  ``xhub::install``, not with every Vivado install). Older Vivado releases ship older revisions
  (e.g. zcu102 3.1/3.3): pass ``EDGEMOE_BOARD_PART`` to the Tcl to override.
* ZynqMP PS ports: S_AXI_HPC0/1_FPD are SAXIGP0/1, S_AXI_HP0..3_FPD are SAXIGP2..5 (128-bit at
  most), M_AXI_HPM0_FPD is MAXIGP0; the PL clock is pl_clk0 set by PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ.
* resources: the device data sheet figures (DS891) for XCZU7EV, XCZU9EG and the K26's XCK26
  (BRAM counted as 36 Kb blocks).
* DDR: PS DDR4 on a 64-bit bus; size from the board user guides (UG1267 ZCU104, UG1182 ZCU102,
  DS986 K26). The data rate is whatever the PS configuration that boots the board sets (the FSBL of
  the boot image, not the overlay's block design): PYNQ's ZCU104 base designs use DDR4-2133
  (17.06 GB/s peak), so zcu104 and zcu102 assume 2133 (the ZCU102 rate is unverified: no PYNQ base
  design was read for it); the K26 data sheet lists DDR4-2400 and Kria boards boot from the SOM's
  own firmware, so kv260 assumes 2400. Measure on the board (``DDR.mts`` and ``DDR.source`` say it).
* DDR controller ports (UG1085, PL-PS interface): S_AXI_HP1_FPD and S_AXI_HP2_FPD share one AXI port
  of the DDR controller (XPI 4); HP0 shares XPI 3 with the DisplayPort master, HP3 shares XPI 5 with
  the FPD DMA; HPC0/HPC1 reach the DDR through the CCI. The bundle map puts the weight bundles
  on ports that have an XPI of their own (HP0, HP3, HPC0, HPC1) and the two light bundles on the
  shared pair: gmem_act (the pixels in, the outputs out) on HP1 and gmem_scratch (debug taps only)
  on HP2.
* the kernel's control address 0xA000_0000 is not a fact of the board: it is where edgemoe's own
  block design puts the kernel (the start of the HPM0_FPD window on ZynqMP), recorded so that a
  package made without Vivado (no .hwh) can still drive the kernel.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .errors import EdgeMoeError

# the kernel's m_axi bundles (hls/templates/edgemoe_top.cpp.j2), in the order they get PS ports
BUNDLES = ("gmem_act", "gmem_scratch", "gmem_w", "gmem_w1", "gmem_w2", "gmem_w3")
KERNEL_BASE_ADDRESS = 0xA000_0000  # start of M_AXI_HPM0_FPD's 256 MB window (0xA000_0000..0xAFFF_FFFF)
KERNEL_ADDRESS_RANGE = 0x1_0000    # 64 KB register window for the s_axi_control slave

# ZynqMP PS slave ports: name -> (PS configuration index of PSU__USE__S_AXI_GP<n>, clock pin)
PS_SLAVE_PORTS = {
    "S_AXI_HPC0_FPD": (0, "saxihpc0_fpd_aclk"),
    "S_AXI_HPC1_FPD": (1, "saxihpc1_fpd_aclk"),
    "S_AXI_HP0_FPD": (2, "saxihp0_fpd_aclk"),
    "S_AXI_HP1_FPD": (3, "saxihp1_fpd_aclk"),
    "S_AXI_HP2_FPD": (4, "saxihp2_fpd_aclk"),
    "S_AXI_HP3_FPD": (5, "saxihp3_fpd_aclk"),
}
# ZynqMP PS master ports: name -> (PS configuration index of PSU__USE__M_AXI_GP<n>, clock pin)
PS_MASTER_PORTS = {
    "M_AXI_HPM0_FPD": (0, "maxihpm0_fpd_aclk"),
    "M_AXI_HPM1_FPD": (1, "maxihpm1_fpd_aclk"),
    "M_AXI_HPM0_LPD": (2, "maxihpm0_lpd_aclk"),
}
PS_PORT_MAX_BITS = 128  # widest data path of an HP/HPC slave port


@dataclass(frozen=True)
class Resources:
    """Resource budget of a device: what the whole board offers to the PL."""
    dsp: int
    lut: int
    ff: int
    bram36: int
    uram: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DDR:
    """The PS-side DDR the kernel's m_axi ports reach."""
    size_gb: float
    mts: int                  # data rate, mega-transfers per second (DDR4-2133: 2133)
    source: str = ""          # where the rate comes from (the boot image's PS configuration)
    bus_bits: int = 64
    kind: str = "DDR4"

    @property
    def peak_gbps(self) -> float:
        """Peak bytes per second / 1e9: bus width x data rate."""
        return self.mts * self.bus_bits / 8 / 1e3

    @property
    def label(self) -> str:
        return f"{self.kind}-{self.mts}"

    def to_dict(self) -> dict:
        return dict(asdict(self), peak_gbps=round(self.peak_gbps, 3))


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    clock_mhz: float
    description: str = ""
    board_part: str = ""
    # m_axi bundle -> PS slave port; ports used by more than one bundle get one smartconnect each
    ports: dict = field(default_factory=dict, compare=False)
    control_port: str = "M_AXI_HPM0_FPD"
    ddr: DDR | None = None
    resources: Resources | None = None
    base_address: int = KERNEL_BASE_ADDRESS
    address_range: int = KERNEL_ADDRESS_RANGE
    family: str = "zynq_ultrascale_plus"

    def port_of(self, bundle: str) -> str:
        try:
            return self.ports[bundle]
        except KeyError:
            raise EdgeMoeError(f"board {self.name}: no PS port for m_axi bundle {bundle!r} "
                               f"(known bundles: {', '.join(self.ports)})") from None

    def to_dict(self) -> dict:
        return dict(name=self.name, part=self.part, board_part=self.board_part, clock_mhz=self.clock_mhz,
                    description=self.description, ports=dict(self.ports), control_port=self.control_port,
                    ddr=self.ddr.to_dict() if self.ddr else None,
                    resources=self.resources.to_dict() if self.resources else None,
                    base_address=f"0x{self.base_address:08X}", address_range=f"0x{self.address_range:X}",
                    family=self.family)


# PS slave port -> the DDR controller port (XPI) its traffic reaches (UG1085): HP1 and HP2 share XPI 4;
# the CCI's two DDR ports carry HPC0 and HPC1 (taken as one each: unverified, the CCI may interleave)
DDR_PORT_OF = {
    "S_AXI_HP0_FPD": "XPI3", "S_AXI_HP1_FPD": "XPI4", "S_AXI_HP2_FPD": "XPI4", "S_AXI_HP3_FPD": "XPI5",
    "S_AXI_HPC0_FPD": "XPI1 (CCI)", "S_AXI_HPC1_FPD": "XPI2 (CCI)",
}

# the weight bundles first on ports with an XPI of their own; the light bundles share XPI 4
_ZCU_PORTS = {"gmem_w": "S_AXI_HP0_FPD", "gmem_w1": "S_AXI_HP3_FPD", "gmem_w2": "S_AXI_HPC0_FPD",
              "gmem_w3": "S_AXI_HPC1_FPD", "gmem_act": "S_AXI_HP1_FPD", "gmem_scratch": "S_AXI_HP2_FPD"}
_PYNQ_2133 = "PYNQ's ZCU104 base design (the boot image's PS configuration) runs DDR4-2133"

BOARDS = {
    "zcu104": Board("zcu104", "xczu7ev-ffvc1156-2-e", 300.0, "Zynq UltraScale+ ZCU104 (XCZU7EV)",
                    board_part="xilinx.com:zcu104:part0:1.1", ports=dict(_ZCU_PORTS),
                    ddr=DDR(2.0, 2133, _PYNQ_2133), resources=Resources(dsp=1728, lut=230400, ff=460800, bram36=312, uram=96)),
    "zcu102": Board("zcu102", "xczu9eg-ffvb1156-2-e", 300.0,
                    "Zynq UltraScale+ ZCU102 (XCZU9EG), the published Edge-MoE target",
                    board_part="xilinx.com:zcu102:part0:3.4", ports=dict(_ZCU_PORTS),
                    ddr=DDR(4.0, 2133, "assumed as on ZCU104 (PYNQ base designs use DDR4-2133); unverified for ZCU102"),
                    resources=Resources(dsp=2520, lut=274080, ff=548160, bram36=912, uram=0)),
    "kv260": Board("kv260", "xck26-sfvc784-2LV-c", 250.0, "Kria KV260 (K26 SOM)",
                   board_part="xilinx.com:kv260_som:part0:1.4", ports=dict(_ZCU_PORTS),
                   ddr=DDR(4.0, 2400, "K26 data sheet: DDR4-2400, set by the SOM's boot firmware, not the overlay"),
                   resources=Resources(dsp=1248, lut=117120, ff=234240, bram36=144, uram=64)),
}


def get_board(name: str) -> Board:
    try:
        return BOARDS[str(name).lower()]
    except KeyError:
        raise EdgeMoeError(f"unknown board {name!r} (known: {', '.join(BOARDS)})") from None


__all__ = ["Board", "BOARDS", "BUNDLES", "DDR", "DDR_PORT_OF", "Resources", "KERNEL_BASE_ADDRESS", "KERNEL_ADDRESS_RANGE",
           "PS_SLAVE_PORTS", "PS_MASTER_PORTS", "PS_PORT_MAX_BITS", "get_board"]
