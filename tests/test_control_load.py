"""Load on loopback: 50 WebSocket clients follow a replay at full speed for a bounded time.
Every client sees every sequence number after its snapshot, or is resynchronised with a
snapshot that says so (never a silent gap); the server's memory stays bounded (no per-client
queues: one ring of messages, a cursor per client); the replay's throughput is reported with
and without the clients (README, "Control plane").

The clients run in a child process (this file run as a script), so the figures are the
server's: its replay thread and its event loop, not the clients' decoding."""

import asyncio
import json
import subprocess
import sys
import time

import pytest

from test_control_api import READ, SAMPLE, serving, wait_until
from tickwire.control import Service, load_capture
from tickwire.control.auth import Tokens
from tickwire.host.config import load_config

CLIENTS = 50
#: seconds each measurement runs
WINDOW = 6.0
#: host poll interval of the replay (messages): each poll publishes book rows and orders
POLL_MESSAGES = 256


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def throughput(svc, seconds: float) -> float:
    """ITCH messages per second the replay offered over ``seconds``."""
    t0, m0 = svc.replay.progress()
    time.sleep(seconds)
    t1, m1 = svc.replay.progress()
    return (m1 - m0) / (t1 - t0)


@pytest.mark.slow
def test_fifty_clients_follow_a_full_speed_replay():
    cfg = load_config(None)
    cfg.strategy.poll_messages = POLL_MESSAGES
    with serving(config=cfg, speed="max") as (svc, srv):
        wait_until(lambda: svc.hub.snapshot(lambda st: st["pass"])[1] >= 2, "a second pass")
        alone = throughput(svc, WINDOW)
        rss0 = rss_mib()
        url = srv.url.replace("http", "ws") + f"/ws?token={READ}"
        child = subprocess.Popen([sys.executable, __file__, url, str(CLIENTS),
                                  str(WINDOW + 4)], stdout=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: svc.clients == CLIENTS or child.poll() is not None,
                       f"{CLIENTS} clients connected", 60)
            assert svc.clients == CLIENTS
            pub0 = svc.hub.published
            busy = throughput(svc, WINDOW)
            published = svc.hub.published - pub0
            rss1 = rss_mib()
            out, _ = child.communicate(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
        assert child.returncode == 0
        res = [json.loads(x) for x in out.splitlines()]
        wait_until(lambda: svc.clients == 0, "the clients to disconnect")
    assert len(res) == CLIENTS
    for r in res:
        assert r["snapshot"], r
        assert r["gaps"] == 0, r          # no silent loss: only announced resyncs
        assert r["messages"] > 0, r
    received = sum(r["messages"] for r in res)
    resyncs = sum(r["resyncs"] for r in res)
    assert resyncs <= svc.resyncs      # a resync sent as a client stopped reading is unread
    # bounded memory: the ring holds a fixed number of messages whatever the clients do
    assert rss1 - rss0 < 100, f"server RSS grew {rss1 - rss0:.0f} MiB with {CLIENTS} clients"
    per_client = received / CLIENTS / max(r["seconds"] for r in res)
    print(f"\ncontrol plane load: replay {alone:,.0f} msg/s without clients, {busy:,.0f} msg/s "
          f"with {CLIENTS} clients ({busy / alone:.0%}); stream {published / WINDOW:,.0f} "
          f"messages/s published, {per_client:,.0f} messages/s delivered to each client, "
          f"0 gaps, {resyncs} resyncs; server RSS {rss0:.0f} -> {rss1:.0f} MiB "
          f"(poll every {POLL_MESSAGES} messages)")


class _StalledSocket:
    """A WebSocket whose sends after the first two block until ``go`` is set (a client that
    stopped reading while the server's buffers filled)."""

    def __init__(self):
        self.sent: list[dict] = []
        self.go = asyncio.Event()
        self.closed = asyncio.Event()

    async def accept(self):
        pass

    async def receive(self):
        await self.closed.wait()
        return {"type": "websocket.disconnect"}

    async def send_text(self, text: str):
        data = json.loads(text)
        self.sent += data if isinstance(data, list) else [data]
        if len(self.sent) >= 2:
            await self.go.wait()


def test_a_client_that_falls_off_the_ring_is_resynchronised():
    svc = Service("emu", load_capture(SAMPLE)[0][:4], load_config(None), tokens=Tokens(),
                  ring=64)
    ws = _StalledSocket()

    async def until(cond):
        while not cond():
            await asyncio.sleep(0.005)

    async def run():
        svc.hub.bind(asyncio.get_running_loop())
        task = asyncio.ensure_future(svc.follow(ws))
        await until(lambda: len(ws.sent) == 1)             # the snapshot
        s0 = ws.sent[0]["seq"]
        svc.hub.publish("test", {"n": 0})
        await until(lambda: len(ws.sent) == 2)             # in flight: its send blocks
        for n in range(1, 200):                            # far more than the ring holds
            svc.hub.publish("test", {"n": n})
        ws.go.set()
        await until(lambda: ws.sent[-1].get("n") == 199 or ws.sent[-1]["seq"] == s0 + 200)
        for n in range(200, 205):
            svc.hub.publish("test", {"n": n})
        await until(lambda: ws.sent[-1].get("n") == 204)
        ws.closed.set()
        await task
        return s0

    try:
        s0 = asyncio.run(run())
    finally:
        svc.close()
    kinds = [m["type"] for m in ws.sent]
    assert kinds[:3] == ["snapshot", "test", "resync"]
    r = 2
    resync = ws.sent[r]
    assert resync["missed_from"] == s0 + 2 and resync["seq"] == s0 + 200
    assert resync["state"]["identity"] is None              # a full state, not a delta
    after = [m["seq"] for m in ws.sent[r + 1:]]
    assert after == list(range(s0 + 201, s0 + 206))
    assert svc.resyncs == 1 and svc.clients == 0


async def _client(url: str, seconds: float) -> dict:
    import websockets
    r = {"snapshot": False, "messages": 0, "gaps": 0, "resyncs": 0, "bytes": 0, "frames": 0}
    t0 = time.monotonic()
    end = t0 + seconds
    async with websockets.connect(url, max_size=None) as ws:
        seq = None
        while time.monotonic() < end:
            try:
                text = await asyncio.wait_for(ws.recv(), max(0.01, end - time.monotonic()))
            except asyncio.TimeoutError:
                break
            data = json.loads(text)
            r["bytes"] += len(text)
            r["frames"] += 1
            for m in data if isinstance(data, list) else [data]:
                if m["type"] in ("snapshot", "resync"):
                    r["snapshot"] = True
                    r["resyncs"] += m["type"] == "resync"
                    seq = m["seq"]
                    continue
                if seq is not None and m["seq"] != seq + 1:
                    r["gaps"] += 1
                seq = m["seq"]
                r["messages"] += 1
    r["seconds"] = time.monotonic() - t0
    return r


async def _clients(url: str, n: int, seconds: float) -> list[dict]:
    return await asyncio.gather(*(_client(url, seconds) for _ in range(n)))


if __name__ == "__main__":
    for res in asyncio.run(_clients(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))):
        print(json.dumps(res))
