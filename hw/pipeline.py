"""The whole tick-to-trade pipeline: feed lines in, OUCH order frames out.

    rx_a, rx_b -> FeedFrontEnd -> BookBuilder(events, stamp) -+-> updates (top-N rows)
                      |                    ^ loc_*, ev_pending '-> ev --> OrderPath -> o (frames)
                      '-> early, held -> CutThrough ----------------> fast, quiet --^

:class:`TickToTrade` wires :class:`~tickwire.hw.feed.frontend.FeedFrontEnd`,
:class:`~tickwire.hw.book.builder.BookBuilder` (with ``events`` and ``stamp``) and
:class:`~tickwire.hw.trigger.path.OrderPath` (trigger engine -> pre-trade risk -> order egress).
Configuration is plain ports (host write strobes and static values); the AXI-Lite register
file (hw/regmap) can wrap them later.

Slot names: the host writes a symbol with ``sym_we``/``sym_slot``/``sym_name``/``sym_valid``;
one write goes to both the book's symbol table and the egress name table (the Enter Order's
``symbol`` field), so orders carry the names the host configured. In ``auto`` mode the book
learns names the egress does not know (its entries stay as last written): configure explicit
symbols when orders are to be sent.

Latency stamps: the book's ``now`` is the order path's free-running cycle counter, so every
BookEvent carries the cycle its message entered the book builder, and the egress's latency
histogram (``lat_*``) measures book input -> first byte of the order frame on ``o`` (for an
order fired on the cut-through path: strobe -> first byte).

Cut-through (``fast_enable``, default 0): :class:`~tickwire.hw.trigger.cutthrough.CutThrough`
turns the decoder's ``early`` view into the trigger engine's ``fast`` strobe for an ``A``/``F``
that ends its packet (no truncation possible any more), with the slot from the book's locate
map and ``quiet`` from the decoder's ``held`` and the book's ``ev_pending``; the engine
evaluates such an add in the cycle its last byte is shown, 3 cycles before the order frame's
first byte. The order frames are the same with it on or off (docs/architecture.md "Trigger
engine"). The ``quiet`` port is kept for compatibility and has no effect: the pipeline derives
the engine's ``quiet`` itself.

The order output ``o`` is a ``lib.stream`` of :data:`OrderBeat` (the egress's 64-bit
AXI-stream beats: data, keep, first, last) with back-pressure.
"""

from __future__ import annotations

from amaranth import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .book.builder import COUNTERS as BOOK_COUNTERS, BookBuilder
from .book.layouts import book_update_layout
from .egress.layouts import SessionTemplate
from .feed.frontend import _LINE_COUNTERS, FeedFrontEnd
from .feed.layouts import AxiStreamSignature, FEED_COUNTERS, GroupEntry, WIDE_COUNTERS
from .risk.layouts import RiskParams, SlotLimits
from .trigger.common import SLOT_BITS
from .trigger.cutthrough import CutThrough
from .trigger.layouts import TriggerRow
from .trigger.path import COUNTERS as PATH_COUNTERS, OrderPath

__all__ = ["TickToTrade", "OrderBeat", "COUNTERS"]

#: One beat of the order output (byte 0 of a frame in ``data[7:0]``).
OrderBeat = data.StructLayout({"data": 64, "keep": 8, "first": 1, "last": 1})

#: Every counter port, named as the emulator's counters where it has them.
COUNTERS = tuple(FEED_COUNTERS) + tuple(BOOK_COUNTERS) + tuple(PATH_COUNTERS)

#: The feed front end's hardware-only counters (per line frame outcomes, ignored types).
FEED_HW_PORTS = ("ignored_types",) + tuple(f"{line}_{k}" for line in "ab"
                                            for k in _LINE_COUNTERS)

#: Order-path ports passed through under the same name.
_PATH_IN = ("enable", "fast_enable", "tw_we", "tw_slot", "tw_row", "ref_we", "ref_slot",
            "ref_price",
            "params", "sl_we", "sl_slot", "sl_data", "pos_we", "pos_slot", "pos_value",
            "pos_raddr", "gross_we", "gross_value", "trip_clear", "user_ref_load", "tmpl",
            "capacity", "session_load", "lat_enable", "lat_bin_shift", "lat_rd_index", "lat_clear",
            "clear")
