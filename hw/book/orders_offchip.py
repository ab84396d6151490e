"""Two-bank order table in off-chip memory (DDR/HBM) behind an AXI4 master.

The same table as :mod:`.orders` (the rule is :class:`.order_rule.OrderRule`, so the semantics
are the emulator's at the same ``order_buckets`` × ``order_ways``), sized for every live order
of a day: 2^20 × 4 records take 128 MiB at ``base``. Bucket k of bank b is one line of
``line_bytes`` (its 136-bit records padded to whole bus words, rounded up to a power of two)
at ``base + ((b · buckets/2) + k) · line_bytes``. The memory must read as zeros (every way
empty) before the first message: the host clears the region when it loads the design.

Pipeline (docs/architecture.md, "Order table off chip")::

    issue  op accepted into the ring of ``inflight`` ops; a live op's two bucket reads (bank
           0, then bank 1) go out on AR at once, whatever is in flight; the ring entries on
           its buckets, and whether the op before it shares one, noted with it
    R      the bursts' beats assembled into lines, one FIFO per bank (reads return in order:
           one AXI ID)
    D      the ring's oldest unprocessed op, three cycles for a live one: the newest writer
           in the ring of each of its buckets found; its two lines registered, each that
           writer's instead of memory's (whose copy may predate it), once the op before it,
           if on one of its buckets, has left R1 (that op's line reaches the ring then); the
           per-way comparisons
    R1     the rule; the new bucket word queued for writing (AW + W) and kept in the ring
    W      ``out`` offers the level op downstream (``down_accept``), in op order

An entry leaves the ring once its op is through R1 and, if it wrote, its write is acknowledged
(B) and every op issued before that acknowledgement is through D: an op issued later reads
the write from memory (AXI orders a read after a write's B), an op issued earlier finds the
line in the ring. So consecutive references, which share a bank-0 bucket (fold), follow each
other at three cycles (the read channel's own bound is four at 512 bits), not a round trip.
Up to ``inflight`` ops are in the ring, so a latency of L cycles is hidden while ``inflight``
≥ L × the op rate; reads of 2 lines of ``beats`` words each bound the rate at 1 / (2 · beats)
ops per cycle (1/4 at 512 bits). Past that the table stops accepting (``accept`` low) and the
builder's input FIFO backs up to the line buffer, which counts what it drops.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, memory, wiring
from amaranth.lib.wiring import In, Out

from tickwire.spec.capacity import BOARD_ORDER_BUCKETS, GATEWARE

from ..axi import BURST_INCR, AXI4Signature
from ..trigger.common import check_int, checked_init
from .common import onehot_select
from .layouts import OpKind, order_record_layout
from .order_rule import RULE_COUNTERS, OrderRule, table_members

__all__ = ["OffchipOrderTable", "line_geometry"]


def line_geometry(order_ways: int, slot_bits: int, data_width: int) -> tuple[int, int]:
    """(beats, line_bytes) of one bucket: its records in whole bus words, and the line's
    address stride (a power of two, so a line never crosses a 4 KiB boundary)."""
    bits = order_ways * order_record_layout(slot_bits).size
    beats = -(-bits // data_width)
    stride = 1 << (beats * data_width // 8 - 1).bit_length()
    return beats, stride


class OffchipOrderTable(wiring.Component):
    """Ports as :class:`.orders.OrderTable`'s, plus ``mem`` (the AXI4 master) and ``base``
    (the table's byte address in that memory, held while the table is in use)."""

    @checked_init
    def __init__(self, *, symbols: int = GATEWARE["symbols"],
                 order_buckets: int = BOARD_ORDER_BUCKETS,
                 order_ways: int = GATEWARE["order_ways"], data_width: int = 512,
                 addr_width: int = 64, inflight: int = 64):
        check_int("symbols", symbols, 1, 256)
        check_int("order_buckets", order_buckets, 2, 1 << 26, pow2=True)
        check_int("order_ways", order_ways, 1, 16, pow2=True)
        check_int("data_width", data_width, 32, 1024, pow2=True)
        check_int("inflight", inflight, 2, 256, pow2=True)
        self.symbols = symbols
        self.order_buckets = order_buckets
        self.order_ways = order_ways
        self.data_width = data_width
        self.inflight = inflight
        self.slot_bits = max(1, (symbols - 1).bit_length())
        self.bank_bits = order_buckets.bit_length() - 2      # buckets per bank: 2^bank_bits
        self.beats, self.line_bytes = line_geometry(order_ways, self.slot_bits, data_width)
        need = (order_buckets * self.line_bytes - 1).bit_length()
        check_int("addr_width", addr_width, max(12, need), 64)
        super().__init__({
            **table_members(self.slot_bits, self.bank_bits),
            "mem": Out(AXI4Signature(addr_width=addr_width, data_width=data_width)),
            "base": In(addr_width),
        })

    @property
    def memory_bytes(self) -> int:
        """Bytes of memory the table occupies from ``base``."""
        return self.order_buckets * self.line_bytes

    def elaborate(self, platform):
        m = Module()
        N = self.inflight
        nb = N.bit_length() - 1
        B = self.beats
        DW = self.data_width
        rule = OrderRule(slot_bits=self.slot_bits, bank_bits=self.bank_bits,
                         ways=self.order_ways)
        bucket_w = rule.bucket_l.size
        line_shift = self.line_bytes.bit_length() - 1
        mem = self.mem

        def line_addr(bank, bucket):
            return self.base + (Cat(bucket, Const(bank, 1)) << line_shift)

        # ---------------------------------------------------------------- the ring
        done = Signal(N)          # through R1 (its write, if any, queued)
        wrote = Signal(N)         # ... and it wrote a bucket: the line is in ``ring_lines``
        wbank = Signal(N)         # ... of bank 1
        newest = Signal(N)        # ... and no later op in the ring wrote the same bucket
        acked = Signal(N)         # ... and that write's B has arrived
        a0 = Array(Signal(self.bank_bits, name=f"a0_{i}") for i in range(N))
        a1 = Array(Signal(self.bank_bits, name=f"a1_{i}") for i in range(N))
        # per entry: the ring's tail when its write was acknowledged (ops from there on read
        # the write from memory) and the number of its write among all writes
        ack_tail = Array(Signal(nb + 1, name=f"ack_tail{i}") for i in range(N))
        wseq = Array(Signal(nb + 2, name=f"wseq{i}") for i in range(N))
        tail = Signal(nb + 1)     # next entry to fill
        head = Signal(nb + 1)     # oldest entry
        dptr = Signal(nb + 1)     # the op in D
        wptr = Signal(nb + 1)     # the op in R1
        w_count = Signal(nb + 2)  # writes queued so far (mod)
        b_count = Signal(nb + 2)  # acknowledgements received so far (mod)
        m.submodules.ring_lines = ring_mem = memory.Memory(
            shape=rule.bucket_l.size, depth=N, init=[])
        ring_wp = ring_mem.write_port()
        ring_rp = [ring_mem.read_port(domain="comb") for _ in range(2)]

        live = self.op_valid & (self.op.kind != OpKind.NOP)
        room = (tail - head)[:nb + 1] != N
        ar_left = Signal(2)       # bucket reads of the last live op still to be issued
        ar_b0 = Signal(self.bank_bits)
        ar_b1 = Signal(self.bank_bits)

        # Computed as an op is taken, carried with it (LUT levels: D and R1 compare no
        # bucket addresses): the ring entries whose buckets are its own (an entry's addresses
        # are fixed from its op's take to its release; one reused since holds a later op,
        # which has written nothing while this one is in D or R1), and, per bank, whether the
        # op taken just before it (the one in R1 when it reaches D) is on the same bucket.
        prev_b0 = Signal(self.bank_bits)
        prev_b1 = Signal(self.bank_bits)
        t_m0 = Cat(*[a0[i] == self.op.bucket for i in range(N)])
        t_m1 = Cat(*[a1[i] == self.op.bucket1 for i in range(N)])
        t_same = Cat(self.op.bucket == prev_b0, self.op.bucket1 == prev_b1)
        m.submodules.op_fifo = op_fifo = fifo.SyncFIFOBuffered(
            width=rule.op_l.size + 3 + 2 * N, depth=N)
        take = Signal()
        m.d.comb += [
            take.eq(self.op_valid & room & op_fifo.w_rdy & ~(live & (ar_left != 0))),
            self.accept.eq(~self.op_valid | take),
            op_fifo.w_data.eq(Cat(self.op, live, t_m0, t_m1, t_same)),
            op_fifo.w_en.eq(take),
        ]
        with m.If(take):
            m.d.sync += [a0[tail[:nb]].eq(self.op.bucket), a1[tail[:nb]].eq(self.op.bucket1),
                         tail.eq(tail + 1), prev_b0.eq(self.op.bucket),
                         prev_b1.eq(self.op.bucket1)]
            with m.If(live):
                m.d.sync += [ar_left.eq(2), ar_b0.eq(self.op.bucket),
                             ar_b1.eq(self.op.bucket1)]

        # ---------------------------------------------------------------- AR
        m.d.comb += [
            mem.ar.valid.eq(ar_left != 0),
            mem.ar.addr.eq(Mux(ar_left == 2, line_addr(0, ar_b0), line_addr(1, ar_b1))),
            mem.ar.id.eq(0),
            mem.ar.len.eq(B - 1),
            mem.ar.size.eq(mem.signature.size),
            mem.ar.burst.eq(BURST_INCR),
        ]
        with m.If(mem.ar.valid & mem.ar.ready):
            m.d.sync += ar_left.eq(ar_left - 1)

        # ---------------------------------------------------------------- R: lines per bank
        line_fifos = []
        for b in range(2):
            lf = fifo.SyncFIFOBuffered(width=bucket_w, depth=N)
            m.submodules[f"lines{b}"] = lf
            line_fifos.append(lf)
        r_words = [Signal(DW, name=f"r_word{k}") for k in range(B - 1)]
        r_beat = Signal(range(B))
        r_bank = Signal()
        r_full = Cat(*r_words, mem.r.data)[:bucket_w]
        m.d.comb += mem.r.ready.eq(line_fifos[0].w_rdy & line_fifos[1].w_rdy)
        r_fire = mem.r.valid & mem.r.ready
        r_end = r_beat == B - 1
        for b in range(2):
            m.d.comb += [line_fifos[b].w_data.eq(r_full),
                         line_fifos[b].w_en.eq(r_fire & r_end & (r_bank == b))]
        with m.If(r_fire):
            with m.If(r_end):
                m.d.sync += [r_beat.eq(0), r_bank.eq(~r_bank)]
            with m.Else():
                m.d.sync += r_beat.eq(r_beat + 1)
                for k in range(B - 1):
                    with m.If(r_beat == k):
                        m.d.sync += r_words[k].eq(mem.r.data)

        # ---------------------------------------------------------------- D, R1, W
        r1_valid = Signal()
        d_op = Signal(rule.op_l)
        d_live = Signal()
        d_m = [Signal(N, name="d_m0"), Signal(N, name="d_m1")]
        d_same = Signal(2)
        m.d.comb += Cat(d_op, d_live, *d_m, d_same).eq(op_fifo.r_data)
        # D takes three cycles for a live op (the R channel brings an op's two lines in
        # 2 · beats cycles at best): the first finds the newest writer in the ring of each of
        # its buckets (``snap``: the ring entry, registered), the second registers the two
        # buckets, each that writer's line or else memory's, the third compares them
        # (``move_d``). Every older op but the one before it has left R1 by ``snap``, so the
        # ring holds their lines. The one before it may still be in R1, on one of its
        # buckets (``d_pend``): then the second cycle waits until it has left, and takes
        # its line from the ring if it wrote that bank (``lw_*``, registered as it left).
        lw_valid = Signal()       # the op that left R1 last wrote a bucket ...
        lw_bank = Signal()        # ... of this bank
        lw_idx = Signal(nb)       # ... into this ring entry
        d_ph = Signal(2)          # the live op in D: 1 its ring entries found, 2 its buckets in
        buckets = [Signal(rule.bucket_l, name=f"d_bucket{b}") for b in range(2)]
        d_fwd = Signal(2)
        d_pend = Signal(2)        # per bank: R1 held the op before it on that bucket at snap
        snap = Signal()
        m.d.comb += snap.eq(op_fifo.r_rdy & d_live & (d_ph == 0))
        lines = Signal()          # the second cycle: the lines taken from memory's FIFOs
        m.d.comb += lines.eq((d_ph == 1) & line_fifos[0].r_rdy & line_fifos[1].r_rdy
                             & ~(r1_valid & d_pend.any()))
        with m.If(snap):
            m.d.sync += d_pend.eq(Mux(r1_valid, d_same, 0))
        for b in range(2):
            hit = Cat(*[wrote[i] & newest[i] & (wbank[i] == b) & d_m[b][i] for i in range(N)])
            ent = Signal(nb, name=f"d_ent{b}")
            with m.If(snap):
                m.d.sync += [ent.eq(onehot_select([hit[i] for i in range(N)],
                                                  [Const(i, nb) for i in range(N)])),
                             d_fwd[b].eq(hit.any())]
            use_lw = d_pend[b] & lw_valid & (lw_bank == b)
            m.d.comb += ring_rp[b].addr.eq(Mux(use_lw, lw_idx, ent))
            with m.If(lines):
                m.d.sync += buckets[b].eq(Mux(d_fwd[b] | use_lw, ring_rp[b].data,
                                              line_fifos[b].r_data))
        with m.If(snap):
            m.d.sync += d_ph.eq(1)
        with m.If(lines):
            m.d.sync += d_ph.eq(2)
        d_ready = op_fifo.r_rdy & (~d_live | (d_ph == 2))

        m.submodules.wq = wq = fifo.SyncFIFOBuffered(width=bucket_w + 1 + self.bank_bits,
                                                    depth=4)
        rule.rule(m)
        r1_write = r1_valid & rule.we
        move_r1 = Signal()        # R1 leaves (into W) this cycle
        move_d = Signal()         # D's op enters R1 this cycle
        r1_op = rule.r1_op
        r1_m = [Signal(N, name="r1_m0"), Signal(N, name="r1_m1")]   # D's d_m, carried
        m.d.comb += [
            # (R1 waits for room in the write queue whether or not it writes: LUT levels)
            move_r1.eq(self.down_accept & wq.w_rdy),
            move_d.eq((~r1_valid | move_r1) & d_ready),
            op_fifo.r_en.eq(move_d),
            line_fifos[0].r_en.eq(lines),
            line_fifos[1].r_en.eq(lines),
        ]
        with m.If(move_d):
            m.d.sync += [r1_valid.eq(1), dptr.eq(dptr + 1), d_ph.eq(0),
                         *[r1_m[b].eq(d_m[b]) for b in range(2)], *rule.load(d_op, buckets)]
        with m.Elif(move_r1):
            m.d.sync += r1_valid.eq(0)

        w_lop = Signal(rule.lop_l)
        w_valid = Signal()
        m.d.comb += [self.out.eq(w_lop), self.out_valid.eq(w_valid)]
        m.d.comb += [
            wq.w_data.eq(Cat(Mux(rule.bank1, rule.new_bucket[1], rule.new_bucket[0]),
                             rule.bank1, Mux(rule.bank1, r1_op.bucket1, r1_op.bucket))),
            wq.w_en.eq(self.down_accept & move_r1 & r1_write),
        ]
        with m.If(self.down_accept):
            m.d.sync += [w_lop.eq(rule.lop), w_valid.eq(r1_valid & move_r1)]
            with m.If(move_r1):
                rule.commit(m, r1_valid, {n: getattr(self, n) for n in RULE_COUNTERS})
                with m.If(r1_valid):
                    m.d.sync += wptr.eq(wptr + 1)
                with m.If(r1_write):
                    m.d.sync += w_count.eq(w_count + 1)
        new_line = Mux(rule.bank1, rule.new_bucket[1], rule.new_bucket[0])
        m.d.comb += [ring_wp.addr.eq(wptr[:nb]), ring_wp.data.eq(new_line),
                     ring_wp.en.eq(self.down_accept & move_r1 & r1_write)]

        # ---------------------------------------------------------------- AW, W, B
        w_line = Signal(B * DW)
        wq_bank = Signal()
        wq_bucket = Signal(self.bank_bits)
        m.d.comb += Cat(w_line[:bucket_w], wq_bank, wq_bucket).eq(wq.r_data)
        aw_sent = Signal()
        w_beat = Signal(range(B + 1))
        m.d.comb += [
            mem.aw.valid.eq(wq.r_rdy & ~aw_sent),
            mem.aw.addr.eq(self.base + (Cat(wq_bucket, wq_bank) << line_shift)),
            mem.aw.id.eq(0),
            mem.aw.len.eq(B - 1),
            mem.aw.size.eq(mem.signature.size),
            mem.aw.burst.eq(BURST_INCR),
            mem.w.valid.eq(wq.r_rdy & (w_beat != B)),
            mem.w.data.eq(w_line.word_select(w_beat[:max(1, (B - 1).bit_length())], DW)
                          if B > 1 else w_line),
            mem.w.strb.eq(-1),
            mem.w.last.eq(w_beat == B - 1),
            mem.b.ready.eq(1),
        ]
        aw_fire = mem.aw.valid & mem.aw.ready
        w_fire = mem.w.valid & mem.w.ready
        aw_done = aw_sent | aw_fire
        w_done = (w_beat == B) | (w_fire & (w_beat == B - 1))
        m.d.comb += wq.r_en.eq(wq.r_rdy & aw_done & w_done)
        with m.If(wq.r_en):
            m.d.sync += [aw_sent.eq(0), w_beat.eq(0)]
        with m.Else():
            with m.If(aw_fire):
                m.d.sync += aw_sent.eq(1)
            with m.If(w_fire):
                m.d.sync += w_beat.eq(w_beat + 1)

        # ---------------------------------------------------------------- release
        hi = head[:nb]
        b_fire = mem.b.valid & mem.b.ready
        # every op issued before the head's acknowledgement is through D
        seen = (dptr - ack_tail[hi])[:nb + 1] < N
        release = Signal()
        m.d.comb += release.eq((head != tail) & done.bit_select(hi, 1)
                               & (~wrote.bit_select(hi, 1)
                                  | (acked.bit_select(hi, 1) & seen)))
        with m.If(b_fire):
            m.d.sync += b_count.eq(b_count + 1)
        r1_out = self.down_accept & move_r1 & r1_valid
        # clears before sets: an entry released this cycle is never the one filled or done
        for i in range(N):
            with m.If(release & (hi == i)):
                m.d.sync += [done[i].eq(0), wrote[i].eq(0), newest[i].eq(0), acked[i].eq(0)]
            with m.If(b_fire & wrote[i] & ~acked[i] & (wseq[i] == b_count)):
                m.d.sync += [acked[i].eq(1), ack_tail[i].eq(tail)]
            with m.If(r1_out & r1_write & wrote[i]
                      & Mux(rule.bank1, wbank[i] & r1_m[1][i], ~wbank[i] & r1_m[0][i])):
                m.d.sync += newest[i].eq(0)      # a later op rewrites this bucket
            with m.If(r1_out & (wptr[:nb] == i)):
                m.d.sync += [done[i].eq(1), wrote[i].eq(rule.we), wbank[i].eq(rule.bank1),
                             newest[i].eq(rule.we), wseq[i].eq(w_count)]
        with m.If(release):
            m.d.sync += head.eq(head + 1)
        with m.If(r1_out):
            m.d.sync += [lw_valid.eq(rule.we), lw_bank.eq(rule.bank1), lw_idx.eq(wptr[:nb])]
        return m
