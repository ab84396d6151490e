"""Trigger and pre-trade risk semantics of docs/architecture.md, one rule at a time."""

import pytest

from emu_helpers import Day, config, run
from tickwire.host import ouch, soupbintcp


def trig(slot=0, buy=0, sell=0, qty=100, eb=True, es=False, rearm=0, ref=-1, msg=0):
    return dict(msg=msg, slot=slot, buy_price=buy, sell_price=sell, quantity=qty,
                enable_buy=eb, enable_sell=es, rearm=rearm, ref_price=ref)


def permissive(cfg):
    r = cfg.risk
    r.max_order_qty, r.max_notional, r.max_gross = 10**6, 10**15, 10**18
    r.max_long = r.max_short = 10**9
    r.symbol_refill_ns = r.global_refill_ns = 0
    r.dup_window_ns = 0
    r.collar_bps = 10_000
    return cfg


def book(day):
    day.add("AAPL", 1, "B", 100, 999_000)
    day.add("AAPL", 2, "S", 100, 1_001_000)


def test_buy_fires_when_ask_crosses_and_order_bytes():
    day = Day(("AAPL",))
    book(day)
    i = day.add("AAPL", 3, "S", 50, 1_000_000)    # ask drops to the trigger
    day.add("AAPL", 4, "S", 50, 999_900)          # crosses further: one-shot, disarmed
    emu, res = run(day, permissive(config(("AAPL",))),
                   writes=[trig(buy=1_000_000, qty=100)])
    o = res.orders
    assert len(o) == 1 and o.msg[0] == i and o.side[0] == 0 and o.price[0] == 1_000_000
    assert res.counters["triggers_fired"] == 1 and res.counters["orders_sent"] == 1
    frame = o.ouch[0]
    assert frame[:3] == b"\x00\x30U"
    m = ouch.decode(frame[3:], "client")
    assert m["user_ref_num"] == 1 and m["side"] == "B" and m["quantity"] == 100
    assert m["symbol"] == "AAPL" and m["price"] == 1_000_000 and m["time_in_force"] == "3"
    assert m["cl_ord_id"] == "TW000000000001"
    assert emu.state.position[0] == 100


def test_sell_fires_on_bid_and_edge_rearm():
    day = Day(("AAPL",))
    book(day)
    a = day.add("AAPL", 3, "B", 10, 1_000_000)    # bid reaches sell trigger: fire
    day.delete("AAPL", 3)                          # condition false: re-arm
    b = day.add("AAPL", 5, "B", 10, 1_000_100)    # fires again
    _, res = run(day, permissive(config(("AAPL",))),
                 writes=[trig(sell=1_000_000, eb=False, es=True, rearm=1)])
    assert res.orders.msg.tolist() == [a, b] and set(res.orders.side.tolist()) == {1}


def test_halted_symbol_does_not_fire():
    day = Day(("AAPL",))
    book(day)
    day.halt("AAPL", "H")
    day.add("AAPL", 3, "S", 50, 1_000_000)
    day.halt("AAPL", "T")
    i = day.add("AAPL", 4, "S", 50, 999_900)
    _, res = run(day, permissive(config(("AAPL",))), writes=[trig(buy=1_000_000)])
    assert res.orders.msg.tolist() == [i]


@pytest.mark.parametrize("reason,setup", [
    ("kill", lambda r: setattr(r, "kill", True)),
    ("symbol_disabled", lambda r: r.disabled.append("AAPL")),
    ("max_qty", lambda r: setattr(r, "max_order_qty", 99)),
    ("max_notional", lambda r: setattr(r, "max_notional", 100 * 1_000_000 - 1)),
    ("position", lambda r: setattr(r, "max_long", 99)),
    ("gross_exposure", lambda r: setattr(r, "max_gross", 100 * 1_000_000 - 1)),
])
def test_each_reject_reason(reason, setup):
    day = Day(("AAPL",))
    book(day)
    day.add("AAPL", 3, "S", 50, 1_000_000)
    cfg = permissive(config(("AAPL",)))
    setup(cfg.risk)
    _, res = run(day, cfg, writes=[trig(buy=1_000_000)])
    assert len(res.orders) == 0
    assert res.counters["reject_" + reason] == 1 and res.counters["risk_rejects"] == 1


def test_price_collar_uses_reference_price():
    day = Day(("AAPL",))
    book(day)
    day.add("AAPL", 3, "S", 50, 1_000_000)
    cfg = permissive(config(("AAPL",)))
    cfg.risk.collar_bps = 100                       # 1 %
    _, res = run(day, cfg, writes=[trig(buy=1_000_000, ref=1_020_000)])   # 1.96 % away
    assert res.counters["reject_price_collar"] == 1
    _, res = run(day, cfg, writes=[trig(buy=1_000_000, ref=1_005_000)])   # 0.5 % away
    assert len(res.orders) == 1


