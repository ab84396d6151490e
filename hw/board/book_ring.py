"""The book-row ring in device memory: the mover's registers and the host's side of the ring.

On an Alveo card the ``m_axis_book`` rows go to a ring buffer in device memory (HBM) through
the book mover (:mod:`.mover`, kernel ``tickwire_book_mover``); the host reads rows out of it
and hands the slots back. This module is plain Python (no Amaranth), so the host uses it on a
board as the gateware does in the build:

* :data:`MOVER_MAP`, the mover's registers, described once: the gateware's AXI4-Lite register
  file is :class:`tickwire.hw.regmap.axil.RegisterFile` of it, the host reads and writes them
  through :class:`tickwire.host.driver.Driver` of it;
* the ring arithmetic (:func:`slot_bytes`, :func:`ring_segments`, :func:`check_ring`) and
  :func:`take_rows`, which decodes the rows between the read and the write offset with the
  ``m_axis_book`` decoder (:func:`tickwire.backends.wire.book_packet_rows`).

The ring: ``RING_SIZE`` bytes at ``RING_BASE``, in slots of :func:`slot_bytes` (the row's
beats rounded up to a power of two, so a row is one burst that never crosses a 4 KiB
boundary); row *k* after a start lands at offset ``k * slot mod size``. ``WR_OFFSET`` moves on
by a slot once a row's write responses came back OKAY; the host moves ``RD_OFFSET`` on once it
has read rows. Equal offsets mean empty; one slot always stays free, so the ring holds
``size / slot - 1`` rows, and the mover never writes into a slot the host has not handed back.
"""

from __future__ import annotations

from tickwire.spec.regmap import Block, Field, Register, RegisterMap
from tickwire.spec.streams import BOOK_BEAT

__all__ = ["MOVER_MAP", "MOVER_ID", "MOVER_KERNEL", "MOVER_VLNV", "BEAT_BYTES", "slot_bytes",
           "check_ring", "ring_segments", "take_rows", "RingError"]

#: the mover kernel's (and IP's) name, and its VLNV
MOVER_KERNEL = "tickwire_book_mover"
MOVER_VLNV = f"tickwire.dev:tickwire:{MOVER_KERNEL}:1.0"
#: ID register: "TWBM" (most significant byte first)
MOVER_ID = int.from_bytes(b"TWBM", "big")
#: bytes of one ``m_axis_book`` beat and of one AXI write beat (128 bits)
BEAT_BYTES = BOOK_BEAT // 8


def _r(name, offset, doc, *fields):
    return Register(name, offset, fields, doc)


#: name, offset, fields (access, width), what it is: the one description of the registers.
MOVER_MAP = RegisterMap("tickwire_book_mover", [Block("mover", 0, [
    _r("ID", 0x00, "reads \"TWBM\": the book mover's register map",
       Field("id", 32, "ro", reset=MOVER_ID, hw="const")),
    _r("MAP_HASH", 0x04, "hash of this map's layout (the host refuses another)",
       Field("hash", 32, "ro", hw="hash")),
    _r("CONTROL", 0x08, "enable: 1 runs the ring; a 0 -> running start (once no write is in "
       "flight) restarts it empty at offset 0, with RING_BASE/RING_SIZE taken then",
       Field("enable", 1, "rw")),
    _r("STATUS", 0x0C, "running: rows go to the ring (else they are taken and discarded); "
       "error: a write response was not OKAY (the mover stopped; cleared by a restart); "
       "busy: writes in flight; full: a row waits for a free slot; bad_config: the last start "
       "was refused (RING_SIZE not a multiple of the slot or under two slots, RING_BASE not "
       "slot aligned); misframed: a row's tlast was not on its last beat",
       Field("running", 1, "ro"), Field("error", 1, "ro"), Field("busy", 1, "ro"),
       Field("full", 1, "ro"), Field("bad_config", 1, "ro"), Field("misframed", 1, "ro")),
    _r("GEOMETRY", 0x10, "row_beats: 128-bit beats of a row; slot_log2: a ring slot is "
       "2**slot_log2 bytes",
       Field("row_beats", 8, "ro"), Field("slot_log2", 5, "ro", offset=8)),
    _r("RING_BASE", 0x18, "device address of the ring (slot aligned)",
       Field("base", 64, "rw")),
    _r("RING_SIZE", 0x20, "bytes of the ring (a multiple of the slot, at least two slots)",
       Field("size", 32, "rw")),
    _r("RD_OFFSET", 0x24, "written by the host: offset of the first slot it has not read",
       Field("rd", 32, "rw")),
    _r("WR_OFFSET", 0x28, "offset after the last row whose write came back OKAY (wraps)",
       Field("wr", 32, "ro")),
    _r("WRITE_ERRORS", 0x2C, "write responses that were not OKAY",
       Field("errors", 32, "ro")),
    _r("ROWS_WRITTEN", 0x30, "rows written to the ring (responses OKAY), since reset",
       Field("rows", 64, "ro")),
    _r("HELD_BACK", 0x38, "cycles a row waited because the ring was full, since reset",
       Field("cycles", 64, "ro")),
    _r("ROWS_DISCARDED", 0x40, "rows taken while not running (the book path never waits "
       "for a host that has not started the ring), since reset",
       Field("rows", 64, "ro")),
])], addr_width=12, version=(1, 0), map_id=MOVER_ID)


