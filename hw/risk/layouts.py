"""Payloads and configuration of the pre-trade risk stage (docs/architecture.md "Pre-trade risk")."""

from amaranth.hdl import signed
from amaranth.lib import data

from ..trigger.common import SLOT_BITS

__all__ = ["RISK_REASONS", "RiskParams", "SlotLimits", "AcceptedOrder", "Decision",
           "DIGITS", "PARAM_LIMITS"]

#: Reject reasons in check order; ``Decision.reason`` is the index (as the emulator's).
RISK_REASONS = (
    "kill", "symbol_disabled", "max_qty", "max_notional", "price_collar", "position",
    "gross_exposure", "throttle_symbol", "throttle_global", "duplicate",
)

#: Decimal digits of user_ref_num kept by the BCD counter (a 32-bit value has at most 10; the
#: 12-digit ClOrdID adds two leading zeros).
DIGITS = 10


class RiskParams(data.Struct):
    """Global risk configuration (the emulator's ``risk_params`` and ``first_user_ref``).

    Widths are the register widths; the host driver rejects values that do not fit."""
    kill: 1
    kill_after_rejects: 32
    max_order_qty: 32
    max_notional: 64
    collar_bps: 32
    max_gross: 64
    symbol_burst: 16
    symbol_refill_ns: 48
    global_burst: 16
    global_refill_ns: 48
    dup_window_ns: 48
    first_user_ref: 32


#: Inclusive maxima of the RiskParams fields (for host-side validation and tests).
PARAM_LIMITS = {name: (1 << fld.width) - 1 for name, fld in RiskParams.as_shape()}


class SlotLimits(data.Struct):
    """Per-slot risk configuration: enable, position limits (signed shares)."""
    enable: 1
    max_long: signed(64)
    max_short: signed(64)


class AcceptedOrder(data.Struct):
    """An order that passed every check, as it goes to the egress. ``digits``: user_ref as
    BCD, digit 0 (least significant) in bits [3:0]."""
    slot: SLOT_BITS
    side: 1
    price: 32
    quantity: 32
    user_ref: 32
    digits: 4 * DIGITS
    timestamp: 48
    sequence: 64
    stamp: 32
    fast: 1
    #: latency stamps (cycle counter): the trigger decision (``Candidate.t_event``) and the
    #: cycle the order reached the egress, one after the risk verdict (the egress sets it)
    t_event: 32
    t_verdict: 32


class Decision(data.Struct):
    """One risk decision per candidate (a monitoring tap): ``accept`` or the ``reason``
    index of :data:`RISK_REASONS`."""
    slot: SLOT_BITS
    side: 1
    price: 32
    quantity: 32
    sequence: 64
    accept: 1
    reason: 4
