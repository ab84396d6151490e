"""Amaranth-simulator unit tests of the book builder's two engines on their own.

* :class:`LevelEngine` — the sorted level arrays: inserts at every position, eviction and
  refusal when full, removal by shares and by order count, zero-share reductions, level_miss,
  the U pair rule (emit only if the side's top N changed value), back-to-back operations on
  one slot (the forwarding / one-bubble hazard path) and output back-pressure (``hold``).
* :class:`OrderTable` — the two-bank table: the emptier bucket, lowest free way, duplicate and
  unknown references in either bank, overfill, full buckets, U halves (context hand-over, same-bucket replace), the
  level operation each op causes, and downstream back-pressure.

The reference is tests/reference_book.py, the book of docs/architecture.md written from the
document alone (tests/test_emu_book.py holds the emulator to it on whole streams).
"""

import random

import pytest
from amaranth_sim import simulate
from reference_book import CapBook

from tickwire.hw.book import LevelEngine, OrderTable
from tickwire.hw.book.hash import mix_bucket, order_bucket
from tickwire.hw.book.layouts import OpKind

ADD, RED, DEL, NOP = OpKind.ADD, OpKind.REDUCE, OpKind.DELETE, OpKind.NOP


def _meta(i):
    return {"type": ord("A"), "sequence": i + 1, "timestamp": 1000 + i, "state": 0}


def _drive(dut, ops, *, accept_sig, valid_sig, op_sig, out_valid, out, consume, hold_sig,
           hold_prob, seed, sample):
    """Offer ``ops`` one by one; collect sample(out) at every edge where out is consumed."""
    got = []
    done = [False]

    async def driver(ctx):
        for op in ops:
            ctx.set(op_sig, op)
            ctx.set(valid_sig, 1)
            await ctx.tick().until(accept_sig)
            ctx.set(valid_sig, 0)
        for _ in range(12):
            await ctx.tick()
        done[0] = True

    async def holder(ctx):
        rng = random.Random(seed)
        while not done[0]:
            h = rng.random() < hold_prob
            ctx.set(hold_sig, (not h) if consume == "accept" else h)
            await ctx.tick()

    async def collector(ctx):
        async for _, _, v, c, o in ctx.tick().sample(out_valid, hold_sig, out):
            ok = c if consume == "accept" else not c
            if v and ok:
                got.append(sample(o))

    simulate(dut, driver, background=[holder], processes=[collector])
    return got


# ----------------------------------------------------------------------------- levels

def level_ref(ops, *, symbols, levels, depth):
    """Expected (slot, book after, visible, emit, overflow, miss) per op."""
    m = CapBook(symbols=symbols, levels=levels, depth=depth)
    out = []
    pend = False
    snap = None
    for op in ops:
        before_ov, before_miss = m.c["level_overflow"], m.c["level_miss"]
        s, side = op["slot"], op["side"]
        if not op["last"]:
            snap = m.side_top(s, side)
        pos = None
        if op["uses"] and op["kind"] == ADD:
            pos = m.level_add(s, side, op["price"], op["amount"])
        elif op["uses"] and op["kind"] == RED:
            pos = m.level_reduce(s, side, op["price"], op["amount"], bool(op["removed"]))
        visible = pos is not None and pos < depth
        emit = False
        if op["uses"]:
            if op["last"]:
                emit = visible or pend
                if snap is not None and emit and snap == m.side_top(s, side):
                    emit = False
                pend, snap = False, None
            else:
                pend = visible
        book = tuple(tuple(tuple(e) for e in m.book.get((s, sd), ())) for sd in (0, 1))
        out.append((s, book if op["uses"] else None, visible, emit,
                    m.c["level_overflow"] > before_ov, m.c["level_miss"] > before_miss))
    return out


