"""The remote back-end: any device's register bus and streams over TCP.

:func:`serve_device` puts a :class:`~tickwire.backends.base.Device` (emulator, RTL, board)
behind a TCP port; :class:`RemoteDevice` is the host's side, a ``Device`` like any other, so
``run_device(RemoteDevice(host, port, token), frames, config)`` runs as it does locally.

The server listens on loopback unless told otherwise and serves one client at a time: a
client must first say the configured token (compared in constant time); a client with another
token, or one that comes while another is served, gets a refusal and the connection is closed
(:class:`RemoteRefused` on its side). The device keeps its state between clients, as a board
does. The token authenticates; nothing is encrypted: across machines you do not trust the
network between, carry the port through an SSH tunnel.

Protocol (version 1). Every message is a little-endian ``u32`` length of what follows, then:

* request: ``u8`` op, ``u32`` count of posted register writes, that many ``(u32 addr, u32
  value)``, then the op's body. Register writes are posted like an AXI4-Lite master's: the
  client queues them and sends them ahead of its next request, and the server makes them
  first, in order (an error in them is reported by that request);
* reply: ``u8`` status (0 ok, 1 error, 2 refused), then the body; an error's body is JSON
  ``{"error": class name, "message", ...}`` (``op``, ``addr``, ``resp`` for a bus error).

Ops: ``H`` hello (JSON ``{"protocol", "token"}`` -> the device's kind, time unit, depth and
build id), ``R`` read32 (``u32`` addr -> ``u32``), ``W`` flush (the posted writes alone),
``L`` load, ``A`` advance (``i64`` to, -1: all -> position and the new input times), ``D``
drain, ``N`` now (-> ``i64``), ``C`` counters (-> JSON). Load and drain bodies are
:func:`pack_arrays` blocks: a JSON header naming each array's dtype and shape, then the arrays'
bytes (frames as one byte array and their lengths). No pickle: a message can only ever become
numbers, bytes and JSON.
"""

from __future__ import annotations

import hmac
import json
import os
import socket
import struct
import threading
from typing import Callable

import numpy as np

from .base import BackendUnavailable, Device, Outputs

__all__ = ["serve_device", "RemoteServer", "RemoteDevice", "RemoteRefused", "RemoteError",
           "ProtocolError", "DEFAULT_PORT", "PROTOCOL", "pack_arrays", "unpack_arrays"]

PROTOCOL = 1
#: the port ``tickwire device serve`` listens on unless told otherwise
DEFAULT_PORT = 7350
#: largest message accepted after the hello (a loaded capture travels in one)
MAX_MESSAGE = 1 << 30
#: largest hello, and how long a new connection may take to send it
MAX_HELLO = 4096
HELLO_TIMEOUT = 10.0

OK, ERROR, REFUSED = 0, 1, 2
HELLO, READ, FLUSH, LOAD, ADVANCE, DRAIN, NOW, COUNTERS = (ord(c) for c in "HRWLADNC")
#: dtypes an array block may carry
_DTYPES = {"|u1", "<u4", "<i4", "<u8", "<i8"}
#: posted writes sent on their own once this many are queued (bounds the client's memory)
_MAX_POSTED = 1 << 16


class ProtocolError(ConnectionError):
    """The peer sent something that is not this protocol."""


class RemoteRefused(ConnectionError):
    """The server refused this client (wrong or missing token, or busy with another)."""


class RemoteError(RuntimeError):
    """The remote device raised an error the client has no class for."""


# ------------------------------------------------------------------------------ framing

def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionError(f"connection closed with {n - got} of {n} bytes unread")
        got += k
    return bytes(buf)


def _recv_message(sock: socket.socket, limit: int, *, eof_ok: bool = False) -> bytes | None:
    """One message's bytes; None at a close between messages when ``eof_ok``."""
    if eof_ok:
        first = sock.recv(4)
        if not first:
            return None
        head = first + _recv_exact(sock, 4 - len(first))
    else:
        head = _recv_exact(sock, 4)
    (n,) = struct.unpack("<I", head)
    if n < 1 or n > limit:
        raise ProtocolError(f"message of {n} bytes (1..{limit} allowed)")
    return _recv_exact(sock, n)


