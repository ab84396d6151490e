"""Amaranth-simulator tests of the generated AXI4-Lite register file (hw/regmap/axil.py).

Targeted tests of each bus rule (docs/registers.md "Bus rules"), then random traffic checked
against the Python model (tickwire.host.driver.FakeBus) through sim/regmap/common.py. The
cocotb bench (tests/test_regmap_cocotb.py) repeats the random check on Verilator and drives
the register file with the host's own driver.
"""

import random

import pytest

from tickwire.host.driver import AsyncDriver, BusError
from tickwire.hw.regmap.axil import RegisterFile
from tickwire.spec.capacity import GATEWARE
from tickwire.spec.regmap import REGMAP
from tickwire.sim.regmap.amaranth_harness import simulate
from tickwire.sim.regmap.common import OKAY, SLVERR, BusAdapter, ModelChecker

CAP = {"symbols": 8, "groups": 4, "hist_bins": 8}
R = REGMAP.register
T = REGMAP.table


def run(body, **cap):
    simulate(body, **dict(CAP, **cap))


def test_ports_follow_the_description():
    rf = RegisterFile(**CAP)
    rf._MustUse__silence = True                           # inspected, not elaborated
    ports = rf.port_names()
    for r in REGMAP.registers.values():
        for f in r.fields:
            if f.hw == "port":
                want = "out" if f.access in ("rw", "wo") else "in"
                assert ports[f.port] == want, f.port
    assert ports["triggers.w.we"] == "out" and ports["positions.r.data"] == "in"
    assert ports["feed_groups"] == "out" and ports["lat_hist.r.addr"] == "out"
    assert "lat_hist.w.we" not in ports                   # read-only table: no write port
    assert rf.feed_groups.shape().length == CAP["groups"]
    assert len(rf.triggers.w.index) == 3                  # 8 slots
    assert list(dict(rf.triggers.w.row.shape())) == [     # the row: the rw fields, in order
        f.name for f in REGMAP.table("TRIGGERS").fields]
    with pytest.raises(ValueError, match="symbols=300"):
        RegisterFile(symbols=300)


def test_identity_capacity_and_resets():
    async def body(h):
        assert await h.read(R("ID").offset) == (0x54574952, OKAY)
        assert await h.read(R("VERSION").offset) == ((REGMAP.version[0] << 16)
                                                     | REGMAP.version[1], OKAY)
        assert await h.read(R("MAP_HASH").offset) == (REGMAP.hash, OKAY)
        c0, _ = await h.read(R("CAPACITY0").offset)
        c1, _ = await h.read(R("CAPACITY1").offset)
        assert c0 == 8 | GATEWARE["levels"] << 16
        assert c1 == 12 | 4 << 8 | 4 << 16
        assert await h.read(R("CAPACITY2").offset) == (8, OKAY)
        mc = ModelChecker(h, **CAP)                       # every register at its reset value
        for r in REGMAP.registers.values():
            for k in range(r.words):
                await mc.read(r.offset + 4 * k)
        await mc.check_outputs()
        a, _ = await h.read(R("CYCLES").offset)
        b, _ = await h.read(R("CYCLES").offset)
        assert 0 < a < b
    run(body)


def test_every_rw_register_reads_back():
    rng = random.Random(2)

    async def body(h):
        mc = ModelChecker(h, rng=rng, **CAP)
        for r in REGMAP.registers.values():
            if not any(f.access == "rw" for f in r.fields):
                continue
            for _ in range(2):
                v = rng.getrandbits(r.width)
                for k in range(r.words):
                    await mc.write(r.offset + 4 * k, (v >> 32 * k) & 0xFFFFFFFF)
                for k in range(r.words):
                    await mc.read(r.offset + 4 * k)
        await mc.check_outputs()
        assert await h.get("risk_max_gross") == mc.model.outputs()["risk_max_gross"]
    run(body)


