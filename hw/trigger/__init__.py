"""Trigger engine (docs/architecture.md "Trigger engine") and the whole order path."""

from .engine import TriggerEngine
from .layouts import BookEvent, Candidate, FastAdd, TriggerRow

__all__ = ["TriggerEngine", "BookEvent", "Candidate", "FastAdd", "TriggerRow", "OrderPath"]


def __getattr__(name):
    if name == "OrderPath":  # imports hw.risk and hw.egress, which import this package
        from .path import OrderPath
        return OrderPath
    raise AttributeError(name)
