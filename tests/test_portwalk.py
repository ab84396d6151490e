"""The port walker alone (hw/trigger/portwalk.py), against the host's reference feed: every
entry it pushes and every add it presents is a message the MoldUDP64 rules deliver, in
delivered order, with the decoder's fields -- on the impaired feed (cut frames, duplicates,
stale sessions, gaps, a session change) with 802.1Q tags and IPv4 options mixed in, so that
the payload starts at both lane alignments. The tracker's side of the tap is the reference
tracker's state before each frame, offered as idle during long gaps."""

import random
import struct

import pytest

from amaranth.sim import Simulator

from tickwire.hw.feed.decoder import EVENT_TYPES
from tickwire.hw.trigger.portwalk import PortWalker
from tickwire.host import framing, itch, moldudp64
from tickwire.host.framing import build_udp_frame

from tickwire.backends.wire import frames_of
from tickwire.host.cli import SAMPLE

from test_rtl_cut_through import impaired_case


def with_options(frame: bytes, words: int, vlan: bool) -> bytes:
    """``frame`` with an 802.1Q tag and/or ``words`` 32-bit IPv4 option words (NOPs)."""
    eth, ip, rest = frame[:14], bytearray(frame[14:34]), frame[34:]
    if vlan:
        eth = eth[:12] + b"\x81\x00\x00\x05" + eth[12:]
    ip[0] = 0x40 | (5 + words)
    struct.pack_into(">H", ip, 2, struct.unpack_from(">H", ip, 2)[0] + 4 * words)
    struct.pack_into(">H", ip, 10, 0)
    hdr = bytes(ip) + b"\x01" * (4 * words)
    s = sum(struct.unpack(f">{len(hdr) // 2}H", hdr))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    hdr = hdr[:10] + struct.pack(">H", ~s & 0xFFFF) + hdr[12:]
    return eth + hdr + rest


def reference(frames):
    """Per frame the tracker state before it; the delivered A F E C X D U H messages as
    (sequence, message), in delivered order; per frame the index in that list of its first
    delivered message."""
    tr = moldudp64.SequenceTracker()
    states, delivered, starts = [], [], []
    for f in frames:
        states.append((tr.session, tr.previous, tr.expected))
        starts.append(len(delivered))
        d = framing.parse_udp_frame(f)
        if isinstance(d, str):
            continue
        pk = moldudp64.unpack(d.payload, strict=False)
        first, n = tr.accept(pk.session, pk.sequence, pk.count, len(pk.messages))
        for i in range(first, first + n):
            msg = pk.messages[i]
            if msg and chr(msg[0]) in EVENT_TYPES and len(msg) == itch.LENGTHS[chr(msg[0])]:
                delivered.append((pk.sequence + i, msg))
    return states, delivered, starts


def replaces(delivered, slot_of):
    """The book's order table over the delivered messages (every locate tracked, in slot
    ``slot_of(locate)``): ({sequence of a delivered U: its original's (side, slot, sequence of
    the message that stored it), or None when the book does not find it}, the sequences of
    the adds and replaces whose new order the book refused)."""
    book, out, refused = {}, {}, set()
    for seq, msg in delivered:
        d = itch.decode(msg)
        t = chr(msg[0])
        if t in "AF":
            if d["order_reference_number"] in book:
                refused.add(seq)
            else:
                book[d["order_reference_number"]] = [
                    0 if d["buy_sell_indicator"] == "B" else 1, slot_of(d["stock_locate"]),
                    d["shares"], seq]
        elif t in "ECXD":
            e = book.get(d["order_reference_number"])
            if e is not None:
                amt = e[2] if t == "D" else d.get("executed_shares", d.get("canceled_shares"))
                if amt >= e[2]:
                    del book[d["order_reference_number"]]
                else:
                    e[2] -= amt
        elif t == "U":
            e = book.pop(d["original_order_reference_number"], None)
            out[seq] = None if e is None else (e[0], e[1], e[3])
            if e is not None and d["new_order_reference_number"] in book:
                refused.add(seq)
            elif e is not None:
                book[d["new_order_reference_number"]] = [e[0], e[1], d["shares"], seq]
    return out, refused


