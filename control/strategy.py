"""The strategy slot of a served replay: a registered strategy an operator starts and stops.

:class:`OperatedStrategy` is what the host loop runs (``run_device(strategy=...)``); it
delegates to an instance of the selected :data:`~tickwire.host.strategies.STRATEGIES` kind
while running. Stopped, it polls nothing and keeps CONTROL.enable clear, so the trigger
engine fires nothing whatever rows it holds. Started, the trigger rows of the slots in use
are disabled first (the previous strategy's prices end there), then the new strategy starts
and writes its own. Each pass of a looping replay restarts the selected strategy afresh
after the configuration was applied.
"""

from __future__ import annotations

import copy

from ..host.config import ConfigError
from ..host.strategies import STRATEGIES, StaticStrategy, Strategy
from .writes import WriteError

__all__ = ["OperatedStrategy"]


class OperatedStrategy(Strategy):
    kind = "operated"

    def __init__(self, config, on_start=None):
        super().__init__(config)
        self.selected = config.strategy.kind
        self.running = True
        self.inner: Strategy | None = None
        #: called with the context once the strategy started, before the first frame
        self.on_start = on_start

    def describe(self) -> dict:
        return {"selected": self.selected, "running": self.running,
                "kinds": sorted(STRATEGIES)}

    # ---------------------------------------------------------------- host loop
    def start(self, ctx) -> None:
        if self.running:
            self.inner = STRATEGIES[self.selected](self.config)
            self.inner.start(ctx)
        else:
            self.inner = None
            ctx.driver.set_enable(False)
        if self.on_start is not None:
            self.on_start(ctx)

    def poll(self, ctx) -> None:
        if self.running and self.inner is not None:
            self.inner.poll(ctx)

    def stats(self):
        return self.inner.stats() if self.inner is not None else None

    # ---------------------------------------------------------------- operator
    def _state(self) -> str:
        return f"{self.selected} {'running' if self.running else 'stopped'}"

    def operator_stop(self, ctx) -> list:
        drv = ctx.driver
        old, en = self._state(), drv.read("CONTROL", "enable")
        self.running, self.inner = False, None
        drv.set_enable(False)
        return [("strategy", old, self._state()),
                ("control.enable", en, drv.read("CONTROL", "enable"))]

    def operator_start(self, kind: str, ctx) -> list:
        if kind not in STRATEGIES:
            raise WriteError(404, "kind", f"kind: strategy {kind!r} is not registered (known: "
                             f"{', '.join(sorted(STRATEGIES))})")
        drv = ctx.driver
        old, en = self._state(), drv.read("CONTROL", "enable")
        changes = []
        sides = ("enable_buy", "enable_sell")
        for i, name in enumerate(ctx.symbols()):
            row = drv.read_entry("TRIGGERS", i)
            if row["enable_buy"] or row["enable_sell"]:
                drv.write_entry("TRIGGERS", i, enable_buy=0, enable_sell=0)
                now = drv.read_entry("TRIGGERS", i)
                changes.append((f"trigger.{name}", {k: row[k] for k in sides},
                                {k: now[k] for k in sides}))
        inner = STRATEGIES[kind](self.config)
        saved = self.config.strategy.kind
        self.config.strategy.kind = kind
        try:
            # a kind the configuration does not know is applied as "none" at the next pass
            copy.deepcopy(self.config).validate()
        except ConfigError:
            self.config.strategy.kind = "none"
        try:
            inner.start(ctx)
            if isinstance(inner, StaticStrategy):
                inner.done.clear()        # mid-run: write the configured rows too
                inner.poll(ctx)
        except Exception as e:              # noqa: BLE001 - the operator gets the reason
            self.config.strategy.kind = saved
            self.running, self.inner = False, None
            drv.set_enable(False)
            err = WriteError(409, "kind", f"kind: strategy {kind!r} did not start: "
                             f"{type(e).__name__}: {e}")
            err.changes = changes + [("strategy", old, self._state()),
                                     ("control.enable", en, drv.read("CONTROL", "enable"))]
            raise err from None
        self.selected, self.inner, self.running = kind, inner, True
        drv.set_enable(True)
        return changes + [("strategy", old, self._state()),
                          ("control.enable", en, drv.read("CONTROL", "enable"))]
