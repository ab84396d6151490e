"""Order egress: accepted orders -> OUCH 5.0 Enter Order (IOC) / SoupBinTCP / TCP / IPv4 /
Ethernet frames on a 64-bit stream (docs/architecture.md "Order encoding", "Order egress").

Flow: an accepted order goes straight into the frame builder when it is idle and nothing is
queued (cut-through), else into a FIFO (``fifo_depth`` orders; an order that finds it full is
dropped and counted in ``drops`` — the FIFO absorbs any burst the trigger engine can make, so
this is a sizing alarm, not an expected event). Frames leave in acceptance order, back to back.

Cycles: order on ``i`` in cycle t with the builder idle -> beat 0 (``first``) valid in the same
cycle t (beat 0 is the destination MAC and two bytes of the source MAC, template constants);
the order's fields are registered at the end of t, the IPv4 checksum is ready at t+2 (needed
by beat 3), the TCP checksum at t+4 (needed by beat 6). A frame is 13 beats (14 with a VLAN
tag), one per cycle while ``o.ready`` is high.

Checksums: sums of 16-bit words, folded (end-around carry) once at the end. The template-only
part of each sum (addresses, ports, ack, window, TTL, capacity) is a registered sum recomputed
every cycle (from the template of cycle t for the IPv4 header, t+1 for TCP, as ever); per frame
only the IPv4 identification (IPv4 header) and the sequence number and order fields (TCP) are
added, the TCP ones in two register stages of at most eight words each. ``ip_id`` advances by
1 and ``seq`` by 50 per frame, modulo 2**16 and 2**32.
"""

from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Signal
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from tickwire.spec.capacity import GATEWARE

from ..layouts import BadRange
from ..risk.layouts import DIGITS, AcceptedOrder
from ..ports import CounterGroup, TablePort
from ..trigger.common import MAX_SLOTS, SLOT_BITS, check_int, checked_init, ones_fold
from .frame import (SOUP_LEN, frame_sources, ip_header_sources, pseudo_header_sources,
                    tcp_segment_sources)
from .latency import LatencyHistogram
from .layouts import LatencyRecord, OrderStreamSignature, SessionTemplate

__all__ = ["OrderEgress", "COUNTERS"]

COUNTERS = ("frames_sent", "drops", "fast_orders", "fcs_aborts", "fcs_late")

#: Sent frames whose sequence numbers are kept to count late ones (``fcs_late``).
LATE_HISTORY = 4

_TWIDTH = {"dst_mac": 48, "src_mac": 48, "vlan": 16, "src_ip": 32, "dst_ip": 32, "src_port": 16,
           "dst_port": 16, "ack": 32, "window": 16, "ttl": 8}
_OWIDTH = {"user_ref": 32, "quantity": 32, "price": 32}


