"""The order table's second bank, emulator against gateware: references whose fold buckets
(bank 0) collide, so that bank 1 (mix32) takes them, then executions, cancels, deletes and
replaces of the orders in either bank, until both of a reference's buckets are full."""

import numpy as np
import pytest

from tickwire.host.emu.core import mix_hash, order_hash
from reference_book import CapBook
from test_hw_book import SMALL, Day, check

# 8 buckets x 2 ways: two banks of 4 buckets (2 bits each)
PARAMS = dict(SMALL, order_buckets=8, order_ways=2, levels=4, depth=2)
BITS, WAY_BITS = 2, 1


def colliding_refs(n, bucket=0):
    """The first ``n`` references whose bank-0 bucket is ``bucket``, with their bank-1 ones."""
    out = []
    r = 1
    while len(out) < n:
        if int(order_hash(np.uint64(r), BITS, WAY_BITS)) == bucket:
            out.append((r, int(mix_hash(np.uint64(r), BITS))))
        r += 1
    return out


def day_of(refs):
    d = Day()
    for i, (r, _) in enumerate(refs):
        d.add(1, r, "BS"[i % 2], 10 + i, 1000 + (i % 3) * (1 if i % 2 else -1))
    a, b, c, e = (r for r, _ in refs[2:6])
    d("E", stock_locate=1, order_reference_number=a, executed_shares=4, match_number=1)
    d("X", stock_locate=1, order_reference_number=b, canceled_shares=100)     # overfill
    d("C", stock_locate=1, order_reference_number=c, executed_shares=3, match_number=2,
      printable="Y", execution_price=1)
    d("U", stock_locate=1, original_order_reference_number=e,
      new_order_reference_number=refs[-1][0] + 1000, shares=7, price=1001)
    d("D", stock_locate=1, order_reference_number=a)
    for r, _ in refs[:4]:
        d.add(1, r, "B", 1, 999)                       # duplicates (found in either bank)
    for r, _ in refs[6:]:
        d("D", stock_locate=1, order_reference_number=r)
    return d


@pytest.mark.parametrize("ready_prob", [1.0, 0.5])
def test_bank1_takes_the_colliding_adds(ready_prob):
    refs = colliding_refs(12)
    d = day_of(refs)
    rows, c, _ = check(d.msgs, names=["AAPL"], params=PARAMS, ready_prob=ready_prob,
                       seed=3, state_slots=range(2))
    # by the document's model: bank 0's bucket holds 2 of them, bank 1 took more, and the
    # rest found both buckets full
    m = CapBook(symbols=4, order_buckets=8, order_ways=2)
    stored = [m.store(r, 0, 0, 1, 1) for r, _ in refs]
    in_bank1 = sum(o is not None for b in m.table[4:] for o in b)
    assert sum(o is not None for o in m.table[0]) == 2 and in_bank1 >= 4
    assert c["order_table_full"] == stored.count(False) > 0
    # the re-adds of refs[:4] are duplicates where the first add was stored (refs[2] and
    # refs[3] left before: added again)
    assert c["duplicate_ref"] == stored[0] + stored[1] > 0
    assert c["overfill"] == 1 and len(rows) > 10