def run_levels(ops, *, symbols=4, levels=4, depth=2, hold_prob=0.0, seed=0):
    dut = LevelEngine(symbols=symbols, levels=levels, depth=depth)

    def sample(o):
        book = None
        if o.op.uses:
            book = tuple(tuple((o.book[sd].entry[i].price, o.book[sd].entry[i].shares,
                                o.book[sd].entry[i].count)
                               for i in range(levels) if (o.book[sd].valid >> i) & 1) for sd in (0, 1))
        return (o.op.slot, book, bool(o.visible), bool(o.emit), bool(o.overflow), bool(o.miss))

    full = []
    for i, op in enumerate(ops):
        d = dict(kind=NOP, uses=1, slot=0, side=0, price=0, amount=0, removed=0, last=1,
                 meta=_meta(i))
        d.update(op)
        full.append(d)
    got = _drive(dut, full, accept_sig=dut.accept, valid_sig=dut.op_valid, op_sig=dut.op,
                 out_valid=dut.out_valid, out=dut.out, consume="hold", hold_sig=dut.hold,
                 hold_prob=hold_prob, seed=seed, sample=sample)
    want = level_ref(full, symbols=symbols, levels=levels, depth=depth)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"op {i} {full[i]}:\n rtl {g}\n ref {w}"
    return got


def add(slot, side, price, amount):
    return dict(kind=ADD, slot=slot, side=side, price=price, amount=amount)


def red(slot, side, price, amount, removed=0, last=1):
    return dict(kind=RED, slot=slot, side=side, price=price, amount=amount, removed=removed,
                last=last)


@pytest.mark.parametrize("side", [0, 1])
def test_levels_insert_every_position_evict_refuse(side):
    sgn = 1 if side == 0 else -1      # bids: higher is better; asks: lower
    p = lambda k: 1000 + sgn * k       # noqa: E731
    ops = [add(0, side, p(0), 5), add(0, side, p(2), 5), add(0, side, p(1), 5),
           add(0, side, p(-1), 5),                  # full now (4 levels)
           add(0, side, p(-2), 5),                  # worse than all: refused, overflow
           add(0, side, p(3), 5),                   # best: worst evicted, overflow
           add(0, side, p(1), 7),                   # existing level: shares, count
           add(0, side, p(0), 1),                   # between: evicts p(-1)
           red(0, side, p(-1), 5, 1),               # evicted earlier: level_miss
           red(0, side, p(1), 12, 1),               # shares reach 0: removed
           red(0, side, p(3), 2),                   # partial
           red(0, side, p(3), 0),                   # zero-share reduction: no change
           red(0, side, p(3), 0, 1),                # 0 shares but the order goes: count 1->0
           ]
    run_levels(ops)


def test_levels_count_and_zero_share_levels():
    ops = [add(1, 0, 50, 0), add(1, 0, 50, 0),     # a 0-share level with 2 orders
           red(1, 0, 50, 0, 1),                    # shares 0 <= 0: removed
           add(1, 1, 60, 10), add(1, 1, 60, 10),
           red(1, 1, 60, 3, 1),                    # count 2 -> 1, shares 17
           red(1, 1, 60, 3, 1),                    # count 1 -> 0 with 14 shares left: removed
           ]
    got = run_levels(ops)
    # by hand: (slot, (bids, asks) as (price, shares, count), visible, emit, overflow, miss)
    seen = (True, True, False, False)
    assert got == [(1, (((50, 0, 1),), ()), *seen), (1, (((50, 0, 2),), ()), *seen),
                   (1, ((), ()), *seen),
                   (1, ((), ((60, 10, 1),)), *seen), (1, ((), ((60, 20, 2),)), *seen),
                   (1, ((), ((60, 17, 1),)), *seen), (1, ((), ()), *seen)]


