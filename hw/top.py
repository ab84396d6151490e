"""Top levels of the pipeline.

:class:`FeedBookTop` is the first half of the tick-to-trade path: two MAC lines (A, B) of
Ethernet frames → feed handler (frame parser, MoldUDP64 with A/B arbitration, ITCH decoder) →
book builder → top-N book updates. Configuration and counters are plain ports here (the
register file wraps them in the full pipeline).
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .book.builder import COUNTERS as BOOK_COUNTERS, BookBuilder
from .book.layouts import book_update_layout
from .feed.frontend import FeedFrontEnd
from .feed.layouts import AxiStreamSignature, FEED_COUNTERS, GroupEntry, WIDE_COUNTERS

__all__ = ["FeedBookTop"]


class FeedBookTop(wiring.Component):
    """Members
    -------
    rx_a, rx_b : In(AxiStreamSignature(64))       the two feed lines (no back-pressure)
    groups, check_ip_checksum, track_sequence, ab_window : feed configuration
    sym_we, sym_slot, sym_name, sym_valid, auto : symbol table writes / auto mode
    o : Out(stream.Signature(book_update_layout(depth)))   top-N updates
    <feed counters>, <book counters>, overflow : Out
    """

    def __init__(self, *, depth: int = 10, symbols: int = 64, order_buckets: int = 1 << 12,
                 order_ways: int = 4, levels: int = 32, groups: int = 4):
        self._feed_kw = dict(groups=groups)
        self._book_kw = dict(depth=depth, symbols=symbols, order_buckets=order_buckets,
                             order_ways=order_ways, levels=levels)
        self.depth = depth
        slot_bits = max(1, (symbols - 1).bit_length())
        members = {
            "rx_a": In(AxiStreamSignature(64)),
            "rx_b": In(AxiStreamSignature(64)),
            "groups": In(data.ArrayLayout(GroupEntry, groups)),
            "check_ip_checksum": In(1, init=1),
            "track_sequence": In(1, init=1),
            "ab_window": In(16),
            "sym_we": In(1),
            "sym_slot": In(slot_bits),
            "sym_name": In(64),
            "sym_valid": In(1),
            "auto": In(1),
            "o": Out(stream.Signature(book_update_layout(depth))),
            "overflow": Out(32),
        }
        for k in FEED_COUNTERS:
            members[k] = Out(64 if k in WIDE_COUNTERS else 32)
        for k in BOOK_COUNTERS:
            members[k] = Out(32)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.feed = feed = FeedFrontEnd(**self._feed_kw)
        m.submodules.book = book = BookBuilder(**self._book_kw)
        wiring.connect(m, wiring.flipped(self.rx_a), feed.rx_a)
        wiring.connect(m, wiring.flipped(self.rx_b), feed.rx_b)
        wiring.connect(m, feed.o, book.i)
        wiring.connect(m, book.o, wiring.flipped(self.o))
        m.d.comb += [
            feed.groups.eq(self.groups), feed.check_ip_checksum.eq(self.check_ip_checksum),
            feed.track_sequence.eq(self.track_sequence), feed.ab_window.eq(self.ab_window),
            feed.events.ready.eq(1),
            book.sym_we.eq(self.sym_we), book.sym_slot.eq(self.sym_slot),
            book.sym_name.eq(self.sym_name), book.sym_valid.eq(self.sym_valid),
            book.auto.eq(self.auto),
            self.overflow.eq(feed.overflow),
        ]
        for k in FEED_COUNTERS:
            m.d.comb += getattr(self, k).eq(getattr(feed, k))
        for k in BOOK_COUNTERS:
            m.d.comb += getattr(self, k).eq(getattr(book, k))
        return m
