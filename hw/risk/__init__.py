"""Pre-trade risk (docs/architecture.md "Pre-trade risk")."""

from .check import COUNTERS, PreTradeRisk
from .layouts import RISK_REASONS, AcceptedOrder, Decision, RiskParams, SlotLimits
from .userref import UserRefCounter

#: The name the synthesis report (hw/report.py) uses.
RiskEngine = PreTradeRisk

__all__ = ["PreTradeRisk", "RiskEngine", "COUNTERS", "RISK_REASONS", "AcceptedOrder", "Decision",
           "RiskParams", "SlotLimits", "UserRefCounter"]
