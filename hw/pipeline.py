"""The whole tick-to-trade pipeline: feed lines in, OUCH order frames out.

    rx_a, rx_b -> FeedFrontEnd -> BookBuilder(events, stamp) -+-> updates (top-N rows)
                      |                    ^ loc_*, ev_pending '-> ev --> OrderPath -> o (frames)
                      '-> early, held -> CutThrough ----------------> fast, quiet --^

:class:`TickToTrade` wires :class:`~tickwire.hw.feed.frontend.FeedFrontEnd`,
:class:`~tickwire.hw.book.builder.BookBuilder` (with ``events`` and ``stamp``) and
:class:`~tickwire.hw.trigger.path.OrderPath` (trigger engine -> pre-trade risk -> order egress).
Configuration comes in groups (:mod:`tickwire.hw.ports`): ``feed`` (:class:`FeedConfig`),
``orders`` (:class:`~tickwire.hw.trigger.path.OrderConfig`) and the host tables as
:class:`~tickwire.hw.ports.TablePort` members, connected through to the order path's blocks;
status and counters leave as ``status`` and ``counters`` groups. The AXI4-Lite register file
drives them in :class:`tickwire.hw.appliance.Appliance`.

Slot names: the host writes a symbol on ``symbols.w`` (row: name, valid); one write goes to
both the book's symbol table and the egress name table (the Enter Order's ``symbol`` field),
so orders carry the names the host configured; ``symbols.r`` reads the book's table back. In ``auto`` mode the book
learns names the egress does not know (its entries stay as last written): configure explicit
symbols when orders are to be sent.

Latency stamps: the book's ``now`` is the order path's free-running cycle counter, so every
BookEvent carries the cycle its message entered the book builder, and the egress's latency
histogram (``lat_hist``, ``status.lat_*``) measures book input -> first byte of the order frame on ``o`` (for an
order fired on the cut-through path: strobe -> first byte).

Cut-through (``orders.fast_enable``, default 0): :class:`~tickwire.hw.trigger.cutthrough.CutThrough`
turns the decoder's ``early`` view into the trigger engine's ``fast`` strobe for an ``A``/``F``
that ends its packet (no truncation possible any more), with the slot from the book's locate
map and ``quiet`` from the decoder's ``held`` and the book's ``ev_pending``; the engine
evaluates such an add in the cycle its last byte is shown, 3 cycles before the order frame's
first byte. The order frames are the same with it on or off (docs/architecture.md "Trigger
engine").

With wire triggers (``orders.wire``) and ``fast_enable``,
:class:`~tickwire.hw.trigger.portwalk.PortWalker` walks line A's beats at the port and presents
each add of a packet the tracker is certain to deliver to the same engine input the cycle
after its last byte (4 cycles to the order's first byte); its entries go to ``CutThrough``,
which keeps the order of the engine's state changes (docs/architecture.md "Trigger from the
port").

The order output ``o`` is a ``lib.stream`` of :data:`OrderBeat` (the egress's 64-bit
AXI-stream beats: data, keep, first, last, user: an aborted frame) with back-pressure. The
feed's bad-FCS ranges (``FeedFrontEnd.fcs_bad``) go to the egress.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tickwire.spec.capacity import GATEWARE as _CAP, ROW_DEPTH
from tickwire.spec.streams import BEAT_FIELDS

from .book.builder import COUNTERS as BOOK_COUNTERS, BookBuilder
from .book.layouts import book_update_layout
from .egress.layouts import LatencyRecord
from .feed.frontend import _LINE_COUNTERS, FeedFrontEnd
from .feed.layouts import AxiStreamSignature, FEED_COUNTERS, GroupEntry, WIDE_COUNTERS
from .ports import CounterGroup, TablePort
from .trigger.cutthrough import CutThrough
from .trigger.portwalk import PortWalker
from .trigger.path import (COUNTERS as PATH_COUNTERS, OrderConfig, OrderPath, OrderStatus,
                          forward, tables)

__all__ = ["TickToTrade", "FeedConfig", "OrderBeat", "SymbolRow", "COUNTERS", "FEED_HW_PORTS"]

#: One beat of the order output (byte 0 of a frame in ``data[7:0]``).
OrderBeat = data.StructLayout(dict(BEAT_FIELDS))

#: A row of the symbol table (book symbol table + egress names).
SymbolRow = data.StructLayout({"name": 64, "valid": 1})

#: The feed front end's hardware-only counters (line-buffer overflows, ignored types, per line
#: frame outcomes).
FEED_HW_PORTS = ("overflow", "ignored_types") + tuple(f"{line}_{k}" for line in "ab"
                                                      for k in _LINE_COUNTERS)

#: Every counter of the ``counters`` group, named as the emulator's counters where it has them.
COUNTERS = tuple(FEED_COUNTERS) + tuple(BOOK_COUNTERS) + tuple(PATH_COUNTERS)


class FeedConfig(wiring.Signature):
    """Feed handler configuration (from the host's side; see FeedFrontEnd)."""

    def __init__(self, groups: int):
        self.groups = groups
        super().__init__({
            "groups": Out(data.ArrayLayout(GroupEntry, groups)),
            "check_ip_checksum": Out(1, init=1),
            "track_sequence": Out(1, init=1),
            "ab_window": Out(16),
        })

    def __eq__(self, other):
        return isinstance(other, FeedConfig) and other.groups == self.groups


class TickToTrade(wiring.Component):
    """Members
    -------
    rx_a, rx_b : In(AxiStreamSignature(64))     the two feed lines (no back-pressure)
    feed : In(FeedConfig(groups))               feed configuration
    auto : In(1)                                book auto mode (see the module docstring)
    orders : In(OrderConfig())                  the order path's configuration; ``clear``
        clears the order path only (trigger rows, risk state, egress queue/counters), not
        the book
    symbols : In(TablePort(slot_bits, SymbolRow, read=True))   symbol writes (book symbol
        table + egress names), read-back of the book's table
    triggers, refs, limits, positions, lat_hist : the order path's tables (hw/trigger/path.py)
    o : Out(stream.Signature(OrderBeat))         order frames
    updates : Out(stream.Signature(book_update_layout(depth)))   top-N rows (hold ``ready``
        high when unused: a full update FIFO stalls the book)
    lat : Out(stream.Signature(LatencyRecord, always_ready=True))   per order frame, the
        cycle-counter stamps of its message (hw/egress/layouts.py ``LatencyRecord``)
    status : Out(OrderStatus())                 the order path's status
    session, expected : Out                     the feed's MoldUDP64 session, next sequence
    counters : Out(CounterGroup(COUNTERS + FEED_HW_PORTS))   feed, book and order-path
        counters
    fast_offered : Out(32)  cut-through strobes presented to the engine (taken or not: the
        engine's ``fast_taken`` counts those it evaluated), ``port_offered`` those of them the
        port walker presented; ``port_syncs``, ``port_b_waits``, ``wire_stops``:
        hw/trigger/portwalk.py, hw/trigger/cutthrough.py
    """

    def __init__(self, *, depth: int = ROW_DEPTH, symbols: int = _CAP["symbols"],
                 order_buckets: int = _CAP["order_buckets"], order_ways: int = _CAP["order_ways"],
                 levels: int = _CAP["levels"], groups: int = _CAP["groups"],
                 fifo_depth: int = 16, hist_bins: int = _CAP["hist_bins"],
                 limits_init: dict | None = None, order_memory: str = "auto"):
        self._feed_kw = dict(groups=groups)
        self._book_kw = dict(depth=depth, symbols=symbols, order_buckets=order_buckets,
                             order_ways=order_ways, levels=levels, order_memory=order_memory)
        self._path_kw = dict(symbols=symbols, fifo_depth=fifo_depth, hist_bins=hist_bins,
                             limits_init=limits_init)
        self.depth = depth
        self.slots = symbols
        slot_bits = max(1, (symbols - 1).bit_length())
        # the book builder's order-table memory port, as the builder declares it
        probe = BookBuilder(**self._book_kw)
        probe._MustUse__silence = True
        memory = {}
        if probe.order_memory == "offchip":
            self.order_memory_bytes = probe.order_memory_bytes
            memory = {"mem": Out(probe.mem.signature), "order_base": In(len(probe.mem_base))}
        super().__init__({
            "rx_a": In(AxiStreamSignature(64)),
            "rx_b": In(AxiStreamSignature(64)),
            "feed": In(FeedConfig(groups)),
            "auto": In(1),
            "orders": In(OrderConfig()),
            "symbols": In(TablePort(slot_bits, SymbolRow, read=True)),
            **{t: m for t, m in tables(hist_bins).items() if t != "names"},
            "o": Out(stream.Signature(OrderBeat)),
            "updates": Out(stream.Signature(book_update_layout(depth))),
            "lat": Out(stream.Signature(LatencyRecord, always_ready=True)),
            "status": Out(OrderStatus()),
            "session": Out(80), "expected": Out(64),
            "counters": Out(CounterGroup(COUNTERS + FEED_HW_PORTS, 32, wide=WIDE_COUNTERS)),
            "fast_offered": Out(32), "port_offered": Out(32), "port_syncs": Out(32),
            "port_b_waits": Out(32),
            "wire_stops": Out(32),
            **memory,
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.feed = feed = FeedFrontEnd(**self._feed_kw)
        m.submodules.book = book = BookBuilder(events=True, stamp=True, **self._book_kw)
        if "mem" in self.signature.members:
            wiring.connect(m, book.mem, wiring.flipped(self.mem))
            m.d.comb += book.mem_base.eq(self.order_base)
        m.submodules.path = path = OrderPath(**self._path_kw)
        m.submodules.cut = cut = CutThrough(symbols=self.slots, slot_bits=book.slot_bits)
        wiring.connect(m, cut.link, path.link)
        m.submodules.walk = walk = PortWalker(
            symbols=self.slots, slot_bits=book.slot_bits,
            line_depth=feed.signature.members["tap"].signature.line_depth)
        wiring.connect(m, feed.tap, walk.tap)
        wiring.connect(m, walk.loc, book.port_loc)
        wiring.connect(m, walk.entries, cut.port)
        for name in self.rx_a.signature.members:
            m.d.comb += [getattr(walk.rx, name).eq(getattr(self.rx_a, name)),
                         getattr(walk.rx_b, name).eq(getattr(self.rx_b, name))]
        # (a refusal shows as a counter step, several stages before its message's event)
        dup_q, full_q = Signal(32), Signal(32)
        m.d.sync += [dup_q.eq(book.duplicate_ref), full_q.eq(book.order_table_full)]
        # the engine's strobe: the walker's (from registers; its ``quiet`` holds only when no
        # older message in flight could matter, the producer's included) before the producer's
        m.d.comb += [
            walk.enable.eq(self.orders.wire & self.orders.fast_enable),
            walk.took.eq(cut.link.fast_took), walk.downstream_quiet.eq(cut.quiet),
            cut.port_holding.eq(walk.holding),
            # the walker's order table follows the book: its progress, its refusals
            walk.ev_take.eq(book.ev.valid & book.ev.ready),
            walk.ev_seq.eq(book.ev.payload.sequence),
            walk.refused.eq((dup_q != book.duplicate_ref) | (full_q != book.order_table_full)),
            walk.book_idle.eq(~feed.held & ~book.ev_pending),
            cut.blocked.eq(walk.fast.valid),
            path.fast.valid.eq(cut.fast.valid | walk.fast.valid),
            path.fast.payload.eq(Mux(walk.fast.valid, walk.fast.payload, cut.fast.payload)),
            path.quiet.eq(Mux(walk.fast.valid, walk.quiet, cut.quiet)),
        ]
        offered = Signal(32)
        m.d.sync += offered.eq(cut.offered + walk.offered)
        wiring.connect(m, wiring.flipped(self.rx_a), feed.rx_a)
        wiring.connect(m, wiring.flipped(self.rx_b), feed.rx_b)
        wiring.connect(m, feed.o, book.i)
        wiring.connect(m, book.o, wiring.flipped(self.updates))
        wiring.connect(m, book.ev, path.ev)
        wiring.connect(m, feed.fcs_bad, path.fcs_bad)
        wiring.connect(m, path.lat, wiring.flipped(self.lat))
        wiring.connect(m, wiring.flipped(self.orders), path.config)
        for t in ("triggers", "refs", "limits", "positions", "lat_hist"):
            wiring.connect(m, wiring.flipped(getattr(self, t)), getattr(path, t))
        wiring.connect(m, path.status, wiring.flipped(self.status))
        fc, sym = self.feed, self.symbols
        m.d.comb += [
            feed.groups.eq(fc.groups), feed.check_ip_checksum.eq(fc.check_ip_checksum),
            feed.track_sequence.eq(fc.track_sequence), feed.ab_window.eq(fc.ab_window),
            feed.events.ready.eq(1),
            book.now.eq(path.status.now),
            book.sym_we.eq(sym.w.we), book.sym_slot.eq(sym.w.index),
            book.sym_name.eq(sym.w.row.name), book.sym_valid.eq(sym.w.row.valid),
            book.auto.eq(self.auto),
            book.sym_raddr.eq(sym.r.addr), sym.r.data.name.eq(book.sym_rname),
            sym.r.data.valid.eq(book.sym_rvalid),
            self.session.eq(feed.session), self.expected.eq(feed.expected),
            # one host symbol write names the slot in the egress too
            path.names.w.we.eq(sym.w.we), path.names.w.index.eq(sym.w.index),
            path.names.w.row.eq(sym.w.row.name),
            # cut-through: decoder early view -> trigger engine fast strobe
            cut.early.eq(feed.early), cut.held.eq(feed.held),
            cut.ev_pending.eq(book.ev_pending),
            book.loc_addr.eq(cut.loc_addr),
            cut.loc_valid.eq(book.loc_valid), cut.loc_slot.eq(book.loc_slot),
            cut.loc_untracked.eq(book.loc_untracked),
            cut.ev_take.eq(book.ev.valid & book.ev.ready), cut.ev_slot.eq(book.ev.payload.slot),
            cut.ev_evaluate.eq(book.ev.payload.evaluate), cut.clear.eq(self.orders.clear),
            cut.wire.eq(self.orders.wire),
            cut.ev_decided.eq(book.ev_decided), cut.ev_tracked.eq(book.ev_tracked),
            self.fast_offered.eq(offered), self.port_offered.eq(walk.offered),
            self.port_syncs.eq(walk.syncs), self.port_b_waits.eq(walk.b_waits),
            self.wire_stops.eq(cut.stops),
            # order frames
            self.o.valid.eq(path.o.valid), path.o.ready.eq(self.o.ready),
            self.o.payload.data.eq(path.o.data), self.o.payload.keep.eq(path.o.keep),
            self.o.payload.first.eq(path.o.first), self.o.payload.last.eq(path.o.last),
            self.o.payload.user.eq(path.o.user),
        ]
        forward(m, self.counters, feed, FEED_COUNTERS + FEED_HW_PORTS)
        forward(m, self.counters, book, BOOK_COUNTERS)
        forward(m, self.counters, path.counters, PATH_COUNTERS)
        return m
