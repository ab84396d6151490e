"""Small helpers shared by the trigger, risk and egress gateware (hw/trigger, hw/risk, hw/egress)."""

from amaranth.hdl import Cat, Signal, Value

__all__ = ["check_int", "check_bool", "checked_init", "ones_fold", "nonzero", "sweep", "SLOT_BITS",
           "MAX_SLOTS"]

#: Width of the slot field in every payload of the order path (as the book's ``slot: 8``).
SLOT_BITS = 8
MAX_SLOTS = 1 << SLOT_BITS


def check_int(name: str, value, lo: int, hi: int | None = None, *, pow2: bool = False) -> int:
    """Raise TypeError/ValueError naming ``name`` unless ``value`` is an int in lo..hi."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ValueError(f"{name}={value}: must be {rng}")
    if pow2 and value & (value - 1):
        raise ValueError(f"{name}={value}: must be a power of two")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return value


def ones_fold(v: Value, times: int = 2) -> Value:
    """End-around-carry fold of a wide one's-complement sum towards 16 bits (``times`` folds;
    the caller picks enough folds for the width so that the result is <= 0xFFFF)."""
    for _ in range(times):
        v = v[:16] + (v >> 16)
    return v


def nonzero(v: Value) -> Value:
    """``v != 0`` as ORs of six bits (one LUT6 each) and of their results: two LUT levels for
    up to 36 bits, three up to 216. (Written out because the synthesis maps the binary tree
    it makes of a wide reduction less well, and not always balanced.)"""
    v = Value.cast(v)
    bits = [v[i:i + 6].any() for i in range(0, len(v), 6)]
    while len(bits) > 1:
        bits = [Cat(*bits[i:i + 6]).any() for i in range(0, len(bits), 6)]
    return bits[0]


def sweep(m, start, n: int):
    """A clear sweep over ``n`` entries: ``(sweeping, slot)``; a ``start`` strobe while idle
    starts it at slot 0, it steps one slot a cycle and ends after slot ``n - 1``."""
    sweeping = Signal()
    slot = Signal(range(n))
    with m.If(sweeping):
        with m.If(slot == n - 1):
            m.d.sync += sweeping.eq(0)
        m.d.sync += slot.eq(slot + 1)
    with m.Elif(start):
        m.d.sync += [sweeping.eq(1), slot.eq(0)]
    return sweeping, slot


def checked_init(init):
    """Decorator for a component's ``__init__``: a constructor that rejects its arguments
    does not also leave an "elaboratable created but never used" warning behind."""
    import functools

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
    return wrapper