def test_throttle_duplicate_and_auto_kill():
    day = Day(("AAPL",), step=1_000)               # 1 µs between messages
    book(day)
    for k in range(6):                              # six fire opportunities
        day.add("AAPL", 10 + k, "S", 50, 1_000_000)
        day.delete("AAPL", 10 + k)
    cfg = permissive(config(("AAPL",)))
    cfg.risk.symbol_burst, cfg.risk.symbol_refill_ns = 2, 10**9
    _, res = run(day, cfg, writes=[trig(buy=1_000_000, rearm=1)])
    assert len(res.orders) == 2 and res.counters["reject_throttle_symbol"] == 4
    cfg = permissive(config(("AAPL",)))
    cfg.risk.dup_window_ns = 10**9
    _, res = run(day, cfg, writes=[trig(buy=1_000_000, rearm=1)])
    assert len(res.orders) == 1 and res.counters["reject_duplicate"] == 5
    cfg.risk.kill_after_rejects = 2
    _, res = run(day, cfg, writes=[trig(buy=1_000_000, rearm=1)])
    c = res.counters
    assert (len(res.orders), c["reject_duplicate"], c["reject_kill"]) == (1, 2, 3)


# "No order that breaks a risk limit leaves" as a property, with every reject reason and the
# host's mid-stream writes, on the emulator and the RTL against an independent model:
# tests/test_risk_property.py.


def test_order_frames_are_valid_tcp_in_scapy():
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    day = Day(("AAPL",))
    book(day)
    for k in range(3):
        day.add("AAPL", 10 + k, "S", 50, 1_000_000)
        day.delete("AAPL", 10 + k)
    cfg = permissive(config(("AAPL",)))
    cfg.session.seq = 0xFFFFFFF0  # wraps
    _, res = run(day, cfg, writes=[trig(buy=1_000_000, rearm=1)])
    assert len(res.orders.frames) == 3
    for k, f in enumerate(res.orders.frames):
        p = Ether(f)
        ip, tcp = p[IP], p[TCP]
        assert ip.id == k and ip.flags == "DF" and tcp.flags == "PA"
        assert tcp.seq == (0xFFFFFFF0 + 50 * k) & 0xFFFFFFFF
        assert bytes(tcp.payload) == res.orders.ouch[k]
        raw_ip, raw_tcp = ip.chksum, tcp.chksum
        del ip.chksum, tcp.chksum
        q = Ether(bytes(p))
        assert q[IP].chksum == raw_ip and q[TCP].chksum == raw_tcp


def test_refused_add_still_fires_the_trigger():
    day = Day(("AAPL",))
    book(day)
    i = day.add("AAPL", 1, "S", 50, 999_000)   # duplicate reference: the book refuses it
    _, res = run(day, permissive(config(("AAPL",))), writes=[trig(buy=999_500)])
    assert res.counters["duplicate_ref"] == 1
    assert res.orders.msg.tolist() == [i]      # the order is on the market all the same


def test_wire_triggers_fire_only_on_a_crossing_add():
    """Wire triggers (docs/architecture.md "Trigger sources"): the add term only, and only
    the side the add can cross; a delete evaluates nothing (no re-arm); a non-crossing add of
    the side re-arms (rearm 1); a replace's new order counts as an add of its side."""
    def day_of():
        day = Day(("AAPL",))
        book(day)                                       # bid 999_000, ask 1_001_000
        ids = [day.add("AAPL", 3, "S", 50, 1_000_000)]  # ask add at the trigger: buy fires
        day.delete("AAPL", 3)
        ids.append(day.add("AAPL", 4, "S", 50, 999_000))   # crosses, disarmed: nothing
        day.delete("AAPL", 4)                           # book: no evaluation, no re-arm
        day.add("AAPL", 5, "B", 10, 999_500)            # a bid add: the buy side is not looked at
        ids.append(day.add("AAPL", 6, "S", 50, 1_000_500))  # ask add above: re-arms
        ids.append(day.add("AAPL", 7, "S", 50, 999_900))    # crosses again: fires
        day.add("AAPL", 8, "S", 50, 1_002_000)          # re-arms
        ids.append(day.add_msg("U", stock_locate=1, original_order_reference_number=8,
                               new_order_reference_number=9, shares=50, price=999_800))
        return day, ids
    cfg = permissive(config(("AAPL",)))
    cfg.strategy.source = "wire"
    day, ids = day_of()
    _, res = run(day, cfg, writes=[trig(buy=1_000_000, qty=100, rearm=1)])
    assert res.orders.msg.tolist() == [ids[0], ids[3], ids[4]]
    assert set(res.orders.side.tolist()) == {0}
    # book triggers on the same day: the best ask below the trigger also fires (after the
    # delete of 3 the best ask is 999_000's order 4; re-armed only when the book's ask goes
    # above the trigger)
    cfg.strategy.source = "book"
    day, _ = day_of()
    _, book_res = run(day, cfg, writes=[trig(buy=1_000_000, qty=100, rearm=1)])
    assert book_res.orders.msg.tolist() != res.orders.msg.tolist()
