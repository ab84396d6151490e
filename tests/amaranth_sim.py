"""Helpers of the Amaranth-simulator tests: a clocked run, table writes and the clear
handshake that every stage with tables shares."""

from amaranth.sim import Simulator

__all__ = ["simulate", "write_table", "clear"]


def simulate(dut, *testbenches, background=(), processes=()) -> None:
    """Run ``dut`` under a 100 MHz clock until ``testbenches`` finish; ``background``
    testbenches and ``processes`` run alongside."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for tb in testbenches:
        sim.add_testbench(tb)
    for tb in background:
        sim.add_testbench(tb, background=True)
    for p in processes:
        sim.add_process(p)
    sim.run()


async def write_table(ctx, port, entries) -> None:
    """Write ``entries`` ({index: row}) through a table's write port (``hw/ports.py``
    ``TableWrite``: we, index, row), one entry a cycle."""
    for a, v in entries.items():
        ctx.set(port.we, 1)
        ctx.set(port.index, a)
        ctx.set(port.row, v)
        await ctx.tick()
    ctx.set(port.we, 0)


async def clear(ctx, dut) -> None:
    """Pulse ``dut.clear`` for a cycle and wait until ``dut.busy`` falls."""
    ctx.set(dut.clear, 1)
    await ctx.tick()
    ctx.set(dut.clear, 0)
    while ctx.get(dut.busy):
        await ctx.tick()
