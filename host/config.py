"""Pipeline configuration: capacities, feed filter, symbols, strategy, risk limits (TOML).

Every number here maps onto a table or register of the pipeline (docs/architecture.md); the
defaults are what `tickwire run` uses when no ``--config`` is given.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path

import tomli_w

from ..spec.capacity import EMULATOR

__all__ = ["Capacity", "Feed", "Strategy", "Risk", "Orders", "Session", "Config", "load_config",
           "ConfigError"]


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key."""


@dataclass
class Capacity:
    """The emulator's book capacities (defaults: :data:`tickwire.spec.capacity.EMULATOR`)."""
    symbols: int = EMULATOR["symbols"]
    order_buckets: int = EMULATOR["order_buckets"]
    order_ways: int = EMULATOR["order_ways"]
    levels: int = EMULATOR["levels"]


@dataclass
class Feed:
    #: accepted (group, port) pairs as "a.b.c.d:port"; empty accepts every group
    groups: list[str] = field(default_factory=list)


@dataclass
class Strategy:
    #: "band": re-centre buy/sell triggers at mid -/+ band_bps at each host poll;
    #: "static": the per-symbol triggers below; "model": model-driven (tickwire.models);
    #: "none": no triggers.
    kind: str = "band"
    band_bps: int = 15
    quantity: int = 100
    rearm: int = 1
    #: what fires a trigger side: "book" (the best price of the book after a message, or an
    #: add that crosses), "wire" (only an add that crosses: evaluated as its price arrives;
    #: docs/architecture.md "Trigger sources")
    source: str = "book"
    #: host poll interval, in messages: triggers are (re)written between polls
    poll_messages: int = 2048
    #: "static" triggers: {"AAPL" = {buy = 1500000, sell = 1510000, quantity = 100}}
    triggers: dict = field(default_factory=dict)
    #: model-driven: path of an ONNX model (default: the bundled one)
    model: str = ""


@dataclass
class Risk:
    kill: bool = False
    kill_after_rejects: int = 0
    max_order_qty: int = 1_000
    max_notional: int = 250_000 * 10_000          # $250k in 1/10000 USD
    collar_bps: int = 500
    max_gross: int = 5_000_000 * 10_000           # $5M
    max_long: int = 2_000
    max_short: int = 2_000
    symbol_burst: int = 4
    symbol_refill_ns: int = 250_000_000           # one order per 250 ms per symbol, sustained
    global_burst: int = 16
    global_refill_ns: int = 20_000_000            # 50 orders/s across the book
    dup_window_ns: int = 1_000_000
    #: symbols whose risk enable is clear
    disabled: list[str] = field(default_factory=list)


@dataclass
class Orders:
    first_user_ref: int = 1
    capacity: str = "P"


@dataclass
class Session:
    """Order-entry TCP session template (host-maintained; the fabric advances seq and IP id)."""
    src_mac: str = "02:00:00:00:00:10"
    dst_mac: str = "02:00:00:00:00:20"
    src_ip: str = "10.0.0.10"
    dst_ip: str = "10.0.0.20"
    src_port: int = 40000
    dst_port: int = 15000
    seq: int = 1000
    ack: int = 1
    window: int = 65535
    vlan: int = -1          # -1: untagged
    ttl: int = 64
    ip_id: int = 0          # IPv4 identification of the first order frame


@dataclass
class Config:
    capacity: Capacity = field(default_factory=Capacity)
    feed: Feed = field(default_factory=Feed)
    #: tracked symbols; empty: every symbol seen, up to capacity.symbols (auto mode)
    symbols: list[str] = field(default_factory=list)
    strategy: Strategy = field(default_factory=Strategy)
    risk: Risk = field(default_factory=Risk)
    orders: Orders = field(default_factory=Orders)
    session: Session = field(default_factory=Session)

    def to_toml(self) -> str:
        return tomli_w.dumps(asdict(self))

    def validate(self) -> "Config":
        if len(self.symbols) > self.capacity.symbols:
            raise ConfigError(f"symbols: {len(self.symbols)} names exceed "
                              f"capacity.symbols={self.capacity.symbols}")
        for s in self.symbols:
            if not 1 <= len(s) <= 8 or not s.isascii():
                raise ConfigError(f"symbols: {s!r} is not 1..8 ASCII characters")
        if self.strategy.kind not in ("band", "static", "model", "none"):
            raise ConfigError(f"strategy.kind={self.strategy.kind!r}: one of band, static, "
                              "model, none")
        if self.strategy.rearm not in (0, 1):
            raise ConfigError("strategy.rearm: 0 (one-shot) or 1 (edge)")
        if self.strategy.source not in ("book", "wire"):
            raise ConfigError(f"strategy.source: 'book' or 'wire', not "
                              f"{self.strategy.source!r}")
        if self.strategy.poll_messages < 1:
            raise ConfigError("strategy.poll_messages: must be >= 1")
        if len(self.orders.capacity) != 1:
            raise ConfigError("orders.capacity: one character")
        for g in self.feed.groups:
            try:
                ip, port = g.rsplit(":", 1)
                parts = [int(x) for x in ip.split(".")]
                assert len(parts) == 4 and all(0 <= x < 256 for x in parts)
                assert 0 < int(port) < 65536
            except (ValueError, AssertionError):
                raise ConfigError(f"feed.groups: {g!r} is not 'a.b.c.d:port'") from None
        return self


def _build(cls, data: dict, where: str):
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for k, v in data.items():
        if k not in known:
            raise ConfigError(f"{where}{k}: unknown key (known: {', '.join(known)})")
        default = known[k].default_factory() if callable(known[k].default_factory) \
            else known[k].default
        if is_dataclass(default):
            if not isinstance(v, dict):
                raise ConfigError(f"{where}{k}: expected a table")
            kwargs[k] = _build(type(default), v, f"{where}{k}.")
        else:
            if isinstance(default, bool) and not isinstance(v, bool):
                raise ConfigError(f"{where}{k}: expected true/false, got {v!r}")
            if isinstance(default, int) and not isinstance(default, bool) and (
                    not isinstance(v, int) or isinstance(v, bool)):
                raise ConfigError(f"{where}{k}: expected an integer, got {v!r}")
            if isinstance(default, (str, list, dict)) and not isinstance(v, type(default)):
                raise ConfigError(f"{where}{k}: expected a {type(default).__name__}, got {v!r}")
            kwargs[k] = v
    return cls(**kwargs)


def load_config(path: str | Path | None = None) -> Config:
    """Defaults, overridden by the TOML file at ``path`` if given."""
    if path is None:
        return Config().validate()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: {e}") from None
    try:
        return _build(Config, data, "").validate()
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
