"""The control plane as one object: replay thread, hub, audit log, tokens and the ASGI app;
:class:`ServerThread` runs it on uvicorn in a thread, :func:`serve` is ``tickwire serve``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
from starlette.websockets import WebSocketDisconnect

from .audit import AuditLog
from .auth import Tokens, is_loopback
from .hub import RING, Hub
from .replay import Replay, Speed

__all__ = ["Service", "ServerThread", "load_capture", "serve"]


def load_capture(path: str | Path) -> tuple[list[bytes], np.ndarray | None]:
    """A capture's frames and, for pcap/pcapng, their timestamps (ns)."""
    from ..backends.wire import frames_of
    from ..host import capture
    frames = frames_of(path)
    ts = None
    if capture.sniff_format(path) != "binaryfile":
        ts = np.asarray(capture.read_capture(path).timestamps_ns, np.int64)
    return frames, ts


def _jsonable(st: dict) -> dict:
    return {k: (list(v) if isinstance(v, deque) else v) for k, v in st.items()}


class Service:
    """``frames`` replayed through ``backend`` under ``config``, operated over HTTP."""

    def __init__(self, backend: str, frames: list[bytes], config, *, tokens: Tokens,
                 audit_path: str | Path | None = None, speed: Speed = Speed(),
                 loop: bool = True, capture: str = "", timestamps_ns=None,
                 device_options: dict | None = None, host: str = "127.0.0.1",
                 write_timeout: float = 60.0, state_interval: float = 0.1,
                 ring: int = RING):
        self.hub = Hub(ring)
        self.audit = AuditLog(audit_path)
        self.tokens = tokens
        self.loopback = is_loopback(host)
        self.write_timeout = write_timeout
        self.replay = Replay(backend, frames, config, hub=self.hub, audit=self.audit,
                             speed=speed, loop=loop, timestamps_ns=timestamps_ns,
                             capture=capture, device_options=device_options,
                             state_interval=state_interval)
        self.clients = 0
        self.resyncs = 0
        from .api import create_app
        self.app = create_app(self)

    def start(self) -> "Service":
        self.replay.start()
        return self

    def close(self) -> None:
        self.replay.stop()
        self.audit.close()

    # ---------------------------------------------------------------- WebSocket
    def snapshot_text(self, kind: str = "snapshot", **extra) -> tuple[int, str]:
        """The whole published state as one message whose ``seq`` is the last message it
        includes: a client follows on from ``seq + 1``."""
        hub = self.hub
        return hub.snapshot(lambda st: (hub.seq, json.dumps(
            {"seq": hub.seq, "type": kind, **extra, "state": _jsonable(st)},
            separators=(",", ":"))))[1]

    async def follow(self, ws) -> None:
        """One WebSocket client: a snapshot, then every message in sequence (a frame holds
        one message, or a JSON array of consecutive ones); a client that fell further behind
        than the hub keeps gets a ``resync`` snapshot naming the first sequence number it
        missed."""
        await ws.accept()
        self.clients += 1
        hub = self.hub
        closed = asyncio.ensure_future(_until_closed(ws))
        try:
            cursor, text = self.snapshot_text()
            await ws.send_text(text)
            while not closed.done():
                texts, last, lost = hub.since(cursor)
                if lost:
                    self.resyncs += 1
                    cursor, text = self.snapshot_text("resync", missed_from=cursor + 1)
                    await ws.send_text(text)
                    continue
                if texts:
                    # a client that is behind gets what it missed in one frame (a JSON
                    # array): fewer sends the further behind, so it catches up
                    await ws.send_text(texts[0] if len(texts) == 1 else
                                       "[" + ",".join(texts) + "]")
                    cursor = last
                    continue
                waiter = asyncio.ensure_future(hub.wait(cursor))
                await asyncio.wait({waiter, closed}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
        except (WebSocketDisconnect, OSError, RuntimeError):   # it went away mid-send
            pass
        finally:
            closed.cancel()
            self.clients -= 1


async def _until_closed(ws) -> None:
    """Read (and ignore) what the client sends, until it disconnects."""
    while True:
        msg = await ws.receive()
        if msg["type"] == "websocket.disconnect":
            return


class ServerThread:
    """uvicorn serving ``service.app`` in a thread (``port`` 0: a free port, see ``.port``)."""

    def __init__(self, service: Service, host: str = "127.0.0.1", port: int = 0):
        import uvicorn
        self.service = service
        # no per-message deflate: compressing the stream for every client costs the server
        # more than loopback or a LAN saves
        cfg = uvicorn.Config(service.app, host=host, port=port, log_level="warning",
                             lifespan="on", ws="auto", ws_per_message_deflate=False)
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, name="tickwire-http",
                                       daemon=True)
        self.host, self.port = host, port

    def start(self, timeout: float = 30.0) -> "ServerThread":
        self.thread.start()
        end = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > end:
                raise RuntimeError(f"the control plane did not start on {self.host}:"
                                   f"{self.port}")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(15)


def serve(backend: str, capture: Path, config, *, host: str, port: int, token: str | None,
          read_token: str | None, speed: str, loop: bool, audit_log: Path | None,
          device_options: dict | None = None) -> None:
    """``tickwire serve``: replay, serve, print where, run until interrupted."""
    spd = Speed.parse(speed)
    if backend == "rtl" and not config.symbols:
        raise ValueError("--backend rtl needs explicit symbols in the config (symbols = "
                         "[...]): they name the slots of the gateware's book and order egress")
    loopback = is_loopback(host)
    if not loopback and not (token or read_token):
        raise ValueError(f"--host {host} is beyond loopback: give --read-token (and --token "
                         "for writes) so the device is not open to the network")
    tokens = Tokens(write=token or None, read=read_token or None,
                    reads_need_token=bool(read_token) or not loopback)
    frames, ts = load_capture(capture)
    svc = Service(backend, frames, config, tokens=tokens, audit_path=audit_log, speed=spd,
                  loop=loop, capture=str(capture), timestamps_ns=ts, host=host,
                  device_options=device_options)
    srv = ServerThread(svc, host, port)
    # an interrupt (or a TERM from a supervisor) stops the service even when the process was
    # started with SIGINT ignored, as nohup, some supervisors and test runners start it:
    # Python then leaves the inherited SIG_IGN in place
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"tickwire: opening the {backend} device", file=sys.stderr)
    svc.start()
    try:
        while not svc.replay.started.wait(0.5):
            pass
        if svc.replay.error:
            raise SystemExit(f"tickwire: the replay stopped: {svc.replay.error}")
        srv.start()
        print(f"tickwire: serving the {backend} back-end replaying {capture} "
              f"({len(frames):,} frames, {spd}{', looping' if loop else ''})", file=sys.stderr)
        print(f"tickwire: dashboard {srv.url}/  API {srv.url}/openapi.json  metrics "
              f"{srv.url}/metrics", file=sys.stderr)
        print("tickwire: writes " + ("need the write token" if tokens.write else
                                     "are disabled (no --token / TICKWIRE_TOKEN)")
              + (f"; audit log {audit_log}" if audit_log else ""), file=sys.stderr)
        while srv.thread.is_alive():
            srv.thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
        svc.close()
    if svc.replay.error:
        raise SystemExit(f"tickwire: the replay stopped: {svc.replay.error}")