def test_byte_strobes():
    async def body(h):
        a = R("SESSION_SEQ").offset
        assert await h.write(a, 0x11223344) == OKAY
        assert await h.write(a, 0xAABBCCDD, strobe=0b0101) == OKAY
        assert await h.read(a) == (0x11BB33DD, OKAY)
        assert await h.get("session_seq") == 0x11BB33DD
        assert await h.write(a, 0xFFFFFFFF, strobe=0) == OKAY       # no lane: no change
        assert await h.read(a) == (0x11BB33DD, OKAY)
        # a 64-bit register: strobes on both halves, committed by the high word
        m = R("SESSION_SRC_MAC").offset
        await h.write(m, 0x33445566)
        await h.write(m + 4, 0x1122)
        await h.write(m, 0x0000EE00, strobe=0b0010)
        assert await h.get("session_src_mac") == 0x112233445566        # staged only
        await h.write(m + 4, 0x0000FF00, strobe=0b0010)
        assert await h.get("session_src_mac") == 0xFF223344EE66
        assert (await h.read(m))[0] == 0x3344EE66
        assert (await h.read(m + 4))[0] == 0xFF22
        # bits outside fields read 0 and ignore writes
        t = R("SESSION_TTL").offset
        await h.write(t, 0xFFFFFFFF)
        assert await h.read(t) == (0xFF, OKAY)
    run(body)


def test_w1c_wo_and_mixed_register():
    async def body(h):
        st = R("STATUS")
        await h.pulse("status_gap")
        await h.pulse("status_risk_reject")
        await h.set("status_kill_active", 1)
        v, _ = await h.read(st.offset)
        gap, rej = st.field("gap").mask, st.field("risk_reject").mask
        assert v == gap | rej | 1
        await h.write(st.offset, gap | 1)                  # ro bit 0 ignored, gap cleared
        assert (await h.read(st.offset))[0] == rej | 1
        await h.write(st.offset, rej, strobe=0b0001)       # wrong lane: nothing cleared
        assert (await h.read(st.offset))[0] == rej | 1
        await h.write(st.offset, rej)
        assert (await h.read(st.offset))[0] == 1
        # wo pulse: soft_reset, in a register with rw bits (kept)
        c = R("CONTROL")
        await h.write(c.offset, c.field("kill").mask | c.field("auto").mask)
        h.events()
        await h.write(c.offset, c.field("soft_reset").mask | c.field("kill").mask)
        assert h.events() == [("pulse", "control_soft_reset", 1)]
        assert (await h.read(c.offset))[0] == c.field("kill").mask      # reads 0, auto cleared
        assert await h.get("control_soft_reset") == 0
        assert await h.write(R("SESSION_CTRL").offset, 1) == OKAY
        assert h.events() == [("pulse", "session_load", 1)]
    run(body)


def test_64bit_capture():
    async def body(h):
        r = R("CNT_MESSAGES")
        await h.set("messages", 0x00000005_FFFFFFFE)
        lo, _ = await h.read(r.offset)
        await h.set("messages", 0x00000006_00000003)
        hi, _ = await h.read(r.offset + 4)
        assert (hi, lo) == (5, 0xFFFFFFFE)                 # the high word of the low read
        # the capture is dropped by a write or by reading another value's low word
        lo, _ = await h.read(r.offset)
        await h.set("messages", 0x00000007_00000003)
        await h.write(R("SCRATCH").offset, 1)
        assert (await h.read(r.offset + 4))[0] == 7
        await h.read(r.offset)
        await h.set("messages", 0x00000008_00000003)
        await h.read(R("CNT_FRAMES").offset)
        assert (await h.read(r.offset + 4))[0] == 8
    run(body)


