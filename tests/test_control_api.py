"""Control plane API against the emulator back-end, through the real server on loopback:
status and identity, counters, the book and orders as the device reported them, risk limits
and per-symbol rows written through the API and read back through the driver (this pass and
the next), the audit log (memory and file), strategies, the kill switch, metrics and the
WebSocket stream's snapshot and sequence numbers."""

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets

from tickwire.control import ServerThread, Service, Speed, load_capture
from tickwire.control.auth import Tokens
from tickwire.host.config import load_config
from tickwire.spec.regmap import REGMAP

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "host" / "data" / "sample.pcap"
STATIC_TOML = ROOT / "host" / "data" / "static_triggers.toml"
WRITE, READ = "write-secret", "read-secret"


def wait_until(fn, what: str, timeout: float = 60.0, every: float = 0.05):
    """``fn()``'s first truthy value; fails naming ``what`` when it never comes."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what}")
        time.sleep(every)


@contextlib.contextmanager
def serving(backend: str = "emu", frames=None, config=None, *, speed: str = "20000",
            loop: bool = True, tokens: Tokens | None = None, audit_path=None,
            host: str = "127.0.0.1", **kw):
    """A started service and its server on a free loopback port."""
    if frames is None:
        frames, _ = load_capture(SAMPLE)
    cfg = config if config is not None else load_config(None)
    tokens = tokens or Tokens(write=WRITE, read=READ, reads_need_token=True)
    svc = Service(backend, frames, cfg, tokens=tokens, audit_path=audit_path,
                  speed=Speed.parse(speed), loop=loop, capture=str(SAMPLE), host=host, **kw)
    srv = ServerThread(svc, host).start()
    svc.start()
    try:
        assert svc.replay.started.wait(600), "the replay did not start"
        assert svc.replay.error is None, svc.replay.error
        yield svc, srv
    finally:
        srv.stop()
        svc.close()


def client(srv, token: str | None = WRITE, **headers) -> httpx.Client:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=srv.url, headers=headers, timeout=120)


def where(c) -> tuple[int, int]:
    s = c.get("/api/status").json()
    return s["pass"], s["position"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with serving(audit_path=audit) as (svc, srv):
        with client(srv) as c:
            yield svc, srv, c


def test_openapi_describes_every_endpoint(served):
    _, _, c = served
    paths = c.get("/openapi.json").json()["paths"]
    for p in ("/api/status", "/api/counters", "/api/book/{symbol}", "/api/orders",
              "/api/risk", "/api/risk/symbols/{symbol}", "/api/kill", "/api/strategies",
              "/api/strategies/{kind}/start", "/api/strategies/parameters", "/api/latency",
              "/api/positions", "/api/alerts", "/api/audit", "/metrics"):
        assert p in paths, p
    # the risk body's bounds are the register fields' widths
    schema = c.get("/openapi.json").json()["components"]["schemas"]["RiskBody"]
    qty = schema["properties"]["max_order_qty"]["anyOf"][0]
    assert qty["maximum"] == (1 << REGMAP.register("RISK_MAX_ORDER_QTY").field(
        "max_order_qty").width) - 1


def test_status_names_the_device(served):
    _, _, c = served
    s = c.get("/api/status").json()
    assert s["backend"] == "emu"
    assert s["identity"]["id"] == f"0x{REGMAP.map_id:08x}"
    assert s["identity"]["hash"] == f"0x{REGMAP.hash:08x}"
    assert s["identity"]["version"] == list(REGMAP.version)
    assert s["frames"] == len(load_capture(SAMPLE)[0])
    assert s["running"] and s["error"] is None


def test_counters_follow_the_replay(served):
    _, _, c = served
    a = c.get("/api/counters").json()
    assert set(a["counters"]) >= {"frames", "messages", "book_updates", "orders_sent",
                                  "reject_kill"}
    # the counters the page marks as book loss are spec's list, a bad feed FCS included
    from tickwire.spec.counters import BOOK_LOSS_COUNTERS
    assert set(a["loss_counters"]) == set(BOOK_LOSS_COUNTERS) | {"gaps", "gap_messages"}
    assert "fcs_errors" in a["loss_counters"]
    # the replay moves on: a later pass, or later in this one, with more frames counted
    wait_until(lambda: (lambda b: (b["pass"], b["position"]) > (a["pass"], a["position"])
                        and (b["pass"] > a["pass"] or b["counters"]["frames"] >
                             a["counters"]["frames"]))(c.get("/api/counters").json()),
               "the counters to move")


def test_book_is_the_devices_book(served):
    svc, _, c = served
    sym = wait_until(lambda: c.get("/api/symbols").json()["symbols"], "a symbol named")[0]
    b = c.get(f"/api/book/{sym}?depth=3").json()
    assert len(b["asks"]) <= 3 and len(b["bids"]) <= 3
    assert [p for p, _ in b["asks"]] == sorted(p for p, _ in b["asks"])
    assert [p for p, _ in b["bids"]] == sorted((p for p, _ in b["bids"]), reverse=True)

    def compare(ctx):
        """At a poll point: the published book equals the host loop's view of the rows."""
        if sym not in ctx.symbols():
            return None                  # a new pass that has not named it yet
        lv = ctx.book.levels[ctx.symbols().index(sym)]
        pub = svc.hub.snapshot(lambda st: st["book"].get(sym))[1]
        return pub or {"asks": [], "bids": []}, {
            "asks": [[int(p), int(n)] for p, n in lv[:, 0:2] if p > 0],
            "bids": [[int(p), int(n)] for p, n in lv[:, 2:4] if p > 0]}

    pub, view = wait_until(lambda: (lambda r: r and r[1]["asks"] and r)(
        svc.replay.call(compare)), f"{sym} to have levels")
    assert pub == view
    assert c.get("/api/book/NOSUCH").status_code == 404