class OrderEgress(wiring.Component):
    """Order egress gateware.

    Parameters:
        symbols        slots of the name table (1..256, default 64)
        fifo_depth     pending orders (default 16)
        hist_bins      latency histogram bins (default 33: 0..31, >= 32 with bin_shift 0)
        counter_width  counters (default 32)

    Ports:
        i              In(stream.Signature(AcceptedOrder, always_ready=True))
        o              Out(OrderStreamSignature())
        tmpl           In(SessionTemplate)  static while frames are built
        capacity       In(8)  OUCH capacity character
        session_load   strobe: next frame uses ``tmpl.seq`` / ``tmpl.ip_id``
        names          In(TablePort(SLOT_BITS, 64))  ``w``: a slot's symbol (8 ASCII bytes, first character most
                       significant, space padded) — host writes and the book builder's
                       auto-learned names
        now            In(32) cycle counter; latency = cycle of beat 0's transfer − the order's
                       ``stamp``
        rec            Out(stream.Signature(LatencyRecord, always_ready=True)): one record
                       per frame, in the cycle its beat 0 transfers (``t_verdict`` is
                       ``now`` when the order arrived on ``i``)
        lat_enable, lat_bin_shift, lat_hist.r (bin -> count), lat_count, lat_sum,
        lat_min, lat_max, lat_last      the latency histogram (:class:`LatencyHistogram`)
        clear          strobe: drop queued orders and a frame in progress, counters and
                       histograms to 0, session_load; ``busy`` while the histograms clear
        lat_clear      strobe: the latency histogram and its statistics only
        next_seq, next_ip_id   the values the next frame will carry
        fcs_bad        In(stream.Signature(BadRange, always_ready=True)): messages whose
                       frame turned out to have a bad FCS (the feed's ``fcs_bad``)
        counters       frames_sent (aborted ones too), drops, fast_orders (cut-through
                       orders), fcs_aborts, fcs_late (see "Bad FCS" below)

    Bad FCS (docs/architecture.md "Bad FCS after cut-through"): the egress keeps the range of
    sequence numbers of every ``fcs_bad`` until no order of it can come any more: a frame of a
    later message starts (frames leave in message order), or ``ev_lag`` + 1 cycles after the
    trigger engine took a message past it (``ev_taken``, ``ev_seq``: numbered at or above its
    end, or below the message taken before, a new MoldUDP64 session's) nothing of it is queued
    or leaving. It holds one range: one that comes while another is held widens it to cover
    both. A frame whose order's message is in the range is aborted if its last beat is presented
    one or more cycles after the range came on ``fcs_bad`` (once presented, the beat does not
    change):
    ``user`` on its last beat (the MAC ends it with a bad FCS, so the exchange drops it), the
    TCP sequence number goes back by its 50 bytes (the next frame takes them), and
    ``fcs_aborts`` counts it. Its user reference stays used and its risk effects (position,
    gross) stay booked. A frame of such a message that was sent whole is counted in ``fcs_late``
    (among the last LATE_HISTORY sent).
    """

    #: order on ``i`` -> beat 0 valid, same cycle (builder idle, FIFO empty)
    LATENCY = 0
    THROUGHPUT = "1 frame/13 cycles (14 with a VLAN tag), back to back"

    @checked_init
    def __init__(self, *, symbols: int = GATEWARE["symbols"], fifo_depth: int = 16,
                 hist_bins: int = GATEWARE["hist_bins"],
                 counter_width: int = 32, ev_lag: int = 5):
        check_int("symbols", symbols, 1, MAX_SLOTS)
        check_int("ev_lag", ev_lag, 1, 64)
        self.ev_lag = ev_lag
        check_int("fifo_depth", fifo_depth, 1, 1024)
        check_int("hist_bins", hist_bins, 2, 1024)
        check_int("counter_width", counter_width, 1, 64)
        self.symbols = symbols
        self.fifo_depth = fifo_depth
        self.hist_bins = hist_bins
        self.counter_width = counter_width
        super().__init__({
            "i": In(stream.Signature(AcceptedOrder, always_ready=True)),
            "o": Out(OrderStreamSignature()),
            "tmpl": In(SessionTemplate),
            "capacity": In(8),
            "session_load": In(1),
            "names": In(TablePort(SLOT_BITS, 64)),
            "now": In(32),
            "rec": Out(stream.Signature(LatencyRecord, always_ready=True)),
            "lat_enable": In(1), "lat_bin_shift": In(5),
            "lat_hist": In(TablePort(range(hist_bins), counter_width, write=False, read=True)),
            "lat_count": Out(64), "lat_sum": Out(64),
            "lat_min": Out(32), "lat_max": Out(32), "lat_last": Out(32),
            "clear": In(1), "lat_clear": In(1), "busy": Out(1),
            "next_seq": Out(32), "next_ip_id": Out(16),
            "fcs_bad": In(stream.Signature(BadRange, always_ready=True)),
            "ev_taken": In(1), "ev_seq": In(64),
            "counters": Out(CounterGroup(COUNTERS, counter_width)),
        })

    def elaborate(self, platform):
        m = Module()
        S = self.symbols
        t = self.tmpl

        # ------------------------------------------------------------ queue
        width = AcceptedOrder.as_shape().size
        m.submodules.fifo = q = ResetInserter(self.clear)(
            fifo.SyncFIFO(width=width, depth=self.fifo_depth))
        m.submodules.names = names = memory.Memory(shape=64, depth=S,
                                                   init=[int.from_bytes(b" " * 8, "big")] * S)
        name_r = names.read_port(domain="comb")
        name_w = names.write_port()
        m.d.comb += [name_w.addr.eq(self.names.w.index), name_w.data.eq(self.names.w.row),
                     name_w.en.eq(self.names.w.we & (self.names.w.index < S))]

        active = Signal()
        beat = Signal(range(16))
        cur = Signal(AcceptedOrder)
        cur_name = Signal(64)
        cur_seq = Signal(32)
        cur_id = Signal(16)
        seq_ctr = Signal(32)
        id_ctr = Signal(16)
        m.d.comb += [self.next_seq.eq(seq_ctr), self.next_ip_id.eq(id_ctr)]

        head = AcceptedOrder(q.r_data)
        bypass = ~active & ~q.r_rdy & self.i.valid
        src_valid = ~active & (q.r_rdy | self.i.valid)
        arrived = Signal(AcceptedOrder)     # the input, stamped with its arrival
        m.d.comb += [arrived.eq(self.i.payload), arrived.t_verdict.eq(self.now)]
        src = AcceptedOrder(Mux(q.r_rdy, q.r_data, arrived))
        start = Signal()
        m.d.comb += [
            start.eq(src_valid & ~self.clear),
            q.w_data.eq(arrived),
            q.w_en.eq(self.i.valid & ~bypass),
            q.r_en.eq(start & q.r_rdy),
            name_r.addr.eq(src.slot),
        ]
        with m.If(self.i.valid & ~bypass & ~q.w_rdy & ~self.clear):
            m.d.sync += self.counters.drops.eq(self.counters.drops + 1)

        # ------------------------------------------------------------ checksums
        def tval(field, i):
            w = _TWIDTH[field]
            v = t.vlan if field == "vlan" else getattr(t, field)
            return (v >> (w - 8 * (i + 1)))[:8]

        def oval(field, i):
            w = _OWIDTH[field]
            return (getattr(cur, field) >> (w - 8 * (i + 1)))[:8]

        digit_src = [Const(ord("0"), 8)] * 12
        for k in range(DIGITS):
            digit_src[k] = Cat(cur.digits[4 * k:4 * k + 4], Const(0x3, 4))

        def value(src_):
            kind = src_[0]
            if kind == "k":
                return Const(src_[1], 8)
            if kind == "t":
                return tval(src_[1], src_[2])
            if kind == "o":
                return oval(src_[1], src_[2])
            if kind == "id":
                return cur_id.word_select(1 - src_[1], 8)
            if kind == "seq":
                return cur_seq.word_select(3 - src_[1], 8)
            if kind == "ipck":
                return ip_ck.word_select(1 - src_[1], 8)
            if kind == "tcpck":
                return tcp_ck.word_select(1 - src_[1], 8)
            if kind == "side":
                return Mux(cur.side, Const(ord("S"), 8), Const(ord("B"), 8))
            if kind == "name":
                return cur_name.word_select(7 - src_[1], 8)
            if kind == "cap":
                return self.capacity
            if kind == "dig":
                return digit_src[src_[1]]
            raise AssertionError(src_)

        def words(srcs, keep, base=0):
            """The bytes of ``srcs`` whose kind is in ``keep`` as big-endian 16-bit words
            (byte ``off`` of the sum is byte ``off - base`` of ``srcs``): the words that vary
            (Values, two bytes side by side without an adder) and the sum of the constant
            bytes."""
            variable, const = [], 0
            n = len(srcs) + base
            for w in range(0, n + (n & 1), 2):
                parts = []
                for off, shift in ((w, 8), (w + 1, 0)):
                    i = off - base
                    if not 0 <= i < len(srcs) or srcs[i][0] not in keep:
                        continue
                    if srcs[i][0] == "k":
                        const += srcs[i][1] << shift
                    else:
                        parts.append((value(srcs[i]), shift))
                if len(parts) == 2:
                    variable.append(Cat(parts[1][0], parts[0][0]))
                elif parts:
                    v, shift = parts[0]
                    variable.append(Cat(Const(0, 8), v) if shift else v)
            return variable, const

        def tree(terms):
            """Balanced adder tree (one carry chain, one LUT level per level of the tree)."""
            terms = list(terms)
            while len(terms) > 1:
                terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                         for i in range(0, len(terms), 2)]
            return terms[0]

        # Checksums, as sums of 16-bit words folded once at the end (the end-around carry
        # makes the grouping free: the result is the value in 1..0xFFFF congruent to the sum
        # mod 0xFFFF either way). Each register stage is a balanced tree of at most eight
        # words. The template part is summed every cycle (tmpl is static while frames are
        # built); the per-frame part from the order registered at start (cycle t):
        #   IPv4: ip_raw (tmpl) -> ip_ck at t+2 (= cur_id + ip_raw, folded)      beat 3 >= t+3
        #   TCP:  tcp_static (tmpl), tcp_part (cur) at t+2 -> tcp_sum at t+3 -> tcp_ck at t+4
        #                                                                       beat 6 >= t+6
        ip_ck = Signal(16)
        tcp_ck = Signal(16)
        static = ("k", "t", "cap")
        ip_words, ip_const = words(ip_header_sources(), static)
        ip_raw = Signal(20)
        m.d.sync += ip_raw.eq(tree(ip_words + [Const(ip_const, 17)]))
        m.d.sync += ip_ck.eq(~ones_fold(ip_raw + cur_id, 2)[:16])

        ph_words, ph_const = words(pseudo_header_sources(), static)
        ts_words, ts_const = words(tcp_segment_sources(), static)
        tcp_static = Signal(21)
        m.d.sync += tcp_static.eq(tree(ph_words + ts_words))
        var_words, _ = words(tcp_segment_sources(), ("o", "seq", "side", "name", "dig"))
        parts = []
        for g in range(0, len(var_words), 8):
            part = Signal(19, name=f"tcp_part{g // 8}")
            m.d.sync += part.eq(tree(var_words[g:g + 8]))
            parts.append(part)
        tcp_sum = Signal(24)
        m.d.sync += [
            tcp_sum.eq(tree(parts + [tcp_static, Const(ph_const + ts_const, 20)])),
            tcp_ck.eq(~ones_fold(tcp_sum, 2)[:16]),
        ]

        # ------------------------------------------------------------ beats
        layouts = [frame_sources(False), frame_sources(True)]
        nbeats = [(len(x) + 7) // 8 for x in layouts]
        beats = []
        for srcs in layouts:
            bl = []
            for b in range((len(srcs) + 7) // 8):
                chunk = srcs[8 * b:8 * b + 8]
                bl.append((Cat(*[value(s_) for s_ in chunk]), (1 << len(chunk)) - 1))
            beats.append(bl)
        data = Signal(64)
        keep = Signal(8)
        last = Signal()
        for vi, bl in enumerate(beats):
            with m.If(t.vlan_en == vi):
                with m.Switch(beat):
                    for b, (d_, k_) in enumerate(bl):
                        with m.Case(b):
                            m.d.comb += [data.eq(d_), keep.eq(k_), last.eq(b == len(bl) - 1)]
        # beat 0 is the same in both layouts: destination MAC, source MAC bytes 0..1
        beat0 = beats[0][0][0]

        # ------------------------------------------------------------ bad FCS
        p_valid = Signal()          # a range of poisoned sequence numbers is held
        p_lo = Signal(64)
        p_hi = Signal(64)

        def within(valid, lo, hi, seq):
            return valid & (seq >= lo) & (seq < hi)

        def poisoned(seq):
            return within(p_valid, p_lo, p_hi, seq)

        abort = Signal()            # the frame in flight ends with a bad FCS
        fb = self.fcs_bad
        # cycles since the engine took a message past the range (its orders reach ``i``
        # within ev_lag), saturating; 0: not yet
        past = Signal(range(self.ev_lag + 1))
        ev_taken, ev_seq = Signal(), Signal(64)     # registered: one cycle more to wait
        m.d.sync += [ev_taken.eq(self.ev_taken), ev_seq.eq(self.ev_seq)]
        # a message numbered below the one taken before it is a new MoldUDP64 session's (the
        # numbers restart): past the range too, which would otherwise be held until the new
        # session's numbers reach it, and abort its orders then
        ev_prev = Signal(64)
        restart = Signal()
        m.d.comb += restart.eq(ev_seq < ev_prev)
        with m.If(ev_taken):
            m.d.sync += ev_prev.eq(ev_seq)
        with m.If(past == 0):
            with m.If(ev_taken & p_valid & ((ev_seq >= p_hi) | restart)):
                m.d.sync += past.eq(1)
        with m.Elif(past != self.ev_lag):
            m.d.sync += past.eq(past + 1)
        # registered (a cycle later changes nothing: no order of the range can come by then),
        # and not for a range that changes in that cycle
        drained = Signal()
        m.d.sync += drained.eq((past == self.ev_lag) & ~q.r_rdy & ~self.i.valid
                               & (~active | (cur.sequence >= p_hi)) & ~fb.valid)
        with m.If((start & p_valid & (src.sequence >= p_hi)) | drained):
            m.d.sync += [p_valid.eq(0), past.eq(0)]   # every order of the range has left
        with m.If(fb.valid):
            keep_old = p_valid & ~(start & (src.sequence >= p_hi)) & ~drained
            m.d.sync += [p_valid.eq(1), past.eq(0),
                         p_lo.eq(Mux(keep_old & (p_lo < fb.payload.lo), p_lo, fb.payload.lo)),
                         p_hi.eq(Mux(keep_old & (p_hi > fb.payload.hi), p_hi, fb.payload.hi))]

        o = self.o
        # the last beat, once presented, stays as it is (abort is frozen from then on); a
        # range is compared as it comes too, a cycle before it is held
        fb_hit = within(fb.valid, fb.payload.lo, fb.payload.hi, cur.sequence)
        with m.If(start):
            m.d.sync += abort.eq(0)
        with m.Elif(active & ~last & (poisoned(cur.sequence) | fb_hit)):
            m.d.sync += abort.eq(1)
        with m.If(active):
            m.d.comb += [o.valid.eq(1), o.data.eq(data), o.keep.eq(keep),
                         o.first.eq(beat == 0), o.last.eq(last), o.user.eq(last & abort)]
        with m.Else():
            m.d.comb += [o.valid.eq(src_valid & ~self.clear), o.data.eq(beat0),
                         o.keep.eq(0xFF),
                         o.first.eq(1), o.last.eq(0)]

        with m.If(start):
            m.d.sync += [
                active.eq(1), beat.eq(Mux(o.ready, 1, 0)), cur.eq(src), cur_name.eq(name_r.data),
                cur_seq.eq(seq_ctr), cur_id.eq(id_ctr),
                seq_ctr.eq(seq_ctr + SOUP_LEN), id_ctr.eq(id_ctr + 1),
            ]
        with m.Elif(active & o.ready):
            m.d.sync += beat.eq(beat + 1)
            with m.If(last):
                m.d.sync += [active.eq(0), self.counters.frames_sent.eq(self.counters.frames_sent + 1)]
                with m.If(abort):           # the exchange never sees it: its bytes go again
                    m.d.sync += [seq_ctr.eq(seq_ctr - SOUP_LEN),
                                 self.counters.fcs_aborts.eq(self.counters.fcs_aborts + 1)]

        # sent whole, then found to come from a bad frame: counted once each
        h_seq = [Signal(64, name=f"sent_seq{k}") for k in range(LATE_HISTORY)]
        h_v = [Signal(name=f"sent_valid{k}") for k in range(LATE_HISTORY)]
        hits = Signal(LATE_HISTORY)
        m.d.comb += hits.eq(Cat(*[h_v[k] & poisoned(h_seq[k]) for k in range(LATE_HISTORY)]))
        hits_r = Signal(LATE_HISTORY)
        m.d.sync += [hits_r.eq(hits), self.counters.fcs_late.eq(
            self.counters.fcs_late + sum(hits_r[k] for k in range(LATE_HISTORY)))]
        sent_ok = active & o.ready & last & ~abort
        with m.If(sent_ok):
            m.d.sync += [h_seq[0].eq(cur.sequence), h_v[0].eq(1)]
            for k in range(1, LATE_HISTORY):
                m.d.sync += [h_seq[k].eq(h_seq[k - 1]), h_v[k].eq(h_v[k - 1] & ~hits[k - 1])]
        with m.Else():
            for k in range(LATE_HISTORY):
                m.d.sync += h_v[k].eq(h_v[k] & ~hits[k])

        # ------------------------------------------------------------ latency
        m.submodules.hist = hist = LatencyHistogram(bins=self.hist_bins,
                                                    count_width=self.counter_width)
        first_xfer = o.valid & o.ready & o.first & ~self.clear
        stamp = Mux(active, cur.stamp, src.stamp)
        m.d.comb += [
            hist.sample.eq(first_xfer),
            hist.latency.eq((self.now - stamp)[:32]),
            hist.enable.eq(self.lat_enable), hist.bin_shift.eq(self.lat_bin_shift),
            hist.rd_index.eq(self.lat_hist.r.addr), self.lat_hist.r.data.eq(hist.rd_count),
            self.lat_count.eq(hist.count), self.lat_sum.eq(hist.sum),
            self.lat_min.eq(hist.min), self.lat_max.eq(hist.max), self.lat_last.eq(hist.last),
            hist.clear.eq(self.clear | self.lat_clear), self.busy.eq(hist.busy),
        ]
        sent = AcceptedOrder(Mux(active, cur, src))
        rec = self.rec.payload
        m.d.comb += [self.rec.valid.eq(first_xfer), rec.sequence.eq(sent.sequence),
                     rec.t_dec.eq(sent.stamp), rec.t_event.eq(sent.t_event),
                     rec.t_verdict.eq(sent.t_verdict), rec.t_order.eq(self.now),
                     rec.fast.eq(sent.fast)]
        with m.If(first_xfer & Mux(active, cur.fast, src.fast)):
            m.d.sync += self.counters.fast_orders.eq(self.counters.fast_orders + 1)

        with m.If(self.clear):
            m.d.sync += [active.eq(0), self.counters.frames_sent.eq(0), self.counters.drops.eq(0),
                         self.counters.fast_orders.eq(0), self.counters.fcs_aborts.eq(0),
                         self.counters.fcs_late.eq(0), p_valid.eq(0), hits_r.eq(0)]
            m.d.sync += [v.eq(0) for v in h_v]
        with m.If(self.clear | self.session_load):
            m.d.sync += [seq_ctr.eq(t.seq), id_ctr.eq(t.ip_id)]
        return m
