"""Port groups shared by the gateware blocks: table ports and counter groups.

A table the host keeps in a block (trigger rows, risk limits, positions, symbol names, latency
bins) is reached through one :class:`TablePort` member, from the register file (which drives
it) through the pipeline levels to the block that holds the table, so the levels connect it
with :func:`amaranth.lib.wiring.connect` instead of forwarding ``<table>_we``,
``<table>_slot``... by name::

    w.we, w.index, w.row     a host write: ``row`` is written to entry ``index`` while ``we``
    r.addr -> r.data         a read-back: ``data`` is the entry at ``addr`` (the block says
                             when: combinationally or a cycle later)

Members are named from the driving side (``Out`` for ``w.*`` and ``r.addr``); a block that
holds the table takes ``In(TablePort(...))``.
"""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["TableWrite", "TableRead", "TablePort", "CounterGroup"]


class TableWrite(wiring.Signature):
    """One host write of a table row (writer's side)."""

    def __init__(self, index, row):
        self.index_shape, self.row_shape = index, row
        super().__init__({"we": Out(1), "index": Out(index), "row": Out(row)})

    def __eq__(self, other):
        return isinstance(other, TableWrite) and self.members == other.members

    def __repr__(self):
        return f"TableWrite({self.index_shape!r}, {self.row_shape!r})"


class TableRead(wiring.Signature):
    """A read of one table entry (reader's side)."""

    def __init__(self, index, row):
        self.index_shape, self.row_shape = index, row
        super().__init__({"addr": Out(index), "data": In(row)})

    def __eq__(self, other):
        return isinstance(other, TableRead) and self.members == other.members

    def __repr__(self):
        return f"TableRead({self.index_shape!r}, {self.row_shape!r})"


class TablePort(wiring.Signature):
    """A table's port (driver's side): ``w`` (:class:`TableWrite`) where the host writes it,
    ``r`` (:class:`TableRead`) where the host reads it back from the block."""

    def __init__(self, index, row, *, write: bool = True, read: bool = False,
                 read_row=None):
        if not (write or read):
            raise ValueError("a table port needs a write or a read side")
        members = {}
        if write:
            members["w"] = Out(TableWrite(index, row))
        if read:
            members["r"] = Out(TableRead(index, row if read_row is None else read_row))
        super().__init__(members)

    def __eq__(self, other):
        return isinstance(other, TablePort) and self.members == other.members


class CounterGroup(wiring.Signature):
    """A block's event counters, one ``Out`` member each (``wide``: 64-bit ones)."""

    def __init__(self, names, width: int = 32, wide=()):
        super().__init__({n: Out(64 if n in wide else width) for n in names})

    def __eq__(self, other):
        return isinstance(other, CounterGroup) and self.members == other.members

