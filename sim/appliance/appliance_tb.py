"""cocotb bench of :class:`tickwire.hw.appliance.Appliance`: capture in, order frames out, the
host's own :class:`tickwire.host.driver.AsyncDriver` on the AXI4-Lite port (cocotbext-axi).

The scenario (a pickle named by ``TW_SCENARIO``, made by tests/test_appliance_cocotb.py) holds
the feed frames, the host's driver calls with the frame each precedes, and the emulator's
order frames and counters for them. Before a frame with host calls the line pauses until the
pipeline has settled (``settle`` cycles), the calls run over the bus, and the line resumes;
that is the emulator's write before the frame's first message. Order frames are collected
under random back-pressure and must equal the emulator's, byte for byte; every emulator
counter is then read through the driver.
"""

from __future__ import annotations

import os
import pickle
import random

import cocotb
from cocotb.triggers import RisingEdge

from tickwire.host.driver import AsyncDriver, BusError
from tickwire.sim.book_builder.axi_mem import TableRam, has_axi_port
from tickwire.sim.runner import TB, AxisSource, StreamSink

OKAY = 0


class AxiLiteHostBus:
    """``read32``/``write32`` coroutines over cocotbext-axi's master (the driver's bus) on
    the AXI4-Lite port ``prefix`` (the appliance's ``axi__*`` by default)."""

    def __init__(self, dut, prefix: str = "axi_", clock: str = "clk", reset: str = "rst",
                 reset_active_level: bool = True):
        from cocotbext.axi import AxiLiteBus, AxiLiteMaster
        self.clk = getattr(dut, clock)
        self.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, prefix), self.clk,
                                    getattr(dut, reset), reset_active_level=reset_active_level)
        self.ops = 0

    async def read32(self, addr: int) -> int:
        r = await self.master.read(addr, 4)
        self.ops += 1
        if int(r.resp) != OKAY:
            raise BusError("read", addr, int(r.resp))
        return int.from_bytes(bytes(r.data), "little")

    async def write32(self, addr: int, value: int) -> None:
        r = await self.master.write(addr, int(value).to_bytes(4, "little"))
        self.ops += 1
        if int(r.resp) != OKAY:
            raise BusError("write", addr, int(r.resp))


class ApplianceTB(TB):
    """Clock, reset, line A source, order sink (random ready), top-N updates drained, and
    the host driver on the control port."""

    def __init__(self, dut, *, ready_prob: float, seed: int, gap: int,
                 order_memory_bytes: int = 0, mem_latency: int = 40):
        super().__init__(dut)
        rng = random.Random(seed)
        self.line_a = AxisSource(self, "rx_a", gap=gap, rng=rng)
        self.line_b = AxisSource(self, "rx_b")
        self.orders = StreamSink(self, "o", ready_prob=ready_prob, rng=rng)
        self.updates = StreamSink(self, "updates")
        self.bus = AxiLiteHostBus(dut)
        self.drv = AsyncDriver(self.bus)
        # the order table's memory (a build whose table is off chip), at ORDER_TABLE_BASE 0
        self.mem = None
        if has_axi_port(dut):
            self.mem = TableRam(dut, dut.clk, dut.rst, base=0, size=order_memory_bytes,
                                latency=mem_latency, seed=seed)

    def order_frames(self) -> list[bytes]:
        """The collected beats as frames (``first`` starts one, ``last`` ends it)."""
        frames, cur = [], None
        for beat in self.orders.items:
            if beat["first"]:
                assert cur is None, "order frame started inside another"
                cur = bytearray()
            assert cur is not None, "order beat outside a frame"
            n = bin(beat["keep"]).count("1")
            assert beat["keep"] == (1 << n) - 1, f"keep {beat['keep']:#x} not contiguous"
            cur += int(beat["data"]).to_bytes(8, "little")[:n]
            if beat["last"]:
                frames.append(bytes(cur))
                cur = None
        assert cur is None, "last order frame unfinished"
        return frames


@cocotb.test()
async def end_to_end(dut):
    """Capture in, host writes before and during the stream, order frames out."""
    with open(os.environ["TW_SCENARIO"], "rb") as f:
        sc = pickle.load(f)
    tb = ApplianceTB(dut, ready_prob=sc["ready_prob"], seed=sc["seed"], gap=sc["gap"],
                     order_memory_bytes=sc["order_memory_bytes"])
    await tb.reset()
    steps: dict[int, list] = {}
    for frame, name, args, kwargs in sc["steps"]:
        steps.setdefault(frame, []).append((name, args, kwargs))
    for i, frame in enumerate(sc["frames"]):
        if i in steps:
            await tb.cycles(sc["settle"])
            for name, args, kwargs in steps.pop(i):
                await getattr(tb.drv, name)(*args, **kwargs)
        await tb.line_a.send(frame)
    await tb.cycles(sc["settle"])
    for name, args, kwargs in steps.pop(len(sc["frames"]), []):
        await getattr(tb.drv, name)(*args, **kwargs)
    assert not steps, f"host calls after the last frame: {sorted(steps)}"

    got, want = tb.order_frames(), sc["order_frames"]
    for k, (a, b) in enumerate(zip(got, want)):
        assert a == b, f"order frame {k}:\n rtl {a.hex()}\n emu {b.hex()}"
    assert len(got) == len(want), f"{len(got)} order frames, emulator {len(want)}"

    await tb.drv.check_identity()
    c = await tb.drv.counters(hardware=True)
    bad = {k: (c[k], v) for k, v in sc["counters"].items() if c[k] != v}
    assert not bad, f"counters (read through the driver, emulator): {bad}"
    assert c["frames_sent"] == len(got) and c["drops"] == 0 and c["a_frames"] == len(
        sc["frames"])
    lat = await tb.drv.latency()
    assert lat["count"] == len(got)
    if tb.mem is not None:
        tb.mem.check()
    await RisingEdge(dut.clk)
    tb.log.info("%d frames in, %d order frames out (identical), %d bus operations, "
                "%d cycles", len(sc["frames"]), len(got), tb.bus.ops, tb.cycle)
