"""Who may do what: a write token, an optional read-only token, checked before routing.

* Writes (``POST``/``PUT``/``PATCH``/``DELETE`` under ``/api``) need the write token; without
  one configured they are refused outright.
* Reads (``GET`` under ``/api``, ``/metrics``, the ``/ws`` stream) need a token (read or
  write) once a read-only token is configured or the service listens beyond loopback;
  otherwise they are open to the local machine.
* The dashboard's files and the OpenAPI description hold no device data and are public.

A token comes as ``Authorization: Bearer <token>`` or, where a browser cannot set headers
(a WebSocket, a link), as the ``token`` query parameter. ``X-Operator`` names the person in
the audit log (default ``operator``); the client's address is appended.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

__all__ = ["Tokens", "AuthMiddleware", "is_loopback"]

_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_OPERATOR = re.compile(r"[A-Za-z0-9_.@ -]{1,64}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Tokens:
    write: str | None = None
    read: str | None = None
    #: reads need a token (a read token is set, or the service listens beyond loopback)
    reads_need_token: bool = False

    def role(self, presented: str | None) -> str | None:
        if not presented:
            return None
        if self.write and hmac.compare_digest(presented.encode(), self.write.encode()):
            return "write"
        if self.read and hmac.compare_digest(presented.encode(), self.read.encode()):
            return "read"
        return None


def _token(scope) -> str | None:
    for k, v in scope.get("headers", []):
        if k == b"authorization":
            text = v.decode("latin-1")
            if text.lower().startswith("bearer "):
                return text[7:].strip()
    qs = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return qs.get("token", [None])[0]


def _operator(scope) -> str:
    name = "operator"
    for k, v in scope.get("headers", []):
        if k == b"x-operator":
            text = v.decode("latin-1").strip()
            if _OPERATOR.fullmatch(text):
                name = text
    client = scope.get("client") or ("?", 0)
    return f"{name}@{client[0]}"


class AuthMiddleware:
    """ASGI middleware: refuses what the caller's token does not allow, before routing (so
    a refused write is never parsed, let alone applied); sets ``scope["state"]["principal"]``
    to ``{"role", "who"}``."""

    def __init__(self, app, tokens: Tokens):
        self.app, self.tokens = app, tokens

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope["path"]
        guarded = path.startswith("/api") or path in ("/metrics", "/ws")
        role = self.tokens.role(_token(scope))
        scope.setdefault("state", {})["principal"] = {"role": role, "who": _operator(scope)}
        if not guarded:
            return await self.app(scope, receive, send)
        write = scope["type"] == "http" and scope["method"] in _WRITE_METHODS
        if write:
            if not self.tokens.write:
                return await _refuse(scope, send, 403, "writes are disabled: start the server "
                                     "with --token or TICKWIRE_TOKEN")
            if role is None:
                return await _refuse(scope, send, 401, "this write needs the write token")
            if role != "write":
                return await _refuse(scope, send, 403, "the read-only token cannot write")
        elif self.tokens.reads_need_token and role is None:
            if scope["type"] == "websocket":
                await receive()             # the handshake's websocket.connect
            return await _refuse(scope, send, 401, "a read or write token is required")
        return await self.app(scope, receive, send)


async def _refuse(scope, send, status: int, message: str) -> None:
    if scope["type"] == "websocket":
        # closing before accepting: the client's handshake gets HTTP 403
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    body = json.dumps({"error": message, "field": "token"}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
