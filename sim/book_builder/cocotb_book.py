"""cocotb bench of the book builder (Verilator): messages in, top-N rows out, vs the emulator.

The case — decoded messages, host names or auto mode, the emulator's rows, counters and slot
states, and the bench's back-pressure settings — comes as a pickle named by the BOOK_CASE
environment variable (written by sim/book_builder/test_book_builder.py, which runs the
emulator; this process only simulates and compares). A design whose order table is off chip
(an AXI4 port ``mem``) gets cocotbext-axi's ``AxiRam`` there, with the case's ``axi`` settings
(table base and size, latency, back-pressure; :mod:`.axi_mem`).
"""

from __future__ import annotations

import json
import os
import pickle
import random

import cocotb
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from tickwire.hw.book.builder import COUNTERS
from tickwire.hw.book.layouts import BookEvent, SlotState, TopLevel, book_update_layout
from tickwire.hw.layouts import BookUpdateHeader, DecodedMessage
from tickwire.sim.book_builder.axi_mem import TableRam, has_axi_port


def _fields(layout):
    """{name: (offset, width)} of a struct layout's members."""
    return {name: (f.offset, f.width) for name, f in layout}


class Codec:
    """Packs DecodedMessage payloads and unpacks top-N rows / slot states (Amaranth layouts:
    the first member in the least significant bits)."""

    def __init__(self, depth: int):
        self.depth = depth
        self.msg = _fields(DecodedMessage.as_shape())
        row = book_update_layout(depth)
        rf = {name: f for name, f in row}
        self.hdr_off = rf["header"].offset
        self.hdr = _fields(BookUpdateHeader.as_shape())
        self.lv_off = rf["levels"].offset
        self.lv = _fields(TopLevel.as_shape())
        self.lv_size = TopLevel.as_shape().size
        self.state = _fields(SlotState.as_shape())
        self.event = {}
        for name, f in BookEvent.as_shape():
            try:
                sub_layout = data.Layout.cast(f.shape)
            except TypeError:
                sub_layout = None
            if isinstance(sub_layout, data.StructLayout):
                for sub, g in sub_layout:
                    self.event[f"{name}.{sub}"] = (f.offset + g.offset, g.width)
            else:
                self.event[name] = (f.offset, f.width)

    def pack_msg(self, m: dict) -> int:
        v = 0
        for name, (off, width) in self.msg.items():
            x = int(m.get(name, 0))
            if not 0 <= x < 1 << width:
                raise ValueError(f"DecodedMessage.{name}={x} does not fit {width} bits")
            v |= x << off
        return v

    @staticmethod
    def _get(v, off, width):
        return (v >> off) & ((1 << width) - 1)

    def unpack_row(self, v: int):
        h = {k: self._get(v, self.hdr_off + o, w) for k, (o, w) in self.hdr.items()}
        levels = []
        for k in range(self.depth):
            base = self.lv_off + k * self.lv_size
            f = {n: self._get(v, base + o, w) for n, (o, w) in self.lv.items()}
            levels.append((f["ask_price"], f["ask_size"], f["bid_price"], f["bid_size"]))
        return (h["sequence"], h["timestamp"], h["slot"], tuple(levels))

    def unpack_event(self, v: int):
        f = {n: self._get(v, o, w) for n, (o, w) in self.event.items()}
        return (f["sequence"], f["timestamp"], f["slot"], f["evaluate"], f["trading_state"],
                (f["best_ask.price"], f["best_ask.valid"]),
                (f["best_bid.price"], f["best_bid.valid"]),
                (f["add.valid"], f["add.side"], f["add.price"]))

    def unpack_state(self, v: int):
        f = {n: self._get(v, o, w) for n, (o, w) in self.state.items()}
        return (f["best_bid_price"], f["best_bid_size"], f["best_ask_price"],
                f["best_ask_size"], f["trading_state"], f["last_price"], f["last_shares"])


