"""The host's side of the book mover's ring (hw/board/book_ring.py) without a board: the
offsets and their wrap, the rows decoded out of a ring image, and the XRT ring reader's
register protocol against the register file's model of MOVER_MAP."""

import random

import numpy as np
import pytest
from amaranth.lib import data

from tickwire.hw.board.book_ring import (BEAT_BYTES, MOVER_MAP, RingError, check_ring,
                                         ring_segments, slot_bytes, take_rows)
from tickwire.hw.board.wrapper import book_beats
from tickwire.hw.book.layouts import book_update_layout
from tickwire.sim.kernel_top import book_rows

DEPTH = 10


def test_geometry_and_segments():
    rb = book_beats(DEPTH)
    assert slot_bytes(rb) == 256 >= rb * BEAT_BYTES and slot_bytes(16) == 256
    with pytest.raises(RingError):
        slot_bytes(257)
    check_ring(0x1000, 4 * 256, 256)
    for base, size in ((0x1080, 1024), (0, 256), (0, 1000)):
        with pytest.raises(RingError):
            check_ring(base, size, 256)
    assert ring_segments(512, 512, 1024, 256) == []
    assert ring_segments(256, 768, 1024, 256) == [(256, 512)]
    assert ring_segments(768, 256, 1024, 256) == [(768, 256), (0, 256)]
    assert ring_segments(768, 0, 1024, 256) == [(768, 256)]
    for rd, wr in ((1024, 0), (0, 100)):
        with pytest.raises(RingError):
            ring_segments(rd, wr, 1024, 256)


def packets(n, seed=3):
    rng = random.Random(seed)
    bits = data.Layout.cast(book_update_layout(DEPTH)).size
    return [rng.getrandbits(bits).to_bytes(book_beats(DEPTH) * BEAT_BYTES, "little")
            for _ in range(n)]


def test_take_rows_wraps_and_decodes_like_the_stream():
    """Rows written slot after slot around a 5-slot ring, read in two takes (the second
    wrapping): the rows the m_axis_book decoder gives for the packets, in order."""
    rb = book_beats(DEPTH)
    slot, slots = slot_bytes(rb), 5
    ring = bytearray(b"\xee" * slot * slots)        # slot padding is never read
    sent = packets(7)
    for k, p in enumerate(sent):
        ring[(k % slots) * slot:(k % slots) * slot + len(p)] = p

    def read(off, n):
        return ring[off:off + n]
    # rows 0..2 were read before rows 5, 6 overwrote slots 0, 1: read 3, 4, 5, 6
    rows, rd = take_rows(read, 3 * slot, 2 * slot, slots * slot, rb, DEPTH)
    want = book_rows(sent[3:], DEPTH)
    assert rd == 2 * slot
    for a, b in zip(rows, want):
        assert np.array_equal(a, b)
    rows, rd = take_rows(read, rd, rd, slots * slot, rb, DEPTH)
    assert len(rows[0]) == 0 and rd == 2 * slot
    ring[3 * slot + rb * BEAT_BYTES - 1] = 0xFF             # padding above the row's bits
    with pytest.raises(ValueError):
        take_rows(read, 3 * slot, 4 * slot, slots * slot, rb, DEPTH)


class _Bo:
    def __init__(self, ring, address):
        self.ring, self.addr = ring, address

    def address(self):
        return self.addr


def test_xrt_ring_reader_register_protocol():
    """XrtBookRing.start programs base, size, read offset and enable; read() takes the rows
    up to WR_OFFSET and writes RD_OFFSET; a latched error is an exception."""
    from tickwire.backends.board import DeployError, XrtBookRing
    from tickwire.host.driver import FakeBus
    rb = book_beats(DEPTH)
    slot = slot_bytes(rb)
    bus = FakeBus(MOVER_MAP)
    bus.inputs.update(geometry_row_beats=rb, geometry_slot_log2=slot.bit_length() - 1)
    ring = bytearray(4 * slot)
    sent = packets(3, seed=9)
    for k, p in enumerate(sent):
        ring[k * slot:k * slot + len(p)] = p

    class Reader(XrtBookRing):
        def _read(self, off, n):
            return bytes(self.bo.ring[off:off + n])

    r = Reader(bus, _Bo(ring, 0x2_0000_1000), len(ring), DEPTH)
    with pytest.raises(DeployError):            # STATUS.running never comes up
        r.start()
    bus.inputs["status_running"] = 1
    r.start()
    out = bus.outputs()
    assert (out["ring_base"], out["ring_size"], out["rd_offset"], out["control"]) == \
        (0x2_0000_1000, len(ring), 0, 1)
    bus.inputs["wr_offset"] = 3 * slot
    rows = r.read()
    assert np.array_equal(rows[0], book_rows(sent, DEPTH)[0]) and \
        bus.outputs()["rd_offset"] == 3 * slot
    bus.inputs["status_error"] = 1
    with pytest.raises(RuntimeError):
        r.read()


def test_pynq_book_rows_from_a_simple_mode_dma():
    """The PYNQ book reader: one S2MM transfer per row into a DMA buffer, rows decoded as the
    gateware lays them out; a channel that stays busy ends the read with the rows so far."""
    import numpy as np

    from tickwire.backends.board import pynq_book_rows
    from tickwire.spec.streams import BOOK_BEAT, book_beats

    depth = 2
    size = book_beats(depth) * BOOK_BEAT // 8

    def row(seq):
        word = seq | (1000 + seq) << 64 | 3 << 112 | (seq * 10) << 120
        return np.frombuffer(word.to_bytes(size, "little"), np.uint8)

    class Channel:
        def __init__(self, rows):
            self.rows, self.idle = list(rows), True

        def transfer(self, buf):
            if self.rows:
                buf[:] = self.rows.pop(0)
                self.idle = True
            else:
                self.idle = False        # no row came: the transfer stays pending

    class Dma:
        def __init__(self, rows):
            self.recvchannel = Channel(rows)

    alloc = lambda shape, dtype: np.zeros(shape, dtype)  # noqa: E731
    seq, ts, slot, body = pynq_book_rows(Dma([row(1), row(2), row(3)]), depth, 3,
                                         allocate=alloc)
    assert list(seq) == [1, 2, 3] and list(ts) == [1001, 1002, 1003] and set(slot) == {3}
    assert [int(b[0][0]) for b in body] == [10, 20, 30]
    seq, *_ = pynq_book_rows(Dma([row(7)]), depth, 5, allocate=alloc, timeout=0.01)
    assert list(seq) == [7]
