"""Control plane: tokens and bad input. Every refused request gets a 4xx whose body names the
field at fault, and nothing reaches the device: the registers read back through the driver
and the audit log are unchanged."""

import asyncio
import json

import httpx
import pytest
import websockets

from tickwire.control.auth import Tokens
from tickwire.control.service import serve
from tickwire.host.config import load_config
from test_control_api import READ, WRITE, client, serving, wait_until

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with serving(audit_path=audit) as (svc, srv):
        yield svc, srv


def device_state(svc):
    """Everything an operator write could change, read through the driver."""
    def read(ctx):
        d = ctx.driver
        names = ctx.symbols()
        return {"risk": d.risk(), "control": dict(d.read("CONTROL").fields()),
                # a slot's collar reference is the running strategy's to write (the band
                # strategy re-centres it at the mid): the operator's fields are the limits
                "slots": [{k: v for k, v in d.read_entry("RISK_SLOTS", i).items()
                           if k != "ref_price"} for i in range(len(names))],
                "strategy": vars(svc.replay.config.strategy).copy()}
    return svc.replay.call(read)


def refused(svc, send, status: int, field: str):
    """``send()`` is answered ``status`` naming ``field``, and nothing was written."""
    before_audit = len(svc.audit.entries())
    before = device_state(svc)
    r = send()
    assert r.status_code == status, r.text
    body = r.json()
    assert body["field"] == field, body
    assert field in body["error"] or field == "token"
    assert len(svc.audit.entries()) == before_audit
    after = device_state(svc)
    # positions and slots of newly named symbols may grow; what existed is unchanged
    assert after["risk"] == before["risk"] and after["control"] == before["control"]
    assert after["slots"][:len(before["slots"])] == before["slots"]
    assert after["strategy"] == before["strategy"]
    return body


def test_reads_need_a_token_when_a_read_token_is_set(served):
    _, srv = served
    with client(srv, None) as c:
        r = c.get("/api/status")
        assert r.status_code == 401 and r.json()["field"] == "token"
        assert c.get("/metrics").status_code == 401
        assert c.get("/").status_code == 200            # the page itself holds no data
        assert c.get("/openapi.json").status_code == 200
    for tok in (READ, WRITE):
        with client(srv, tok) as c:
            assert c.get("/api/status").status_code == 200
            assert c.get("/metrics").status_code == 200
    with client(srv, "wrong") as c:
        assert c.get("/api/counters").status_code == 401


def test_writes_need_the_write_token(served):
    svc, srv = served
    with client(srv, None) as c:
        refused(svc, lambda: c.put("/api/risk", json={"max_order_qty": 5}), 401, "token")
        refused(svc, lambda: c.put("/api/kill", json={"kill": True}), 401, "token")
    with client(srv, READ) as c:
        refused(svc, lambda: c.put("/api/risk", json={"max_order_qty": 5}), 403, "token")
        refused(svc, lambda: c.post("/api/strategies/stop"), 403, "token")
        # a refused write is not parsed: malformed JSON from a reader is still a 403
        refused(svc, lambda: c.put("/api/risk", content=b"{nope",
                                   headers={"Content-Type": "application/json"}), 403,
                "token")
    with client(srv, "wrong") as c:
        refused(svc, lambda: c.put("/api/kill", json={"kill": True}), 401, "token")


