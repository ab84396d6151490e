"""An independent model of the pre-trade risk stage, written from docs/architecture.md
("Pre-trade risk"); it shares no code with the emulator (tickwire.host.emu) or the gateware.

It takes the candidates the trigger engine produces, in order, and the host's writes between
them, and gives each candidate its verdict: ``ACCEPT`` or the name of the first failing check.
Every limit is evaluated for every candidate (:attr:`RiskModel.failed` lists them all), so an
accepted candidate is one that breaks none of the limits in force at its time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: reject reasons in order of precedence (the doc's table, checks 1..10)
REASONS = ("kill", "symbol_disabled", "max_qty", "max_notional", "price_collar", "position",
           "gross_exposure", "throttle_symbol", "throttle_global", "duplicate")
ACCEPT = "accept"
BUY, SELL = 0, 1


@dataclass
class Bucket:
    """Token bucket: capacity ``burst``, one token per ``refill_ns`` of ITCH time; off when
    ``refill_ns`` is 0. Starts full with ``last`` = 0."""
    burst: int
    refill_ns: int
    tokens: int = 0
    last: int = 0

    def __post_init__(self):
        self.tokens = self.burst

    @property
    def on(self) -> bool:
        return self.refill_ns > 0

    def refill(self, now: int) -> None:
        if not self.on:
            return
        if now > self.last:
            k = (now - self.last) // self.refill_ns
            self.tokens = min(self.burst, self.tokens + k)
            self.last += k * self.refill_ns
        if self.tokens >= self.burst:      # full: time restarts at this check
            self.tokens = self.burst
            self.last = now

    def empty(self) -> bool:
        return self.on and self.tokens <= 0

    def take(self) -> None:
        if self.on:
            self.tokens -= 1


@dataclass
class Slot:
    enable: bool = True
    ref: int = 0                        # collar reference, 0: no collar
    max_long: int = 0
    max_short: int = 0
    position: int = 0
    bucket: Bucket | None = None
    last_order: tuple | None = None     # (side, price, quantity, now) of the latest accepted


@dataclass
class Order:
    """A candidate as the risk stage sees it."""
    slot: int
    side: int
    price: int
    quantity: int
    now: int


@dataclass
class RiskModel:
    """Global parameters by their config names (``kill``, ``kill_after_rejects``,
    ``max_order_qty``, ``max_notional``, ``collar_bps``, ``max_gross``, ``symbol_burst``,
    ``symbol_refill_ns``, ``global_burst``, ``global_refill_ns``, ``dup_window_ns``)."""
    params: dict
    slots: int
    first_user_ref: int = 1
    host_kill: bool = False
    tripped: bool = False
    total_rejects: int = 0
    gross: int = 0
    user_ref: int = 0
    rejects: dict = field(default_factory=dict)
    failed: list = field(default_factory=list)      # per candidate, every failing check
    sent: list = field(default_factory=list)        # accepted: (slot, side, price, qty, user_ref)

    def __post_init__(self):
        p = self.params
        self.host_kill = bool(p["kill"])
        self.user_ref = self.first_user_ref
        self.table = [Slot(max_long=p["max_long"], max_short=p["max_short"],
                           bucket=Bucket(p["symbol_burst"], p["symbol_refill_ns"]))
                      for _ in range(self.slots)]
        self.global_bucket = Bucket(p["global_burst"], p["global_refill_ns"])
        self.rejects = {r: 0 for r in REASONS}

    # ---------------------------------------------------------------- host writes
    def set_kill(self, on: bool) -> None:
        """The host's kill bit; it neither sets nor clears a trip."""
        self.host_kill = bool(on)

    def clear_trip(self) -> None:
        self.tripped = False
        self.total_rejects = 0

    def set_slot(self, slot: int, *, enable=None, ref=None, max_long=None, max_short=None):
        s = self.table[slot]
        if enable is not None:
            s.enable = bool(enable)
        if ref is not None:
            s.ref = ref
        if max_long is not None:
            s.max_long = max_long
        if max_short is not None:
            s.max_short = max_short

    def set_position(self, slot: int, shares: int) -> None:
        self.table[slot].position = shares

    def set_gross(self, value: int) -> None:
        self.gross = value

    # ---------------------------------------------------------------- the check
    def violations(self, o: Order) -> list[str]:
        """Every limit ``o`` breaks in the current state (buckets already refilled)."""
        p, s = self.params, self.table[o.slot]
        notional = o.quantity * o.price
        bad = []
        if self.host_kill or self.tripped:
            bad.append("kill")
        if not s.enable:
            bad.append("symbol_disabled")
        if o.quantity > p["max_order_qty"]:
            bad.append("max_qty")
        if notional > p["max_notional"]:
            bad.append("max_notional")
        if s.ref != 0 and abs(o.price - s.ref) * 10_000 > p["collar_bps"] * s.ref:
            bad.append("price_collar")
        # only the side the order moves towards is limited (a buy may leave a short beyond
        # max_short: it reduces it)
        if (s.position + o.quantity > s.max_long if o.side == BUY
                else s.position - o.quantity < -s.max_short):
            bad.append("position")
        if self.gross + notional > p["max_gross"]:
            bad.append("gross_exposure")
        if s.bucket.empty():
            bad.append("throttle_symbol")
        if self.global_bucket.empty():
            bad.append("throttle_global")
        w = p["dup_window_ns"]
        if w > 0 and s.last_order is not None:
            side, price, qty, t = s.last_order
            if (side, price, qty) == (o.side, o.price, o.quantity) and o.now - t < w:
                bad.append("duplicate")
        return bad

    def check(self, o: Order) -> str:
        """The verdict on ``o``; the state moves on as the doc's three steps say."""
        s = self.table[o.slot]
        s.bucket.refill(o.now)
        self.global_bucket.refill(o.now)
        bad = self.violations(o)
        self.failed.append(bad)
        if bad:
            reason = min(bad, key=REASONS.index)
            self.rejects[reason] += 1
            self.total_rejects += 1
            ka = self.params["kill_after_rejects"]
            if ka > 0 and self.total_rejects >= ka:
                self.tripped = True
            return reason
        # accepted IOC orders count as filled in full
        s.position += o.quantity if o.side == BUY else -o.quantity
        self.gross += o.quantity * o.price
        s.bucket.take()
        self.global_bucket.take()
        s.last_order = (o.side, o.price, o.quantity, o.now)
        self.sent.append((o.slot, o.side, o.price, o.quantity, self.user_ref))
        self.user_ref += 1
        return ACCEPT

    def positions(self) -> list[int]:
        return [s.position for s in self.table]
