"""cocotb bench of the board kernel top (hw/board/wrapper.py, module ``tickwire``): the
Verilog a board project holds (the kernel top and the appliance it instantiates), driven
through its AXI ports as a board's host drives it (sim/kernel_top/kernel_tb.py).

Here, the pytest side: the Verilated build (:func:`build`) and the book rows of the
``m_axis_book`` packets (:func:`book_rows`).
"""

from __future__ import annotations

from tickwire.spec.capacity import GATEWARE, ROW_DEPTH

__all__ = ["DEPTH", "CAPACITY", "BUILD_ID", "build", "book_rows", "order_memory_bytes"]

#: the appliance's build parameters under the kernel top: the RTL back-end's (the emulator
#: at ``rtl_config`` capacities is its scoreboard)
DEPTH = ROW_DEPTH
CAPACITY = dict(GATEWARE)
#: the BUILD_ID built in; fixed, so that the build cache keys on the gateware's Verilog alone
BUILD_ID = 0x4B54_0001


def build():
    """The kernel top and the appliance as one Verilog file, Verilated (cached under
    ``sim_build/kernel_top`` by the hash of that Verilog)."""
    from tickwire.hw.board.wrapper import (KERNEL, KernelTop, appliance_verilog, kernel_ports,
                                           kernel_verilog)
    from tickwire.sim.runner import build_verilog
    top = KernelTop(DEPTH, CAPACITY, BUILD_ID)
    text = kernel_verilog(top) + appliance_verilog(DEPTH, CAPACITY, BUILD_ID)
    ports = {n: {"name": n, "dir": d, "width": w, "fields": {}}
             for n, (w, d) in kernel_ports(top.mem).items()}
    # ap_clk and ap_rst_n are ports of the kernel: no implicit clock to add
    return build_verilog(text, ports, "kernel_top", toplevel=KERNEL, clocks=())


def book_rows(packets: list[bytes], depth: int = DEPTH):
    """The rows of ``m_axis_book`` packets (:func:`tickwire.backends.wire.book_packet_rows`,
    the decoder the board hosts use)."""
    from tickwire.backends.wire import book_packet_rows
    return book_packet_rows(packets, depth)


def order_memory_bytes() -> int:
    """Bytes of the order table behind ``m_axi_book`` (0: the table is on chip)."""
    from tickwire.hw.board.targets import order_table_bytes
    return order_table_bytes(CAPACITY["order_buckets"])
