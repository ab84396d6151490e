"""Board targets: part, clocks, network cages, memory and default capacities.

Board facts are written from the boards' public descriptions; each names its source:

* litex-boards platform files (``litex_boards/platforms``): ``xilinx_kv260.py`` (part
  ``xck26-sfvc784-2LV-c``), ``xilinx_zcu104.py`` (part ``xczu7ev-ffvc1156-2-i-es2`` in the
  file; production boards carry ``-2-e``), ``xilinx_alveo_u55c.py`` (part
  ``xcu55c-fsvh2892-2L-e``);
* the vendor's board files for Vivado (``board_part``) and the Vitis platform name of the
  U55C (``xilinx_u55c_gen3x16_xdma_3_202210_1``, its QSFP28 GT and reference-clock
  interfaces ``io_gt_qsfp0_00`` / ``io_clk_qsfp0_refclkb_00``).

GT sites: the transceiver pins of a cage are dedicated pins of one GT quad, so the vendor's
Ethernet subsystem is placed by naming the quad/channel (``gt_location``), not by package
pins. Each cage below names where its site comes from; none has been checked against a
board in this project (``verified=False``), and a wrong site fails in Vivado's placer, not
silently.

Network: the feed lines and the order line are 10GBASE-R (the exchange's feeds and order
entry are 10G in co-location); the MAC/PCS is the vendor's **10G/25G Ethernet Subsystem**
(``xxv_ethernet``): one IP for both rates, 64-bit AXI4-Stream user side (the appliance's beat
width), no licence needed for 10G/25G BASE-R without RS-FEC, and it drives the GTH (Zynq
UltraScale+) and GTY (Alveo) transceivers. Its user side runs on the MAC's clock
(156.25 MHz at 10G with a 64-bit stream); clock-converting AXI4-Stream FIFOs
(``axis_data_fifo``, independent clocks) carry the beats to and from the fabric clock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from tickwire.spec.capacity import (BOARD_ORDER_BUCKETS, GATEWARE, ONCHIP_ORDER_BUCKETS,
                                     ORDER_LINE_BYTES, ROW_DEPTH)

__all__ = ["Cage", "Target", "TARGETS", "target", "RTL", "order_table_bytes", "GiB"]

GiB = 1 << 30


def order_table_bytes(order_buckets: int) -> int:
    """Bytes of the build's order table in off-chip memory: 0 where the table is on chip
    (at most ``ONCHIP_ORDER_BUCKETS`` buckets, the gateware's ``order_memory="auto"`` rule),
    else ``order_buckets`` lines of ``ORDER_LINE_BYTES``."""
    n = int(order_buckets)
    return 0 if n <= ONCHIP_ORDER_BUCKETS else n * ORDER_LINE_BYTES


@dataclass(frozen=True)
class Cage:
    """A network cage and what the Ethernet subsystem needs to drive it."""
    name: str               # e.g. "sfp0"
    kind: str               # "SFP+" | "QSFP28"
    lanes: int              # GT lanes wired to the cage
    gt: str                 # transceiver type: GTH | GTY
    gt_location: str        # first GT channel of the cage (placement of the Ethernet subsystem)
    refclk_mhz: float       # reference clock of the cage's quad
    refclk: str             # the board interface/port carrying it
    use: tuple[tuple[str, int], ...]   # (stream, lane): feed_a/feed_b on a lane's receive
                                       # side, orders on a lane's transmit side
    verified: bool = False  # checked against a board in this project
    source: str = ""


@dataclass(frozen=True)
class Target:
    name: str
    board: str
    flow: str               # "pynq" (Vivado block design: .bit + .hwh), "xrt" (v++: .xclbin),
                            # "rtl" (the Verilated appliance served as a board: no vendor flow)
    part: str
    board_part: str = ""
    platform: str = ""      # Vitis platform (xrt)
    clock_mhz: float = 300.0
    cages: tuple[Cage, ...] = ()
    memory: str = ""
    offchip_bytes: int = 0  # the memory the appliance's AXI4 master (the order table) reaches
    offchip_kind: str = ""  # what that memory is
    offchip_bank_bytes: int = 0  # one bank of it, where a buffer lives in one bank (HBM)
    luts: int = 0           # the part's resources, for the share the appliance uses
    ffs: int = 0
    bram36: int = 0
    uram: int = 0
    dsp: int = 0
    capacity: dict = field(default_factory=dict)
    depth: int = ROW_DEPTH
    source: str = ""
    notes: str = ""

    @property
    def kernel(self) -> str:
        return "tickwire"

    def params(self, capacity: dict | None = None) -> dict:
        """The build parameters that make the BUILD_ID (with the source digest)."""
        cap = {**GATEWARE, **self.capacity, **(capacity or {})}
        return {"target": self.name, "part": self.part, "clock_mhz": self.clock_mhz,
                "depth": self.depth, **{k: cap[k] for k in sorted(cap)}}

    def feed_sources(self) -> dict[str, str]:
        """Where each stream of the appliance meets the board: a cage lane or the DMA."""
        out = {"feed_a": "dma", "feed_b": "dma", "orders": "dma"}
        for c in self.cages:
            for stream, lane in c.use:
                out[stream] = f"{c.name}:{lane}"
        return out

    def describe(self) -> dict:
        d = asdict(self)
        d["feed_sources"] = self.feed_sources()
        return d


_SRC_LITEX = "litex-boards litex_boards/platforms/{}"

TARGETS: dict[str, Target] = {t.name: t for t in (
    Target(
        name="kv260", board="Kria KV260 Vision AI Starter Kit (K26 SOM), PYNQ on Kria",
        flow="pynq", part="xck26-sfvc784-2LV-c",
        board_part="xilinx.com:kv260_som:part0:1.4",
        # pl_clk0 of the PS (IOPLL 1500 MHz / 6); the -2LV part at 0.72 V is the slower grade
        clock_mhz=250.0,
        # The KV260 carrier has no SFP/QSFP cage (its network port is the PS's 1G RGMII):
        # feed lines A and B and the order output reach the PS through the AXI DMA, which
        # replays captures (the K26's GTH lanes come out on the KR260 carrier's SFP+ cages).
        cages=(),
        memory="4 GB DDR4 on the PS: DMA buffers and the book's order table (HP1)",
        offchip_bytes=4 * GiB, offchip_kind="PS DDR4 (K26 SOM, 64-bit)",
        luts=117_120, ffs=234_240, bram36=144, uram=64, dsp=1_248,
        capacity={"symbols": 64, "order_buckets": BOARD_ORDER_BUCKETS},
        source=_SRC_LITEX.format("xilinx_kv260.py") + "; Kria K26 SOM data sheet DS987",
        notes="no network cage: market data replayed through DMA"),
    Target(
        name="zcu104", board="Zynq UltraScale+ MPSoC ZCU104, PYNQ", flow="pynq",
        part="xczu7ev-ffvc1156-2-e", board_part="xilinx.com:zcu104:part0:1.1",
        clock_mhz=300.0,     # pl_clk0: IOPLL 1500 MHz / 5
        cages=(Cage("sfp0", "SFP+", 1, "GTH", "GTHE4_CHANNEL_X0Y10", 156.25,
                    "USER_MGT_SI570 (GTH quad 225 reference)", (("feed_a", 0), ("orders", 0)),
                    source="UG1267 (ZCU104 user guide), SFP+ cage P2 -- verify the channel"),),
        # the PS's 2 GB of DDR4 components (UG1267; the Vitis platform's platforminfo: "2GB
        # DDR4 ... of the Processing System"); the 4 GB SODIMM is on the PL's pins, unused here
        memory="2 GB DDR4 on the PS: DMA buffers and the book's order table (HP1)",
        offchip_bytes=2 * GiB, offchip_kind="PS DDR4 (64-bit components)",
        luts=230_400, ffs=460_800, bram36=312, uram=96, dsp=1_728,
        capacity={"symbols": 128, "order_buckets": BOARD_ORDER_BUCKETS},
        source=_SRC_LITEX.format("xilinx_zcu104.py") + "; UG1267",
        notes="one SFP+ cage: line A received and orders sent on it, line B through DMA"),
    Target(
        name="u55c", board="Alveo U55C (HBM2), XRT", flow="xrt",
        part="xcu55c-fsvh2892-2L-e", platform="xilinx_u55c_gen3x16_xdma_3_202210_1",
        clock_mhz=300.0,     # kernel clock ap_clk (v++ --kernel_frequency)
        cages=(Cage("qsfp0", "QSFP28", 4, "GTY", "io_gt_qsfp0_00", 161.1328125,
                    "io_clk_qsfp0_refclkb_00", (("feed_a", 0), ("feed_b", 1), ("orders", 0)),
                    source="U55C Vitis platform interfaces (XUP vitis_network_example)"),),
        memory="16 GB HBM2: host buffers, the book mover's ring and the order table",
        # two 8 GB stacks as 32 pseudo-channels of 512 MiB, each a bank (HBM[k]) of v++ sp=
        offchip_bytes=16 * GiB, offchip_kind="HBM2", offchip_bank_bytes=GiB // 2,
        luts=1_303_680, ffs=2_607_360, bram36=2_016, uram=960, dsp=9_024,
        capacity={"symbols": 256, "order_buckets": BOARD_ORDER_BUCKETS},
        source=_SRC_LITEX.format("xilinx_alveo_u55c.py") + "; Alveo U55C data sheet DS978",
        notes="QSFP28 0 as 10GBASE-R lanes: lane 0 feed A in and orders out, lane 1 feed B"),
)}

#: The Verilated appliance as a board (deploy/status are tested against it): no part, no
#: vendor flow; its BUILD_ID is the one the RTL harness is built with.
RTL = Target(name="rtl", board="Verilated appliance (tickwire.backends.rtl)", flow="rtl",
             part="verilator", clock_mhz=0.0, memory="host memory", capacity={},
             source="tickwire.backends.rtl.harness")


def target(name: str) -> Target:
    if name == RTL.name:
        return RTL
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r} (known: {', '.join(TARGETS)}, rtl)") from None
