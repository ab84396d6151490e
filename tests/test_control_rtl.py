"""Control plane over the RTL back-end (the Verilated appliance as a live device), through the
real server on loopback: one pass of the bundled capture's first frames with the static
triggers; what the API serves (counters, orders, positions, the book) equals what it serves
for the emulator over the same frames, and a risk limit and the kill switch written through
the API read back through the driver from the gateware's register file."""

import pytest

from test_control_api import SAMPLE, STATIC_TOML, client, serving, wait_until
from tickwire.control import load_capture
from tickwire.host.config import load_config
from tickwire.spec.counters import COUNTER_NAMES, FEED_COUNTERS

rtl = pytest.importorskip("tickwire.backends.rtl")

pytestmark = pytest.mark.rtl

#: frames of the sample replayed (a few thousand messages, some orders and rejects)
N_FRAMES = 1200


@pytest.fixture(scope="module")
def built():
    from tickwire.sim import fastsim
    return fastsim.build(rtl.harness())


def finished(backend: str, frames):
    cfg = load_config(STATIC_TOML)
    if backend == "emu":
        cfg = rtl.rtl_config(cfg)              # the emulator at the gateware's capacities
    return serving(backend, frames, cfg, speed="max", loop=False, write_timeout=300)


def served_state(c) -> dict:
    wait_until(lambda: c.get("/api/status").json()["finished"], "the pass to end", 600, 0.2)
    return {"counters": c.get("/api/counters").json()["counters"],
            "orders": c.get("/api/orders?limit=1000").json()["orders"],
            "positions": c.get("/api/positions").json()["positions"],
            "book": c.get("/api/book").json()["book"],
            "status": c.get("/api/status").json()}


def test_rtl_serves_what_the_emulator_serves(built):
    frames = load_capture(SAMPLE)[0][:N_FRAMES]
    with finished("emu", frames) as (_, srv), client(srv) as c:
        emu = served_state(c)
    with finished("rtl", frames) as (svc, srv), client(srv) as c:
        got = served_state(c)
        assert got["status"]["backend"] == "rtl"
        assert got["status"]["identity"]["time_unit"] == "cycles"
        for k in FEED_COUNTERS + COUNTER_NAMES:
            assert got["counters"][k] == emu["counters"][k], k
        assert got["counters"]["orders_sent"] > 0
        strip = lambda o: [(x["symbol"], x["side"], x["price"], x["quantity"], x["user_ref"])
                           for x in o]  # noqa: E731
        assert strip(got["orders"]) == strip(emu["orders"])
        assert {s: p["position"] for s, p in got["positions"].items()} == \
               {s: p["position"] for s, p in emu["positions"].items()}
        assert got["book"] == emu["book"]

        # writes after the pass: through the API, read back from the gateware
        r = c.put("/api/risk", json={"max_order_qty": 333}, headers={"X-Operator": "rtl"})
        assert r.status_code == 200, r.text
        (e,) = r.json()["applied"]
        assert (e["what"], e["new"], e["who"]) == ("risk.max_order_qty", 333,
                                                   "rtl@127.0.0.1")
        assert svc.replay.call(lambda ctx: ctx.driver.risk()["max_order_qty"], 300) == 333
        assert e in c.get("/api/audit").json()["entries"]
        r = c.put("/api/kill", json={"kill": True})
        assert r.status_code == 200, r.text
        assert svc.replay.call(lambda ctx: ctx.driver.read("STATUS", "kill_active"), 300) == 1
        assert c.get("/api/kill").json()["active"] is True
        # the latency histogram is the gateware's: one entry per order measured
        lat = c.get("/api/latency").json()["latency"]
        assert lat["count"] == sum(lat["bins"]) == got["counters"]["orders_sent"]
