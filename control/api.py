"""The HTTP face of the control plane: REST, the WebSocket stream, /metrics, the dashboard.

Reads answer from the state the replay thread published at its last poll point (each answer
says which ``pass`` and ``position`` it is from); writes are queued to the replay thread and
answered once applied, with the audit entries they made. Refused requests get a 4xx whose
JSON body names the ``field`` at fault, and nothing is written.
"""

import asyncio
import contextlib
import re
from collections import deque
from pathlib import Path

from fastapi import FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from . import writes as W
from .auth import AuthMiddleware
from .metrics import exposition, registry_for

__all__ = ["create_app", "STATIC"]

STATIC = Path(__file__).resolve().parent / "static"
_SYMBOL = re.compile(r"[A-Za-z0-9 .\-]{1,8}")


def _copy(v):
    if isinstance(v, deque):
        return list(v)
    if isinstance(v, dict):
        return dict(v)
    return v


def _error(status: int, field: str, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


def create_app(svc) -> FastAPI:
    """The ASGI app of a :class:`~tickwire.control.service.Service`."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        svc.hub.bind(asyncio.get_running_loop())
        yield

    app = FastAPI(title="tickwire control plane", version="1",
                  description="Operate a tickwire device while it replays a capture: state, "
                              "book, orders, risk limits, kill switch, strategies, latency.",
                  lifespan=lifespan)
    registry = registry_for(svc)

    # ------------------------------------------------------------------ errors
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = []
        for e in exc.errors():
            loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "path", "query")]
            bad_json = e.get("type") == "json_invalid"
            field = "body" if bad_json or not loc else ".".join(loc)
            msg = "malformed JSON" if bad_json else e.get("msg", "invalid")
            errors.append({"field": field, "error": msg, "type": e.get("type")})
        first = errors[0]
        status = 400 if first["type"] == "json_invalid" else 422
        return JSONResponse({"error": f"{first['field']}: {first['error']}",
                             "field": first["field"], "errors": errors}, status_code=status)

    @app.exception_handler(W.WriteError)
    async def _refused(request: Request, exc: W.WriteError):
        return _error(exc.status, exc.field, exc.message)

    # ------------------------------------------------------------------ helpers
    def state(*keys):
        return svc.hub.snapshot(lambda st: {k: _copy(st.get(k)) for k in keys})[1]

    def where():
        return state("pass", "position")

    def known_symbol(symbol: str) -> str:
        if not _SYMBOL.fullmatch(symbol):
            raise W.WriteError(422, "symbol", f"symbol: {symbol!r} is not 1..8 letters or digits")
        if symbol not in state("symbols")["symbols"]:
            raise W.WriteError(404, "symbol", f"symbol: no slot holds {symbol!r}")
        return symbol

    async def run_write(write: W.Write) -> dict:
        fut = svc.replay.submit(write)
        wrapped = asyncio.wrap_future(fut)
        done, _ = await asyncio.wait({wrapped}, timeout=svc.write_timeout)
        if not done and fut.cancel():
            raise W.WriteError(504, "device", "device: it did not reach a poll point in "
                               f"{svc.write_timeout:g} s; nothing was written")
        entries = await wrapped
        return {"applied": entries, **where()}

    def who(request: Request) -> str:
        return request.scope["state"]["principal"]["who"]

    # ------------------------------------------------------------------ status, data
    @app.get("/api/status", summary="Identity and status of the device and the replay")
    def status():
        st = state("identity", "backend", "capture", "speed", "loop", "frames", "messages",
                   "pass", "position", "messages_done", "running", "finished", "error",
                   "device_time", "control", "status", "strategy", "orders_total")
        seq = svc.hub.seq
        return {**st, "seq": seq, "clients": svc.clients, "resyncs": svc.resyncs,
                "writes_enabled": bool(svc.tokens.write)}

    @app.get("/api/counters", summary="Every counter the device has (this pass), and which "
             "of them mean a book that lost state")
    def counters():
        return state("counters", "loss_counters", "device_time", "pass", "position")

    @app.get("/api/symbols", summary="Symbols in slot order")
    def symbols():
        return state("symbols", "pass", "position")

    @app.get("/api/book", summary="Top-N book of every symbol")
    def books(depth: int = Query(10, ge=1, le=64)):
        st = state("book", "pass", "position")
        st["book"] = {s: _top(b, depth) for s, b in st["book"].items()}
        return st

    @app.get("/api/book/{symbol}", summary="Top-N book of one symbol")
    def book(symbol: str, depth: int = Query(10, ge=1, le=64)):
        known_symbol(symbol)
        st = state("book", "pass", "position")
        b = st.pop("book").get(symbol, {"asks": [], "bids": []})
        return {"symbol": symbol, **_top(b, depth), **st}

    @app.get("/api/orders", summary="Recent orders, decoded from their OUCH Enter Order frames")
    def orders(limit: int = Query(100, ge=1, le=1000)):
        st = state("orders", "orders_total", "pass", "position")
        st["orders"] = st["orders"][-limit:]
        return st

    @app.get("/api/positions", summary="Positions and exposure per symbol, gross exposure")
    def positions():
        return state("positions", "gross", "pass", "position")

    @app.get("/api/latency", summary="Tick-to-trade latency histogram (fabric cycles)")
    def latency():
        st = state("latency", "identity", "pass", "position")
        ident = st.pop("identity") or {}
        return {**st, "time_unit": ident.get("time_unit")}

    @app.get("/api/alerts", summary="Recent alerts")
    def alerts(limit: int = Query(100, ge=1, le=1000)):
        return {"alerts": state("alerts")["alerts"][-limit:]}

    @app.get("/api/audit", summary="The audit log: every write, who, old and new value")
    def audit(limit: int = Query(100, ge=1, le=1000)):
        return {"entries": svc.audit.entries(limit), "file": str(svc.audit.path or "")}

    # ------------------------------------------------------------------ risk, kill
    @app.get("/api/risk", summary="Global risk limits, per-symbol limits and enables")
    def risk():
        return state("risk", "slots", "gross", "control", "status", "pass", "position")

    @app.put("/api/risk", summary="Change global risk limits (register units)")
    async def set_risk(body: W.RiskBody, request: Request):
        return await run_write(W.SetRisk(who(request), W.given(body)))

    @app.get("/api/risk/symbols/{symbol}", summary="One symbol's risk row and position")
    def slot(symbol: str):
        known_symbol(symbol)
        st = state("slots", "positions", "pass", "position")
        return {"symbol": symbol, **st.pop("slots")[symbol],
                **st.pop("positions").get(symbol, {}), **st}

    @app.put("/api/risk/symbols/{symbol}", summary="Change one symbol's limits or enable")
    async def set_slot(symbol: str, body: W.SlotBody, request: Request):
        known_symbol(symbol)
        return await run_write(W.SetSlot(who(request), symbol, W.given(body)))

    @app.get("/api/kill", summary="Kill switch state")
    def kill():
        st = state("control", "status", "pass", "position")
        return {"kill": bool(st["control"].get("kill")),
                "active": bool(st["status"].get("kill_active")),
                "tripped": bool(st["status"].get("kill_tripped")),
                "pass": st["pass"], "position": st["position"]}

    @app.put("/api/kill", summary="Set or clear the kill switch")
    async def set_kill(body: W.KillBody, request: Request):
        return await run_write(W.SetKill(who(request), body.kill))

    @app.post("/api/kill/clear-trip", summary="Re-arm a kill switch tripped by rejects")
    async def clear_trip(request: Request):
        return await run_write(W.ClearTrip(who(request)))

    # ------------------------------------------------------------------ strategies
    @app.get("/api/strategies", summary="Registered strategies, the selected one, parameters")
    def strategies():
        st = state("strategy", "strategy_params", "pass", "position")
        return {**st.pop("strategy"), "parameters": st.pop("strategy_params"),
                "changeable": {k: {"min": lo, "max": hi, "doc": d}
                               for k, (lo, hi, d) in W.STRATEGY_PARAMS.items()}, **st}

    @app.post("/api/strategies/{kind}/start", summary="Start a strategy (replacing the "
              "running one)")
    async def start_strategy(kind: str, request: Request):
        from ..host.strategies import STRATEGIES
        if kind not in STRATEGIES:
            raise W.WriteError(404, "kind", f"kind: unknown strategy {kind!r} (known: "
                               f"{', '.join(sorted(STRATEGIES))})")
        return await run_write(W.StartStrategy(who(request), kind))

    @app.post("/api/strategies/stop", summary="Stop the strategy (the order path is disabled)")
    async def stop_strategy(request: Request):
        return await run_write(W.StopStrategy(who(request)))

    @app.put("/api/strategies/parameters", summary="Change strategy parameters")
    async def set_params(body: W.StrategyParamsBody, request: Request):
        return await run_write(W.SetStrategyParams(who(request), W.given(body)))

    # ------------------------------------------------------------------ metrics, stream
    @app.get("/metrics", summary="Prometheus exposition", include_in_schema=True)
    def metrics():
        return Response(exposition(registry), media_type="text/plain; version=0.0.4")

    @app.websocket("/ws")
    async def stream(ws: WebSocket):
        await svc.follow(ws)

    # ------------------------------------------------------------------ dashboard
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.add_middleware(AuthMiddleware, tokens=svc.tokens)
    if svc.loopback:
        # a page elsewhere cannot reach a loopback service through a rebound DNS name
        app.add_middleware(TrustedHostMiddleware,
                           allowed_hosts=["127.0.0.1", "localhost", "[::1]", "::1"])
    return app


def _top(b: dict, depth: int) -> dict:
    return {"asks": b["asks"][:depth], "bids": b["bids"][:depth]}
