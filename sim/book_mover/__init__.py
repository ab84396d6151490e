"""cocotb bench of the book mover (hw/board/mover.py, module ``tickwire_book_mover``: the
Verilog the Alveo project packages as its second kernel), driven as on a card: an AXI4 RAM
as the HBM (latency and back-pressure on every channel), the host's register driver of
:data:`~tickwire.hw.board.book_ring.MOVER_MAP` on ``s_axi_control`` and book rows on
``s_axis_book`` with random gaps (sim/book_mover/mover_tb.py).

Here, the pytest side: the Verilated build (:func:`build`).
"""

from __future__ import annotations

from tickwire.spec.capacity import ROW_DEPTH

__all__ = ["DEPTH", "build", "row_beats"]

#: the book depth of the rows (the kernel top's, so the row geometry is a board build's)
DEPTH = ROW_DEPTH


def row_beats(depth: int = DEPTH) -> int:
    from tickwire.hw.board.wrapper import book_beats
    return book_beats(depth)


def build():
    """Module ``tickwire_book_mover``, Verilated (cached under ``sim_build/book_mover`` by
    the hash of its Verilog)."""
    from tickwire.hw.board.book_ring import MOVER_KERNEL
    from tickwire.hw.board.mover import mover_ports, mover_verilog
    from tickwire.sim.runner import build_verilog
    ports = {n: {"name": n, "dir": d, "width": w, "fields": {}}
             for n, (w, d) in mover_ports().items()}
    return build_verilog(mover_verilog(row_beats()), ports, "book_mover", toplevel=MOVER_KERNEL,
                         clocks=())
