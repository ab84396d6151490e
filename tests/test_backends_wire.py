"""The wire helpers of the device interface, against cases worked out by hand: MAC beats and
back, poll points, and the latency report's arithmetic (``tickwire latency``)."""

import numpy as np
import pytest

from tickwire.backends.base import Pacing
from tickwire.backends.wire import (beats, field_end, gather_frames, message_positions,
                                    mold_counts, poll_points, trigger_latencies)
from tickwire.host import itch, moldudp64
from tickwire.host.framing import build_udp_frame


def add(ref, price):
    return itch.encode("A", stock_locate=1, order_reference_number=ref, buy_sell_indicator="B",
                       shares=100, stock="AAPL", price=price)


def test_beats_round_trip_and_layout():
    frames = [bytes(range(60)), bytes(range(100, 117))]
    raw = np.frombuffer(beats(frames, gaps=[5, 0]), np.uint8).reshape(-1, 14)
    assert len(raw) == 8 + 3                       # 60 bytes: 8 beats; 17 bytes: 3 beats
    assert raw[0, :4].view("<u4")[0] == 5 and raw[1, :4].view("<u4")[0] == 0
    assert raw[7, 12] == 0x0F and raw[7, 13] == 2  # 60 = 7*8 + 4: keep 4 lanes, last
    assert raw[0, 13] == 1 and raw[8, 13] == 1     # first flags
    assert bytes(raw[8, 4:12]) == bytes(range(100, 108))
    # the records are exactly what an order stream carries: gather them back
    rec = np.zeros(len(raw), np.dtype([("cycle", "<u8"), ("payload", np.uint8, (10,))]))
    rec["cycle"] = np.arange(len(raw))
    rec["payload"] = raw[:, 4:]
    got, firsts, lasts = gather_frames(rec)
    assert got == frames and firsts == [0, 8] and lasts == [7, 10]


def test_poll_points_count_announced_messages():
    p = [build_udp_frame(moldudp64.pack("S", 1 + 3 * i, [add(i * 3 + k, 100) for k in range(3)]))
         for i in range(5)]
    hb = build_udp_frame(moldudp64.pack("S", 16, []))
    frames = [p[0], hb, p[1], p[2], p[3], hb, p[4]]
    assert mold_counts(frames).tolist() == [3, 0, 3, 3, 3, 0, 3]
    # 5 messages a poll: after frame 2 (6 announced), after frame 4 (6 more), then the end
    assert poll_points(frames, 5) == [3, 5, 7]
    assert poll_points(frames, 100) == [7]


def test_latencies_by_hand():
    """Frame 0 holds two adds; the second's price ends at byte 62 + (2 + 36) + 2 + 35 = 137
    of the frame, beat 17. Frame 1 (one add) starts at cycle 500: its price ends at byte
    62 + 2 + 35 = 99, beat 12."""
    f0 = build_udp_frame(moldudp64.pack("S", 10, [add(1, 100), add(2, 200)]))
    f1 = build_udp_frame(moldudp64.pack("S", 12, [add(3, 300)]))
    price_end = field_end(ord("A"), 36)
    assert price_end == 35
    where = message_positions([f0, f1])
    assert where == {10: (0, (62 + 2 + 35) // 8), 11: (0, (62 + 38 + 2 + 35) // 8),
                     12: (1, (62 + 2 + 35) // 8)}
    assert where[11][1] == 17 and where[12][1] == 12
    input_times = [100, 500]
    # orders on messages 11 and 12, their first bytes out at cycles 140 and 520
    frm, fld = trigger_latencies([f0, f1], [11, 12], [140, 520], input_times)
    assert frm == [40, 20]                   # 140 - 100, 520 - 500
    assert fld == [40 - 17, 20 - 12]         # from the beat holding the price's last byte
    # a message the capture does not carry
    assert trigger_latencies([f0, f1], [99], [600], input_times) == ([-1], [-1])


def test_truncated_copy_delivers_what_it_completed():
    f = build_udp_frame(moldudp64.pack("S", 1, [add(1, 100), add(2, 100)]))
    # cut inside the second add: the first is delivered by the cut frame, the second by the
    # next copy
    cut = f[:len(f) - 4]
    assert message_positions([cut, f]) == {1: (0, (62 + 2 + 35) // 8),
                                           2: (1, (62 + 38 + 2 + 35) // 8)}


def test_pacing_by_hand():
    lens = [64, 64, 64]                      # 8 beats each
    assert Pacing().gaps(lens) == [3, 3, 3]
    # 10 M frames/s at 322.265625 MHz: the first frame after the usual gap, then one every
    # 32.2 cycles from its start (an open-loop schedule), minus its 8 beats
    assert Pacing("rate", frames_per_second=10e6).gaps(lens) == [3, 24, 24]
    # capture spacing: 0, 100 ns, 1000 ns at the same clock: due 32 and 322 cycles after the
    # first frame's start, each gap less the previous frame's 8 beats
    g = Pacing("timestamps").gaps(lens, [0, 100, 1000])
    assert g == [3, 32 - 8, 322 - (32 + 8)]


def test_book_row_facts_match_the_gateware_layout():
    """spec/streams.py's book row (what the board hosts decode without Amaranth) is the
    gateware's ``book_update_layout``, and a row packet round-trips through the decoder."""
    import numpy as np
    from amaranth.lib import data

    from tickwire.backends.wire import book_packet_rows
    from tickwire.hw.book.layouts import book_update_layout
    from tickwire.spec.streams import BOOK_BEAT, book_beats, book_row_bits
    for depth in (1, 5, 10):
        assert book_row_bits(depth) == data.Layout.cast(book_update_layout(depth)).size
    depth = 2
    levels = [[11, 12, 13, 14], [21, 22, 23, 24]]
    word = 7 | (123456 << 64) | (5 << 112)
    for k, lv in enumerate(levels):
        for j, v in enumerate(lv):
            word |= v << (120 + 128 * k + 32 * j)
    packet = word.to_bytes(book_beats(depth) * BOOK_BEAT // 8, "little")
    seq, ts, slot, body = book_packet_rows([packet], depth)
    assert (seq[0], ts[0], slot[0]) == (7, 123456, 5)
    assert np.array_equal(body[0], np.array(levels, np.uint32))
    with pytest.raises(ValueError, match="packet 0: padding"):
        book_packet_rows([(word | 1 << (book_row_bits(depth) + 1)).to_bytes(len(packet),
                                                                             "little")], depth)
    with pytest.raises(ValueError, match="packet 1: 3 bytes"):
        book_packet_rows([packet, b"abc"], depth)