def test_slverr():
    async def body(h):
        # (0x02F8 was one until the order-path counters filled their block)
        holes = [0x0030, 0x004C, 0x01D0, 0x0710, 0x0FFC, 0x1200, 0x7000, 0x7FFC]
        for a in holes:
            assert REGMAP.decode(a) is None
            assert await h.read(a) == (0, SLVERR)
            assert await h.write(a, 0xFFFFFFFF) == SLVERR
        for name in ("ID", "MAP_HASH", "CAPACITY0", "CNT_FRAMES", "LAT_MIN"):
            assert await h.write(R(name).offset, 0) == SLVERR
        assert await h.write(R("CYCLES").offset + 4, 0) == SLVERR
        # tables: beyond the build's entries, past the row, read-only table
        tr = T("TRIGGERS")
        assert await h.read(tr.address(CAP["symbols"], 0)) == (0, SLVERR)
        assert await h.write(tr.address(CAP["symbols"], 3), 1) == SLVERR
        assert await h.read(T("SYMBOLS").address(0, 3)) == (0, SLVERR)
        assert await h.write(T("LAT_HIST").address(0), 5) == SLVERR
        assert (await h.read(T("LAT_HIST").address(CAP["hist_bins"] - 1)))[1] == OKAY
        assert (await h.read(T("LAT_HIST").address(CAP["hist_bins"])))[1] == SLVERR
        assert await h.read(T("FEED_GROUPS").address(CAP["groups"])) == (0, SLVERR)
        assert h.events() == []
    run(body)


def test_table_rows_commit_on_last_word():
    async def body(h):
        tr = T("TRIGGERS")
        words = [1500000, 1510000, 100, 0b111]
        for k, w in enumerate(words[:-1]):
            await h.write(tr.address(5, k), w)
            assert h.events() == []                                 # staged
        await h.write(tr.address(5, 3), words[3])
        assert h.events() == [("table", "triggers", 5, {
            "buy_price": 1500000, "sell_price": 1510000, "quantity": 100,
            "enable_buy": 1, "enable_sell": 1, "rearm": 1})]
        for k, w in enumerate(words):                               # shadow read-back
            assert await h.read(tr.address(5, k)) == (w, OKAY)
        assert (await h.read(tr.address(4, 0)))[0] == 0
        # array table: the port shows every entry
        g = T("FEED_GROUPS")
        await h.write(g.address(2, 0), 0xE9360C6F)
        await h.write(g.address(2, 1), 1 << 16 | 26477)
        assert await h.get("feed_groups[2].ip") == 0xE9360C6F
        assert await h.get("feed_groups[2].port") == 26477
        assert await h.get("feed_groups[2].valid") == 1
        assert await h.get("feed_groups[1].valid") == 0
        assert await h.read(g.address(2, 1)) == (1 << 16 | 26477, OKAY)
        # port table: signed position out, live value in
        p = T("POSITIONS")
        await h.write(p.address(3, 0), 0xFFFFFF38)
        await h.write(p.address(3, 1), 0xFFFFFFFF)
        ev = h.events()
        assert ev == [("table", "positions", 3, {"position": (-200) & (1 << 64) - 1})]
        await h.set("positions.r.data", 0x00000001_00000002)
        assert await h.read(p.address(3, 0)) == (2, OKAY)
        await h.set("positions.r.data", 0)
        assert await h.read(p.address(3, 1)) == (1, OKAY)          # captured row
        assert await h.get("positions.r.addr") == 3
    run(body)


def test_async_driver_on_the_simulated_register_file():
    async def body(h):
        drv = AsyncDriver(BusAdapter(h))
        await drv.check_identity()
        assert (await drv.capacity())["symbols"] == CAP["symbols"]
        await drv.set_risk(max_notional=1 << 40, collar_bps=250, kill=1)
        assert await h.get("risk_max_notional") == 1 << 40
        assert await h.get("control_kill") == 1
        await drv.write_trigger(2, buy_price=10, sell_price=20, quantity=3, enable_buy=1,
                                enable_sell=0, rearm=1)
        assert await drv.read_trigger(2) == {"buy_price": 10, "sell_price": 20,
                                             "quantity": 3, "enable_buy": 1,
                                             "enable_sell": 0, "rearm": 1}
        await drv.write_trigger(2, quantity=9)                   # read-modify-write
        assert (await drv.read_trigger(2))["buy_price"] == 10
        with pytest.raises(BusError):
            await drv.read32(0x7000)
        with pytest.raises(IndexError):
            await drv.read_trigger(CAP["symbols"])
    run(body)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_traffic_matches_the_model(seed):
    async def body(h):
        mc = ModelChecker(h, rng=random.Random(seed), **CAP)
        await mc.random_ops(400)
        assert mc.n_writes > 100 and len(mc.model.table_writes) > 15
    run(body)