def test_orders_are_decoded_ouch(served):
    svc, _, c = served
    cfg = svc.replay.config
    o = wait_until(lambda: c.get("/api/orders?limit=50").json()["orders"], "orders")
    for x in o:
        # the slot's name at the poll the order left in
        assert 1 <= len(x["symbol"]) <= 8 and x["side"] in "BS"
        assert x["price"] > 0 and x["quantity"] == cfg.strategy.quantity
    refs = [x["user_ref"] for x in o if x["pass"] == o[-1]["pass"]]
    assert refs == sorted(refs)       # the egress numbers orders in sending order


def test_risk_limit_write_reads_back_through_the_driver_and_is_audited(served):
    svc, srv, c = served
    r = c.put("/api/risk", json={"max_order_qty": 777}, headers={"X-Operator": "alice"})
    assert r.status_code == 200, r.text
    (entry,) = r.json()["applied"]
    assert entry["what"] == "risk.max_order_qty" and entry["new"] == 777
    assert entry["who"] == "alice@127.0.0.1"
    assert svc.replay.call(lambda ctx: ctx.driver.risk()["max_order_qty"]) == 777
    assert c.get("/api/risk").json()["risk"]["max_order_qty"] == 777
    log = c.get("/api/audit").json()
    assert entry in log["entries"]
    lines = [json.loads(x) for x in Path(log["file"]).read_text().splitlines()]
    assert entry in lines
    # the next pass starts from the operator's value (the config is applied afresh)
    p0 = entry["pass"]
    wait_until(lambda: c.get("/api/status").json()["pass"] > p0, "the next pass")
    assert svc.replay.call(lambda ctx: ctx.driver.risk()["max_order_qty"]) == 777


def test_symbol_limits_write_reads_back_and_survives_a_pass(served):
    svc, _, c = served
    sym = wait_until(lambda: (lambda s: len(s) > 1 and s[1])(
        c.get("/api/symbols").json()["symbols"]), "two symbols named")

    def put():
        r = c.put(f"/api/risk/symbols/{sym}", json={"max_long": 150, "max_short": 120})
        # a new pass began and has not named the symbol yet: 404 when the published state
        # already shows the fresh pass, 409 when the write reached the device first; either
        # way nothing was written, and the loop tries again
        assert r.status_code in (200, 404, 409), r.text
        return r.status_code == 200 and r

    r = wait_until(put, f"{sym}'s limits written")
    assert {e["what"] for e in r.json()["applied"]} == {f"risk_slot.{sym}.max_long",
                                                        f"risk_slot.{sym}.max_short"}

    def row(ctx):
        return ctx.driver.read_entry("RISK_SLOTS", ctx.symbols().index(sym))

    got = svc.replay.call(row)
    assert (got["max_long"], got["max_short"]) == (150, 120)
    assert c.get(f"/api/risk/symbols/{sym}").json()["max_long"] == 150
    p0 = r.json()["pass"]
    wait_until(lambda: c.get("/api/status").json()["pass"] > p0, "the next pass")
    got = wait_until(lambda: svc.replay.call(lambda ctx: sym in ctx.symbols() and row(ctx)),
                     f"{sym} to have a slot again")
    assert (got["max_long"], got["max_short"]) == (150, 120)


def test_strategies_stop_start_and_parameters(served):
    svc, _, c = served
    s = c.get("/api/strategies").json()
    assert {"band", "static", "none"} <= set(s["kinds"]) and s["selected"] == "band"
    r = c.post("/api/strategies/stop")
    assert r.status_code == 200, r.text
    assert svc.replay.call(lambda ctx: ctx.driver.read("CONTROL", "enable")) == 0
    assert c.get("/api/strategies").json()["running"] is False
    r = c.put("/api/strategies/parameters", json={"band_bps": 25, "quantity": 200})
    assert r.status_code == 200, r.text
    assert svc.replay.config.strategy.band_bps == 25
    r = c.post("/api/strategies/band/start")
    assert r.status_code == 200, r.text
    assert svc.replay.call(lambda ctx: ctx.driver.read("CONTROL", "enable")) == 1
    # the band strategy writes its triggers with the new quantity
    wait_until(lambda: any(o["quantity"] == 200 for o in c.get("/api/orders").json()["orders"]),
               "an order of the new quantity")
    c.put("/api/strategies/parameters", json={"quantity": 100})


