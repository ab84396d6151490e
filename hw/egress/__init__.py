"""Order egress (docs/architecture.md "Order encoding", "Order egress") and latency counters."""

from .builder import COUNTERS, OrderEgress
from .latency import CycleCounter, LatencyHistogram
from .layouts import OrderStreamSignature, SessionTemplate

__all__ = ["OrderEgress", "COUNTERS", "CycleCounter", "LatencyHistogram",
           "OrderStreamSignature", "SessionTemplate"]
