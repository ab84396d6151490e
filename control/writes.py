"""Operator writes: what may be changed, its bounds, and how each change reaches the device.

The bounds come from the register map (a field's width and sign) and the configuration's
rules, so a request that fails them is refused before anything is written. A write is run by
the replay thread at a poll point (:meth:`Write.apply`), through the strategy context's
driver, so it lands before the next frame like a strategy's own writes; it also updates the
service's configuration (or its per-symbol overrides) so the next pass of a looping replay
starts from the operator's values. Each returns the changes it made as
``(what, old, new)``, old and new read back through the driver.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field as PField, StrictBool, StrictInt, create_model

from ..host.config import ConfigError
from ..spec.regmap import REGMAP, RISK_PARAM_FIELDS, RISK_PARAMS, Field

__all__ = ["WriteError", "Write", "SetRisk", "SetSlot", "SetKill", "ClearTrip",
           "StartStrategy", "StopStrategy", "SetStrategyParams", "RiskBody", "SlotBody",
           "KillBody", "StrategyParamsBody", "RISK_FIELDS", "SLOT_FIELDS", "STRATEGY_PARAMS",
           "field_bounds"]


class WriteError(Exception):
    """A write refused: HTTP ``status``, the ``field`` at fault and why; nothing written."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


def field_bounds(f: Field) -> tuple[int, int]:
    """Smallest and largest value a register field holds."""
    if f.signed:
        return -(1 << (f.width - 1)), (1 << (f.width - 1)) - 1
    return 0, (1 << f.width) - 1


#: global risk parameters an operator may set (the kill switch has its own endpoint)
RISK_FIELDS: dict[str, Field] = {
    p: REGMAP.register(RISK_PARAM_FIELDS[p][0]).field(RISK_PARAM_FIELDS[p][1])
    for p in RISK_PARAMS if p != "kill"}
#: per-symbol risk row fields (RISK_SLOTS)
SLOT_FIELDS: dict[str, Field] = {f.name: f for f in REGMAP.table("RISK_SLOTS").fields
                                 if f.access == "rw"}
_QTY = REGMAP.table("TRIGGERS").field("quantity")
#: strategy parameters that may change while running: name -> (low, high, doc)
STRATEGY_PARAMS: dict[str, tuple[int, int, str]] = {
    "band_bps": (1, 10_000, "band strategy: triggers at mid -/+ this many basis points"),
    "quantity": (1, field_bounds(_QTY)[1], "order quantity of strategy-written triggers"),
    "rearm": (0, 1, "0 one-shot, 1 re-arm when the condition goes false"),
}

_FORBID = ConfigDict(extra="forbid")


def _model(name: str, fields: dict[str, tuple[int, int, str]]) -> type[BaseModel]:
    spec = {k: (Optional[StrictInt], PField(None, ge=lo, le=hi, description=doc))
            for k, (lo, hi, doc) in fields.items()}
    return create_model(name, __config__=_FORBID, **spec)


RiskBody = _model("RiskBody", {k: (*field_bounds(f), f.doc) for k, f in RISK_FIELDS.items()})
SlotBody = _model("SlotBody", {k: (*field_bounds(f), f.doc) for k, f in SLOT_FIELDS.items()})
StrategyParamsBody = _model("StrategyParamsBody", STRATEGY_PARAMS)


class KillBody(BaseModel):
    model_config = _FORBID
    kill: StrictBool = PField(description="true: every candidate order is rejected")


def given(body: BaseModel) -> dict[str, int]:
    """The fields a request set; at least one."""
    vals = {k: v for k, v in body.model_dump(exclude_unset=True).items()}
    none = [k for k, v in vals.items() if v is None]
    if none:
        raise WriteError(422, none[0], f"{none[0]}: a value is required")
    if not vals:
        raise WriteError(422, "body", "body: no field given")
    return vals


@dataclass
class Write:
    """A change an operator asked for; ``who`` made it."""
    who: str

    def apply(self, run, ctx) -> list[tuple[str, Any, Any]]:
        raise NotImplementedError


@dataclass
class SetRisk(Write):
    values: dict[str, int] = field(default_factory=dict)

    def apply(self, run, ctx):
        drv = ctx.driver
        old = drv.risk()
        drv.set_risk(**self.values)
        new = drv.risk()
        for k, v in self.values.items():
            setattr(run.config.risk, k, int(v))
        return [(f"risk.{k}", old[k], new[k]) for k in self.values]


@dataclass
class SetSlot(Write):
    symbol: str = ""
    values: dict[str, int] = field(default_factory=dict)

    def apply(self, run, ctx):
        names = ctx.symbols()
        if self.symbol not in names:
            raise WriteError(409, "symbol", f"symbol: {self.symbol!r} has no slot at this point "
                             "of the replay")
        i = names.index(self.symbol)
        old = ctx.driver.read_entry("RISK_SLOTS", i)
        ctx.driver.write_entry("RISK_SLOTS", i, **self.values)
        new = ctx.driver.read_entry("RISK_SLOTS", i)
        run.slot_overrides.setdefault(self.symbol, {}).update(self.values)
        if "enable" in self.values:            # the config's rule for the next pass
            dis = [n for n in run.config.risk.disabled if n != self.symbol]
            run.config.risk.disabled = dis + ([] if self.values["enable"] else [self.symbol])
        return [(f"risk_slot.{self.symbol}.{k}", old[k], new[k]) for k in self.values]


@dataclass
class SetKill(Write):
    on: bool = True

    def apply(self, run, ctx):
        drv = ctx.driver
        old = drv.read("CONTROL", "kill")
        drv.set_kill(self.on)
        run.config.risk.kill = bool(self.on)
        return [("control.kill", old, drv.read("CONTROL", "kill"))]


@dataclass
class ClearTrip(Write):
    def apply(self, run, ctx):
        drv = ctx.driver
        old = drv.read("STATUS", "kill_tripped")
        drv.clear_trip()
        return [("status.kill_tripped", old, drv.read("STATUS", "kill_tripped"))]


@dataclass
class StartStrategy(Write):
    kind: str = ""

    def apply(self, run, ctx):
        return run.strategy.operator_start(self.kind, ctx)


@dataclass
class StopStrategy(Write):
    def apply(self, run, ctx):
        return run.strategy.operator_stop(ctx)


@dataclass
class SetStrategyParams(Write):
    values: dict[str, int] = field(default_factory=dict)

    def apply(self, run, ctx):
        s = run.config.strategy
        trial = copy.deepcopy(run.config)
        for k, v in self.values.items():
            setattr(trial.strategy, k, int(v))
        try:
            trial.validate()
        except ConfigError as e:
            raise WriteError(422, next(iter(self.values)), str(e)) from None
        old = {k: getattr(s, k) for k in self.values}
        for k, v in self.values.items():
            setattr(s, k, int(v))
        return [(f"strategy.{k}", old[k], getattr(s, k)) for k in self.values]