class BookTB:
    """Owns the clock, reset, the message driver and the top-N monitor of one BookBuilder."""

    def __init__(self, dut, depth: int, *, seed: int = 0, ready_prob: float = 1.0,
                 idle_prob: float = 0.0):
        self.dut = dut
        self.codec = Codec(depth)
        self.rng = random.Random(seed)
        self.ready_prob = ready_prob
        self.idle_prob = idle_prob
        self.rows: list[tuple] = []
        self.events: list[tuple] = []
        self.cycles = 0
        self.accepted = 0
        self.first_accept = None
        self.last_accept = None
        self.first_row_cycle: dict[int, int] = {}   # message sequence -> cycle its row left
        self.accept_cycle: dict[int, int] = {}

    async def start(self):
        d = self.dut
        cocotb.start_soon(Clock(d.clk, 10, unit="ns").start())
        cocotb.start_soon(self._count())
        d.rst.value = 1
        d.i__valid.value = 0
        d.o__ready.value = 0
        d.ev__ready.value = 0
        d.sym_we.value = 0
        d.auto.value = 0
        d.state_addr.value = 0
        for _ in range(3):
            await RisingEdge(d.clk)
        d.rst.value = 0
        await RisingEdge(d.clk)
        cocotb.start_soon(self._monitor())
        cocotb.start_soon(self._ev_monitor())

    async def _count(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.cycles += 1

    async def configure(self, names, auto: bool):
        d = self.dut
        d.auto.value = int(auto)
        for i, n in enumerate(names):
            d.sym_we.value = 1
            d.sym_slot.value = i
            d.sym_name.value = int.from_bytes(n.encode().ljust(8, b" "), "big")
            d.sym_valid.value = 1
            await RisingEdge(d.clk)
        d.sym_we.value = 0
        await RisingEdge(d.clk)

    async def send(self, msgs):
        d = self.dut
        for m in msgs:
            while self.idle_prob and self.rng.random() < self.idle_prob:
                await RisingEdge(d.clk)
            d.i__payload.value = self.codec.pack_msg(m)
            d.i__valid.value = 1
            while True:
                await ReadOnly()
                ready = int(d.i__ready.value)
                await RisingEdge(d.clk)
                if ready:
                    break
            self.accept_cycle[m["sequence"]] = self.cycles
            if self.first_accept is None:
                self.first_accept = self.cycles
            self.last_accept = self.cycles
            self.accepted += 1
            d.i__valid.value = 0

    async def _monitor(self):
        d = self.dut
        rng = random.Random(self.rng.random())
        while True:
            d.o__ready.value = int(self.ready_prob >= 1 or rng.random() < self.ready_prob)
            await ReadOnly()
            if int(d.o__valid.value) and int(d.o__ready.value):
                row = self.codec.unpack_row(int(d.o__payload.value))
                self.rows.append(row)
                self.first_row_cycle.setdefault(row[0], self.cycles)
            await RisingEdge(d.clk)

    async def _ev_monitor(self):
        d = self.dut
        rng = random.Random(self.rng.random())
        while True:
            d.ev__ready.value = int(self.ready_prob >= 1 or rng.random() < self.ready_prob)
            await ReadOnly()
            if int(d.ev__valid.value) and int(d.ev__ready.value):
                self.events.append(self.codec.unpack_event(int(d.ev__payload.value)))
            await RisingEdge(d.clk)

    async def drain(self, idle: int = 60):
        """Until every accepted message has had its event taken (``ev_pending`` low; the deep
        levels can hold the book for longer than any fixed wait) and ``idle`` quiet cycles."""
        quiet = 0
        n = len(self.rows) + len(self.events)
        while quiet < idle:
            await RisingEdge(self.dut.clk)
            k = len(self.rows) + len(self.events)
            quiet = quiet + 1 if k == n and not int(self.dut.ev_pending.value) else 0
            n = k

    def counters(self) -> dict[str, int]:
        return {name: int(getattr(self.dut, name).value) for name in COUNTERS}

    async def read_state(self, slot: int):
        d = self.dut
        d.state_addr.value = slot
        await RisingEdge(d.clk)
        await ReadOnly()
        v = self.codec.unpack_state(int(d.state.value))
        await RisingEdge(d.clk)
        return v


@cocotb.test()
async def book_case(dut):
    """Replay the case named by BOOK_CASE and require the emulator's rows exactly."""
    with open(os.environ["BOOK_CASE"], "rb") as f:
        case = pickle.load(f)
    tb = BookTB(dut, case["depth"], seed=case.get("seed", 0),
                ready_prob=case.get("ready_prob", 1.0), idle_prob=case.get("idle_prob", 0.0))
    ram = None
    if has_axi_port(dut):
        axi = case.get("axi")
        if axi is None:
            raise ValueError(f"{case['name']}: the design has an AXI port `mem` and the case "
                             "no `axi` settings (base, size, latency, backpressure, seed)")
        dut.mem_base.value = axi["base"]
        ram = TableRam(dut, dut.clk, dut.rst, base=axi["base"], size=axi["size"],
                       latency=axi["latency"], backpressure=axi["backpressure"],
                       seed=axi["seed"])
    await tb.start()
    await tb.configure(case["names"], case["auto"])
    await tb.send(case["msgs"])
    await tb.drain()
    if ram is not None:
        ram.check()
        dut._log.info("%s: AXI memory %s", case["name"], ram.stats)
        with open(os.environ["BOOK_CASE"] + ".axi", "w") as f:
            json.dump(ram.stats, f)
    want = case["rows"]
    for i, (got, exp) in enumerate(zip(tb.rows, want)):
        assert got == exp, f"{case['name']}: row {i} differs\n rtl {got}\n emu {exp}"
    assert len(tb.rows) == len(want), \
        f"{case['name']}: {len(tb.rows)} rows from the RTL, {len(want)} from the emulator"
    for i, (got, exp) in enumerate(zip(tb.events, case["events"])):
        assert got == exp, f"{case['name']}: BookEvent {i} differs\n rtl {got}\n emu {exp}"
    assert len(tb.events) == len(case["events"]), \
        f"{case['name']}: {len(tb.events)} BookEvents, {len(case['events'])} expected"
    got_c = tb.counters()
    assert got_c == case["counters"], f"{case['name']}: counters {got_c} != {case['counters']}"
    for slot, exp in case["states"].items():
        got = await tb.read_state(slot)
        assert got == exp, f"{case['name']}: slot {slot} state {got} != {exp}"
    span = tb.last_accept - tb.first_accept + 1
    lat = [tb.first_row_cycle[s] - tb.accept_cycle[s] for s in tb.first_row_cycle
           if s in tb.accept_cycle]
    dut._log.info(
        "%s: %d messages in %d cycles (%.2f cycles/message), %d rows, latency %s cycles",
        case["name"], tb.accepted, span, span / max(tb.accepted, 1), len(tb.rows),
        f"min {min(lat)} max {max(lat)}" if lat else "-")
    with open(os.environ["BOOK_CASE"] + ".stats", "w") as f:
        f.write(f"{tb.accepted} {span} {min(lat) if lat else -1} {max(lat) if lat else -1}\n")
