"""Counter names: the feed's, the book/trigger/risk stage's, and which of them mean loss."""

from __future__ import annotations

__all__ = ["FRAME_REASONS", "LINE_FRAME_COUNTERS", "FEED_COUNTERS", "BOOK_COUNTERS", "RISK_REASONS", "COUNTER_NAMES",
           "RISK_PARAMS", "BOOK_LOSS_COUNTERS"]

#: Frame drop reasons, in the order the checks run (docs/architecture.md, frame checks).
FRAME_REASONS = (
    "runt", "not_ipv4", "ip_header", "ip_checksum", "ip_length", "not_udp", "ip_fragment",
    "udp_length", "filtered", "mold_truncated",
)

#: Counters each feed line keeps (its frame parser): the drop reasons, frames in, and frames
#: the MAC flagged with a bad FCS (counted whatever their outcome: they were acted on).
LINE_FRAME_COUNTERS = FRAME_REASONS + ("frames", "fcs_errors")

#: Feed counters (frame parser + MoldUDP64 tracker + message checks).
FEED_COUNTERS = FRAME_REASONS + (
    "mold_overrun", "frames", "packets", "messages", "gaps", "gap_messages", "last_gap_first",
    "last_gap_last", "dup_packets", "stale_session", "heartbeats", "end_of_session",
    "session_changes", "unknown_type", "bad_length", "fcs_errors",
)

#: Book, trigger and risk counters, in the emulator's counter-vector order.
BOOK_COUNTERS = (
    "book_messages", "book_updates", "duplicate_ref", "unknown_ref", "overfill",
    "order_table_full", "level_overflow", "level_miss", "symbol_overflow", "triggers_fired",
    "orders_sent", "risk_rejects",
)

#: Pre-trade risk reject reasons, in the order the checks take precedence.
RISK_REASONS = (
    "kill", "symbol_disabled", "max_qty", "max_notional", "price_collar", "position",
    "gross_exposure", "throttle_symbol", "throttle_global", "duplicate",
)

#: The emulator's counter vector: book counters, then one reject counter per reason.
COUNTER_NAMES = BOOK_COUNTERS + tuple("reject_" + r for r in RISK_REASONS)

#: Global risk parameters (the emulator's parameter vector order).
RISK_PARAMS = (
    "kill", "kill_after_rejects", "max_order_qty", "max_notional", "collar_bps", "max_gross",
    "symbol_burst", "symbol_refill_ns", "global_burst", "global_refill_ns", "dup_window_ns",
)

#: Counters that say a book lost state (a best price may be wrong): an order that could not
#: be stored (bucket full, or its reference already held), a level that was evicted or not
#: stored, a reduction at a price the book no longer holds, a stock refused a slot, and the
#: reductions that show the book's orders differ from the feed's (a reference it does not
#: hold: e.g. added before the capture began; more shares than the order has left), and a
#: feed frame taken before its end showed a bad FCS (the feed's ``fcs_errors``).
BOOK_LOSS_COUNTERS = ("order_table_full", "level_overflow", "level_miss", "symbol_overflow",
                      "duplicate_ref", "unknown_ref", "overfill", "fcs_errors")
