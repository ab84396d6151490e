"""The book builder: symbol table, order table, sorted price levels, top-N update stream.

Implements docs/architecture.md, section "Book builder", bit for bit (checked against the
numba emulator by tests/test_hw_book*.py and the cocotb bench in sim/book_builder/).

Pipeline: lock-step stages; all advance together unless a hazard inserts a bubble or the
outputs are full (``hold``)::

  i ─► in FIFO ─► Y1 ─► Y2 ─► OA ─► order D ─► R1 ─► W=LA ─► level D ─► R1 ─► W ─► X ─► FIFOs ─► o, ev
                  │     │     │       │         │      │        │         │     │
                  │     │     │       │         │      │        │         │     └ row / event
                  │     │     │       │         │      │        │         │       registers
                  │     │     │       │         │      │        │         └ write back, U
                  │     │     │       │         │      │        │           value check, state
                  │     │     │       │         │      │        └ decode + shift mux
                  │     │     │       │         │      └ slot word read (BRAM), compares,
                  │     │     │       │         │        shares ± amount per entry
                  │     │     │       │         └ bucket write; level op; level read issued
                  │     │     │       └ way select, rule, new bucket word
                  │     │     └ bucket read issued (hash precomputed); a U goes as 2 ops
                  │     └ symbol decision (map hit / lowest matching name / auto allocation /
                  │       untracked), locate-map and name writes
                  └ locate-map read data (bypassed from Y2's write), names CAM compare

Throughput (cycles per message, no back-pressure): 1; a U takes 2. An op directly behind an
op on the same slot (level word) or the same order bucket waits one cycle, so one hot symbol
runs at 2 per message (U: 4); an op that reaches the deep levels holds the pipeline while
they serve it (:mod:`.deep`); a change to the name table (a learned name, a host write)
stops the symbol stages for two cycles (the lowest free slot and "every slot named" are
registers, and the next message's matches take the new name then); measured: the LOBSTER AAPL sample (one symbol) 1.89, the AMZN
whole day (one symbol, 286 ask levels) 2.77, random many-symbol streams 1.2. Latency: a message accepted on ``i`` in cycle t has its row on
``o`` (and its event on ``ev``) in cycle t + 12 (:attr:`BookBuilder.LATENCY`) when nothing
stalls.

Memories (defaults): locate map 65536 × 8 bits (valid, untracked, slot: 16 BRAM36 or 2 URAM);
order table two banks of 2048 buckets × 4 ways × 136 bits (valid, ref, slot, side, price,
shares; one 544-bit word per bucket: 2 × 8 URAM, half their depth used, or 61 BRAM36; bank
1's bucket hash, mix32, is six 16 × 16-bit constant multiplies in DSPs, registered at Y2);
levels: the cache, 64 × 6208 bits (both sides of a slot:
2 × (32 valid bits + 32 × (price 32, shares 32, count 32))), banked 576 bits wide: 87 BRAM36
(72 bits wide, 64 of 512 rows used) or ~7k LUTs as LUTRAM, and the deep levels, 128
slot-sides × 256 × 96 bits (11 URAM) with 128 × 17 bits of list pointers (LUTRAM); slot state 64 × 128 (best) and
64 × 64 (last trade) LUTRAM; names 64 × 65 bits and trading states in registers.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from tickwire.spec.capacity import GATEWARE, ONCHIP_ORDER_BUCKETS, ROW_DEPTH

from ..layouts import DecodedMessage
from ..trigger.common import check_bool, check_int, checked_init
from .common import MsgMeta, lowest_onehot, onehot_select, order_op_layout
from .hash import mix_key, mix_products, mix_top, order_bucket
from .layouts import BookEvent, LocateLookup, OpKind, SlotState, book_update_layout
from .levels import CACHE_LEVELS, LevelEngine, check_levels
from .orders import OrderTable
from .orders_offchip import OffchipOrderTable

__all__ = ["BookBuilder", "COUNTERS", "ORDER_MEMORIES"]

#: Where the order table lives: block/ultra RAM on chip (:mod:`.orders`) or DDR/HBM behind
#: the ``mem`` AXI4 master (:mod:`.orders_offchip`).
ORDER_MEMORIES = ("chip", "offchip")

#: Counter output ports, named as the emulator's counters.
COUNTERS = ("book_messages", "book_updates", "duplicate_ref", "unknown_ref", "overfill",
            "order_table_full", "level_overflow", "level_miss", "symbol_overflow")


def _c(ch):
    return ord(ch)


class BookBuilder(wiring.Component):
    """Book builder gateware.

    Parameters (names as in the architecture document):
        symbols        tracked symbol slots (1..256; default 64)
        order_buckets  order-table buckets, power of two (default 2**12)
        order_ways     ways per bucket, power of two (default 4)
        levels         price levels per slot and side (default 288)
        cache_levels   of which the best ones kept in the level engine's word (default 32;
                       the rest in the deep levels' block RAM, see :mod:`.deep`)
        depth          N of the top-N output (default 10, <= levels)
        locates        size of the locate→slot map, power of two <= 65536 (default 65536);
                       a locate >= ``locates`` is never mapped (the emulator maps all 65536)
        in_fifo_depth, out_fifo_depth  decoupling FIFOs (defaults 4 and 4)
        events         add the ``ev`` output for the trigger engine (default off)
        stamp          add the ``now`` input; events then carry ``now`` of the cycle their
                       message was accepted on ``i`` (stamp_valid 1)
        order_memory   "chip", "offchip" (the order table in DDR/HBM behind the ``mem``
                       port; mem_data_width, mem_addr_width, mem_inflight: its bus and ops
                       in flight, see :mod:`.orders_offchip`) or "auto" (default): off chip
                       when ``order_buckets`` exceeds ONCHIP_ORDER_BUCKETS (spec/capacity.py)

    Ports:
        i               In(stream.Signature(DecodedMessage)); ready is the pipeline's advance
        o               Out(stream.Signature(book_update_layout(depth))): header
                        BookUpdateHeader (sequence, timestamp, slot) + depth × TopLevel (ask
                        price, ask size, bid price, bid size; 0,0 empty), one per message that
                        changed the first ``depth`` levels (the doc's top-N rule)
        ev              Out(stream.Signature(BookEvent)) with ``events``: one per processed
                        A F E C X D U (evaluate 1) and per H (evaluate 0) of a tracked slot:
                        post-message best ask/bid, trading state, the add (A/F, U's new order)
        sym_we, sym_slot, sym_name, sym_valid   host write of slot names (name: 8 ASCII bytes,
                        first character in the most significant byte, space padded); write
                        them while the feed is idle
        auto            auto mode (names learned from R/A/F into the lowest nameless slot)
        sym_raddr       slot read address of the name table: ``sym_rname``/``sym_rvalid``
                        show the slot's name (host-written or learned) one cycle later
        state_addr      slot read address; ``state`` (SlotState: best bid/ask price and size,
                        trading state, last trade price/shares) follows one cycle later
        loc_addr        locate read address (a second read port of the locate map, for the
                        cut-through trigger path); ``loc_valid``/``loc_slot`` follow one cycle
                        later: ``loc_valid`` 1 = the locate is mapped to ``loc_slot`` (a
                        mapping is permanent, so a 1 stays true; a 0 may be stale by the
                        mapping of a message still in flight); ``loc_untracked`` 1 = seen
                        and not tracked (also permanent: never looked up again)
        port_loc        In(LocateLookup): a third read port of the locate map, as ``loc_*``
                        (for the port walker, hw/trigger/portwalk.py)
        ev_pending      with ``events``: a message of type A F E C X D U H accepted on ``i``
                        has not yet either been found untracked (Y2) or had its event taken
                        on ``ev`` (the cycle of that handshake included); 0 = every such
                        message the book holds or held has reached the trigger engine
        ev_decided      with ``events``: pulse, an A F E C X D U H message (in order) is
                        decided (Y2): ``ev_tracked`` 1, its one event will follow on ``ev``;
                        0, its locate is not tracked and it has none
        counters        :data:`COUNTERS`, the emulator's names (32 bits, wrap)
        mem, mem_base   with ``order_memory="offchip"``: the AXI4 master of the order table
                        and the table's byte address (:attr:`order_memory_bytes` from there)

    Tables are not cleared by reset (block RAM keeps its configuration contents: empty).
    """

    LATENCY = 12

    @checked_init
    def __init__(self, *, symbols: int = GATEWARE["symbols"],
                 order_buckets: int = GATEWARE["order_buckets"],
                 order_ways: int = GATEWARE["order_ways"], levels: int = GATEWARE["levels"],
                 depth: int = ROW_DEPTH, locates: int = 1 << 16,
                 in_fifo_depth: int = 4, out_fifo_depth: int = 4, events: bool = False,
                 stamp: bool = False, cache_levels: int = CACHE_LEVELS,
                 order_memory: str = "auto", mem_data_width: int = 512,
                 mem_addr_width: int = 64, mem_inflight: int = 64):
        check_int("symbols", symbols, 1, 256)
        check_int("order_buckets", order_buckets, 2, 1 << 24, pow2=True)
        check_int("order_ways", order_ways, 1, 16, pow2=True)
        check_int("levels", levels, 1, 4096)
        check_int("depth", depth, 1)
        check_int("cache_levels", cache_levels, 1, 256)
        check_levels(levels, cache_levels, depth)
        check_int("locates", locates, 1, 1 << 16, pow2=True)
        check_int("in_fifo_depth", in_fifo_depth, 1, 64)
        check_int("out_fifo_depth", out_fifo_depth, 1, 64)
        check_bool("events", events)
        check_bool("stamp", stamp)
        if order_memory not in ORDER_MEMORIES + ("auto",):
            raise ValueError(f"order_memory={order_memory!r}: must be one of "
                             f"{', '.join(map(repr, ORDER_MEMORIES + ('auto',)))}")
        if order_memory == "auto":
            order_memory = "offchip" if order_buckets > ONCHIP_ORDER_BUCKETS else "chip"
        self.order_memory = order_memory
        self._mem_kw = dict(data_width=mem_data_width, addr_width=mem_addr_width,
                            inflight=mem_inflight)
        self.symbols = symbols
        self.order_buckets = order_buckets
        self.order_ways = order_ways
        self.levels = levels
        self.cache_levels = min(cache_levels, levels)
        self.depth = depth
        self.locates = locates
        self.in_fifo_depth = in_fifo_depth
        self.out_fifo_depth = out_fifo_depth
        self.events = events
        self.stamp = stamp
        self.slot_bits = max(1, (symbols - 1).bit_length())
        self.bucket_bits = order_buckets.bit_length() - 1
        self.way_bits = order_ways.bit_length() - 1
        self.locate_bits = max(1, locates.bit_length() - 1)
        ports = {
            "i": In(stream.Signature(DecodedMessage)),
            "o": Out(stream.Signature(book_update_layout(depth))),
            "sym_we": In(1),
            "sym_slot": In(self.slot_bits),
            "sym_name": In(64),
            "sym_valid": In(1),
            "auto": In(1),
            "sym_raddr": In(self.slot_bits),
            "sym_rname": Out(64),
            "sym_rvalid": Out(1),
            "state_addr": In(self.slot_bits),
            "state": Out(SlotState),
            "loc_addr": In(16),
            "loc_valid": Out(1),
            "loc_slot": Out(self.slot_bits),
            "loc_untracked": Out(1),
            "port_loc": In(LocateLookup(self.slot_bits)),
        }
        if events:
            ports["ev"] = Out(stream.Signature(BookEvent))
            ports["ev_pending"] = Out(1)
            ports["ev_decided"] = Out(1)
            ports["ev_tracked"] = Out(1)
        if stamp:
            ports["now"] = In(32)
        if order_memory == "offchip":
            # checks the memory parameters against the table's size
            table = self._offchip = OffchipOrderTable(
                symbols=symbols, order_buckets=order_buckets, order_ways=order_ways,
                **self._mem_kw)
            table._MustUse__silence = True    # elaborated with the builder (a submodule)
            self.order_memory_bytes = table.memory_bytes
            ports["mem"] = Out(table.signature.members["mem"].signature)
            ports["mem_base"] = In(mem_addr_width)
        for name in COUNTERS:
            ports[name] = Out(32)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        S = self.symbols
        sb = self.slot_bits

        # ------------------------------------------------------------------ input FIFO
        # (unbuffered: the head is readable the cycle after its write, from a LUTRAM read)
        m.submodules.in_fifo = in_fifo = fifo.SyncFIFO(
            width=DecodedMessage.as_shape().size + (32 if self.stamp else 0),
            depth=self.in_fifo_depth)
        m.d.comb += [
            in_fifo.w_data.eq(Cat(self.i.payload, self.now) if self.stamp else self.i.payload),
            in_fifo.w_en.eq(self.i.valid),
            self.i.ready.eq(in_fifo.w_rdy),
        ]
        head = DecodedMessage(in_fifo.r_data[:DecodedMessage.as_shape().size])
        head_stamp = in_fifo.r_data[DecodedMessage.as_shape().size:] if self.stamp else 0
        y1_stamp, y2_stamp, oa_stamp = Signal(32), Signal(32), Signal(32)

        if self.order_memory == "offchip":
            m.submodules.orders = orders = self._offchip
            wiring.connect(m, orders.mem, wiring.flipped(self.mem))
            m.d.comb += orders.base.eq(self.mem_base)
        else:
            m.submodules.orders = orders = OrderTable(
                symbols=S, order_buckets=self.order_buckets, order_ways=self.order_ways)
        m.submodules.levels = lv = LevelEngine(symbols=S, levels=self.levels, depth=self.depth,
                                                cache=self.cache_levels)

        # ------------------------------------------------------------------ symbol table
        m.submodules.locmap = locmap = memory.Memory(
            shape=data.StructLayout({"valid": 1, "untracked": 1, "slot": unsigned(sb)}),
            depth=self.locates, init=[])
        map_wp = locmap.write_port()
        map_rp = locmap.read_port(transparent_for=(map_wp,))
        # second read port (cut-through slot lookup); does not affect the pipeline
        loc_rp = locmap.read_port(transparent_for=(map_wp,))
        loc_ok = Signal()
        m.d.sync += loc_ok.eq((self.loc_addr < self.locates) if self.locates < (1 << 16)
                              else 1)
        m.d.comb += [loc_rp.addr.eq(self.loc_addr), loc_rp.en.eq(1),
                     self.loc_valid.eq(loc_rp.data.valid & loc_ok),
                     self.loc_slot.eq(loc_rp.data.slot),
                     self.loc_untracked.eq(loc_rp.data.untracked & loc_ok)]
        # third read port (the port walker's lookup)
        pl = self.port_loc
        pl_rp = locmap.read_port(transparent_for=(map_wp,))
        pl_ok = Signal()
        m.d.sync += pl_ok.eq((pl.addr < self.locates) if self.locates < (1 << 16) else 1)
        m.d.comb += [pl_rp.addr.eq(pl.addr), pl_rp.en.eq(1),
                     pl.valid.eq(pl_rp.data.valid & pl_ok), pl.slot.eq(pl_rp.data.slot),
                     pl.untracked.eq(pl_rp.data.untracked & pl_ok)]
        names = [Signal(64, name=f"name_{j}") for j in range(S)]
        name_valid = Signal(S)

        y1 = Signal(DecodedMessage)
        y1_valid = Signal()
        y2 = Signal(DecodedMessage)
        y2_valid = Signal()
        y2_mapped = Signal()      # locate map: mapped to y2_map_slot
        y2_untracked = Signal()   # locate map: seen, not tracked (never looked up again)
        y2_map_slot = Signal(sb)
        y2_eq = Signal(S)

        oa = Signal(DecodedMessage)
        oa_valid = Signal()
        oa_slot = Signal(sb)
        oa_phase = Signal()
        # order-table buckets of ref and new_ref: bank 0 (fold) at OA; bank 1 (mix32) over
        # three registers: key at Y1, partial products at Y2, bucket at OA
        bank_bits = self.bucket_bits - 1
        oa_h_ref = Signal(bank_bits)
        oa_h_new = Signal(bank_bits)
        y1_mk_ref, y1_mk_new = Signal(32), Signal(32)
        y2_mp_ref, y2_mp_new = Signal(64), Signal(64)
        oa_h1_ref = Signal(bank_bits)
        oa_h1_new = Signal(bank_bits)

        en_oa = orders.accept
        oa_is_u = Signal()        # oa.type == "U", registered with oa: the split gates the
        #                           symbol stage's enables (LUT levels)
        split = oa_valid & oa_is_u & ~oa_phase
        en_y = Signal()
        # the name table changed in one of the last two cycles (a host write, or a name
        # learned and then written): the symbol stages wait, so that the lowest free slot,
        # "every slot named" and the names compared in Y1 are registers that include the
        # change (LUT levels: no allocation decision or bypass in front of the table's
        # writes and the next message's matches)
        names_moved = Signal()
        m.d.comb += en_y.eq(en_oa & ~split & ~names_moved)

        # Y2 decision (combinational from the Y2 registers)
        t = y2.type
        locate_ok = (y2.locate < self.locates) if self.locates < (1 << 16) else Const(1, 1)
        can_map = (t == _c("R")) | (t == _c("A")) | (t == _c("F")) | (t == _c("P")) | (t == _c("Q"))
        can_alloc = self.auto & ((t == _c("R")) | (t == _c("A")) | (t == _c("F")))
        eq1 = lowest_onehot([y2_eq[j] for j in range(S)])
        eq_slot = onehot_select(eq1, [Const(j, sb) for j in range(S)])
        free1 = Signal(S)        # the lowest nameless slot (one-hot), of last cycle's table
        all_named = Signal()     # every slot named, likewise
        m.d.sync += [free1.eq(Cat(*lowest_onehot([~name_valid[j] for j in range(S)]))),
                     all_named.eq(name_valid.all())]
        free_slot = onehot_select(free1, [Const(j, sb) for j in range(S)])
        dec_slot = Signal(sb)
        dec_mapped = Signal()
        dec_map_we = Signal()
        dec_untrack = Signal()    # write "untracked" (rather than "mapped to dec_slot")
        dec_alloc = Signal()
        dec_overflow = Signal()
        with m.If(y2_mapped):
            m.d.comb += [dec_slot.eq(y2_map_slot), dec_mapped.eq(1)]
        with m.Elif(y2_untracked):
            pass
        with m.Elif(locate_ok & can_map):
            with m.If(y2_eq.any()):
                m.d.comb += [dec_slot.eq(eq_slot), dec_mapped.eq(1), dec_map_we.eq(1)]
            with m.Elif(~self.auto):
                m.d.comb += [dec_map_we.eq(1), dec_untrack.eq(1)]
            with m.Elif(can_alloc & ~all_named):
                m.d.comb += [dec_slot.eq(free_slot), dec_mapped.eq(1), dec_map_we.eq(1),
                             dec_alloc.eq(1)]
            with m.Elif(can_alloc):
                m.d.comb += [dec_overflow.eq(1), dec_map_we.eq(1), dec_untrack.eq(1)]
        y2_go = Signal()   # Y2 hands its message on this cycle (its side effects happen now)
        m.d.comb += y2_go.eq(en_y & y2_valid)
        alloc_now = y2_go & dec_alloc     # Y2 learns a name now (into slot free1)
        alloc_q = Signal()                # ... it did last cycle: the name is written now
        alloc_stock = Signal(64)
        m.d.sync += [alloc_q.eq(alloc_now), alloc_stock.eq(y2.stock),
                     names_moved.eq(self.sym_we | alloc_now | alloc_q)]
        m.d.comb += [
            map_wp.addr.eq(y2.locate),
            map_wp.data.valid.eq(~dec_untrack),
            map_wp.data.untracked.eq(dec_untrack),
            map_wp.data.slot.eq(dec_slot),
            map_wp.en.eq(y2_go & dec_map_we),
        ]
        with m.If(y2_go & dec_overflow):
            m.d.sync += self.symbol_overflow.eq(self.symbol_overflow + 1)
        # name table: host writes and auto allocation
        for j in range(S):
            with m.If(self.sym_we & (self.sym_slot == j)):
                m.d.sync += [names[j].eq(self.sym_name), name_valid[j].eq(self.sym_valid)]
            with m.Elif(alloc_q & free1[j]):
                # (the cycle after the decision, from registers; free1 is still the slot,
                # as the table did not change in the decision's cycle)
                m.d.sync += [names[j].eq(alloc_stock), name_valid[j].eq(1)]
        # host read-back of the name table (the register file's SYMBOLS entries)
        with m.Switch(self.sym_raddr):
            for j in range(S):
                with m.Case(j):
                    # (registered: a 64-way choice ahead of the register file's read
                    # multiplexer; the register file samples a table one cycle later)
                    m.d.sync += [self.sym_rname.eq(names[j]), self.sym_rvalid.eq(name_valid[j])]
            with m.Default():
                m.d.sync += [self.sym_rname.eq(0), self.sym_rvalid.eq(0)]

        # Y1: locate map data (bypassed from Y2's write this cycle), names CAM
        m.d.comb += [map_rp.addr.eq(head.locate), map_rp.en.eq(en_y)]
        byp_map = y2_go & dec_map_we & (y2.locate == y1.locate)
        # the message behind a learned name (in Y2 while the stages wait) matches it if it
        # names the same stock: its match is added from registers
        same_q = Signal()
        m.d.sync += same_q.eq(y2.stock == y1.stock)
        with m.If(en_y):
            m.d.sync += [
                y1.eq(head), y1_valid.eq(in_fifo.r_rdy), y1_stamp.eq(head_stamp),
                y2.eq(y1), y2_valid.eq(y1_valid), y2_stamp.eq(y1_stamp),
                y1_mk_ref.eq(mix_key(head.ref)), y1_mk_new.eq(mix_key(head.new_ref)),
                y2_mp_ref.eq(mix_products(y1_mk_ref)), y2_mp_new.eq(mix_products(y1_mk_new)),
                y2_mapped.eq(Mux(byp_map, ~dec_untrack, map_rp.data.valid)),
                y2_untracked.eq(Mux(byp_map, dec_untrack, map_rp.data.untracked)),
                y2_map_slot.eq(Mux(byp_map, dec_slot, map_rp.data.slot)),
                y2_eq.eq(Cat(*[name_valid[j] & (names[j] == y1.stock) for j in range(S)])),
            ]
        with m.Elif(alloc_q & same_q):
            m.d.sync += y2_eq.eq(y2_eq | free1)
        if self.locates < (1 << 16):
            with m.If(en_y & (y1.locate >= self.locates)):
                m.d.sync += [y2_mapped.eq(0), y2_untracked.eq(0)]
        m.d.comb += in_fifo.r_en.eq(en_y)

        # ------------------------------------------------------------------ OA: order ops
        book_or_state = Signal()
        m.d.comb += book_or_state.eq(Cat(*[t == _c(x) for x in "AFECXDUPQH"]).any())
        with m.If(en_oa):
            with m.If(split):
                m.d.sync += oa_phase.eq(1)
            with m.Else():
                m.d.sync += [
                    # (a bubble while the symbol stages wait for the name table)
                    oa.eq(y2), oa_valid.eq(y2_valid & dec_mapped & book_or_state
                                           & ~names_moved),
                    oa_is_u.eq(t == _c("U")),
                    oa_stamp.eq(y2_stamp),
                    oa_slot.eq(dec_slot), oa_phase.eq(0),
                    oa_h_ref.eq(order_bucket(y2.ref, bank_bits, self.way_bits)),
                    oa_h_new.eq(order_bucket(y2.new_ref, bank_bits, self.way_bits)),
                    oa_h1_ref.eq(mix_top(y2_mp_ref, bank_bits)),
                    oa_h1_new.eq(mix_top(y2_mp_new, bank_bits)),
                ]
        op = orders.op
        ot = oa.type
        m.d.comb += [
            op.key.eq(oa.ref),
            op.bucket.eq(oa_h_ref),
            op.bucket1.eq(oa_h1_ref),
            op.slot.eq(oa_slot),
            op.side.eq(oa.side != _c("B")),
            op.price.eq(oa.price),
            op.amount.eq(oa.shares),
            op.meta.type.eq(oa.type),
            op.meta.sequence.eq(oa.sequence),
            op.meta.timestamp.eq(oa.timestamp),
            op.meta.state.eq(oa.state),
            op.meta.stamp.eq(oa_stamp),
            orders.op_valid.eq(oa_valid),
        ]
        with m.Switch(ot):
            with m.Case(_c("A"), _c("F")):
                m.d.comb += op.kind.eq(OpKind.ADD)
            with m.Case(_c("E"), _c("C"), _c("X")):
                m.d.comb += op.kind.eq(OpKind.REDUCE)
            with m.Case(_c("D")):
                m.d.comb += op.kind.eq(OpKind.DELETE)
            with m.Case(_c("U")):
                with m.If(~oa_phase):
                    m.d.comb += [op.kind.eq(OpKind.DELETE), op.u0.eq(1)]
                with m.Else():
                    m.d.comb += [op.kind.eq(OpKind.ADD), op.u1.eq(1), op.key.eq(oa.new_ref),
                                 op.bucket.eq(oa_h_new), op.bucket1.eq(oa_h1_new)]
            with m.Default():
                m.d.comb += op.kind.eq(OpKind.NOP)

        # ------------------------------------------------------------------ levels, output
        m.d.comb += [lv.op.eq(orders.out), lv.op_valid.eq(orders.out_valid),
                     orders.down_accept.eq(lv.accept)]
        res = lv.out
        row_l = book_update_layout(self.depth)
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFOBuffered(
            width=row_l.size, depth=self.out_fifo_depth)
        row = Signal(row_l)
        m.d.comb += [
            row.header.sequence.eq(res.op.meta.sequence),
            row.header.timestamp.eq(res.op.meta.timestamp),
            row.header.slot.eq(res.op.slot),
        ]
        bid, ask = res.book[0], res.book[1]
        for k in range(self.depth):
            m.d.comb += [
                row.levels[k].ask_price.eq(Mux(ask.valid[k], ask.entry[k].price, 0)),
                row.levels[k].ask_size.eq(Mux(ask.valid[k], ask.entry[k].shares, 0)),
                row.levels[k].bid_price.eq(Mux(bid.valid[k], bid.entry[k].price, 0)),
                row.levels[k].bid_size.eq(Mux(bid.valid[k], bid.entry[k].shares, 0)),
            ]
        # X: the row register in front of the output FIFO (a registered push keeps the
        # back-pressure hold shallow)
        x_row = Signal(row_l)
        x_push = Signal()
        hold = Signal()
        rt = res.op.meta.type
        is_h = rt == _c("H")
        # trading state per slot ('T' until an H), updated in message order at W
        tstate = [Signal(8, init=_c("T"), name=f"tstate_{j}") for j in range(S)]
        for j in range(S):
            with m.If(lv.out_valid & ~hold & is_h & (res.op.slot == j)):
                m.d.sync += tstate[j].eq(res.op.meta.state)
        if self.events:
            # BookEvent after every book message (A F E C X D U) and every H of a tracked slot
            m.submodules.ev_fifo = ev_fifo = fifo.SyncFIFOBuffered(
                width=BookEvent.as_shape().size, depth=self.out_fifo_depth)
            x_ev = Signal(BookEvent)
            x_ev_push = Signal()
            ev = Signal(BookEvent)
            slot_state = Signal(8)
            m.d.comb += slot_state.eq(Array(tstate)[res.op.slot])
            m.d.comb += [
                ev.sequence.eq(res.op.meta.sequence),
                ev.timestamp.eq(res.op.meta.timestamp),
                ev.slot.eq(res.op.slot),
                ev.evaluate.eq(~is_h),
                ev.trading_state.eq(Mux(is_h, res.op.meta.state, slot_state)),
                ev.best_ask.price.eq(Mux(ask.valid[0], ask.entry[0].price, 0)),
                ev.best_ask.valid.eq(ask.valid[0]),
                ev.best_bid.price.eq(Mux(bid.valid[0], bid.entry[0].price, 0)),
                ev.best_bid.valid.eq(bid.valid[0]),
                ev.add.valid.eq(res.op.add_valid),
                ev.add.side.eq(Mux(res.op.add_valid, res.op.side, 0)),
                ev.add.price.eq(Mux(res.op.add_valid, res.op.price, 0)),
                ev.stamp.eq(res.op.meta.stamp),
                ev.stamp_valid.eq(int(self.stamp)),
            ]
            m.d.comb += hold.eq((x_push & ~out_fifo.w_rdy) | (x_ev_push & ~ev_fifo.w_rdy))
            with m.If(~hold):
                m.d.sync += [x_ev.eq(ev),
                             x_ev_push.eq(lv.out_valid & ((res.op.uses & res.op.last) | is_h))]
            m.d.comb += [
                ev_fifo.w_data.eq(x_ev),
                ev_fifo.w_en.eq(x_ev_push & ~hold),
                self.ev.payload.eq(ev_fifo.r_data),
                self.ev.valid.eq(ev_fifo.r_rdy),
                ev_fifo.r_en.eq(self.ev.ready),
            ]
            # ev_pending: each A F E C X D U H accepted on i leaves the count either at Y2
            # (locate not tracked: no event) or when its one event is taken on ev
            def ev_type(tt):
                return Cat(*[tt == _c(x) for x in "AFECXDUH"]).any()
            pend = Signal(8)
            p_in = Signal()
            p_drop = Signal()
            p_out = Signal()
            m.d.comb += [
                p_in.eq(self.i.valid & self.i.ready & ev_type(self.i.payload.type)),
                p_drop.eq(y2_go & ev_type(y2.type) & ~dec_mapped),
                p_out.eq(self.ev.valid & self.ev.ready),
            ]
            m.d.sync += pend.eq(pend + p_in - p_drop - p_out)
            # ev_pending from a register (LUT levels: it gates the engine's cut-through take):
            # pend == 0, 1 and 2 kept as flags, each next one from the flags, pend == 3 or 4
            # (compares of the counter's register) and the cycle's change, -2 .. +1
            net = Signal(range(-2, 2))
            m.d.comb += net.eq(p_in - p_drop - p_out)
            is_k = [Signal(name=f"pend_is{k}", init=int(k == 0)) for k in range(3)]
            known = is_k + [pend == 3, pend == 4]
            for k in range(3):
                m.d.sync += is_k[k].eq(Cat(*[known[k - d] & (net == d)
                                             for d in range(-2, 2) if 0 <= k - d < 5]).any())
            m.d.comb += [self.ev_pending.eq(~is_k[0]),
                         self.ev_decided.eq(y2_go & ev_type(y2.type)),
                         self.ev_tracked.eq(dec_mapped)]
        else:
            m.d.comb += hold.eq(x_push & ~out_fifo.w_rdy)
        with m.If(~hold):
            m.d.sync += [x_row.eq(row), x_push.eq(lv.out_valid & res.emit)]
            with m.If(lv.out_valid & res.op.uses & res.op.last):
                m.d.sync += self.book_messages.eq(self.book_messages + 1)
        with m.If(x_push & ~hold):
            m.d.sync += self.book_updates.eq(self.book_updates + 1)
        m.d.comb += [
            out_fifo.w_data.eq(x_row),
            out_fifo.w_en.eq(x_push & ~hold),
            lv.hold.eq(hold),
            self.o.payload.eq(out_fifo.r_data),
            self.o.valid.eq(out_fifo.r_rdy),
            out_fifo.r_en.eq(self.o.ready),
        ]
        for name in ("level_overflow", "level_miss"):
            m.d.comb += getattr(self, name).eq(getattr(lv, name))
        for name in ("duplicate_ref", "unknown_ref", "overfill", "order_table_full"):
            m.d.comb += getattr(self, name).eq(getattr(orders, name))

        # per-slot state for the trigger engine (written in message order at the W stage)
        m.submodules.best_mem = best_mem = memory.Memory(shape=unsigned(128), depth=S, init=[])
        m.submodules.trade_mem = trade_mem = memory.Memory(shape=unsigned(64), depth=S, init=[])
        bw, tw = best_mem.write_port(), trade_mem.write_port()
        br, tr = best_mem.read_port(), trade_mem.read_port()
        m.d.sync += self.state.trading_state.eq(Array(tstate)[self.state_addr])
        m.d.comb += [
            bw.addr.eq(res.op.slot), tw.addr.eq(res.op.slot),
            bw.data.eq(Cat(Mux(bid.valid[0], bid.entry[0].price, 0),
                           Mux(bid.valid[0], bid.entry[0].shares, 0),
                           Mux(ask.valid[0], ask.entry[0].price, 0),
                           Mux(ask.valid[0], ask.entry[0].shares, 0))),
            bw.en.eq(lv.out_valid & res.op.uses & ~hold),
            tw.data.eq(Cat(res.op.price, res.op.amount)),
            tw.en.eq(lv.out_valid & ~hold & ((rt == _c("P")) | (rt == _c("Q")))),
            br.addr.eq(self.state_addr), tr.addr.eq(self.state_addr),
            self.state.best_bid_price.eq(br.data[0:32]),
            self.state.best_bid_size.eq(br.data[32:64]),
            self.state.best_ask_price.eq(br.data[64:96]),
            self.state.best_ask_size.eq(br.data[96:128]),
            self.state.last_price.eq(tr.data[0:32]),
            self.state.last_shares.eq(tr.data[32:64]),
        ]
        return m
