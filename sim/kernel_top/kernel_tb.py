"""cocotb bench of the kernel top (module ``tickwire``): the host's :class:`AsyncDriver` on
``s_axi_control`` (cocotbext-axi, through the appliance bench's :class:`AxiLiteHostBus`),
feed frames as AXI4-Stream packets on ``s_axis_feed_a``/``_b``, order frames and book rows
taken from ``m_axis_orders``/``m_axis_book`` under random ``tready``.

The scenario (a pickle named by ``TW_SCENARIO``, made by tests/test_kernel_top_cocotb.py):
``setup``, the driver calls that configure the appliance (made after reset, before any
frame); ``frames`` and per frame ``send`` = (on A, on B, B's lag in cycles, idle cycles
after it): the lines stay in step (frame i+1 starts once both copies of frame i are in), B's
copy starts ``lag`` cycles after A's so their beats overlap; ``idle``, the probability of an
idle cycle before a feed beat (inside packets too); ``ready``, the probability of ``tready``
on the two output streams; ``stall``, None or (frame, cycles): ``m_axis_book``'s ``tready``
held low for that many cycles from that frame on, the feed going on; ``poll``, counter
names the host reads after each frame's idle cycles (where a drop is counted: the test
attributes each one to its frame). After the last frame the run ends once ``drain`` cycles
pass with no output.

Checked here, beat by beat: every order packet's ``tkeep`` is contiguous from lane 0 and
only its last beat is partial; every book packet is whole beats of full ``tkeep``. What came
out (order frames, book packets, every counter and the latency count read through the
driver, BUILD_ID) goes to the pickle named by ``TW_RESULT``: the test compares it with the
emulator.
"""

from __future__ import annotations

import logging
import os
import pickle
import random

import cocotb

from tickwire.host.driver import AsyncDriver
from tickwire.sim.appliance.appliance_tb import AxiLiteHostBus
from tickwire.sim.runner import TB
from tickwire.spec.regmap import COUNTER_REGISTERS


def _pauses(rng: random.Random, p: float):
    """Per cycle: pause with probability ``p``."""
    while True:
        yield rng.random() < p


class KernelTB(TB):
    """``ap_clk``, ``ap_rst_n`` (low active), the two feed sources, the two output sinks
    (their ``tready`` random, the book's held low while ``stalled``) and the host driver."""

    def __init__(self, dut, *, seed: int, idle: float, ready: float):
        from cocotbext.axi import AxiStreamBus, AxiStreamSink, AxiStreamSource
        super().__init__(dut, clock="ap_clk", reset="ap_rst_n", reset_level=0)
        rng = random.Random(seed)

        def port(name, kind):
            return kind(AxiStreamBus.from_prefix(dut, name), self.clk, self.rst,
                        reset_active_level=False)

        self.feeds = {line: port(f"s_axis_feed_{line}", AxiStreamSource) for line in "ab"}
        for src in self.feeds.values():
            src.set_pause_generator(_pauses(rng, idle))
        self.orders_sink = port("m_axis_orders", AxiStreamSink)
        self.orders_sink.set_pause_generator(_pauses(rng, 1 - ready))
        self.book_sink = port("m_axis_book", AxiStreamSink)
        self.stalled = False
        self.book_sink.set_pause_generator(self._book_pauses(rng, 1 - ready))
        self.bus = AxiLiteHostBus(dut, "s_axi_control", "ap_clk", "ap_rst_n",
                                  reset_active_level=False)
        self.drv = AsyncDriver(self.bus)
        # cocotbext-axi logs every register access at INFO: thousands of lines per run
        logging.getLogger(f"cocotb.{dut._name}.s_axi_control").setLevel(logging.WARNING)
        self.orders: list[bytes] = []
        self.book: list[bytes] = []
        cocotb.start_soon(self._collect(self.orders_sink, self.orders, self._order_packet))
        cocotb.start_soon(self._collect(self.book_sink, self.book, self._book_packet))

    def _book_pauses(self, rng, p):
        while True:
            yield self.stalled or rng.random() < p

    async def _collect(self, sink, out: list, check):
        while True:
            f = await sink.recv(compact=False)
            out.append(check(len(out), f))

    def _order_packet(self, k: int, f) -> bytes:
        keep, nb = list(f.tkeep), len(self.orders_sink.bus.tkeep)
        n = sum(keep)
        assert keep == [1] * n + [0] * (len(keep) - n) and len(keep) - n < nb, \
            f"order frame {k}: tkeep not contiguous from lane 0 up to the last beat"
        return bytes(f.tdata[:n])

    def _book_packet(self, k: int, f) -> bytes:
        lanes = len(self.book_sink.bus.tkeep)
        assert len(f.tdata) % lanes == 0 and all(f.tkeep), \
            f"book packet {k}: {len(f.tdata)} bytes, not whole beats of full tkeep"
        return bytes(f.tdata)

    async def send(self, frame: bytes, on_a: bool, on_b: bool, lag: int) -> None:
        """One frame on the lines that carry it, B ``lag`` cycles after A; returns once
        both are in."""
        from cocotbext.axi import AxiStreamFrame
        if on_a:
            await self.feeds["a"].send(AxiStreamFrame(frame))
        if on_b:
            if on_a and lag:
                await self.cycles(lag)
            await self.feeds["b"].send(AxiStreamFrame(frame))
        for src in self.feeds.values():
            await src.wait()

    async def stall_book(self, cycles: int) -> None:
        self.stalled = True
        await self.cycles(cycles)
        self.stalled = False

    async def drain(self, quiet: int) -> None:
        """Until ``quiet`` cycles pass with no output packet and no packet under way."""
        while True:
            seen = (len(self.orders), len(self.book))
            await self.cycles(quiet)
            if ((len(self.orders), len(self.book)) == seen and self.orders_sink.idle()
                    and self.book_sink.idle()):
                return


