"""ITCH 5.0 decoder: walks the MoldUDP64 message blocks of a packet and extracts the fields of
every delivered message, cut-through, 8 bytes per cycle.

Stages:
  W  walker: follows the 2-byte length prefixes (one prefix per cycle; a word holding two
     prefixes is presented twice), assigns sequence numbers, skips the overlap, detects the
     overrun at the packet's end and reports how many messages were framed (``done``, to the
     tracker, from the X registers through two LUT levels). The next-prefix position and its
     flags are precomputed for every lane of the word, so the per-cycle loop is a selection,
     not a mux-then-add-then-compare; the walker's start state is preset after a packet's
     last word, not selected by the next packet's ``first``.
  X  two assemblers (messages alternate between them): each captures the bytes 0..35 of its
     message from the words as they pass, with per-byte "captured" flags -> the ``early``
     port shows the fields of the message being received as soon as their bytes are in.
  Y  a complete message (its last byte arrived) is checked (type known, framed length =
     type length, else ``unknown_type`` / ``bad_length``) and counted; one of >= 12 bytes is
     copied out of its assembler. Y2: mapped to DecodedMessage and written to the output FIFO
     (types A F E C X D U P Q H R S; other known types are counted in ``messages`` and
     ``ignored_types`` and not emitted); it is readable from the next cycle.
  Z  at the packet's end: the per-packet counts are added to the counters.
Latency: a message is on ``o`` 4 cycles after the word holding its last byte was presented
to W, wherever it lies in its packet: nothing waits for the packet's end (the tracker decided
the packet at its header, and a frame that ends early keeps the messages it completed).

So the stream ``o`` equals the emulator's message list exactly, and ``early`` shows each
message's fields as their bytes arrive (for the trigger path).

Field offsets come from :data:`tickwire.host.itch.MESSAGES` (see :data:`FIELD_MAP`).
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.hdl import Shape
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from tickwire.host import itch

from ..layouts import DecodedMessage
from ..trigger.common import check_int
from .layouts import MoldBeat, PacketDone, lane_byte

__all__ = ["ItchDecoder", "EMITTED_TYPES", "EVENT_TYPES", "FIELD_MAP", "EarlyLayout",
           "decoded_fields"]

#: Message types the decoder emits.
EMITTED_TYPES = "AFECXDUPQHRS"


def _spec(t, name, lo_bytes=None):
    f = itch.MESSAGES[t].field(name)
    if lo_bytes is None:
        return (f.offset, f.size)
    return (f.offset + f.size - lo_bytes, lo_bytes)   # the low (last) bytes, big-endian


#: DecodedMessage field -> {type: (byte offset, size)} in the ITCH message (big-endian).
FIELD_MAP: dict[str, dict[str, tuple[int, int]]] = {
    "locate": {t: _spec(t, "stock_locate") for t in EMITTED_TYPES},
    "timestamp": {t: _spec(t, "timestamp") for t in EMITTED_TYPES},
    "ref": {**{t: _spec(t, "order_reference_number") for t in "AFECXDP"},
            "U": _spec("U", "original_order_reference_number")},
    "new_ref": {"U": _spec("U", "new_order_reference_number")},
    "side": {t: _spec(t, "buy_sell_indicator") for t in "AFP"},
    "shares": {**{t: _spec(t, "shares") for t in "AFPU"},
               **{t: _spec(t, "executed_shares") for t in "EC"},
               "X": _spec("X", "canceled_shares"),
               "Q": _spec("Q", "cross_shares", lo_bytes=4)},
    "price": {**{t: _spec(t, "price") for t in "AFPU"},
              "C": _spec("C", "execution_price"), "Q": _spec("Q", "cross_price")},
    "stock": {t: _spec(t, "stock") for t in "AFPQHR"},
    "state": {"H": _spec("H", "trading_state"), "S": _spec("S", "event_code")},
}
#: Bytes of a message the decoder needs (0 .. NEED-1).
NEED = max(o + s for fm in FIELD_MAP.values() for (o, s) in fm.values())

#: Per-field "the field's bytes are in" flags of the early port.
FieldValid = data.StructLayout({k: 1 for k in ("type", "sequence", *FIELD_MAP)})

#: The ``early`` port: the message being received (on ``o`` once complete).
EarlyLayout = data.StructLayout({
    "active": 1,      # a message of an emitted type with its correct length is in progress
    "start": 1,       # pulse: the type byte of a new message arrived
    # pulse, one cycle per message: its last byte is in (every field shown); in this cycle
    # the message is written to the output FIFO, after every older message, and it will be
    # on ``o`` (the tracker accepted its packet at the header; a complete message is framed)
    "complete": 1,
    "msg": DecodedMessage,
    "fields": FieldValid,
})

#: Types the book builder can turn into a trigger-engine event (BookEvent), see ``held``.
EVENT_TYPES = "AFECXDUH"


def decoded_fields(msg: bytes, sequence: int) -> dict | None:
    """The DecodedMessage field values the decoder emits for ``msg`` (None: not emitted),
    from tickwire.host.itch.decode -- the benches' oracle."""
    if not msg or chr(msg[0]) not in EMITTED_TYPES or len(msg) != itch.LENGTHS[chr(msg[0])]:
        return None
    d = itch.decode(msg)
    t = d["type"]
    out = {"type": msg[0], "locate": d["stock_locate"], "timestamp": d["timestamp"],
           "sequence": sequence, "ref": 0, "new_ref": 0, "side": 0, "shares": 0, "price": 0,
           "stock": 0, "state": 0}
    names = {"ref": {"U": "original_order_reference_number"},
             "new_ref": {"U": "new_order_reference_number"},
             "side": {}, "shares": {"E": "executed_shares", "C": "executed_shares",
                                    "X": "canceled_shares", "Q": "cross_shares"},
             "price": {"C": "execution_price", "Q": "cross_price"}, "stock": {},
             "state": {"H": "trading_state", "S": "event_code"}}
    default = {"ref": "order_reference_number", "new_ref": None, "side": "buy_sell_indicator",
               "shares": "shares", "price": "price", "stock": "stock", "state": None}
    for k in ("ref", "new_ref", "side", "shares", "price", "stock", "state"):
        if t not in FIELD_MAP[k]:
            continue
        v = d[names[k].get(t, default[k])]
        if isinstance(v, str):
            size = FIELD_MAP[k][t][1]
            v = int.from_bytes(v.encode("latin-1").ljust(size, b" "), "big")
        if k == "shares" and t == "Q":
            v &= 0xFFFFFFFF
        out[k] = v
    return out