def test_levels_replace_pair_rule():
    """U = (remove old, last=0) + (add new): visible changes emit, value-neutral ones don't."""
    ops = [add(0, 0, 100, 10), add(0, 0, 99, 5), add(0, 1, 101, 3),
           red(0, 0, 100, 10, 1, last=0), add(0, 0, 100, 10),    # same price, same size
           red(0, 0, 100, 10, 1, last=0), add(0, 0, 100, 11),    # size changed
           red(0, 0, 99, 5, 1, last=0), add(0, 0, 98, 5),        # price moved (pos 1 < depth)
           red(0, 0, 98, 5, 1, last=0), dict(kind=NOP, slot=0, side=0),  # new add refused
           red(0, 0, 777, 5, 1, last=0), add(0, 0, 50, 1),       # miss, then visible add
           add(0, 0, 60, 1),
           red(0, 0, 777, 5, 1, last=0), add(0, 0, 40, 1),       # miss, then add at pos 3
           ]
    got = run_levels(ops, levels=4, depth=2)
    assert [g[3] for g in got[3:]] == [False, False, False, True, False, True, False, True,
                                       False, True, True, False, False]


@pytest.mark.parametrize("seed", range(4))
def test_levels_random_back_to_back(seed):
    rng = random.Random(seed)
    live = {}
    ops = []
    for _ in range(300):
        slot = rng.choice([0, 0, 0, 1, 2])         # mostly one slot: back-to-back hazards
        side = rng.randrange(2)
        r = rng.random()
        if r < 0.5 or not live.get((slot, side)):
            price = rng.randrange(95, 106)
            ops.append(add(slot, side, price, rng.choice([0, 1, 5, 10])))
            live.setdefault((slot, side), []).append(price)
        elif r < 0.9:
            price = rng.choice(live[(slot, side)] + [1])
            ops.append(red(slot, side, price, rng.choice([0, 1, 3, 10, 50]),
                           removed=rng.random() < 0.5))
        else:
            price = rng.choice(live[(slot, side)])
            ops.append(red(slot, side, price, rng.randrange(0, 20), 1, last=0))
            ops.append(add(slot, side, price + rng.choice([-1, 0, 1]), rng.randrange(0, 20)))
        if rng.random() < 0.05:
            ops.append(dict(kind=NOP, uses=0, slot=rng.randrange(4)))   # a P/Q/H pass-through
    run_levels(ops, levels=5, depth=3, hold_prob=0.3 if seed % 2 else 0.0, seed=seed)


def test_levels_parameter_errors():
    with pytest.raises(ValueError, match=r"depth \(5\) must not exceed levels \(4\)"):
        LevelEngine(levels=4, depth=5)
    with pytest.raises(ValueError, match="symbols=0: must be in 1..256"):
        LevelEngine(symbols=0)


# ----------------------------------------------------------------------------- orders

def order_ref(ops, *, buckets, ways):
    """Expected level op (kind, slot, side, price, amount, removed, last) per order op and the
    counters, from the rules of docs/architecture.md."""
    m = CapBook(symbols=4, order_buckets=buckets, order_ways=ways)
    out = []
    ctx = None
    for op in ops:
        k = op["kind"]
        last = 0 if op["u0"] else 1
        lop = (NOP, op["slot"], op["side"], op["price"], op["amount"], 0, last)
        if k == ADD:
            slot, side = (ctx[0], ctx[1]) if op["u1"] else (op["slot"], op["side"])
            if op["u1"]:
                lop = (NOP, slot, side, op["price"], op["amount"], 0, 1)
            if (not op["u1"] or ctx[2]) and m.store(op["key"], slot, side, op["price"],
                                                    op["amount"]):
                lop = (ADD, slot, side, op["price"], op["amount"], 0, 1)
        elif k in (RED, DEL):
            hit = m.take(op["key"], op["amount"], whole=k == DEL)
            if hit is None:
                if op["u0"]:
                    ctx = (0, 0, False)
            else:
                slot, side, price, amt, gone = hit
                lop = (RED, slot, side, price, amt, int(gone), last)
                if op["u0"]:
                    ctx = (slot, side, True)
        out.append(lop if k != NOP else (NOP, op["slot"], op["side"], op["price"],
                                         op["amount"], 0, 1))
    return out, m.c


