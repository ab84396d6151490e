"""Strategies: host code that reads the book and writes triggers and limits, on any back-end.

A strategy sees the appliance through a :class:`Context`: the register driver of the device
(the same calls on the emulator, the RTL and a board), the book as the device reported it
(its top-N rows, kept per slot in :class:`BookView`), the slot names and the stream position.
The host loop (:func:`tickwire.host.hostloop.run_device`) calls :meth:`Strategy.start` before
the first frame and :meth:`Strategy.poll` at each poll point; what a strategy writes through
the driver lands before the next frame, on every back-end alike.

New strategies register with :func:`register` under the name ``strategy.kind`` selects; no
back-end knows about them.
"""

from __future__ import annotations

import numpy as np

from ..spec.values import TICK

__all__ = ["Strategy", "Context", "BookView", "StrategyManager", "register", "STRATEGIES",
           "StaticStrategy", "BandStrategy", "ModelStrategy"]

#: strategy.kind -> class
STRATEGIES: dict[str, type["Strategy"]] = {}


def register(kind: str):
    """Class decorator: make a :class:`Strategy` selectable as ``strategy.kind = kind``."""
    def deco(cls):
        if kind in STRATEGIES:
            raise ValueError(f"strategy {kind!r} is registered already")
        cls.kind = kind
        STRATEGIES[kind] = cls
        return cls
    return deco


class BookView:
    """The newest top-N row of each slot, from the rows a device reported."""

    def __init__(self, slots: int, depth: int):
        self.depth = depth
        self.levels = np.zeros((slots, depth, 4), np.int64)
        #: this poll's rows: slots and levels, in arrival order
        self.slots = np.zeros(0, np.int64)
        self.rows = np.zeros((0, depth, 4), np.int64)

    def update(self, rows) -> None:
        """Take a device's rows (sequence, timestamp, slot, levels)."""
        _, _, slot, lv = rows
        slots = np.asarray(slot, np.int64)
        src = np.asarray(lv)[:, :self.depth]
        levels = np.zeros((len(slots), self.depth, 4), np.int64)  # shallower rows: pad
        levels[:, :src.shape[1]] = src
        self.slots, self.rows = slots, levels
        if len(slots):
            self.levels[slots] = levels   # the newest row of a slot wins (assignment order)

    def bbo(self) -> tuple[np.ndarray, np.ndarray]:
        """(best bid, best ask) per slot, 0 where a side is empty."""
        return self.levels[:, 0, 2], self.levels[:, 0, 0]


class Context:
    """What a strategy works with: ``driver``, ``config``, ``book``, :meth:`symbols`,
    ``position`` (frames offered so far) and :meth:`set_trigger`."""

    def __init__(self, driver, config, book: BookView):
        self.driver, self.config, self.book = driver, config, book
        self.position = 0
        #: every trigger write: (position, slot, buy, sell, quantity, enable_buy, enable_sell,
        #: rearm, ref_price), the columns of the emulator's write log with the frame position
        self.writes: list[list[int]] = []
        self._names: list[str] = []
        self._slots = int(driver.capacity()["symbols"])

    def symbols(self) -> list[str]:
        """Names of the slots in use (slot i is ``symbols()[i]``); new names are read from
        the SYMBOLS table as the book learns them."""
        while len(self._names) < self._slots:
            e = self.driver.read_entry("SYMBOLS", len(self._names))
            if not e["valid"]:
                break
            from ..spec.values import unpack_symbol
            self._names.append(unpack_symbol(e["name"]))
        return list(self._names)

    def set_trigger(self, slot: int, buy_price: int, sell_price: int, quantity: int,
                    enable_buy: bool = True, enable_sell: bool = True,
                    rearm: int | None = None, ref_price: int = -1) -> None:
        """Write a slot's trigger row (which re-arms it) and, with ``ref_price`` >= 0, its
        collar reference price."""
        if rearm is None:
            rearm = self.config.strategy.rearm
        self.driver.set_trigger(slot, int(buy_price), int(sell_price), int(quantity),
                                enable_buy, enable_sell, int(rearm), int(ref_price))
        self.writes.append([self.position, slot, int(buy_price), int(sell_price),
                            int(quantity), int(bool(enable_buy)), int(bool(enable_sell)),
                            int(rearm), int(ref_price)])


class Strategy:
    """Base class: override :meth:`start` and/or :meth:`poll`."""

    kind = "?"

    def __init__(self, config):
        self.config = config

    def start(self, ctx: Context) -> None:
        """Before the first frame (after the configuration was applied)."""

    def poll(self, ctx: Context) -> None:
        """At a poll point: the book holds every row up to here."""

    def stats(self) -> dict | None:
        """Statistics for the run's summary (None: nothing to report)."""
        return None


@register("none")
class NoStrategy(Strategy):
    """No triggers: the book alone."""