class RingError(ValueError):
    """Offsets or a geometry that no ring of the mover can have."""


def slot_bytes(row_beats: int) -> int:
    """Bytes of a ring slot: a row's beats rounded up to a power of two (at most 4 KiB, so
    a row's single burst never crosses a 4 KiB boundary)."""
    n = row_beats * BEAT_BYTES
    s = 1 << (n - 1).bit_length()
    if not 1 <= row_beats <= 256 or s > 4096:
        raise RingError(f"{row_beats} beats a row: a slot must hold one burst within 4 KiB")
    return s


def check_ring(base: int, size: int, slot: int) -> None:
    """What the mover refuses at start (STATUS.bad_config), as an error on the host."""
    if size % slot or size < 2 * slot or size >> 32:
        raise RingError(f"ring of {size} bytes: a multiple of the {slot}-byte slot, at least "
                        "two slots, under 4 GiB")
    if base % slot:
        raise RingError(f"ring base 0x{base:x} is not {slot}-byte aligned")


def ring_segments(rd: int, wr: int, size: int, slot: int) -> list[tuple[int, int]]:
    """(offset, bytes) of the ring holding the rows from ``rd`` up to ``wr``, in order: one
    segment, or two when the rows wrap past the end."""
    for name, v in (("read", rd), ("write", wr)):
        if not 0 <= v < size or v % slot:
            raise RingError(f"{name} offset {v}: not a slot of a {size}-byte ring")
    if wr >= rd:
        return [(rd, wr - rd)] if wr > rd else []
    return [(rd, size - rd)] + ([(0, wr)] if wr else [])


def take_rows(read, rd: int, wr: int, size: int, row_beats: int, depth: int):
    """The rows from offset ``rd`` to ``wr``, decoded, and the new read offset (``wr``).

    ``read(offset, nbytes)`` returns ring bytes (on a board: a synced buffer object). Each
    slot holds one ``m_axis_book`` packet in its first ``row_beats`` beats; the packets are
    decoded by :func:`tickwire.backends.wire.book_packet_rows` (``(sequence, timestamp, slot,
    levels)``), which also refuses a packet whose padding is not zero."""
    from tickwire.backends.wire import book_packet_rows
    slot = slot_bytes(row_beats)
    row = row_beats * BEAT_BYTES
    packets = []
    for off, n in ring_segments(rd, wr, size, slot):
        buf = bytes(read(off, n))
        if len(buf) != n:
            raise RingError(f"ring read at {off}: {len(buf)} bytes, wanted {n}")
        packets += [buf[k:k + row] for k in range(0, n, slot)]
    return book_packet_rows(packets, depth), wr