def full_order_ops(ops, *, buckets, ways):
    """``ops`` with every field of the op port, their two buckets computed (bank bits
    log2(buckets) - 1)."""
    bb, wb = buckets.bit_length() - 2, ways.bit_length() - 1
    full = []
    for i, op in enumerate(ops):
        d = dict(kind=NOP, key=0, slot=0, side=0, price=0, amount=0, u0=0, u1=0, meta=_meta(i))
        d.update(op)
        d["bucket"], d["bucket1"] = order_bucket(d["key"], bb, wb), mix_bucket(d["key"], bb)
        full.append(d)
    return full


def run_orders(ops, *, buckets=4, ways=2, accept_prob=1.0, seed=0, by_hand=None):
    """RTL == reference model on ``ops``; ``by_hand``: expected level ops, derived by hand,
    checked against both (a refused op's fields are don't-care, as below)."""
    dut = OrderTable(symbols=4, order_buckets=buckets, order_ways=ways)
    full = full_order_ops(ops, buckets=buckets, ways=ways)

    def sample(o):
        return (o.kind, o.slot, o.side, o.price, o.amount, o.removed, o.last)

    got = _drive(dut, full, accept_sig=dut.accept, valid_sig=dut.op_valid, op_sig=dut.op,
                 out_valid=dut.out_valid, out=dut.out, consume="accept",
                 hold_sig=dut.down_accept, hold_prob=1 - accept_prob, seed=seed, sample=sample)
    want, counters = order_ref(full, buckets=buckets, ways=ways)
    for name, ref in (("ref", want), ("by hand", by_hand)):
        if ref is None:
            continue
        assert len(got) == len(ref), name
        for i, (g, w) in enumerate(zip(got, ref)):
            if full[i]["kind"] == NOP or w[0] == NOP:
                g, w = g[:1] + g[6:], w[:1] + w[6:]     # a refused op's fields are don't-care
            assert g == w, f"op {i} {full[i]}:\n rtl {g}\n {name} {w}"
    return dut, counters


def oadd(key, slot=0, side=0, price=100, amount=10):
    return dict(kind=ADD, key=key, slot=slot, side=side, price=price, amount=amount)


def ored(key, amount):
    return dict(kind=RED, key=key, amount=amount)


def odel(key):
    return dict(kind=DEL, key=key)


def ou(old, new, price=100, amount=5):
    return [dict(kind=DEL, key=old, u0=1), dict(kind=ADD, key=new, price=price, amount=amount,
                                                u1=1)]


