"""cocotb bench of the book mover (module ``tickwire_book_mover``).

The HBM is cocotbext-axi's ``AxiRam`` on ``m_axi_gmem`` with random pauses on AW, W and B
(latency, back-pressure); every beat it takes is recorded, and writes into ``error`` (a byte
range, set by a test) answer SLVERR. The host is the register driver of ``MOVER_MAP`` on
``s_axi_control`` and reads the ring with :func:`~tickwire.hw.board.book_ring.take_rows`, the
function a board's host uses. Rows are random book rows (zero padding above the row's bits)
sent on ``s_axis_book`` with random gaps inside and between them.

Scenario from the environment: ``TW_SEED``, ``TW_ROWS`` (rows sent), ``TW_SLOTS`` (ring
slots). The tests (one per ``testcase``) assert themselves.
"""

from __future__ import annotations

import logging
import os
import random

import cocotb
import numpy as np
from amaranth.lib import data

from tickwire.hw.book.layouts import book_update_layout

from tickwire.hw.board.book_ring import (BEAT_BYTES, MOVER_ID, MOVER_MAP, slot_bytes,
                                         take_rows)
from tickwire.host.driver import AsyncDriver
from tickwire.sim.appliance.appliance_tb import AxiLiteHostBus
from tickwire.sim.book_mover import DEPTH, row_beats
from tickwire.sim.runner import TB

#: a 64-bit, slot-aligned ring address (above 4 GiB: the base's high word is used)
BASE = 0x3_8000_4000


def _pauses(rng: random.Random, p: float):
    while True:
        yield rng.random() < p


class MoverTB(TB):
    def __init__(self, dut, seed: int):
        from cocotbext.axi import AxiBus, AxiRam, AxiStreamBus, AxiStreamSource
        super().__init__(dut, clock="ap_clk", reset="ap_rst_n", reset_level=0)
        self.rng = rng = random.Random(seed)
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi_gmem"), self.clk, self.rst,
                          reset_active_level=False, size=1 << 36)
        for ch, p in (("aw_channel", 0.3), ("w_channel", 0.3), ("b_channel", 0.5)):
            getattr(self.ram.write_if, ch).set_pause_generator(_pauses(rng, p))
        self.beats: list[int] = []          # address of every beat the RAM took
        self.error: tuple[int, int] | None = None
        ram_write = self.ram.write_if._write

        async def write(address, data):
            self.beats.append(address)
            if self.error and self.error[0] <= address < self.error[1]:
                raise IOError("the test's error window")      # -> SLVERR
            await ram_write(address, data)

        self.ram.write_if._write = write
        self.src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_book"), self.clk,
                                   self.rst, reset_active_level=False)
        self.src.set_pause_generator(_pauses(rng, 0.3))
        self.bus = AxiLiteHostBus(dut, "s_axi_control", "ap_clk", "ap_rst_n",
                                  reset_active_level=False)
        self.drv = AsyncDriver(self.bus, MOVER_MAP)
        for name in ("s_axi_control", "m_axi_gmem", "s_axis_book"):
            logging.getLogger(f"cocotb.{dut._name}.{name}").setLevel(logging.WARNING)
        self.rb = row_beats()
        self.slot = slot_bytes(self.rb)
        self.bits = data.Layout.cast(book_update_layout(DEPTH)).size
        self.rd = 0
        self.size = 0

    def rows(self, n: int) -> list[bytes]:
        return [self.rng.getrandbits(self.bits).to_bytes(self.rb * BEAT_BYTES, "little")
                for _ in range(n)]

    async def send(self, rows: list[bytes]) -> None:
        from cocotbext.axi import AxiStreamFrame
        for r in rows:
            await self.src.send(AxiStreamFrame(r))

    async def start(self, slots: int, base: int = BASE) -> None:
        d = self.drv
        await d.write("CONTROL", enable=0)
        while (await d.read("STATUS")).busy:
            await self.cycles(10)
        self.size, self.rd = slots * self.slot, 0
        await d.write_raw("RING_BASE", base)
        await d.write_raw("RING_SIZE", self.size)
        await d.write_raw("RD_OFFSET", 0)
        await d.write("CONTROL", enable=1)
        st = await d.read("STATUS")
        assert st.running and not st.bad_config and not st.error, st

    async def take(self):
        """The host's read of the ring: rows up to WR_OFFSET, then RD_OFFSET moved on."""
        wr = await self.drv.read_raw("WR_OFFSET")
        rows, self.rd = take_rows(lambda off, n: self.ram.read(BASE + off, n), self.rd, wr,
                                  self.size, self.rb, DEPTH)
        await self.drv.write_raw("RD_OFFSET", self.rd)
        return rows

    async def idle(self) -> None:
        await self.src.wait()
        while (await self.drv.read("STATUS")).busy:
            await self.cycles(5)


