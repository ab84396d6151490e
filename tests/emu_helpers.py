"""Small builders for emulator tests: ITCH messages for one or two symbols."""

import numpy as np

from tickwire.host import itch
from tickwire.host.config import Config
from tickwire.host.emu.pipeline import Emulator, messages_buffer


class Day:
    """Accumulates ITCH messages with increasing timestamps."""

    def __init__(self, symbols=("AAPL", "MSFT"), t0=34_200_000_000_000, step=1_000):
        self.msgs, self.t, self.step = [], t0, step
        self.locate = {s: i + 1 for i, s in enumerate(symbols)}
        for s, loc in self.locate.items():
            self.add_msg("R", stock_locate=loc, stock=s)

    def add_msg(self, t, **f):
        self.t += self.step
        f.setdefault("timestamp", self.t)
        self.msgs.append(itch.encode(t, **f))
        return len(self.msgs) - 1

    def add(self, sym, ref, side, shares, price):
        return self.add_msg("A", stock_locate=self.locate[sym], order_reference_number=ref,
                            buy_sell_indicator=side, shares=shares, stock=sym, price=price)

    def execute(self, sym, ref, shares):
        return self.add_msg("E", stock_locate=self.locate[sym], order_reference_number=ref,
                            executed_shares=shares, match_number=ref)

    def cancel(self, sym, ref, shares):
        return self.add_msg("X", stock_locate=self.locate[sym], order_reference_number=ref,
                            canceled_shares=shares)

    def delete(self, sym, ref):
        return self.add_msg("D", stock_locate=self.locate[sym], order_reference_number=ref)

    def replace(self, sym, old, new, shares, price):
        return self.add_msg("U", stock_locate=self.locate[sym],
                            original_order_reference_number=old, new_order_reference_number=new,
                            shares=shares, price=price)

    def halt(self, sym, state="H"):
        return self.add_msg("H", stock_locate=self.locate[sym], stock=sym, trading_state=state)


def config(symbols=("AAPL", "MSFT"), **capacity):
    cfg = Config(symbols=list(symbols))
    cfg.strategy.kind = "none"
    for k, v in capacity.items():
        setattr(cfg.capacity, k, v)
    return cfg


def run(day, cfg, depth=5, writes=()):
    emu = Emulator(cfg, depth)
    for w in writes:
        emu.write_trigger(**w)
    data, offs, seqs = messages_buffer(day.msgs)
    return emu, emu.run(data, offs, seqs)


def emulate_orders(frames, config, writes=(), *, limits=None, fast=True, ab_window=16):
    """The emulator scoreboard of an RTL order run: the emulator device set up by the same
    driver calls (:func:`tickwire.backends.rtl.order_setup`) at the gateware's capacities,
    all ``frames`` offered. Returns a RunResult (orders with their triggering sequences)."""
    import copy

    from tickwire.backends.emu import EmuDevice
    from tickwire.backends.rtl import order_setup, rtl_config
    from tickwire.host.emu.pipeline import RunResult
    from tickwire.host.hostloop import orders_from_frames
    cfg = rtl_config(copy.deepcopy(config))
    dev = EmuDevice(cfg)
    order_setup(cfg, writes, limits, fast=fast, ab_window=ab_window)(dev.driver)
    dev.load(frames)
    dev.advance()
    out = dev.drain()
    names = dev.driver.symbols()
    return RunResult("emu", names, dev.counters(), None,
                     orders_from_frames(out.frames, names, out.sequences),
                     np.zeros((0, 9), np.int64), {}, 0)