def test_orders_directed():
    # 4 buckets x 2 ways: two banks of 2 buckets; bank 0 by fold (parity of key >> 1), bank 1
    # by the top bit of mix32. (fold, mix32): keys 8 9 14 16 17 22 -> (1, 1), key 2 -> (1, 0)
    ops = [oadd(8, side=1, price=7),                              # tie: bank 0
           oadd(9, slot=2),                                       # bank 0 fuller: bank 1
           oadd(9),                                               # dup, found in bank 1
           oadd(14), oadd(16),                                    # tie: bank 0; then bank 1
           oadd(17),                                              # both buckets full
           ored(9, 3), ored(9, 4), ored(9, 9),                    # partial, partial, overfill
           oadd(17, price=5),                                     # bank 1's freed way 0
           odel(14), odel(14),                                    # delete, then unknown
           *ou(16, 8),                                            # new ref duplicate (bank 0)
           *ou(16, 2),                                            # unknown old: nothing
           *ou(17, 17, price=99, amount=0),                       # same ref reused, 0 shares
           *ou(17, 22, price=98),
           dict(kind=NOP, slot=3, price=42, amount=7),            # a P passes through
           ored(22, 0), ored(22, 5),
           oadd(2, price=1), ored(2, 10)]                          # bank 1: its bucket empty
    # (kind, slot, side, price, amount, removed, last), worked out from the rules by hand
    x = (NOP, 0, 0, 0, 0, 0, 1)                                   # refused (fields don't care)
    by_hand = [(ADD, 0, 1, 7, 10, 0, 1), (ADD, 2, 0, 100, 10, 0, 1), x,
               (ADD, 0, 0, 100, 10, 0, 1), (ADD, 0, 0, 100, 10, 0, 1), x,
               (RED, 2, 0, 100, 3, 0, 1), (RED, 2, 0, 100, 4, 0, 1),
               (RED, 2, 0, 100, 3, 1, 1),                         # overfill: the 3 left go
               (ADD, 0, 0, 5, 10, 0, 1),
               (RED, 0, 0, 100, 10, 1, 1), x,
               (RED, 0, 0, 100, 10, 1, 0), x,                     # U: old out, new refused
               (NOP, 0, 0, 0, 0, 0, 0), x,                        # U: unknown old, nothing
               (RED, 0, 0, 5, 10, 1, 0), (ADD, 0, 0, 99, 0, 0, 1),
               (RED, 0, 0, 99, 0, 1, 0), (ADD, 0, 0, 98, 5, 0, 1),
               (NOP, 3, 0, 42, 7, 0, 1),
               (RED, 0, 0, 98, 0, 0, 1),                          # 0 shares: the order stays
               (RED, 0, 0, 98, 5, 1, 1),
               (ADD, 0, 0, 1, 10, 0, 1), (RED, 0, 0, 1, 10, 1, 1)]
    dut, counters = run_orders(ops, by_hand=by_hand)
    assert (counters["duplicate_ref"], counters["order_table_full"], counters["unknown_ref"],
            counters["overfill"]) == (2, 1, 2, 1)
    # where the model put them: the table is full only when both buckets are
    m = CapBook(symbols=4, order_buckets=4, order_ways=2)
    for k in (8, 9, 14, 16):
        assert m.store(k, 0, 0, 1, 1)
    assert [o[0] for o in m.table[1]] == [8, 14] and [o[0] for o in m.table[3]] == [9, 16]
    assert not m.store(17, 0, 0, 1, 1) and m.c["order_table_full"] == 1


def random_order_ops(rng, n, *, small_keys, wide_keys):
    """``n`` random order ops (adds, reduces, deletes, U pairs, NOPs) over ``small_keys`` =
    (range, count) small references, which crowd buckets, and ``wide_keys`` 64-bit ones."""
    keys = ([rng.randrange(0, small_keys[0]) for _ in range(small_keys[1])]
            + [rng.randrange(1 << 64) for _ in range(wide_keys)])
    ops = []
    for _ in range(n):
        r = rng.random()
        k = rng.choice(keys)
        if r < 0.4:
            ops.append(oadd(k, rng.randrange(4), rng.randrange(2), rng.randrange(90, 110),
                            rng.choice([0, 1, 10, 100])))
        elif r < 0.7:
            ops.append(ored(k, rng.choice([0, 1, 5, 10, 200])))
        elif r < 0.85:
            ops.append(odel(k))
        elif r < 0.95:
            ops.extend(ou(k, rng.choice(keys + [k]), rng.randrange(90, 110),
                          rng.choice([0, 3, 10])))
        else:
            ops.append(dict(kind=NOP, slot=rng.randrange(4), price=1, amount=2))
    return ops


@pytest.mark.parametrize("seed", range(6))
def test_orders_random(seed):
    ops = random_order_ops(random.Random(seed), 300, small_keys=(40, 25), wide_keys=5)
    # 4 buckets (one bit a bank) crowd both banks: ops a stage apart share buckets often
    run_orders(ops, buckets=8 if seed < 3 else 4, ways=4 if seed % 2 else 2,
               accept_prob=0.6 if seed else 1.0, seed=seed)


def test_orders_parameter_errors():
    with pytest.raises(ValueError, match="order_ways=3: must be a power of two"):
        OrderTable(order_ways=3)
    with pytest.raises(ValueError, match="order_buckets=12: must be a power of two"):
        OrderTable(order_buckets=12)