def test_bad_bodies_name_the_field_and_write_nothing(served):
    svc, srv = served
    sym = wait_until(lambda: svc.hub.snapshot(lambda st: list(st["symbols"]))[1],
                     "a symbol named")[0]
    with client(srv) as c:
        js = {"Content-Type": "application/json"}
        refused(svc, lambda: c.put("/api/risk", content=b'{"max_order_qty": 5', headers=js),
                400, "body")
        refused(svc, lambda: c.put("/api/risk", content=b"[1, 2]", headers=js), 422, "body")
        refused(svc, lambda: c.put("/api/risk", json={}), 422, "body")
        refused(svc, lambda: c.put("/api/risk", json={"max_order_qty": 5, "speed": 1}), 422,
                "speed")
        refused(svc, lambda: c.put("/api/risk", json={"max_order_qty": -1}), 422,
                "max_order_qty")
        refused(svc, lambda: c.put("/api/risk", json={"max_order_qty": 1 << 32}), 422,
                "max_order_qty")
        refused(svc, lambda: c.put("/api/risk", json={"max_notional": 1 << 64}), 422,
                "max_notional")
        refused(svc, lambda: c.put("/api/risk", json={"symbol_burst": 1 << 16}), 422,
                "symbol_burst")
        refused(svc, lambda: c.put("/api/risk", json={"collar_bps": "500"}), 422,
                "collar_bps")
        refused(svc, lambda: c.put("/api/risk", json={"collar_bps": True}), 422, "collar_bps")
        refused(svc, lambda: c.put("/api/risk", json={"collar_bps": 1.5}), 422, "collar_bps")
        refused(svc, lambda: c.put("/api/risk", json={"collar_bps": None}), 422, "collar_bps")
        # all or nothing: one bad field and the good one is not written either
        refused(svc, lambda: c.put("/api/risk", json={"max_order_qty": 9, "max_gross": -5}),
                422, "max_gross")
        refused(svc, lambda: c.put(f"/api/risk/symbols/{sym}", json={"enable": 2}), 422,
                "enable")
        refused(svc, lambda: c.put(f"/api/risk/symbols/{sym}", json={"max_long": 1 << 32}),
                422, "max_long")
        refused(svc, lambda: c.put(f"/api/risk/symbols/{sym}", json={"position": 5}), 422,
                "position")
        refused(svc, lambda: c.put("/api/risk/symbols/NOSUCH", json={"max_long": 5}), 404,
                "symbol")
        refused(svc, lambda: c.put("/api/risk/symbols/WAYTOOLONGNAME", json={"max_long": 5}),
                422, "symbol")
        refused(svc, lambda: c.put("/api/kill", json={"kill": "yes"}), 422, "kill")
        refused(svc, lambda: c.put("/api/kill", json={"on": True}), 422, "kill")
        refused(svc, lambda: c.post("/api/strategies/nosuch/start"), 404, "kind")
        refused(svc, lambda: c.put("/api/strategies/parameters", json={"band_bps": 0}), 422,
                "band_bps")
        refused(svc, lambda: c.put("/api/strategies/parameters", json={"rearm": 2}), 422,
                "rearm")
        refused(svc, lambda: c.put("/api/strategies/parameters", json={"poll_messages": 8}),
                422, "poll_messages")
        refused(svc, lambda: c.put("/api/strategies/parameters", json={"quantity": 0}), 422,
                "quantity")
        assert c.get("/api/book/x?depth=0").status_code == 422


def test_websocket_needs_a_token_when_reads_do(served):
    _, srv = served
    url = srv.url.replace("http", "ws") + "/ws"

    async def first(u):
        async with websockets.connect(u) as ws:
            return json.loads(await ws.recv())

    with pytest.raises(websockets.exceptions.InvalidStatus) as e:
        asyncio.run(first(url))
    assert e.value.response.status_code == 403
    assert asyncio.run(first(url + f"?token={READ}"))["type"] == "snapshot"


def test_writes_refused_without_a_write_token_configured():
    with serving(tokens=Tokens()) as (svc, srv), client(srv, None) as c:
        assert c.get("/api/status").status_code == 200     # loopback, no read token
        body = refused(svc, lambda: c.put("/api/kill", json={"kill": True}), 403, "token")
        assert "--token" in body["error"]


def test_a_foreign_host_header_is_refused(served):
    _, srv = served
    r = httpx.get(srv.url + "/api/status", headers={"Host": "attacker.example",
                                                     "Authorization": f"Bearer {READ}"})
    assert r.status_code == 400


def test_beyond_loopback_needs_a_token():
    with pytest.raises(ValueError, match="beyond loopback"):
        serve("emu", "unused.pcap", load_config(None), host="0.0.0.0", port=0, token=None,
              read_token=None, speed="max", loop=True, audit_log=None)