def _send_message(sock: socket.socket, *parts: bytes) -> None:
    n = sum(len(p) for p in parts)
    sock.sendall(b"".join((struct.pack("<I", n),) + parts))


def pack_arrays(meta: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """A JSON header (``meta`` and each array's name, dtype and shape) and the arrays' bytes."""
    specs, blobs = [], []
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        a = a.astype(a.dtype.newbyteorder("<")) if a.dtype.byteorder == ">" else a
        if a.dtype.str not in _DTYPES:
            raise ValueError(f"array {name}: dtype {a.dtype.str} cannot travel")
        specs.append([name, a.dtype.str, list(a.shape)])
        blobs.append(a.tobytes())
    head = json.dumps({"meta": meta, "arrays": specs}).encode()
    return struct.pack("<I", len(head)) + head + b"".join(blobs)


def unpack_arrays(body: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The inverse of :func:`pack_arrays`; raises ProtocolError on anything inconsistent."""
    try:
        (hn,) = struct.unpack_from("<I", body)
        head = json.loads(body[4:4 + hn])
        meta, specs = head["meta"], head["arrays"]
        off, out = 4 + hn, {}
        for name, dt, shape in specs:
            if dt not in _DTYPES or any(int(s) < 0 for s in shape):
                raise ValueError(f"array {name}: {dt} {shape}")
            dtype = np.dtype(dt)
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if off + nbytes > len(body):
                raise ValueError(f"array {name} runs past the message")
            out[name] = np.frombuffer(body, dtype, nbytes // dtype.itemsize,
                                      off).reshape(shape)
            off += nbytes
        if off != len(body):
            raise ValueError(f"{len(body) - off} bytes after the last array")
    except (ValueError, KeyError, TypeError, struct.error) as e:
        raise ProtocolError(f"malformed array block: {e}") from None
    return meta, out


def _frames_arrays(frames) -> tuple[np.ndarray, np.ndarray]:
    lens = np.fromiter((len(f) for f in frames), np.uint32, len(frames))
    return lens, np.frombuffer(b"".join(frames), np.uint8)


def _frames_of(lens: np.ndarray, data: np.ndarray) -> list[bytes]:
    if int(lens.sum(dtype=np.int64)) != len(data):
        raise ProtocolError("frame lengths do not add up to the frame bytes")
    raw, out, off = data.tobytes(), [], 0
    for n in lens.tolist():
        out.append(raw[off:off + n])
        off += n
    return out


def _error_body(e: BaseException) -> bytes:
    from ..host.driver import BusError
    d = {"error": type(e).__name__, "message": str(e)}
    if isinstance(e, BusError):
        d.update(op=e.op, addr=e.addr, resp=e.resp)
    return json.dumps(d).encode()


def _raise_remote(body: bytes) -> None:
    """Raise the error a server reported, as the client's own class where it has one."""
    from ..host.driver import BusError, IdentityError
    try:
        d = json.loads(body)
        name, msg = str(d["error"]), str(d["message"])
    except (ValueError, KeyError, TypeError):
        raise ProtocolError(f"unreadable error reply: {body[:200]!r}") from None
    if name == "BusError":
        raise BusError(str(d.get("op", "?")), int(d.get("addr", 0)), int(d.get("resp", 2)))
    known = {"ValueError": ValueError, "IdentityError": IdentityError,
             "BackendUnavailable": BackendUnavailable, "NotImplementedError": NotImplementedError}
    raise known.get(name, RemoteError)(f"remote device: {msg}" if name in known
                                       else f"remote device: {name}: {msg}")


# ------------------------------------------------------------------------------ server

class RemoteServer:
    """A device served on ``host:port`` (see the module doc). :meth:`start` serves from a
    background thread, :meth:`serve_forever` from the caller's; :meth:`close` stops. The
    device stays the caller's: the server never opens or closes it."""

    def __init__(self, device: Device, host: str = "127.0.0.1", port: int = 0, *,
                 token: str, log: Callable[[str], None] | None = None,
                 max_message: int = MAX_MESSAGE):
        if not token:
            raise ValueError("remote server: a token is required (clients must say it)")
        self.device, self.token = device, token.encode()
        self.log = log or (lambda msg: None)
        self.max_message = max_message
        self._sock = socket.create_server((host, port))
        self._sock.settimeout(0.2)   # the accept loop looks at the stop flag this often
        self.address = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._client: socket.socket | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ life cycle
    def start(self) -> "RemoteServer":
        t = threading.Thread(target=self.serve_forever, name="tickwire-remote", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def serve_forever(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break                     # the listening socket was closed
            t = threading.Thread(target=self._session, args=(conn, peer), daemon=True)
            t.start()
            self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        with self._lock:
            if self._client is not None:
                try:
                    self._client.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=30)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no client is being served (a client that closed has been seen to);
        False if ``timeout`` passed first."""
        return self._idle.wait(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ one connection
    def _session(self, conn: socket.socket, peer) -> None:
        who = f"{peer[0]}:{peer[1]}"
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # a client whose machine vanished must not hold the device for ever
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            conn.settimeout(HELLO_TIMEOUT)
            try:
                ok = self._hello(conn, who)
            except (OSError, ProtocolError) as e:
                self.log(f"{who}: dropped before hello ({e})")
                return
            if not ok:
                return
            conn.settimeout(None)
            try:
                self._serve_client(conn)
                self.log(f"{who}: left")
            except (OSError, ProtocolError) as e:
                self.log(f"{who}: connection ended ({e})")
            finally:
                with self._lock:
                    self._client = None
                    self._idle.set()

    def _refuse(self, conn: socket.socket, who: str, why: str) -> bool:
        self.log(f"{who}: refused ({why})")
        _send_message(conn, bytes([REFUSED]), json.dumps(
            {"error": "RemoteRefused", "message": why}).encode())
        conn.shutdown(socket.SHUT_WR)
        return False

    def _hello(self, conn: socket.socket, who: str) -> bool:
        msg = _recv_message(conn, MAX_HELLO)
        if msg[0] != HELLO or len(msg) < 5:
            return self._refuse(conn, who, "the first message must be a hello")
        try:
            hello = json.loads(msg[5:])
            token = str(hello.get("token") or "").encode()
            proto = int(hello.get("protocol", 0))
        except (ValueError, AttributeError, TypeError):
            return self._refuse(conn, who, "unreadable hello")
        if not hmac.compare_digest(token, self.token):
            return self._refuse(conn, who, "wrong or missing token" if token else
                                "no token given (set TICKWIRE_TOKEN or pass token=)")
        if proto != PROTOCOL:
            return self._refuse(conn, who, f"protocol {proto}; this server speaks {PROTOCOL}")
        with self._lock:
            if self._client is not None:
                busy = True
            else:
                busy, self._client = False, conn
                self._idle.clear()
        if busy:
            return self._refuse(conn, who, "busy: the device is serving another client")
        d = self.device
        _send_message(conn, bytes([OK]), json.dumps(
            {"protocol": PROTOCOL, "kind": d.kind, "time_unit": d.time_unit,
             "depth": int(d.depth), "build_id": d.build_id()}).encode())
        self.log(f"{who}: connected")
        return True

    def _serve_client(self, conn: socket.socket) -> None:
        while not self._stop.is_set():
            msg = _recv_message(conn, self.max_message, eof_ok=True)
            if msg is None:
                return                            # the client closed between messages
            op = msg[0]
            if len(msg) < 5:
                raise ProtocolError("request shorter than its header")
            (nw,) = struct.unpack_from("<I", msg, 1)
            body_at = 5 + 8 * nw
            if body_at > len(msg):
                raise ProtocolError(f"{nw} posted writes run past the request")
            writes = np.frombuffer(msg, "<u4", 2 * nw, 5).reshape(nw, 2)
            try:
                for addr, value in writes.tolist():
                    self.device.bus.write32(addr, value)
                reply = self._op(op, memoryview(msg)[body_at:])
                status = OK
            except ProtocolError:
                raise
            except Exception as e:          # the device's error goes back to the client
                reply, status = _error_body(e), ERROR
            _send_message(conn, bytes([status]), reply)

    def _op(self, op: int, body: memoryview) -> bytes:
        d = self.device
        if op == READ:
            (addr,) = struct.unpack("<I", body)
            return struct.pack("<I", int(d.bus.read32(addr)) & 0xFFFFFFFF)
        if op == FLUSH:
            return b""
        if op == LOAD:
            meta, a = unpack_arrays(bytes(body))
            frames = _frames_of(a["lens"], a["data"])
            line_b = _frames_of(a["lens_b"], a["data_b"]) if "lens_b" in a else None
            d.load(frames, line_b=line_b,
                   gaps=a["gaps"].tolist() if "gaps" in a else None,
                   gaps_b=a["gaps_b"].tolist() if "gaps_b" in a else None)
            return b""
        if op == ADVANCE:
            (to,) = struct.unpack("<q", body)
            before = len(getattr(d, "input_times", []))
            d.advance(None if to < 0 else to)
            times = np.asarray(getattr(d, "input_times", [])[before:], "<i8")
            return pack_arrays({"position": int(d.position)}, {"input_times": times})
        if op == DRAIN:
            return _pack_outputs(d.drain(), d.depth)
        if op == NOW:
            return struct.pack("<q", int(d.now()))
        if op == COUNTERS:
            return json.dumps({k: int(v) for k, v in d.counters().items()}).encode()
        raise ProtocolError(f"unknown op 0x{op:02x}")


def _pack_outputs(out: Outputs, depth: int) -> bytes:
    lens, data = _frames_arrays(out.frames)
    seq, ts, slot, lv = out.rows
    arrays = {"lens": lens, "data": data, "times": np.asarray(out.frame_times, "<i8"),
              "row_seq": np.asarray(seq, "<u8"), "row_ts": np.asarray(ts, "<u8"),
              "row_slot": np.asarray(slot, "<i4"),
              "row_levels": np.asarray(lv, "<u4").reshape(len(slot), -1, 4)}
    sequences = getattr(out, "sequences", None)
    if sequences is not None:
        arrays["sequences"] = np.asarray(sequences, "<u8")
    return pack_arrays({"depth": depth}, arrays)


def _unpack_outputs(body: bytes) -> Outputs:
    meta, a = unpack_arrays(body)
    rows = (a["row_seq"].astype(np.uint64), a["row_ts"].astype(np.uint64),
            a["row_slot"].astype(np.int32), a["row_levels"].astype(np.uint32))
    out = Outputs(frames=_frames_of(a["lens"], a["data"]),
                  frame_times=a["times"].tolist(), rows=rows)
    if "sequences" in a:
        out.sequences = a["sequences"].tolist()
    return out


def serve_device(device: Device, host: str = "127.0.0.1", port: int = 0, *, token: str,
                 log: Callable[[str], None] | None = None) -> RemoteServer:
    """Serve ``device`` on ``host:port`` (0: a free port; ``.address`` says which) from a
    background thread; ``close()`` the returned server to stop."""
    return RemoteServer(device, host, port, token=token, log=log).start()


# ------------------------------------------------------------------------------ client

class _RemoteBus:
    """Writes are posted (sent ahead of the next request); a read is one round trip."""

    def __init__(self, dev: "RemoteDevice"):
        self.dev = dev

    def write32(self, addr: int, value: int) -> None:
        self.dev._posted.append((addr & 0xFFFFFFFF, value & 0xFFFFFFFF))
        if len(self.dev._posted) >= _MAX_POSTED:
            self.dev._call(FLUSH)

    def read32(self, addr: int) -> int:
        (v,) = struct.unpack("<I", self.dev._call(READ, struct.pack("<I", addr & 0xFFFFFFFF)))
        return v


class RemoteDevice(Device):
    """A device served by :func:`serve_device` on ``host:port``; ``token`` defaults to the
    ``TICKWIRE_TOKEN`` environment variable. Connects on first use (or :meth:`open`);
    ``timeout``: seconds any one reply may take (a long advance on the RTL included)."""

    kind = "remote"

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 token: str | None = None, *, timeout: float | None = 600.0):
        super().__init__()
        self.host, self.port, self.timeout = host, int(port), timeout
        self.token = os.environ.get("TICKWIRE_TOKEN", "") if token is None else token
        self.bus = _RemoteBus(self)
        self._sock: socket.socket | None = None
        self._posted: list[tuple[int, int]] = []
        self.remote: dict = {}

    # ------------------------------------------------------------ connection
    def open(self) -> "RemoteDevice":
        if self._sock is not None:
            return self
        where = f"remote device {self.host}:{self.port}"
        try:
            sock = socket.create_connection((self.host, self.port), timeout=HELLO_TIMEOUT)
        except OSError as e:
            raise ConnectionError(f"{where}: cannot connect: {e}") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _send_message(sock, bytes([HELLO]), struct.pack("<I", 0), json.dumps(
                {"protocol": PROTOCOL, "token": self.token}).encode())
            reply = _recv_message(sock, MAX_HELLO)
        except OSError as e:
            sock.close()
            raise ConnectionError(f"{where}: no answer to the hello: {e}") from None
        if reply[0] != OK:
            sock.close()
            try:
                why = json.loads(reply[1:])["message"]
            except (ValueError, KeyError, TypeError):
                why = reply[1:200].decode("latin-1")
            raise RemoteRefused(f"{where} refused this client: {why}")
        sock.settimeout(self.timeout)
        self.remote = json.loads(reply[1:])
        self._sock = sock
        return self

    def close(self) -> None:
        if self._sock is None:
            return
        try:
            if self._posted:
                self._call(FLUSH)
        finally:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def _call(self, op: int, body: bytes = b"") -> bytes:
        """One request (the posted writes ahead of it) and its reply's body."""
        self.open()
        posted, self._posted = self._posted, []
        head = struct.pack("<BI", op, len(posted))
        writes = np.asarray(posted, "<u4").tobytes() if posted else b""
        try:
            _send_message(self._sock, head, writes, body)
            reply = _recv_message(self._sock, MAX_MESSAGE)
        except OSError:
            self._sock.close()    # the stream is out of step after a failed exchange
            self._sock = None
            raise
        if reply[0] == OK:
            return reply[1:]
        if reply[0] == ERROR:
            _raise_remote(reply[1:])
        raise ProtocolError(f"reply status {reply[0]}")

    # ------------------------------------------------------------ what the server said
    @property
    def depth(self) -> int:
        return int(self.open().remote["depth"])

    @property
    def time_unit(self) -> str:
        return str(self.open().remote["time_unit"])

    @property
    def remote_kind(self) -> str:
        """The kind of the device behind the server (``emu``, ``rtl``, ...)."""
        return str(self.open().remote["kind"])

    def build_id(self) -> int | None:
        return self.open().remote.get("build_id")

    # ------------------------------------------------------------ market data
    def load(self, frames, *, line_b=None, gaps=None, gaps_b=None) -> None:
        super().load(frames, line_b=line_b, gaps=gaps, gaps_b=gaps_b)
        lens, data = _frames_arrays(self.frames)
        arrays = {"lens": lens, "data": data}
        if line_b:
            arrays["lens_b"], arrays["data_b"] = _frames_arrays(self.frames_b)
        if gaps is not None:
            arrays["gaps"] = np.asarray(gaps, "<u4")
        if gaps_b is not None:
            arrays["gaps_b"] = np.asarray(gaps_b, "<u4")
        self._call(LOAD, pack_arrays({}, arrays))

    def advance(self, to: int | None = None) -> None:
        meta, a = unpack_arrays(self._call(ADVANCE, struct.pack("<q", -1 if to is None
                                                                else int(to))))
        self.position = int(meta["position"])
        self.input_times += a["input_times"].tolist()

    def drain(self) -> Outputs:
        return _unpack_outputs(self._call(DRAIN))

    def now(self) -> int:
        return struct.unpack("<q", self._call(NOW))[0]

    def counters(self) -> dict[str, int]:
        """The counters as the device behind the server reads them."""
        return json.loads(self._call(COUNTERS))

    def flush(self) -> None:
        """Send the posted register writes now."""
        self._call(FLUSH)