@register("static")
class StaticStrategy(Strategy):
    """The per-symbol rows of ``strategy.triggers``, written once each: by the configuration
    for configured symbols, here for a symbol the book learns (auto mode)."""

    def start(self, ctx: Context) -> None:
        # apply_config wrote the rows of the configured symbols
        self.done = set(self.config.symbols)
        self.poll(ctx)

    def poll(self, ctx: Context) -> None:
        s = self.config.strategy
        for i, name in enumerate(ctx.symbols()):
            t = s.triggers.get(name)
            if t is None or name in self.done:
                continue
            self.done.add(name)
            ctx.set_trigger(i, int(t.get("buy", 0)), int(t.get("sell", 0)),
                            int(t.get("quantity", s.quantity)), "buy" in t, "sell" in t,
                            int(t.get("rearm", s.rearm)), int(t.get("ref_price", -1)))


@register("band")
class BandStrategy(Strategy):
    """Buy/sell triggers at mid ∓ ``band_bps`` (at least a tick, on the tick grid),
    re-centred when the mid has moved by more than half the band since the last write; the
    slot's collar reference is the mid."""

    def start(self, ctx: Context) -> None:
        self.centre = np.zeros(len(ctx.book.levels), np.int64)

    def poll(self, ctx: Context) -> None:
        s = self.config.strategy
        bid, ask = ctx.book.bbo()
        ok = (bid > 0) & (ask > 0)
        mid = (bid + ask) // 2
        half = mid * s.band_bps // 20000
        moved = np.abs(mid - self.centre) > half
        for i in np.nonzero(ok & moved)[0]:
            m = int(mid[i])
            off = max(TICK, m * s.band_bps // 10000 // TICK * TICK)
            buy = (m - off) // TICK * TICK
            sell = -((-(m + off)) // TICK) * TICK
            self.centre[i] = m
            ctx.set_trigger(int(i), buy, sell, s.quantity, ref_price=m)


@register("model")
class ModelStrategy(Strategy):
    """The signal model (:class:`tickwire.models.signal.SignalEngine`) on every book row of
    the poll; its trigger prices are written with the mid as the collar reference."""

    edge_ticks = 1.0

    def __init__(self, config, model=None, backend: str = "auto"):
        super().__init__(config)
        self.model, self.backend = model, backend   # model: default strategy.model's

    def start(self, ctx: Context) -> None:
        from ..models.signal import NO_BUY, NO_SELL, SignalEngine, load_strategy_model
        self._no = (NO_BUY, NO_SELL)
        self._ctx = ctx
        model = self.model if self.model is not None else load_strategy_model(self.config)
        self.engine = SignalEngine(model, self._write,
                                   backend=self.backend, n_slots=len(ctx.book.levels),
                                   depth=ctx.book.depth, edge_ticks=self.edge_ticks,
                                   quantity=self.config.strategy.quantity)

    def _write(self, slot: int, buy: int, sell: int, qty: int) -> None:
        top = self._ctx.book.levels[slot, 0]
        ref = int(top[0] + top[2]) // 2 if top[0] > 0 and top[2] > 0 else -1
        self._ctx.set_trigger(slot, buy, sell, qty, enable_buy=buy != self._no[0],
                              enable_sell=sell != self._no[1], ref_price=ref)

    def poll(self, ctx: Context) -> None:
        if len(ctx.book.slots):
            self.engine.on_batch(ctx.book.slots, ctx.book.rows)

    def stats(self) -> dict | None:
        return self.engine.stats()


class StrategyManager:
    """Runs the configured strategy and the host duties every strategy relies on (naming
    learned slots in the egress, the risk enable of ``risk.disabled`` names)."""

    def __init__(self, config, strategy: Strategy | None = None):
        kind = config.strategy.kind
        if strategy is None:
            if kind not in STRATEGIES:
                raise ValueError(f"strategy.kind={kind!r}: not a registered strategy "
                                 f"({', '.join(sorted(STRATEGIES))})")
            strategy = STRATEGIES[kind](config)
        self.config, self.strategy = config, strategy
        self._disabled = set(config.risk.disabled)
        self._seen = len(config.symbols)   # apply_config handled the configured names

    def _learned(self, ctx: Context) -> None:
        """Slots the book named since the last poll (auto mode): the SYMBOLS entry is written
        back, which names the slot in the order egress too (the book learns names, the
        egress only takes the host's), and a ``risk.disabled`` name loses its risk enable.
        Trigger rows start disabled and only the host enables them, so no order leaves for
        a slot before this has run."""
        from ..spec.values import pack_symbol
        names = ctx.symbols()
        for i in range(self._seen, len(names)):
            ctx.driver.write_entry("SYMBOLS", i, name=pack_symbol(names[i]), valid=1)
            if names[i] in self._disabled:
                ctx.driver.write_entry("RISK_SLOTS", i, enable=0)
        self._seen = max(self._seen, len(names))

    def start(self, ctx: Context) -> None:
        self._learned(ctx)
        self.strategy.start(ctx)

    def poll(self, ctx: Context) -> None:
        self._learned(ctx)
        self.strategy.poll(ctx)