_PATH_OUT = ("pos_rdata", "lat_rd_count", "lat_count", "lat_sum", "lat_min", "lat_max",
             "lat_last", "now", "kill_active", "tripped", "gross", "user_ref", "next_seq",
             "next_ip_id", "busy")


class TickToTrade(wiring.Component):
    """Members
    -------
    rx_a, rx_b : In(AxiStreamSignature(64))     the two feed lines (no back-pressure)
    groups, check_ip_checksum, track_sequence, ab_window : feed configuration
    sym_we, sym_slot, sym_name, sym_valid : symbol write (book symbol table + egress names)
    auto : book auto mode (names learned by the book only; see the module docstring)
    enable, tw_*, ref_*, params, sl_*, pos_*, gross_*, trip_clear, user_ref_load,
    tmpl, capacity, session_load, lat_enable, lat_bin_shift, lat_rd_index, clear :
        the order path's configuration (hw/trigger/path.py); ``clear`` clears the order
        path only (trigger rows, risk state, egress queue/counters), not the book
    fast_enable : In(1)   take adds on the cut-through path (default 0: slow path only)
    quiet : In(1)         no effect (kept for compatibility; see the module docstring)
    o : Out(stream.Signature(OrderBeat))         order frames
    updates : Out(stream.Signature(book_update_layout(depth)))   top-N rows (hold ``ready``
        high when unused: a full update FIFO stalls the book)
    <feed counters>, <book counters>, <order-path counters>, overflow : Out
    ignored_types, a_<reason>, b_<reason>, session, expected : Out (feed state and
        hardware-only counters)
    sym_raddr -> sym_rname, sym_rvalid : read-back of the book's symbol table
    lat_clear : clear the latency histogram only
    pos_rdata, lat_*, now, kill_active, tripped, gross, user_ref, next_seq, next_ip_id,
    busy : Out (order-path status)
    fast_offered : Out(32)  cut-through strobes presented to the engine (taken or not: the
        engine's ``fast_taken`` counts those it evaluated)
    """

    def __init__(self, *, depth: int = 10, symbols: int = 64, order_buckets: int = 1 << 12,
                 order_ways: int = 4, levels: int = 32, groups: int = 4,
                 fifo_depth: int = 16, hist_bins: int = 33, limits_init: dict | None = None):
        self._feed_kw = dict(groups=groups)
        self._book_kw = dict(depth=depth, symbols=symbols, order_buckets=order_buckets,
                             order_ways=order_ways, levels=levels)
        self._path_kw = dict(symbols=symbols, fifo_depth=fifo_depth, hist_bins=hist_bins,
                             limits_init=limits_init)
        self.depth = depth
        self.symbols = symbols
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
            "enable": In(1), "quiet": In(1), "fast_enable": In(1),
            "tw_we": In(1), "tw_slot": In(SLOT_BITS), "tw_row": In(TriggerRow),
            "ref_we": In(1), "ref_slot": In(SLOT_BITS), "ref_price": In(32),
            "params": In(RiskParams),
            "sl_we": In(1), "sl_slot": In(SLOT_BITS), "sl_data": In(SlotLimits),
            "pos_we": In(1), "pos_slot": In(SLOT_BITS), "pos_value": In(64),
            "pos_raddr": In(SLOT_BITS),
            "gross_we": In(1), "gross_value": In(64),
            "trip_clear": In(1), "user_ref_load": In(1),
            "tmpl": In(SessionTemplate), "capacity": In(8), "session_load": In(1),
            "lat_enable": In(1), "lat_bin_shift": In(5), "lat_rd_index": In(range(hist_bins)),
            "lat_clear": In(1), "clear": In(1),
            "sym_raddr": In(slot_bits), "sym_rname": Out(64), "sym_rvalid": Out(1),
            "session": Out(80), "expected": Out(64),
            "o": Out(stream.Signature(OrderBeat)),
            "updates": Out(stream.Signature(book_update_layout(depth))),
            "overflow": Out(32),
            "pos_rdata": Out(64), "lat_rd_count": Out(32), "lat_count": Out(64),
            "lat_sum": Out(64), "lat_min": Out(32), "lat_max": Out(32), "lat_last": Out(32),
            "now": Out(32), "kill_active": Out(1), "tripped": Out(1), "gross": Out(64),
            "user_ref": Out(32), "next_seq": Out(32), "next_ip_id": Out(16), "busy": Out(1),
            "fast_offered": Out(32),
        }
        for k in FEED_COUNTERS:
            members[k] = Out(64 if k in WIDE_COUNTERS else 32)
        for k in BOOK_COUNTERS:
            members[k] = Out(32)
        for k in FEED_HW_PORTS:
            members[k] = Out(32)
        for k in PATH_COUNTERS:
            members[k] = Out(32)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.feed = feed = FeedFrontEnd(**self._feed_kw)
        m.submodules.book = book = BookBuilder(events=True, stamp=True, **self._book_kw)
        m.submodules.path = path = OrderPath(**self._path_kw)
        m.submodules.cut = cut = CutThrough(symbols=self.symbols, slot_bits=book.slot_bits)
        wiring.connect(m, wiring.flipped(self.rx_a), feed.rx_a)
        wiring.connect(m, wiring.flipped(self.rx_b), feed.rx_b)
        wiring.connect(m, feed.o, book.i)
        wiring.connect(m, book.o, wiring.flipped(self.updates))
        wiring.connect(m, book.ev, path.ev)
        m.d.comb += [
            feed.groups.eq(self.groups), feed.check_ip_checksum.eq(self.check_ip_checksum),
            feed.track_sequence.eq(self.track_sequence), feed.ab_window.eq(self.ab_window),
            feed.events.ready.eq(1),
            book.now.eq(path.now),
            book.sym_we.eq(self.sym_we), book.sym_slot.eq(self.sym_slot),
            book.sym_name.eq(self.sym_name), book.sym_valid.eq(self.sym_valid),
            book.auto.eq(self.auto),
            book.sym_raddr.eq(self.sym_raddr), self.sym_rname.eq(book.sym_rname),
            self.sym_rvalid.eq(book.sym_rvalid),
            self.session.eq(feed.session), self.expected.eq(feed.expected),
            # one host symbol write names the slot in the egress too
            path.name_we.eq(self.sym_we), path.name_slot.eq(self.sym_slot),
            path.name_data.eq(self.sym_name),
            # cut-through: decoder early view -> trigger engine fast strobe
            cut.early.eq(feed.early), cut.held.eq(feed.held),
            cut.ev_pending.eq(book.ev_pending),
            book.loc_addr.eq(cut.loc_addr),
            cut.loc_valid.eq(book.loc_valid), cut.loc_slot.eq(book.loc_slot),
            cut.ev_take.eq(book.ev.valid & book.ev.ready), cut.ev_slot.eq(book.ev.payload.slot),
            cut.ev_evaluate.eq(book.ev.payload.evaluate), cut.clear.eq(self.clear),
            path.fast.valid.eq(cut.fast.valid), path.fast.payload.eq(cut.fast.payload),
            path.quiet.eq(cut.quiet),
            self.fast_offered.eq(cut.offered),
            self.overflow.eq(feed.overflow),
            # order frames
            self.o.valid.eq(path.o.valid), path.o.ready.eq(self.o.ready),
            self.o.payload.data.eq(path.o.data), self.o.payload.keep.eq(path.o.keep),
            self.o.payload.first.eq(path.o.first), self.o.payload.last.eq(path.o.last),
        ]
        for k in _PATH_IN:
            m.d.comb += getattr(path, k).eq(getattr(self, k))
        for k in _PATH_OUT:
            m.d.comb += getattr(self, k).eq(getattr(path, k))
        for k in FEED_COUNTERS + FEED_HW_PORTS:
            m.d.comb += getattr(self, k).eq(getattr(feed, k))
        for k in BOOK_COUNTERS:
            m.d.comb += getattr(self, k).eq(getattr(book, k))
        for k in PATH_COUNTERS:
            m.d.comb += getattr(self, k).eq(getattr(path, k))
        return m