class _OutputFifo(wiring.Component):
    """The decoder's message FIFO; ``room``: at least 4 free entries (the walker stops
    presenting words without it, so the messages in flight behind it always fit). A message
    written while the FIFO is empty and its output free (or handed on in that cycle) goes
    straight to the output register: on ``r`` the next cycle, not after the memory's read."""

    def __init__(self, shape, depth):
        self._shape = shape
        self._depth = depth
        super().__init__({
            "w_en": In(1), "w_data": In(shape),
            "room": Out(1), "r": Out(stream.Signature(shape)),
        })

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        abits = (depth - 1).bit_length()
        m.submodules.mem = mem = Memory(shape=self._shape, depth=depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port(domain="sync")
        w_ptr = Signal(abits + 1)
        r_ptr = Signal(abits + 1)
        m.d.comb += [wp.addr.eq(w_ptr[:abits]), wp.data.eq(self.w_data), wp.en.eq(self.w_en)]
        with m.If(self.w_en):
            m.d.sync += w_ptr.eq(w_ptr + 1)
        used = Signal(abits + 1)
        m.d.comb += used.eq(w_ptr - r_ptr)
        m.d.sync += self.room.eq(used <= depth - 6)
        o_valid = Signal()
        free = ~o_valid | self.r.ready
        fetch = (r_ptr != w_ptr) & free
        # (bypass: the memory is empty, so the message is the next one out; it is written
        # and read in the same cycle, both pointers step)
        bypass = (r_ptr == w_ptr) & free & self.w_en
        by = Signal(self._shape)
        by_sel = Signal()
        m.d.comb += [rp.addr.eq(r_ptr[:abits]), rp.en.eq(fetch),
                     self.r.valid.eq(o_valid),
                     self.r.payload.eq(Mux(by_sel, by, rp.data))]
        with m.If(fetch | bypass):
            m.d.sync += [r_ptr.eq(r_ptr + 1), o_valid.eq(1), by_sel.eq(bypass)]
        with m.Elif(self.r.ready):
            m.d.sync += o_valid.eq(0)
        with m.If(bypass):
            m.d.sync += by.eq(self.w_data)
        return m


class ItchDecoder(wiring.Component):
    """Members
    -------
    i : In(stream.Signature(MoldBeat))
        Packets to walk, from the tracker: whole packets (a ``first`` beat comes after the
        previous packet's ``last``).
    o : Out(stream.Signature(DecodedMessage))
        Decoded messages, in sequence order.
    done : Out(stream.Signature(PacketDone))
        One per packet, to the tracker (``ready`` ignored).
    early : Out(EarlyLayout)
        Speculative view of the message being received (see :data:`EarlyLayout`).
    held : Out(1)
        A message of a type in :data:`EVENT_TYPES` is in the output FIFO: written, not yet
        handed on ``o`` (the cycle of its ``o`` handshake included). In the cycle ``early.complete`` shows a message, that
        message is not counted yet and every older emitted message is: ``held`` 0 then
        means no older A F E C X D U H is left in the decoder (cut-through ``quiet``).
    messages, unknown_type, bad_length, mold_overrun, ignored_types : Out(counter_width)
        ``messages`` counts delivered messages of every known type (as the emulator);
        ``ignored_types`` those of them that are not emitted (hardware-only).

    Parameters: ``fifo_depth`` output FIFO entries (a full FIFO stops the walk: with the line
    buffers ahead it absorbs the book builder's stalls).
    """

    def __init__(self, *, fifo_depth: int = 256, counter_width: int = 32):
        check_int("fifo_depth", fifo_depth, 16, pow2=True)
        check_int("counter_width", counter_width, 8, 64)
        self._depth = fifo_depth
        self._cw = counter_width
        members = {
            "i": In(stream.Signature(MoldBeat)),
            "o": Out(stream.Signature(DecodedMessage)),
            "done": Out(stream.Signature(PacketDone)),
            "early": Out(EarlyLayout),
            "held": Out(1),
        }
        for k in ("messages", "unknown_type", "bad_length", "mold_overrun", "ignored_types"):
            members[k] = Out(counter_width)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = _OutputFifo(DecodedMessage, self._depth)
        wiring.connect(m, wiring.flipped(self.o), fifo.r)
        beat = self.i.payload

        # ------------------------------------------------------------ W: walker
        # State (for the word presented next): the next length prefix is ``wskip`` words
        # ahead at ``lane`` (or straddles: its high byte ``hi`` came with the previous word,
        # ``half``; then ``lane`` is 7), ``i`` messages walked so far, ``left`` still to walk,
        # ``skl`` still to skip. The header-independent part is preset to a packet's start
        # (prefix at lane 4) in the cycle after the previous packet's last word (``x_eop``:
        # the next first beat is held then), so it needs no selection by ``first``; the
        # per-cycle loop selects, by the registered lane, one of the candidates precomputed
        # for every lane from the data word (flags included, no compare after the selection).
        w_fresh = Signal(init=1)  # the next presented word is a packet's first
        w_lane = Signal(3, init=4)
        w_lane_oh = Signal(8, init=1 << 4)    # w_lane, one-hot
        w_wskip = Signal(13)      # (L <= 65535: at most 8191 words ahead)
        w_half = Signal()
        w_hi = Signal(8)
        w_i = Signal(16)
        w_left = Signal(16)
        w_skl = Signal(16)
        w_seq = Signal(64)
        w_done = Signal()
        w_here = Signal()         # the prefix starts in the next presented word
        w_lastmsg = Signal()      # the next message walked is the packet's last (left == 1)
        w_deliv = Signal()        # the next message walked is delivered (skl == 0)
        w_asm = Signal()          # assembler of the next delivered message
        w_endpassed = Signal()    # the walk is done and its last message ended before

        eop_flight = Signal()     # a packet end is in X/Y/Z: hold the next packet's first beat
        present = Signal()
        stall = Signal()          # present the same word again (another prefix in it)
        m.d.comb += [
            present.eq(self.i.valid & fifo.room & ~(beat.first & eop_flight)),
            self.i.ready.eq(present & ~stall),
        ]
        first = w_fresh
        d = beat.data
        nb = beat.nbytes
        lane = w_lane
        wskip = w_wskip
        half = w_half
        i_cur = w_i
        endpassed = w_endpassed
        asm = w_asm
        # header-dependent state of a packet's first word
        left = Mux(first, beat.count, w_left)
        skl = Mux(first, beat.skip, w_skl)
        seq = Mux(first, beat.sequence, w_seq)
        wdone = Mux(first, beat.count == 0, w_done)
        here = Mux(first, beat.count != 0, w_here)
        lastmsg = Mux(first, beat.count == 1, w_lastmsg)
        deliv = Mux(first, beat.skip == 0, w_deliv)

        # candidates for every prefix position (k = lane 0..6, 7 = straddling prefix, body
        # start b): length, next-prefix lane and words ahead, message end, and their flags
        L = Signal(16)
        b = Signal(4)             # body start relative to this word (1..8)
        smask = Signal(8)         # message bytes 0..7 in this word: k < 8 - b
        pres = Signal()           # the prefix bytes are in this word
        np_lo = Signal(3)         # lane of the next prefix
        np_ws = Signal(13)        # words ahead of the next prefix - 1 (when not ``same``)
        same = Signal()           # the next prefix is in this word too
        le16 = Signal()           # ... in this or the next word
        zero = Signal()           # L == 0
        end_pos = Signal(17)      # position of the message's last byte relative to this word
        endz = Signal()           # ... in this word
        end1 = Signal()           # ... in the next word
        s_pov = Signal()          # (started on this word) P > nb, P + 2 > nb (see below)
        s_p2ov = Signal()
        # the flags as "high byte zero" and a compare of the low byte: shallow before the
        # selection
        hz = [Signal(name=f"hz{k}") for k in range(8)]
        w_hiz = Signal(init=1)    # w_hi == 0
        m.d.comb += [hz[k].eq(lane_byte(d, k) == 0) for k in range(7)]
        m.d.comb += hz[7].eq(w_hiz)
        with m.Switch(lane):
            for k in range(8):
                bk = 1 if k == 7 else k + 2
                cl = (Cat(lane_byte(d, 0), w_hi) if k == 7
                      else Cat(lane_byte(d, k + 1), lane_byte(d, k)))
                lo = cl[0:8]
                endz_k = hz[k] & (lo <= 8 - bk)
                elane_k = (cl[0:3] + (bk - 1))[0:3]
                with m.Case(k):
                    m.d.comb += [
                        L.eq(cl), b.eq(bk), smask.eq(sum(1 << j for j in range(8 - bk))),
                        pres.eq(1 if k == 7 else nb >= k + 2),
                        np_lo.eq(cl[0:3] + bk),
                        # (L + b) >> 3, less 1: the high bits, less 1 without the carry
                        np_ws.eq(cl[3:16] if bk == 8
                                 else Mux(cl[0:3] >= 8 - bk, cl[3:16], cl[3:16] - 1)),
                        zero.eq(hz[k] & (lo == 0)),
                        end_pos.eq(cl + (bk - 1)), endz.eq(endz_k),
                        end1.eq(hz[k] & (lo >= 9 - bk) & (lo <= 16 - bk)),
                        # started here: P = end_pos + 1 > nb, P + 2 > nb
                        s_pov.eq(~endz_k | (elane_k >= nb)),
                        s_p2ov.eq(~endz_k | (elane_k + 2 >= nb)),
                    ]
        # ``same`` and ``le16`` feed the registers' next values: an AND-OR over the one-hot
        # lane, each term (lane, high byte zero, low byte small) a few LUTs wide
        same_t = []
        le16_t = []
        for k in range(8):
            bk = 1 if k == 7 else k + 2
            lo = lane_byte(d, 0) if k == 7 else lane_byte(d, k + 1)
            same_t.append(w_lane_oh[k] & hz[k] & (lo <= 7 - bk) if bk <= 7 else Const(0, 1))
            le16_t.append(w_lane_oh[k] & hz[k] & (lo <= 15 - bk))
        m.d.comb += [same.eq(Cat(*same_t).any()), le16.eq(Cat(*le16_t).any())]
        start = Signal()
        m.d.comb += start.eq(half | (here & (lane != 7) & pres))
        lane7 = here & (lane == 7) & (nb == 8)
        m.d.comb += stall.eq(start & ~lastmsg & same)
        deliver = start & deliv

        with m.If(present):
            m.d.sync += w_fresh.eq(0)
            with m.If(start):
                m.d.sync += [w_i.eq(i_cur + 1), w_seq.eq(seq + 1), w_done.eq(lastmsg),
                             w_half.eq(0), w_lane.eq(np_lo), w_lane_oh.eq(1 << np_lo),
                             w_left.eq(left - 1),
                             w_lastmsg.eq(left == 2), w_deliv.eq(skl <= 1),
                             w_skl.eq(Mux(deliv, 0, skl - 1)),
                             w_here.eq(~lastmsg & le16)]
                with m.If(same):
                    m.d.sync += [w_wskip.eq(0), w_endpassed.eq(lastmsg)]
                with m.Else():
                    m.d.sync += [w_wskip.eq(np_ws), w_endpassed.eq(0)]
                with m.If(deliver):
                    m.d.sync += w_asm.eq(~asm)
            with m.Else():
                m.d.sync += [w_seq.eq(seq), w_done.eq(wdone), w_left.eq(left),
                             w_skl.eq(skl), w_lastmsg.eq(lastmsg), w_deliv.eq(deliv)]
                with m.If(lane7):
                    m.d.sync += [w_half.eq(1), w_hi.eq(lane_byte(d, 7)),
                                 w_hiz.eq(lane_byte(d, 7) == 0), w_here.eq(0)]
                with m.If(~half & (wskip != 0)):
                    m.d.sync += [w_wskip.eq(wskip - 1),
                                 w_here.eq(~wdone & (wskip == 1))]
                with m.Else():
                    m.d.sync += w_endpassed.eq(endpassed | wdone)
                    with m.If(~lane7):
                        m.d.sync += w_here.eq(here)
        x_eop = Signal()
        with m.If(x_eop):         # (no word is presented in this cycle)
            m.d.sync += [w_fresh.eq(1), w_lane.eq(4), w_lane_oh.eq(1 << 4), w_wskip.eq(0),
                         w_half.eq(0), w_i.eq(0), w_endpassed.eq(0), w_asm.eq(0)]

        # ------------------------------------------------------------ W -> X registers
        A = 2                     # assemblers
        x_valid = Signal()
        x_cons = Signal()
        x_data = Signal(64)
        x_nb = Signal(4)
        x_st = Signal(A)          # assembler that starts a delivered message on this word
        x_b = Signal(4)           # its body start in this word (1..8)
        x_smask = Signal(8)       # its bytes 0..7 that are in this word: k < 8 - b
        x_zero = Signal()
        x_end_r = Signal(14)      # word (relative to this one) holding its last byte
        x_end_lane = Signal(3)
        x_endz = Signal()         # ... this word
        x_end1 = Signal()         # ... the next word
        x_L = Signal(16)
        x_seq = Signal(64)
        m.d.sync += [
            x_valid.eq(present), x_cons.eq(present & ~stall), x_data.eq(d), x_nb.eq(nb),
            x_st.eq(Mux(present & deliver, Mux(asm, 0b10, 0b01), 0)), x_b.eq(b),
            x_smask.eq(smask), x_zero.eq(zero), x_end_r.eq(end_pos[3:]),
            x_end_lane.eq(end_pos[0:3]), x_endz.eq(endz), x_end1.eq(end1), x_L.eq(L),
            x_seq.eq(seq), x_eop.eq(present & ~stall & beat.last),
        ]
        # end-of-packet evaluation (the last word, consumed), finished in X from what W
        # registers (the compares on P precomputed per candidate): P = end of the last started
        # message / next prefix position. Started on this word: P = end_pos + 1; else the next
        # prefix position (7 for a straddling one).
        x_start = Signal()
        x_i = Signal(16)          # i before this word, and i +/- 1
        x_ip1 = Signal(16)
        x_im1 = Signal(16)
        x_ianz = Signal()         # i after this word != 0
        x_epns = Signal()         # the walk had ended before (no start on this word)
        x_wda = Signal()          # the walk is done after this word
        x_pov = Signal()          # P > nb
        x_p2ov = Signal()         # P + 2 > nb
        # (no start: P = Cat(lane, wskip), 7 for a straddling prefix as well: then lane is 7
        # and wskip 0, as whenever the prefix is in the word, ``here``)
        p_ns = Cat(lane, wskip)
        m.d.sync += [x_start.eq(start), x_i.eq(i_cur), x_ip1.eq(i_cur + 1),
                     x_im1.eq(i_cur - 1), x_ianz.eq(start | (i_cur != 0)),
                     x_epns.eq(endpassed & ~start), x_wda.eq(Mux(start, lastmsg, wdone)),
                     x_pov.eq(Mux(start, s_pov, p_ns > nb)),
                     x_p2ov.eq(Mux(start, s_p2ov, (wskip != 0) | (lane + 2 > nb)))]
        body_over = x_ianz & ~x_epns & x_pov
        prefix_over = ~x_wda & ~body_over & x_p2ov
        x_over = Signal()
        x_framed = Signal(16)
        m.d.comb += [x_over.eq(body_over | prefix_over),
                     x_framed.eq(Mux(body_over, Mux(x_start, x_i, x_im1),
                                     Mux(x_start, x_ip1, x_i)))]

        # ------------------------------------------------------------ X: assemblers
        # Byte k of a message with body start d is in message word (d + k) >> 3, lane
        # (d + k) & 7: each word is rotated by d & 7 so that byte k sits in lane k & 7. An
        # assembler keeps its word position one-hot (``rh``: word r of the message comes
        # next) and the words left to its last byte (``rem``), so a write enable is a
        # function of a few registered bits.
        act = [Signal(name=f"a{a}_act") for a in range(A)]
        a_d = [Signal(4, name=f"a{a}_d") for a in range(A)]
        a_carry = [Signal(8, name=f"a{a}_carry") for a in range(A)]  # (d + j) >= 8
        a_rh = [Signal(8, name=f"a{a}_rh") for a in range(A)]
        a_rem = [Signal(14, name=f"a{a}_rem") for a in range(A)]
        a_remz = [Signal(name=f"a{a}_remz") for a in range(A)]
        a_end_lane = [Signal(3, name=f"a{a}_end_lane") for a in range(A)]
        a_zero = [Signal(name=f"a{a}_zero") for a in range(A)]
        a_L = [Signal(16, name=f"a{a}_L") for a in range(A)]
        a_seq = [Signal(64, name=f"a{a}_seq") for a in range(A)]
        buf = [[Signal(8, name=f"a{a}_b{k}") for k in range(NEED)] for a in range(A)]
        got = [Signal(NEED, name=f"a{a}_got") for a in range(A)]
        y_done = [Signal(name=f"y{a}_done") for a in range(A)]
        y_big = Signal(A)
        lane_ok = Signal(8)       # lanes holding valid bytes in this word
        for j in range(8):
            m.d.comb += lane_ok[j].eq(x_nb > j)

        def rotated(sel):
            rot = Signal(64)
            rok = Signal(8)
            with m.Switch(sel):
                for dd in range(8):
                    with m.Case(dd):
                        m.d.comb += [rot.eq(x_data.rotate_right(8 * dd)),
                                     rok.eq(lane_ok.rotate_right(dd))]
            return rot, rok

        rot_st, rok_st = rotated(x_b[0:3])
        for a in range(A):
            st = x_st[a]
            cont = x_valid & act[a]
            rot_c, rok_c = rotated(a_d[a][0:3])
            newgot = Signal(NEED, name=f"a{a}_newgot")
            for k in range(NEED):
                w0 = k >> 3
                en_c = cont & Mux(a_carry[a][k & 7], a_rh[a][w0 + 1], a_rh[a][w0])
                en_s = (st & x_smask[k] & ~x_zero) if k < 8 else Const(0, 1)
                with m.If(en_s):
                    m.d.sync += buf[a][k].eq(lane_byte(rot_st, k & 7))
                with m.Elif(en_c):
                    m.d.sync += buf[a][k].eq(lane_byte(rot_c, k & 7))
                m.d.comb += newgot[k].eq((en_s & rok_st[k & 7]) | (en_c & rok_c[k & 7]))
            with m.If(st):
                m.d.sync += got[a].eq(newgot)
            with m.Elif(cont):
                m.d.sync += got[a].eq(got[a] | newgot)
            complete = ((st & (x_zero | (x_endz & (x_end_lane < x_nb))))
                        | (cont & a_remz[a] & (a_end_lane[a] < x_nb)))
            m.d.sync += y_done[a].eq(complete)
            # only a message of >= 12 bytes can be emitted: at most one completes a cycle
            m.d.comb += y_big[a].eq(complete & Mux(st, x_L >= 12, a_L[a] >= 12))
            with m.If(st):
                m.d.sync += [a_d[a].eq(x_b), a_carry[a].eq(~x_smask), a_L[a].eq(x_L),
                             a_end_lane[a].eq(x_end_lane), a_zero[a].eq(x_zero),
                             a_seq[a].eq(x_seq),
                             a_rh[a].eq(Mux(x_cons, 0b10, 0b01)),
                             a_rem[a].eq(Mux(x_cons, x_end_r - 1, x_end_r)),
                             a_remz[a].eq(Mux(x_cons, x_end1, x_endz)),
                             act[a].eq(~complete & ~x_eop)]
            with m.Elif(cont):
                m.d.sync += act[a].eq(~complete & ~x_eop)
                with m.If(x_cons):
                    m.d.sync += [a_rh[a].eq(a_rh[a] << 1), a_rem[a].eq(a_rem[a] - 1),
                                 a_remz[a].eq(a_rem[a] == 1)]

        # ------------------------------------------------------------ mapping
        def mapped(bytes_, seq_, got_=None):
            """DecodedMessage fields (and per-field valid flags) of a message's bytes."""
            t = bytes_[0]
            is_t = {ch: Signal(name=f"is_{ch}") for ch in EMITTED_TYPES}
            for ch, sig in is_t.items():
                m.d.comb += sig.eq(t == ord(ch))
            vals = {"type": t, "sequence": seq_}
            fv = {"type": got_[0], "sequence": got_[0]} if got_ is not None else {}
            for fname, per_type in FIELD_MAP.items():
                width = Shape.cast(DecodedMessage.as_shape()[fname].shape).width
                by_pos = {}
                for ch, (off, size) in per_type.items():
                    by_pos.setdefault((off, size), []).append(ch)
                acc = Const(0, width)
                vacc = Const(0, 1)
                for (off, size), chs in by_pos.items():
                    hit = Cat(*[is_t[ch] for ch in chs]).any()
                    v = Cat(*reversed([bytes_[off + j] for j in range(size)]))
                    acc = acc | Mux(hit, v, 0)
                    if got_ is not None:
                        vacc = vacc | (hit & got_[off + size - 1])
                vals[fname] = acc
                fv[fname] = vacc
            return vals, fv

        len_of = {ord(t): ln for t, ln in itch.LENGTHS.items()}

        # ------------------------------------------------------------ Y: check, map, write
        inc = {k: Signal(2, name=f"inc_{k}") for k in ("msg", "unk", "bad", "ign")}
        sums = {k: [] for k in inc}
        for a in range(A):
            t = buf[a][0]
            known = Signal(name=f"y{a}_known")
            good = Signal(name=f"y{a}_good")
            emit_t = Signal(name=f"y{a}_emit_t")
            with m.Switch(t):
                for code, ln in len_of.items():
                    with m.Case(code):
                        m.d.comb += [known.eq(1), good.eq(a_L[a] == ln),
                                     emit_t.eq(chr(code) in EMITTED_TYPES)]
            dn = y_done[a]
            zero = a_zero[a]
            ok = dn & ~zero & known & good
            sums["unk"].append(dn & ~zero & ~known)
            sums["bad"].append(dn & (zero | (known & ~good)))
            sums["msg"].append(ok)
            sums["ign"].append(ok & ~emit_t)
        flags = {k: Signal(2, name=f"flag_{k}") for k in inc}
        for k in inc:
            m.d.sync += flags[k].eq(Cat(sums[k][0], sums[k][1]))
            m.d.comb += inc[k].eq(flags[k][0] + flags[k][1])
        # Y2: the candidate (>= 12 bytes) is copied in Y (the assembler may restart in the
        # next cycle), then checked and mapped to DecodedMessage and written to the FIFO
        y_sel = Signal()
        y_cand = Signal()
        m.d.sync += [y_sel.eq(y_big[1]), y_cand.eq(y_big != 0)]
        y2_valid = Signal()
        y2_bytes = [Signal(8, name=f"y2_b{k}") for k in range(NEED)]
        y2_L = Signal(16)
        y2_seq = Signal(64)
        m.d.sync += [y2_valid.eq(y_cand), y2_L.eq(Mux(y_sel, a_L[1], a_L[0])),
                     y2_seq.eq(Mux(y_sel, a_seq[1], a_seq[0]))]
        m.d.sync += [y2_bytes[k].eq(Mux(y_sel, buf[1][k], buf[0][k])) for k in range(NEED)]
        y2_emit = Signal()
        with m.Switch(y2_bytes[0]):
            for ch in EMITTED_TYPES:
                with m.Case(ord(ch)):
                    m.d.comb += y2_emit.eq(y2_L == itch.LENGTHS[ch])
        yvals, _ = mapped(y2_bytes, y2_seq)
        w_msg = Signal(DecodedMessage)
        for fname, v in yvals.items():
            m.d.comb += getattr(w_msg, fname).eq(v)
        m.d.comb += [fifo.w_en.eq(y2_valid & y2_emit), fifo.w_data.eq(w_msg)]

        # early port: the oldest message not completed yet (the one whose bytes are arriving;
        # in the cycle after its last byte it is shown complete, then the next one)
        ep = Signal()
        with m.If(Mux(ep, y_done[1], y_done[0])):
            m.d.sync += ep.eq(~ep)
        with m.Elif(~Mux(ep, act[1], act[0]) & Mux(ep, act[0], act[1])):
            m.d.sync += ep.eq(~ep)
        latest = ep
        ebytes = [Mux(latest, buf[1][k], buf[0][k]) for k in range(NEED)]
        egot = Mux(latest, got[1], got[0])
        evals, efv = mapped(ebytes, Mux(latest, a_seq[1], a_seq[0]), egot)
        early = Signal(EarlyLayout)      # registered: one cycle after the assemblers
        for fname, v in evals.items():
            m.d.sync += getattr(early.msg, fname).eq(v)
        for fname, v in efv.items():
            m.d.sync += getattr(early.fields, fname).eq(v)
        a_tok = [Signal(name=f"a{a}_tok") for a in range(A)]
        for a in range(A):
            tok = Signal(name=f"a{a}_tok_c")
            with m.Switch(buf[a][0]):
                for ch in EMITTED_TYPES:
                    with m.Case(ord(ch)):
                        m.d.comb += tok.eq(a_L[a] == itch.LENGTHS[ch])
            # computed from this cycle's registers; void while the assembler restarts
            m.d.sync += a_tok[a].eq(tok & got[a][0] & ~x_st[a])
        e_ok = Mux(latest, a_tok[1], a_tok[0])
        e_start = Signal()
        m.d.sync += [e_start.eq(x_st != 0), early.start.eq(e_start),
                     early.active.eq((Mux(latest, act[1], act[0]) | Mux(latest, y_done[1],
                                                                        y_done[0]))
                                     & egot[0] & e_ok)]
        m.d.comb += self.early.eq(early)

        y_eop = Signal()
        y_over = Signal()
        m.d.sync += [y_eop.eq(x_eop), y_over.eq(x_over)]
        # complete: y_done belongs to the word that completed the message (in X one cycle
        # earlier); shown with the message's fields (the cycle before ``ep`` moves on)
        e_done = Mux(latest, y_done[1], y_done[0])
        m.d.sync += early.complete.eq(e_done)
        pend = {k: Signal(16, name=f"pend_{k}") for k in inc}

        # ------------------------------------------------------------ Z: packet counts
        z_eop = Signal()
        z_over = Signal()
        y2_eop = Signal()
        y2_over = Signal()
        m.d.sync += [y2_eop.eq(y_eop), y2_over.eq(y_over)]
        m.d.sync += [z_eop.eq(y2_eop), z_over.eq(y2_over)]
        m.d.comb += eop_flight.eq(x_eop | y_eop | y2_eop | z_eop)
        cnt = {k: Signal(self._cw, name=f"cnt_{k}") for k in
               ("messages", "unknown_type", "bad_length", "mold_overrun", "ignored_types")}
        names = {"msg": "messages", "unk": "unknown_type", "bad": "bad_length",
                 "ign": "ignored_types"}
        for k in inc:
            m.d.sync += pend[k].eq(Mux(z_eop, 0, pend[k]) + inc[k])
        # (the counts of a packet are complete in pend when its z_eop comes: its messages
        # completed at the latest with its last word, counted in Y)
        with m.If(z_eop):
            for k, name in names.items():
                m.d.sync += cnt[name].eq(cnt[name] + pend[k])
            with m.If(z_over):
                m.d.sync += cnt["mold_overrun"].eq(cnt["mold_overrun"] + 1)
        for name, s in cnt.items():
            m.d.comb += getattr(self, name).eq(s)

        # held: A F E C X D U H messages in the output FIFO
        def event_type(t):
            return Cat(*[t == ord(ch) for ch in EVENT_TYPES]).any()
        h_cnt = Signal(range(self._depth + 1))
        h_wr = Signal()
        h_rd = Signal()
        m.d.comb += [h_wr.eq(fifo.w_en & event_type(w_msg.type)),
                     h_rd.eq(self.o.valid & self.o.ready & event_type(self.o.payload.type))]
        m.d.sync += h_cnt.eq(h_cnt + h_wr - h_rd)
        m.d.comb += self.held.eq(h_cnt != 0)
        # the walk's outcome is known in X already: report it to the tracker from there
        m.d.comb += [
            self.done.valid.eq(x_eop), self.done.payload.framed.eq(x_framed),
            self.done.payload.overrun.eq(x_over),
        ]
        return m