@cocotb.test()
async def host_run(dut):
    """Configure over s_axi_control, stream the frames on A and B, drain, read back."""
    with open(os.environ["TW_SCENARIO"], "rb") as f:
        sc = pickle.load(f)
    tb = KernelTB(dut, seed=sc["seed"], idle=sc["idle"], ready=sc["ready"])
    mem = None
    if sc["order_memory_bytes"]:
        # the order table's memory on m_axi_book, at ORDER_TABLE_BASE 0, a DDR-like latency
        from cocotbext.axi import AxiBus
        from tickwire.sim.book_builder.axi_mem import TableRam
        mem = TableRam(dut, tb.clk, tb.rst, base=0, size=sc["order_memory_bytes"],
                       latency=40, seed=sc["seed"], reset_active_level=False,
                       bus=AxiBus.from_prefix(dut, "m_axi_book"))
    await tb.reset()
    await tb.drv.check_identity()
    for name, args, kwargs in sc["setup"]:
        await getattr(tb.drv, name)(*args, **kwargs)
    stall, poll, polled = sc.get("stall"), sc.get("poll", ()), []
    t0 = tb.cycle
    for i, (frame, (on_a, on_b, lag, gap)) in enumerate(zip(sc["frames"], sc["send"])):
        if stall and i == stall[0]:
            cocotb.start_soon(tb.stall_book(stall[1]))
        await tb.send(frame, on_a, on_b, lag)
        if gap:
            await tb.cycles(gap)
        if poll:
            polled.append({n: await tb.drv.read_raw(COUNTER_REGISTERS[n]) for n in poll})
    await tb.drain(sc["drain"])
    res = {"orders": tb.orders, "book": tb.book,
           "counters": await tb.drv.counters(hardware=True),
           "latency": await tb.drv.latency(),
           "build_id": await tb.drv.read_raw("BUILD_ID"),
           "polled": polled, "cycles": tb.cycle - t0, "bus_ops": tb.bus.ops}
    if mem is not None:
        mem.check()
        res["order_memory"] = dict(mem.stats)
    with open(os.environ["TW_RESULT"], "wb") as f:
        pickle.dump(res, f)
    tb.log.info("%d frames, %d order frames, %d book rows, %d bus operations, %d cycles",
                len(sc["frames"]), len(tb.orders), len(tb.book), tb.bus.ops, res["cycles"])