def cat(parts):
    """Decoded row sets concatenated field by field."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return None
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(4))


def same(got, sent: list[bytes]):
    from tickwire.sim.kernel_top import book_rows
    want = book_rows(sent, DEPTH)
    assert got is not None and len(got[0]) == len(sent), \
        f"{0 if got is None else len(got[0])} rows read, {len(sent)} sent"
    for name, a, b in zip(("sequence", "timestamp", "slot", "levels"), got, want):
        assert np.array_equal(a, b), f"{name} differs"


async def setup(dut) -> MoverTB:
    tb = MoverTB(dut, int(os.environ.get("TW_SEED", "1")))
    await tb.reset()
    d = tb.drv
    assert await d.read_raw("ID") == MOVER_ID and await d.read_raw("MAP_HASH") == MOVER_MAP.hash
    g = await d.read("GEOMETRY")
    assert g.row_beats == tb.rb and 1 << g.slot_log2 == tb.slot
    return tb


@cocotb.test(timeout_time=2, timeout_unit="ms")     # a guard against a hang, not a check
async def rows_in_order_and_wrap(dut):
    """Rows sent before the start are discarded and counted; then many rows through a small
    ring read by a host at random moments: every row in order, each at its slot's address,
    the offsets wrapping; a refused configuration first."""
    tb = await setup(dut)
    d = tb.drv
    early = tb.rows(3)
    await tb.send(early)
    await tb.idle()
    assert await d.read_raw("ROWS_DISCARDED") == 3 and not tb.beats
    # a ring that is not a whole number of slots is refused
    await d.write_raw("RING_SIZE", 5 * tb.slot + 16)
    await d.write("CONTROL", enable=1)
    assert (await d.read("STATUS")).bad_config and not (await d.read("STATUS")).running
    slots = int(os.environ.get("TW_SLOTS", "5"))
    n = int(os.environ.get("TW_ROWS", "40"))
    await tb.start(slots)
    sent = tb.rows(n)
    sender = cocotb.start_soon(tb.send(sent))
    got = []
    while sum(len(g[0]) for g in got) < n:
        await tb.cycles(tb.rng.randrange(20, 400))
        got.append(await tb.take())
    await sender
    same(cat(got), sent)
    # each row's burst went to its slot: row k at k * slot mod size, beats in order
    want = [BASE + (k % slots) * tb.slot + BEAT_BYTES * j for k in range(n)
            for j in range(tb.rb)]
    assert tb.beats == want
    assert await d.read_raw("ROWS_WRITTEN") == n
    assert await d.read_raw("WR_OFFSET") == (n % slots) * tb.slot == tb.rd
    st = await d.read("STATUS")
    assert not st.error and not st.misframed and await d.read_raw("WRITE_ERRORS") == 0


@cocotb.test(timeout_time=2, timeout_unit="ms")     # a guard against a hang, not a check
async def full_ring_holds_back(dut):
    """A host that reads nothing: the ring fills (one slot free), the mover stops taking the
    stream and counts the cycles; nothing is overwritten; once the host reads and hands the
    slots back, the rest arrives, in order."""
    tb = await setup(dut)
    d = tb.drv
    slots = 4
    await tb.start(slots)
    sent = tb.rows(slots - 1 + 5)
    sender = cocotb.start_soon(tb.send(sent))
    await tb.cycles(3000)
    st = await d.read("STATUS")
    assert st.full and not tb.src.idle()             # the rest waits in the source
    held = await d.read_raw("HELD_BACK")
    await tb.cycles(500)
    assert await d.read_raw("HELD_BACK") >= held + 500 > 500
    assert await d.read_raw("ROWS_WRITTEN") == slots - 1
    assert len(tb.beats) == (slots - 1) * tb.rb            # no write into the free slot
    first = await tb.take()
    same(first, sent[:slots - 1])
    got = [first]
    while sum(len(g[0]) for g in got) < len(sent):
        await tb.cycles(200)
        got.append(await tb.take())
    await sender
    same(cat(got), sent)
    assert tb.src.idle()


@cocotb.test(timeout_time=2, timeout_unit="ms")     # a guard against a hang, not a check
async def error_response_stops_and_is_counted(dut):
    """SLVERR on the fourth row's slot: three rows published, the error counted and latched,
    the mover stopped (later rows discarded, WR_OFFSET kept); a restart runs again."""
    tb = await setup(dut)
    d = tb.drv
    await tb.start(8)
    tb.error = (BASE + 3 * tb.slot, BASE + 4 * tb.slot)
    sent = tb.rows(6)
    await tb.send(sent)
    await tb.idle()
    st = await d.read("STATUS")
    assert st.error and not st.running
    assert await d.read_raw("WRITE_ERRORS") == 1
    assert await d.read_raw("WR_OFFSET") == 3 * tb.slot
    assert await d.read_raw("ROWS_WRITTEN") == 3
    written_late = len(tb.beats) // tb.rb - 4               # rows in flight behind the error
    assert await d.read_raw("ROWS_DISCARDED") == 6 - 4 - written_late
    same(await tb.take(), sent[:3])
    # enable stays 1 after the error: nothing restarts until the host writes 0, then 1
    await tb.cycles(50)
    assert not (await d.read("STATUS")).running
    tb.error = None
    await tb.start(8)
    assert not (await d.read("STATUS")).error
    again = tb.rows(4)
    await tb.send(again)
    await tb.idle()
    same(await tb.take(), again)
    assert await d.read_raw("WRITE_ERRORS") == 1