def _sess(s):
    # the tracker keeps a session as the line buffer captures it: byte 0 lowest
    return int.from_bytes(moldudp64.session_bytes(s), "little") if s is not None else 0


def refusal_frames(frames):
    """The frames before which a book one frame behind the port (``walk(lag=1)``) counts a
    refusal: the frame after each one holding an add or replace the book refuses to store."""
    _, delivered, starts = reference(frames)
    _, refused = replaces(delivered, lambda loc: loc & 1)
    return {k + 1 for k in range(len(frames))
            for q, _ in delivered[starts[k]:starts[k + 1] if k + 1 < len(frames) else None]
            if q in refused}


def message_ends(frame):
    """(beat holding its last byte, sequence) of each message of the frame's packet."""
    d = framing.parse_udp_frame(frame)
    if isinstance(d, str):
        return []
    pk = moldudp64.unpack(d.payload, strict=False)
    at = frame.find(d.payload) + 20
    out = []
    for i, msg in enumerate(pk.messages):
        at += 2 + len(msg)
        out.append(((at - 1) // 8, pk.sequence + i))
    return out


def _beats(frame):
    """(data, keep, first, last) of each 64-bit beat of ``frame``."""
    nb = (len(frame) + 7) // 8
    return [(int.from_bytes(frame[8 * i:8 * i + 8].ljust(8, b"\0"), "little"),
             (1 << len(frame[8 * i:8 * i + 8])) - 1, i == 0, i == nb - 1) for i in range(nb)]


def walk(frames, gaps, *, orders=4096, refuse_at=(), lag=2, book_cycles=None, b_at=None,
         b_delay=None, engine=None):
    """Run the walker alone over ``frames``; the engine takes no strobe, every locate is
    tracked (slot: locate & 1), the book takes its events ``lag`` frames behind the port
    (or ``book_cycles`` after the message's last beat) and is idle in long gaps;
    ``refuse_at``: frames before which the book refuses an add; ``b_at``: {frame: (B, n)},
    frame B on line B in the gap before the frame, after which the tracker's ``expected`` is
    ``n`` ahead of the reference's (messages the walker did not see); ``b_delay``: line B
    carries a copy of every frame, its first beat ``b_delay`` cycles after line A's (negative:
    ahead; the tracker's state as without line B).
    ``engine``: a ``random.Random``; the engine then takes a presented strobe that is quiet
    with probability 4/5, and the producer takes each entry over at the earliest the decoder
    allows (the cycle after it completes the message, 13 cycles after its last beat):
    the entries and strobes then come with the cycle and, for a strobe, whether it was taken.
    Returns (entries, strobes, reference)."""
    states, delivered, starts = reference(frames)
    got = {q for q, _ in delivered}
    ends = [[(b, q) for b, q in message_ends(f) if q in got] for f in frames]
    due = []                    # (cycle, sequence) of the book's events still to come
    b_sched = {}                # cycle -> line B's beat
    if b_delay is not None:
        assert not b_at
        t = 0
        for f, g in zip(frames, gaps):
            t += g
            for i, b in enumerate(_beats(f)):
                assert t + 1 + b_delay + i not in b_sched, "line B's copies overlap"
                b_sched[t + 1 + b_delay + i] = b
            t += (len(f) + 7) // 8
    now = [0]
    dut = PortWalker(symbols=2, slot_bits=1, orders=orders)
    entries, strobes = [], []

    async def tb(ctx):
        for sig, v in ((dut.tap.verdict_a, 1), (dut.tap.desc_room_a, 1),
                       (dut.tap.track_sequence, 1), (dut.enable, 1), (dut.downstream_quiet, 1),
                       (dut.entries.ready, engine is None), (dut.tap.pop_a, 1)):
            ctx.set(sig, v)

        last_beat = {}          # low 16 bits of a sequence -> the cycle of its last beat
        was_holding = [0]

        async def step():
            now[0] += 1
            b = b_sched.get(now[0])
            ctx.set(dut.rx_b.valid, b is not None)
            ctx.set(dut.tap.busy_b, b is not None)
            if b is not None:
                for sig, v in zip((dut.rx_b.data, dut.rx_b.keep, dut.rx_b.first,
                                   dut.rx_b.last), b):
                    ctx.set(sig, v)
            if book_cycles is not None and due and due[0][0] <= now[0]:
                while due and due[0][0] <= now[0]:
                    seq = due.pop(0)[1]
                ctx.set(dut.ev_take, 1)
                ctx.set(dut.ev_seq, seq)
            addr = ctx.get(dut.loc.addr)
            take = False
            if engine is None:
                if ctx.get(dut.entries.valid):
                    entries.append(ctx.get(dut.entries.payload))
                if ctx.get(dut.fast.valid):
                    s = ctx.get(dut.fast.payload)
                    # (a strobe not taken is presented again while held: one record of it)
                    if not strobes or strobes[-1][1].sequence != s.sequence:
                        strobes.append((k, s))
            else:
                pop = False
                holding = ctx.get(dut.holding)
                if ctx.get(dut.entries.valid):
                    e = ctx.get(dut.entries.payload)
                    # (the producer takes the entry over the cycle after the decoder
                    # completes the message, 13 cycles after its last beat at the earliest)
                    pop = now[0] >= last_beat[e.seq] + 14
                    if pop:
                        entries.append((now[0], e, holding or was_holding[0]))
                was_holding[0] = holding
                ctx.set(dut.entries.ready, pop)
                if ctx.get(dut.fast.valid):
                    take = bool(ctx.get(dut.quiet)) and engine.random() < 0.8
                    strobes.append((now[0], ctx.get(dut.fast.payload), take))
            await ctx.tick()
            ctx.set(dut.took, take)
            ctx.set(dut.ev_take, 0)
            ctx.set(dut.refused, 0)
            # the locate map: locate k is slot k & 1, one cycle later
            ctx.set(dut.loc.valid, 1)
            ctx.set(dut.loc.slot, addr & 1)

        for k, (f, g) in enumerate(zip(frames, gaps)):
            cur, prev, exp = states[k]
            ctx.set(dut.tap.session, _sess(cur))
            ctx.set(dut.tap.prev_session, _sess(prev))
            ctx.set(dut.tap.have_session, cur is not None)
            ctx.set(dut.tap.have_prev, prev is not None)
            ctx.set(dut.tap.expected, exp)
            ctx.set(dut.tap.idle, g >= 12)
            ctx.set(dut.book_idle, g >= 12)
            done = starts[max(0, k - lag + 1)]
            if done and book_cycles is None:
                ctx.set(dut.ev_take, 1)
                ctx.set(dut.ev_seq, delivered[done - 1][0])
            if k in refuse_at:
                ctx.set(dut.refused, 1)
            if b_at and k in b_at:
                bf, ahead = b_at[k]
                ctx.set(dut.tap.idle, 0)
                ctx.set(dut.book_idle, 0)
                for b in _beats(bf):
                    b_sched[now[0] + 1] = b
                    await step()
                ctx.set(dut.tap.idle, g >= 12)
                ctx.set(dut.book_idle, g >= 12)
                ctx.set(dut.tap.expected, exp + ahead)
            for _ in range(g):
                await step()
            ctx.set(dut.tap.idle, 0)
            ctx.set(dut.book_idle, 0)
            for i, beat in enumerate(_beats(f)):
                for sig, v in zip((dut.rx.data, dut.rx.keep, dut.rx.first, dut.rx.last),
                                  beat):
                    ctx.set(sig, v)
                ctx.set(dut.rx.valid, 1)
                due.extend((now[0] + book_cycles, q) for b, q in ends[k]
                           if b == i and book_cycles is not None)
                last_beat.update((q & 0xFFFF, now[0] + 1) for b, q in ends[k] if b == i)
                await step()
                ctx.set(dut.rx.valid, 0)
        for _ in range(40):
            await step()

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(tb)
    sim.run()
    return entries, strobes, (delivered, starts)


def check(entries, strobes, delivered, starts):
    """Every entry is a delivered message's, in delivered order; every strobe is an entry's
    add or U, with the decoder's fields; a U's side and slot are its original order's, and
    the book finds that order. Returns the messages walked and the U strobes."""
    j = 0
    walked = []
    for e in entries:
        while j < len(delivered) and delivered[j][0] & 0xFFFF != e.seq:
            j += 1
        assert j < len(delivered), f"entry {e.seq}: no such message delivered after the last"
        walked.append(delivered[j])
        j += 1
    book, _ = replaces(delivered, lambda loc: loc & 1)
    made = {seq: k for k in range(len(starts)) for seq, _ in
            delivered[starts[k]:starts[k + 1] if k + 1 < len(starts) else len(delivered)]}
    adds = iter([(seq, msg) for seq, msg in walked if chr(msg[0]) in "AFU"])
    us = []
    for k, s in strobes:
        seq, msg = next((q, m) for q, m in adds if q == s.sequence)
        d = itch.decode(msg)
        assert s.price == d["price"] and s.timestamp == d["timestamp"]
        if chr(msg[0]) == "U":
            orig = book[seq]
            assert orig is not None, f"U {seq}: the book does not find its original"
            assert (s.side, s.slot) == orig[:2], (seq, s, orig)
            us.append((k, seq, made[orig[2]]))
        else:
            assert s.side == (0 if d["buy_sell_indicator"] == "B" else 1)
            assert s.slot == d["stock_locate"] & 1
    return walked, us


def _feed():
    frames, gaps, _, _ = impaired_case(44)
    rnd = random.Random(44)
    frames = [with_options(f, rnd.choice((0, 0, 1, 2, 5)), rnd.random() < 0.3)
              for f in frames[:300]]
    return frames, gaps[:300]


def _capture(n=700):
    """The bundled capture's first ``n`` frames (replaces, executions and deletes of orders
    it added), with tags and options mixed in, and random idle gaps."""
    rnd = random.Random(7)
    frames = [with_options(f, rnd.choice((0, 0, 1, 2, 5)), rnd.random() < 0.3)
              for f in frames_of(SAMPLE)[:n]]
    return frames, [rnd.choice((1, 3, 12, 30)) for _ in frames]


def test_port_walker_follows_the_reference_feed():
    frames, gaps = _feed()
    entries, strobes, (delivered, starts) = walk(frames, gaps)
    walked, us = check(entries, strobes, delivered, starts)
    assert len(entries) > len(delivered) // 3, (len(entries), len(delivered))
    assert len(strobes) > 20, len(strobes)
    # the engine took none here: the adds, replaces and trading states are hazards
    assert [e.hazard for e in entries] == [chr(m[0]) in "AFUH" for _, m in walked]


def test_port_walker_replaces_from_the_port():
    """On the capture, most replaces are presented from the port, each with its original
    order's side and slot."""
    frames, gaps = _capture()
    entries, strobes, (delivered, starts) = walk(frames, gaps)
    walked, us = check(entries, strobes, delivered, starts)
    n_u = sum(chr(m[0]) == "U" for _, m in walked)
    assert len(us) > n_u // 2, (len(us), n_u)


def replace_storm(seed, packets=260, *, names=("S1", "S2"), prices=(1, 10_000), head=(),
                  reuse=0.15, gaps=(1, 3, 20, 30)):
    """Two locates (``head``: messages ahead of the first packet's); adds mostly of new
    references, a share ``reuse`` of references used before (refused by the book while
    live); replaces, executions, cancels and deletes of recent references, live, partly
    executed, replaced, deleted or never added; over- and zero-share reductions. Returns
    (frames, idle gaps drawn from ``gaps``)."""
    rnd = random.Random(seed)
    seq, ts, frames = 1, 34_200_000_000_000, []
    used = [1]

    def fresh():
        if rnd.random() < reuse:
            return rnd.choice(used[-8:])
        used.append(used[-1] + 1)
        return used[-1]

    for n in range(packets):
        msgs = list(head) if n == 0 else []
        for _ in range(rnd.randint(1, 6)):
            ts += rnd.randint(1, 900)
            loc = rnd.choice((1, 2))
            ref = rnd.choice(used[-8:])
            t = rnd.choice("AAFUUUEECXXD")
            f = dict(stock_locate=loc, timestamp=ts)
            if t in "AF":
                f.update(order_reference_number=fresh(), buy_sell_indicator=rnd.choice("BS"),
                         shares=rnd.choice((0, 50, 100, 300)), stock=names[loc - 1],
                         price=rnd.randint(*prices), **({"attribution": "MPID"}
                                                          if t == "F" else {}))
            elif t == "U":
                f.update(original_order_reference_number=ref,
                         new_order_reference_number=fresh(),
                         shares=rnd.choice((0, 100, 200)), price=rnd.randint(*prices))
            elif t == "D":
                f.update(order_reference_number=ref)
            else:
                f.update(order_reference_number=ref)
                if t != "X":
                    f.update(match_number=rnd.randint(1, 1 << 40))
                f["canceled_shares" if t == "X" else "executed_shares"] = rnd.choice(
                    (0, 20, 50, 100, 400))
                if t == "C":
                    f.update(printable="Y", execution_price=rnd.randint(*prices))
            msgs.append(itch.encode(t, **f))
        frames.append(build_udp_frame(moldudp64.pack(b"SESSION001", seq, msgs)))
        seq += len(msgs)
    return frames, [rnd.choice(gaps) for _ in frames]


@pytest.mark.parametrize("orders", [16, 64])
def test_port_walker_replace_storm(orders):
    """Malformed replaces and reused references: a U presented from the port is always one
    the book finds, with its side and slot (the book's refusals of duplicate references are
    signalled as the gateware's builder counts them: when the book processes the add)."""
    frames, gaps = replace_storm(5)
    refuse = refusal_frames(frames)
    entries, strobes, (delivered, starts) = walk(frames, gaps, orders=orders, lag=1,
                                                 refuse_at=refuse)
    _, us = check(entries, strobes, delivered, starts)
    assert us


def test_port_walker_replace_cases():
    """One case per frame, the book one frame behind: exactly the replaces whose original
    the book finds are presented, each with the original's side and slot."""
    ts = [34_200_000_000_000]

    def m(t, loc, **f):
        ts[0] += 10
        if t in "AF":
            f.setdefault("stock", "S%d" % loc)
        return itch.encode(t, stock_locate=loc, timestamp=ts[0], **f)

    def add(ref, side, loc, shares=100):
        return m("A", loc, order_reference_number=ref, buy_sell_indicator=side,
                 shares=shares, price=5000)

    def u(orig, new, loc=1, shares=100):
        return m("U", loc, original_order_reference_number=orig,
                 new_order_reference_number=new, shares=shares, price=4000)

    cases = [
        [add(1, "B", 1)], [m("E", 1, order_reference_number=1, executed_shares=100)],
        [u(1, 2)],                                                  # executed in full: none
        [add(3, "S", 2)], [m("E", 2, order_reference_number=3, executed_shares=40)],
        [u(3, 4, 2)],                                               # partly: found (S, 0)
        # a refused duplicate: the book keeps the first (B, 1), which the replace in the
        # duplicate's frame removes (not presented: the table holds the duplicate, not yet
        # confirmed), so the next replace of the reference finds nothing
        [add(6, "B", 1)], [add(6, "S", 2), u(6, 11, 2)], [u(6, 12)],
        [add(7, "S", 1)], [u(7, 8)], [u(8, 9)],                     # a chain: found twice
        [add(10, "B", 2, shares=0)], [m("E", 2, order_reference_number=10, executed_shares=0)],
        [u(10, 13, 2)],                                             # gone: none
        [add(14, "B", 1)], [m("D", 1, order_reference_number=14)], [u(14, 15)],   # none
        [add(16, "S", 2)], [m("C", 2, order_reference_number=16, executed_shares=100,
                              printable="Y", execution_price=1)], [u(16, 17, 2)],   # none
        [add(18, "B", 1)], [u(18, 19)], [u(18, 20)],                # replaced already: once
        [add(21, "S", 1)], [m("X", 1, order_reference_number=21, canceled_shares=30)],
        [u(21, 22)],                                                # partly canceled: (S, 1)
        # an X ending in the beat of its reference, then an E of the rest: gone
        [add(23, "B", 1)], [m("X", 1, order_reference_number=23, canceled_shares=10),
                            m("E", 1, order_reference_number=23, executed_shares=90)],
        [u(23, 24)],
        # a replace whose shares end in its last beat (behind a D), then executed in full
        [add(25, "S", 1)], [m("D", 1, order_reference_number=999), u(25, 26, shares=200)],
        [m("E", 1, order_reference_number=26, executed_shares=200)], [u(26, 27)],
    ]
    frames, seq = [], 1
    for msgs in cases:
        frames.append(build_udp_frame(moldudp64.pack(b"SESSION001", seq, msgs)))
        seq += len(msgs)
    refuse = refusal_frames(frames)
    entries, strobes, (delivered, starts) = walk(frames, [30] * len(frames), lag=1, orders=64,
                                                 refuse_at=refuse)
    _, us = check(entries, strobes, delivered, starts)
    got = {q: (s.side, s.slot) for _, s in strobes
           for q in [s.sequence] if chr(dict(delivered)[q][0]) == "U"}
    u_seq = [q for q, msg in delivered if chr(msg[0]) == "U"]
    # (side 0 bid, 1 ask; slot: locate & 1)
    assert got == {u_seq[1]: (1, 0), u_seq[4]: (1, 1), u_seq[5]: (1, 1), u_seq[9]: (0, 1),
                   u_seq[11]: (1, 1), u_seq[13]: (1, 1)}, (got, u_seq)


@pytest.mark.parametrize("ahead", [0, 1])
def test_port_walker_line_b_suspends_the_table(ahead):
    """A packet on line B that the walker cannot clear unsyncs it (here B's packet 3 arrives
    before line A's packet 4); at the resync its table is kept when the tracker delivered
    nothing it did not see (with a line B copy of packet 2 it stays synced: the replace after
    it is presented), and wiped when it did (message 3 from line B, which could have deleted
    the order: not presented)."""
    def m(t, **f):
        return itch.encode(t, stock_locate=1, timestamp=34_200_000_000_000, **f)
    msgs = [[m("A", order_reference_number=1, buy_sell_indicator="S", shares=100,
               stock="S1", price=5000)], [m("D", order_reference_number=7)],
            [m("U", original_order_reference_number=1, new_order_reference_number=2,
               shares=100, price=4000)]]
    # (ahead: the tracker took message 3 from line B, line A's next packet is message 4)
    frames = [build_udp_frame(moldudp64.pack(b"SESSION001", seq, ms))
              for seq, ms in zip((1, 2, 3 + ahead), msgs)]
    b = frames[1] if ahead == 0 else build_udp_frame(moldudp64.pack(
        b"SESSION001", 3, [m("D", order_reference_number=1)]))
    entries, strobes, (delivered, starts) = walk(frames, [100, 30, 30], orders=64, lag=1,
                                                 b_at={2: (b, ahead)})
    _, us = check(entries, strobes, delivered, starts)
    assert len(us) == (1 if ahead == 0 else 0), us


@pytest.mark.parametrize("words,vlan", [(0, True), (1, False), (2, True), (5, False)])
def test_port_walker_short_packet_late_header(words, vlan):
    """The shortest packet the walker follows, one 12-byte message, with its UDP payload at
    lane 6 (a VLAN tag or IPv4 options): the message ends 4 beats after the UDP length, and
    the payload's end is in registers by then, so the walker counts it and follows the next
    packet 3 cycles later (too soon to resync): its add is presented."""
    ts = 34_200_000_000_000
    msgs = [[itch.encode("S", stock_locate=0, timestamp=ts, event_code="Q")],
            [itch.encode("A", stock_locate=1, timestamp=ts, order_reference_number=5,
                         buy_sell_indicator="B", shares=100, stock="S1", price=5000)]]
    frames = [with_options(build_udp_frame(moldudp64.pack(b"SESSION001", seq, ms)), words,
                           vlan) for seq, ms in ((1, msgs[0]), (2, msgs[1]))]
    entries, strobes, (delivered, starts) = walk(frames, [100, 3])
    check(entries, strobes, delivered, starts)
    assert len(strobes) == 1


@pytest.mark.parametrize("delay", [3, 17, 150])
def test_port_walker_follows_line_b_copies(delay):
    """Line B carrying a copy of every packet (VLAN tags and IP options mixed in), its first
    beat ``delay`` cycles after line A's (within the packet's header, mid-packet, or frames
    later): every B packet is a duplicate of what A delivered, so the walker stays synced and
    presents exactly what it presents without line B."""
    frames, gaps = _capture(250)
    # (from the end of the session's opening heartbeats; the walker syncs while both lines
    # are idle, and with B close behind it could not sync again)
    frames, gaps = frames[7:], [100] + gaps[8:]
    base = walk(frames, gaps)
    with_b = walk(frames, gaps, b_delay=delay)
    assert len(base[1]) > 20
    assert with_b[0] == base[0] and with_b[1] == base[1]


def test_port_walker_line_b_ahead():
    """Line B two cycles ahead of line A: each of its packets reaches the walker first and
    may be the one the tracker delivers, so no packet of line A is followed."""
    frames, gaps = _capture(120)
    gaps[0] = 100
    assert len(walk(frames, gaps)[1]) > 5
    entries, strobes, _ = walk(frames, gaps, b_delay=-2)
    assert entries == [] and strobes == []


def test_port_walker_order_table_small_and_refusals():
    """A 16-entry table (references share entries) and refusals: a U still finds only what
    the book finds, and never an order stored before the last refusal."""
    frames, gaps = _capture(400)
    refuse = set(range(20, 400, 37))
    entries, strobes, (delivered, starts) = walk(frames, gaps, orders=16, refuse_at=refuse,
                                                 lag=1)
    _, us = check(entries, strobes, delivered, starts)
    assert us
    for k, seq, k_made in us:
        last = max((r for r in refuse if r <= k), default=-1)
        assert k_made >= last, (seq, k, k_made, last)


def test_port_walker_holds_a_strobe_not_taken():
    """A strobe the engine does not take is presented again (held) while its entry waits, and
    one taken late is the entry's *taken*: every add and replace is evaluated at most
    once, in message order, never while an older hazard is in flight, and each entry says
    whether its message was evaluated."""
    frames, gaps = _capture(300)
    entries, strobes, (delivered, starts) = walk(frames, gaps, engine=random.Random(3))
    taken = [(t, s.sequence) for t, s, took in strobes if took]
    seqs = [q for _, q in taken]
    assert seqs == sorted(set(seqs)), "a message evaluated twice or out of order"
    late = 0
    evaluated = {q & 0xFFFF for q in seqs}
    popped_at = {}
    for t, e, holding in entries:
        assert not (e.held and holding), f"entry {e.seq} taken over while still held"
        done = e.taken
        assert done == (e.seq in evaluated), e.seq
        late += e.held and e.taken
        if e.hazard:
            popped_at[e.seq] = t
    assert late > 10, late
    # an evaluation never overtakes an older hazard still in the walker's queue
    for t, q in taken:
        older = [s for s, tp in popped_at.items() if s < (q & 0xFFFF) and tp >= t]
        assert not older, (q, older)
    assert len(taken) > 40, len(taken)
