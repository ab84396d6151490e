"""user_ref_num: a binary counter with a BCD counter kept beside it (for the ClOrdID digits)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..trigger.common import check_int, checked_init

__all__ = ["UserRefCounter", "to_bcd"]


def to_bcd(value: int, digits: int) -> int:
    """``value`` as packed BCD (digit 0 in the low nibble)."""
    out = 0
    for k in range(digits):
        out |= (value % 10) << (4 * k)
        value //= 10
    return out


class UserRefCounter(wiring.Component):
    """``value`` (binary) and ``digits`` (BCD, digit 0 in bits [3:0]) count together.

    ``inc`` adds one to both in one cycle (the BCD increment is a carry chain over the
    digits). ``load`` takes ``first``: the binary value at once, the BCD digits by a
    sequential double-dabble conversion (``width`` cycles, ``busy`` meanwhile; ``inc`` is
    ignored while busy). Power-on value: ``init``.
    """

    @checked_init
    def __init__(self, *, width: int = 32, digits: int = 10, init: int = 1):
        check_int("width", width, 1, 64)
        check_int("digits", digits, 1, 20)
        if 10 ** digits < 1 << width:
            raise ValueError(f"digits={digits} cannot hold a {width}-bit value")
        check_int("init", init, 0, (1 << width) - 1)
        self.width, self.digits, self.init = width, digits, init
        super().__init__({
            "load": In(1), "first": In(width), "inc": In(1),
            "value": Out(width, init=init), "digits_out": Out(4 * digits,
                                                              init=to_bcd(init, digits)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        W, D = self.width, self.digits
        dig = [self.digits_out[4 * k:4 * k + 4] for k in range(D)]

        # BCD increment: digit k changes when every lower digit is 9
        nxt = []
        carry = Const(1, 1)
        for k in range(D):
            nxt.append(Mux(carry, Mux(dig[k] == 9, 0, dig[k] + 1), dig[k])[:4])
            carry = carry & (dig[k] == 9)

        # double dabble
        sh_bin = Signal(W)
        sh_bcd = Signal(4 * D)
        count = Signal(range(W + 1))
        adj = []
        for k in range(D):
            d = sh_bcd[4 * k:4 * k + 4]
            adj.append(Mux(d >= 5, d + 3, d)[:4])
        adj_v = Cat(*adj)
        # busy = (count != 0), kept in a register (one LUT level less for its users)
        busy = Signal()
        m.d.comb += self.busy.eq(busy)
        m.d.sync += busy.eq(self.load | (count >= 2))
        with m.If(self.load):
            m.d.sync += [self.value.eq(self.first), sh_bin.eq(self.first), sh_bcd.eq(0),
                         count.eq(W)]
        with m.Elif(count != 0):
            m.d.sync += [sh_bcd.eq(Cat(sh_bin[W - 1], adj_v)[:4 * D]),
                         sh_bin.eq(sh_bin << 1), count.eq(count - 1)]
            with m.If(count == 1):
                m.d.sync += self.digits_out.eq(Cat(sh_bin[W - 1], adj_v)[:4 * D])
        with m.Elif(self.inc):
            m.d.sync += [self.value.eq(self.value + 1), self.digits_out.eq(Cat(*nxt))]
        return m