def test_latency_and_metrics(served):
    svc, _, c = served
    lat = c.get("/api/latency").json()
    cap = svc.replay.call(lambda ctx: ctx.driver.capacity())
    assert len(lat["latency"]["bins"]) == cap["hist_bins"]
    assert lat["time_unit"] == "messages"
    m = c.get("/metrics")
    assert m.status_code == 200
    text = m.text
    assert 'tickwire_device_total{counter="frames"}' in text
    assert "tickwire_position_shares{symbol=" in text
    assert "tickwire_tick_to_trade_cycles_bucket" in text
    assert "tickwire_gross_exposure_usd" in text


def test_kill_switch_stops_orders():
    with serving(speed="40000") as (svc, srv), client(srv) as c:
        wait_until(lambda: c.get("/api/orders").json()["orders_total"] > 0, "orders")
        r = c.put("/api/kill", json={"kill": True})
        assert r.status_code == 200, r.text
        (e,) = r.json()["applied"]
        assert (e["what"], e["old"], e["new"]) == ("control.kill", 0, 1)
        killed_at = (e["pass"], e["position"])
        total = c.get("/api/orders").json()["orders_total"]
        # triggers keep firing; risk check 1 rejects every one, across passes
        wait_until(lambda: any(a["kind"] == "risk_reject" and a["reason"] == "kill"
                               and a["pass"] > e["pass"]
                               for a in c.get("/api/alerts").json()["alerts"]),
                   "kill rejects in a later pass")
        o = c.get("/api/orders?limit=1000").json()
        assert o["orders_total"] == total
        assert all((x["pass"], x["position"]) <= killed_at for x in o["orders"])
        # (one reading: the replay's position moves between two)
        k = c.get("/api/kill").json()
        assert (k["kill"], k["active"]) == (True, True)


async def _follow(url: str, n: int) -> list[dict]:
    out = []
    async with websockets.connect(url) as ws:
        while len(out) < n:
            data = json.loads(await ws.recv())
            out += data if isinstance(data, list) else [data]
    return out[:n]


def test_websocket_snapshot_then_every_sequence_number(served):
    _, srv, _ = served
    msgs = asyncio.run(_follow(srv.url.replace("http", "ws") + f"/ws?token={READ}", 60))
    snap = msgs[0]
    assert snap["type"] == "snapshot"
    st = snap["state"]
    assert st["identity"]["id"] == f"0x{REGMAP.map_id:08x}"
    assert {"book", "orders", "counters", "risk", "slots", "positions", "latency",
            "strategy", "alerts", "audit"} <= set(st)
    assert [m["seq"] for m in msgs[1:]] == list(range(snap["seq"] + 1, snap["seq"] + 60))
    assert {"book", "counters", "state"} <= {m["type"] for m in msgs}


def test_tickwire_serve_command(tmp_path):
    """The command: prints where it serves, answers there, stops on an interrupt."""
    audit = tmp_path / "audit.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "tickwire.host.cli", "serve", "--port", "0",
                          "--speed", "max", "--token", WRITE, "--audit-log", str(audit)],
                         stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in p.stderr:
            m = re.search(r"dashboard (http://127\.0\.0\.1:\d+)/", line)
            if m:
                url = m.group(1)
                break
        assert url, "serve printed no dashboard address"
        s = httpx.get(url + "/api/status", timeout=60).json()
        assert s["backend"] == "emu" and s["capture"].endswith("sample.pcap")
        r = httpx.put(url + "/api/kill", json={"kill": True},
                      headers={"Authorization": f"Bearer {WRITE}"}, timeout=60)
        assert r.status_code == 200, r.text
        assert json.loads(audit.read_text().splitlines()[0])["what"] == "control.kill"
        assert "<title>tickwire control plane</title>" in httpx.get(url + "/", timeout=60).text
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(60)
    assert p.returncode == 0


def test_tickwire_serve_refuses_bad_options():
    r = subprocess.run([sys.executable, "-m", "tickwire.host.cli", "serve", "--speed", "fast"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--speed 'fast'" in r.stderr


def test_tickwire_serve_stops_on_an_interrupt_when_started_with_sigint_ignored():
    """Started as nohup, supervisors and test runners start it (SIGINT ignored, which Python
    keeps): an interrupt still stops it."""
    p = subprocess.Popen([sys.executable, "-m", "tickwire.host.cli", "serve", "--port", "0",
                          "--speed", "max"], stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        for line in p.stderr:
            if "dashboard http://" in line:
                break
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
    assert p.returncode == 0
