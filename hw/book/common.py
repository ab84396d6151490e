"""Small helpers shared by the book builder's engines."""

from amaranth.hdl import Cat, Const, Module, Mux, Value, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BankedMemory", "tree_or", "MsgMeta", "lowest_onehot", "onehot_select", "any_of",
           "better_price", "carry_eq", "level_op_layout", "order_op_layout"]


class MsgMeta(data.Struct):
    """Message fields that travel with an operation to the output stage."""
    type: 8
    sequence: 64
    timestamp: 48
    state: 8
    stamp: 32      # cycle counter when the message entered the book builder (``stamp`` option)


def level_op_layout(slot_bits: int) -> data.StructLayout:
    """An operation on one slot's sorted levels (what the order table hands the level engine).

    ``kind``: OpKind.NOP / ADD / REDUCE. ``uses``: the op reads and writes the slot's level
    word (book messages); 0 for state-only messages (P Q H), which carry their trade price
    in ``price``/``amount`` and their trading state in ``meta.state``. ``last``: last level op
    of its message (U makes two); the row decision is taken on it. ``add_valid``: the message
    added an order (A, F, or the new order of a U whose original was found) at ``side`` /
    ``price``, stored or not (the trigger engine's BookEvent.add).
    """
    return data.StructLayout({
        "kind": 2,
        "uses": 1,
        "slot": unsigned(slot_bits),
        "side": 1,
        "price": 32,
        "amount": 32,
        "removed": 1,
        "last": 1,
        "add_valid": 1,
        "meta": MsgMeta,
    })


def order_op_layout(slot_bits: int, bucket_bits: int) -> data.StructLayout:
    """An operation on the order table: ``bucket``/``bucket1`` the key's bucket in bank 0/1
    (``bucket_bits`` each). ``u0``/``u1``: first/second half of a U."""
    return data.StructLayout({
        "kind": 2,
        "key": 64,
        "bucket": unsigned(bucket_bits),
        "bucket1": unsigned(bucket_bits),
        "slot": unsigned(slot_bits),
        "side": 1,
        "price": 32,
        "amount": 32,
        "u0": 1,
        "u1": 1,
        "meta": MsgMeta,
    })


def any_of(bits):
    """OR of a list of 1-bit values (Const 0 when empty)."""
    bits = list(bits)
    return Cat(*bits).any() if bits else Const(0, 1)


def better_price(price, ref, side):
    """A level at ``price`` is better than ``ref`` on ``side`` (bids, 0: higher; asks, 1:
    lower): one comparator, the operands inverted for asks (p < q is ~p > ~q)."""
    flip = side.replicate(len(price))
    return (price ^ flip) > (ref ^ flip)


def carry_eq(a, b):
    """``a == b`` on the carry chain: each bit pair's XNOR (one LUT, which also takes a
    multiplexer in front of ``a``), plus 1, carries out of the top only when every pair is
    equal (an equality as a LUT tree takes 3 levels at 64 bits, 2 at 32)."""
    x = ~(Value.cast(a) ^ Value.cast(b))
    return (x + 1)[len(x)]


def lowest_onehot(vec):
    """One-hot of the lowest set bit of ``vec`` (a list of 1-bit values), as a list of values."""
    out = []
    for i, b in enumerate(vec):
        out.append(b & ~any_of(vec[:i]) if i else b)
    return out


def tree_or(values):
    """Balanced OR of a list of values (shallow expressions for large lists)."""
    values = list(values)
    while len(values) > 1:
        values = [values[i] | values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


def onehot_select(onehot, values):
    """OR of ``values[i]`` masked by ``onehot[i]`` (a one-hot mux without priority)."""
    vals = [Value.cast(v) for v in values]
    return tree_or([Mux(sel, v, 0) for sel, v in zip(onehot, vals)])


class BankedMemory(wiring.Component):
    """A ``width`` × ``depth`` memory built from banks of at most ``bank_width`` bits.

    One synchronous read port (transparent for the write port: a read of the address written
    in the same cycle returns the new word) and one write port, all banks sharing the
    addresses. On an FPGA a wide word maps onto a row of block RAMs anyway (72 bits each);
    banking also keeps the simulators' per-memory expressions small.
    """

    def __init__(self, *, width: int, depth: int, bank_width: int = 576):
        self.width, self.depth, self.bank_width = width, depth, bank_width
        abits = max(1, (depth - 1).bit_length())
        super().__init__({
            "raddr": In(abits), "ren": In(1), "rdata": Out(width),
            "waddr": In(abits), "wen": In(1), "wdata": In(width),
        })

    def elaborate(self, platform):
        m = Module()
        for i, lo in enumerate(range(0, self.width, self.bank_width)):
            hi = min(self.width, lo + self.bank_width)
            mem = memory.Memory(shape=unsigned(hi - lo), depth=self.depth, init=[])
            m.submodules[f"bank{i}"] = mem
            wp = mem.write_port()
            rp = mem.read_port(transparent_for=(wp,))
            m.d.comb += [
                wp.addr.eq(self.waddr), wp.en.eq(self.wen), wp.data.eq(self.wdata[lo:hi]),
                rp.addr.eq(self.raddr), rp.en.eq(self.ren), self.rdata[lo:hi].eq(rp.data),
            ]
        return m
