"""The emulator's hot path: book builder, trigger engine and pre-trade risk, compiled with numba.

This module *is* the semantics of docs/architecture.md ("Book builder", "Trigger engine",
"Pre-trade risk"); the gateware reproduces it bit for bit. State lives in plain numpy arrays
(:class:`State`) so one chunk of messages after another can be processed with progress in
between, and so tests can inspect every table.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.cpu import CPUTargetOptions
from numba.extending import intrinsic

from ...spec.counters import (BOOK_COUNTERS, COUNTER_NAMES, RISK_PARAMS,  # noqa: F401
                             RISK_REASONS)
from ...spec.capacity import EMULATOR
from ...spec.values import pack_symbol, unpack_symbol  # noqa: F401
from ..itch import field_offset

# ---- field offsets, derived from the ITCH table (compile-time constants for numba) ----
O_LOCATE = 1
O_TS = 5
O_A_REF = field_offset("A", "order_reference_number")
O_A_SIDE = field_offset("A", "buy_sell_indicator")
O_A_SHARES = field_offset("A", "shares")
O_A_STOCK = field_offset("A", "stock")
O_A_PRICE = field_offset("A", "price")
O_E_REF = field_offset("E", "order_reference_number")
O_E_SHARES = field_offset("E", "executed_shares")
O_X_SHARES = field_offset("X", "canceled_shares")
O_U_OLD = field_offset("U", "original_order_reference_number")
O_U_NEW = field_offset("U", "new_order_reference_number")
O_U_SHARES = field_offset("U", "shares")
O_U_PRICE = field_offset("U", "price")
O_P_SHARES = field_offset("P", "shares")
O_P_STOCK = field_offset("P", "stock")
O_P_PRICE = field_offset("P", "price")
O_Q_SHARES = field_offset("Q", "cross_shares")
O_Q_STOCK = field_offset("Q", "stock")
O_Q_PRICE = field_offset("Q", "cross_price")
O_R_STOCK = field_offset("R", "stock")
O_H_STOCK = field_offset("H", "stock")
O_H_STATE = field_offset("H", "trading_state")

# ---- counters (index into State.counters) ----
C_BOOK_MESSAGES, C_BOOK_UPDATES, C_DUP_REF, C_UNKNOWN_REF, C_OVERFILL, C_TABLE_FULL, \
    C_LEVEL_OVERFLOW, C_LEVEL_MISS, C_SYMBOL_OVERFLOW, C_FIRED, C_SENT, C_REJECTS = range(12)
C_REASON0 = len(BOOK_COUNTERS)
N_COUNTERS = C_REASON0 + len(RISK_REASONS)

# ---- risk parameter vector (index into State.risk_params): RISK_PARAMS order ----
(P_KILL, P_KILL_AFTER, P_MAX_QTY, P_MAX_NOTIONAL, P_COLLAR_BPS, P_MAX_GROSS, P_SYM_BURST,
 P_SYM_REFILL, P_GLB_BURST, P_GLB_REFILL, P_DUP_WINDOW) = range(len(RISK_PARAMS))

# global risk state (State.risk_global)
G_GROSS, G_TOKENS, G_LAST, G_TOTAL_REJECTS, G_USER_REF = range(5)

NOCHANGE = 1 << 30
# order-table entry: [reference, price << 32 | shares, slot << 8 | side << 1 | used]
OT_REF, OT_PXSH, OT_META = 0, 1, 2
BID, ASK = 0, 1
STATE_TRADING = ord("T")


class State:
    """All tables of the book builder, trigger engine and risk stage, as numpy arrays."""

    def __init__(self, symbols: int = EMULATOR["symbols"],
                 order_buckets: int = EMULATOR["order_buckets"],
                 order_ways: int = EMULATOR["order_ways"], levels: int = EMULATOR["levels"]):
        if symbols < 1 or symbols > 1 << 16:
            raise ValueError(f"capacity.symbols={symbols}: must be 1..65536")
        if order_buckets < 2 or order_buckets & (order_buckets - 1) or order_buckets > 1 << 33:
            raise ValueError(f"capacity.order_buckets={order_buckets}: must be a power of two, "
                             "2..2^33 (two banks of at most 2^32 buckets)")
        if not 1 <= order_ways <= 64 or order_ways & (order_ways - 1):
            raise ValueError(f"capacity.order_ways={order_ways}: must be a power of two, 1..64")
        if not 1 <= levels <= 4096:
            raise ValueError(f"capacity.levels={levels}: must be 1..4096")
        self.symbols, self.order_buckets, self.order_ways, self.levels = (
            symbols, order_buckets, order_ways, levels)
        S, L, n = symbols, levels, order_buckets * order_ways
        # symbol table
        self.names = np.zeros(S, np.uint64)          # 8 ASCII bytes, big-endian packed
        self.n_names = np.zeros(1, np.int64)         # slots in use
        self.auto = np.zeros(1, np.uint8)            # 1: learn names as they appear
        self.wire = np.zeros(1, np.uint8)            # 1: wire triggers (CONTROL.wire_triggers)
        self.locate_slot = np.full(65536, -1, np.int32)  # -1 unknown, -2 seen and untracked
        # order table: bank 0 (fold buckets) in entries [0, n/2), bank 1 (mix32) in [n/2, n)
        # one record per entry, a bucket's ways adjacent: a lookup touches one or two cache
        # lines per bank (reductions hit old orders all over the table)
        self.orders = np.zeros((n, 3), np.uint64)
        # price levels [slot, side, level]
        # one 16-byte record per level (price, shares, orders, unused): a side's top levels
        # share a couple of cache lines
        self.lv = np.zeros((S, 2, L, 4), np.uint32)
        self.lv_n = np.zeros((S, 2), np.int32)
        # per-slot market state
        self.trading_state = np.full(S, STATE_TRADING, np.uint8)
        self.last_trade = np.zeros((S, 2), np.uint64)  # price, shares
        # trigger table: buy_price, sell_price, quantity, enable_buy, enable_sell, rearm
        self.trig = np.zeros((S, 6), np.int64)
        self.armed = np.ones((S, 2), np.uint8)
        # risk
        self.risk_params = np.zeros(len(RISK_PARAMS), np.int64)
        self.risk_slot = np.zeros((S, 4), np.int64)    # enable, ref_price, max_long, max_short
        self.position = np.zeros(S, np.int64)
        self.sym_bucket = np.zeros((S, 2), np.int64)   # tokens, last
        self.dup = np.zeros((S, 5), np.int64)          # valid, side, price, qty, time
        self.risk_global = np.zeros(5, np.int64)
        self.counters = np.zeros(N_COUNTERS, np.int64)

    def top(self, depth: int = 1) -> np.ndarray:
        """[slot, k, (ask price, ask size, bid price, bid size)] of the k-th best levels."""
        S = self.symbols
        out = np.zeros((S, depth, 4), np.int64)
        for col, side in ((0, ASK), (2, BID)):
            n = self.lv_n[:, side].astype(np.int64)
            for k in range(depth):
                i = n - 1 - k
                ok = i >= 0
                out[ok, k, col] = self.lv[np.nonzero(ok)[0], side, i[ok], 0]
                out[ok, k, col + 1] = self.lv[np.nonzero(ok)[0], side, i[ok], 1]
        return out

    def counter_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in zip(COUNTER_NAMES, self.counters)}




# ------------------------------------------------------------------------------------------
# numba kernels
# ------------------------------------------------------------------------------------------

@njit(inline="always", cache=True)
def _u16(d, o):
    return (np.uint64(d[o]) << np.uint64(8)) | np.uint64(d[o + 1])


@njit(inline="always", cache=True)
def _u32(d, o):
    return ((np.uint64(d[o]) << np.uint64(24)) | (np.uint64(d[o + 1]) << np.uint64(16))
            | (np.uint64(d[o + 2]) << np.uint64(8)) | np.uint64(d[o + 3]))


@njit(inline="always", cache=True)
def _u48(d, o):
    return (_u16(d, o) << np.uint64(32)) | _u32(d, o + 2)


@njit(inline="always", cache=True)
def _u64(d, o):
    return (_u32(d, o) << np.uint64(32)) | _u32(d, o + 4)


# Unaligned big-endian loads for the replay kernel: one load + bswap, no index wrap-around
# code (``off`` must be in range).

def _be_loader(nbytes):
    ity = ir.IntType(8 * nbytes)

    @intrinsic
    def load(typingctx, arr, off):
        if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"
                and arr.dtype == types.uint8 and isinstance(off, types.Integer)):
            return None  # contiguous bytes only: the offset is applied to the data pointer

        def codegen(context, builder, sig, args):
            ary = context.make_array(sig.args[0])(context, builder, args[0])
            ptr = builder.bitcast(builder.gep(ary.data, [args[1]]), ity.as_pointer())
            v = builder.load(ptr, align=1)
            bswap = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ity, [ity]), f"llvm.bswap.i{8 * nbytes}")
            v = builder.call(bswap, [v])
            return builder.zext(v, ir.IntType(64)) if nbytes < 8 else v
        return types.uint64(arr, off), codegen
    return load


_be16 = _be_loader(2)
_be32 = _be_loader(4)
_be64 = _be_loader(8)


@njit(inline="always", cache=True)
def _be48(d, o):
    return (_be16(d, o) << np.uint64(32)) | _be32(d, o + 2)


@njit(inline="always", cache=True)
def order_hash(ref, bits, way_bits):
    """Bank-0 bucket of a reference number (``bits`` = the bank's, >= 1): XOR-fold of the
    ``bits``-wide chunks of ``ref >> way_bits`` (docs/architecture.md). Consecutive references
    share a bucket, so the ways of a bucket fill with neighbours."""
    r = ref >> np.uint64(way_bits)
    h = np.uint64(0)
    sh = 0
    while sh < 64:
        h ^= r >> np.uint64(sh)
        sh += bits
    return h & np.uint64((1 << bits) - 1)


@njit(inline="always", cache=True)
def mix_hash(ref, bits):
    """Bank-1 bucket of a reference number (``bits`` = the bank's, 1..32): mix32, the top
    ``bits`` bits of ``k * 0x9E3779B9 mod 2^32`` with ``k = (ref ^ ref >> 32) mod 2^32``."""
    k = (ref ^ (ref >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
    return ((k * np.uint64(0x9E3779B9)) & np.uint64(0xFFFFFFFF)) >> np.uint64(32 - bits)


# The book kernels index flat views of the tables (unsigned indices: no wrap-around code):
#   order table  ot[3 * e + OT_*]                      (State.orders.reshape(-1))
#   levels       lv[4 * ((2 * slot + side) * L + i) + field], field 0 price, 1 shares,
#                2 orders                               (State.lv.reshape(-1), L levels)
#   level counts lv_n[2 * slot + side]                  (State.lv_n.reshape(-1))
_X = np.uint64  # index cast


@njit(inline="always", cache=True)
def _ot_buckets(ref, bits, way_bits):
    """First entries of ``ref``'s two buckets: its fold bucket in bank 0 (entries from 0), its
    mix32 bucket in bank 1 (entries from half the table); ``bits`` is log2(order_buckets)."""
    b = bits - 1
    base0 = np.int64(0)
    base1 = np.int64(1) << (b + way_bits)
    if b > 0:
        base0 = np.int64(order_hash(ref, b, way_bits)) << way_bits
        base1 += np.int64(mix_hash(ref, b)) << way_bits
    return base0, base1


@njit(inline="always", cache=True)
def _ot_lookup(ot, ref, bits, way_bits):
    """(entry of ``ref``, entry an insert of it takes); -1 where there is none. ``bits`` is
    log2(order_buckets): two banks of 2^(bits-1) buckets, ``ref`` in its fold bucket of bank
    0 or its mix32 bucket of bank 1; an insert goes to the one with fewer live entries (bank
    0 on a tie), lowest free way."""
    ways = 1 << way_bits
    base0, base1 = _ot_buckets(ref, bits, way_bits)
    free0 = -1
    free1 = -1
    n0 = 0
    n1 = 0
    # both banks way by way: their cache misses overlap (a reference is held at most once,
    # so which bank is looked at first does not matter)
    for w in range(ways):
        e0 = _X(3 * (base0 + w))
        e1 = _X(3 * (base1 + w))
        u0 = ot[e0 + _X(OT_META)] & np.uint64(1)
        u1 = ot[e1 + _X(OT_META)] & np.uint64(1)
        if u0:
            if ot[e0] == ref:
                return base0 + w, -1
            n0 += 1
        elif free0 < 0:
            free0 = base0 + w
        if u1:
            if ot[e1] == ref:
                return base1 + w, -1
            n1 += 1
        elif free1 < 0:
            free1 = base1 + w
    return -1, (free1 if n1 < n0 else free0)


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Start loading ``arr[idx]`` into the cache (LLVM's prefetch: read, high locality)."""
    if not (isinstance(arr, types.Array) and arr.layout == "C"
            and isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        i8p = ir.IntType(8).as_pointer()
        ptr = builder.bitcast(builder.gep(ary.data, [args[1]]), i8p)
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.void(arr, idx), codegen


#: Messages the replay kernel looks ahead to start loading their order-table buckets: an add
#: probes a cold bucket in each bank, and the loads of the next few messages overlap.
PREFETCH_AHEAD = 8


@njit(inline="always", cache=True)
def _prefetch_buckets(data, o, ot, bits, way_bits):
    """Prefetch the two buckets (both banks) the message at ``o`` will look up, if any."""
    t = data[o]
    if t == 65 or t == 70:
        ref = _be64(data, o + O_A_REF)
    elif t == 68 or t == 69 or t == 88 or t == 67:
        ref = _be64(data, o + O_E_REF)
    elif t == 85:
        ref = _be64(data, o + O_U_OLD)
    else:
        return
    base0, base1 = _ot_buckets(ref, bits, way_bits)
    _prefetch(ot, _X(3 * base0))
    _prefetch(ot, _X(3 * base1))


@njit(inline="always", cache=True)
def _ot_put(ot, i, ref, slot, side, price, shares):
    e = _X(3 * i)
    ot[e] = ref
    ot[e + _X(OT_PXSH)] = (np.uint64(price) << np.uint64(32)) | np.uint64(shares)
    ot[e + _X(OT_META)] = (np.uint64(slot) << np.uint64(8)) | (np.uint64(side) << np.uint64(1)) \
        | np.uint64(1)


# Levels are stored worst first: index lv_n-1 is the best level. Activity concentrates at the
# touch, so inserts and removals there shift only the few better levels, not the whole book.

@njit(inline="always", cache=True)
def _better(side, a, b):
    return (a > b) if side == BID else (a < b)


@njit(inline="always", cache=True)
def _level_move(lv, dst, src):
    """Copy level record ``src`` (price, shares, orders) over record ``dst`` (flat offsets)."""
    lv[_X(dst)] = lv[_X(src)]
    lv[_X(dst + 1)] = lv[_X(src + 1)]
    lv[_X(dst + 2)] = lv[_X(src + 2)]


@njit(inline="always", cache=True)
def _level_add(lv, lv_n, L, s, side, price, shares, counters):
    """Add one order's shares at ``price``; returns the sorted position touched or NOCHANGE."""
    ns = 2 * s + side
    b = 4 * L * ns
    n = np.int64(lv_n[_X(ns)])
    i = n - 1
    pos = 0
    while i >= 0:
        q = b + 4 * i
        p = lv[_X(q)]
        if p == price:
            lv[_X(q + 1)] += shares
            lv[_X(q + 2)] += 1
            return pos
        if _better(side, price, p):
            break
        i -= 1
        pos += 1
    ins = i + 1
    if n == L:
        counters[C_LEVEL_OVERFLOW] += 1
        if ins == 0:
            return NOCHANGE  # worse than every stored level: not stored
        for j in range(ins - 1):  # evict the worst level (index 0)
            _level_move(lv, b + 4 * j, b + 4 * j + 4)
        ins -= 1
    else:
        j = n
        while j > ins:
            _level_move(lv, b + 4 * j, b + 4 * j - 4)
            j -= 1
        lv_n[_X(ns)] = n + 1
    q = b + 4 * ins
    lv[_X(q)] = price
    lv[_X(q + 1)] = shares
    lv[_X(q + 2)] = 1
    return pos


@njit(inline="always", cache=True)
def _level_reduce(lv, lv_n, L, s, side, price, shares, order_gone, counters):
    """Take ``shares`` off the level at ``price`` (and one order if ``order_gone``)."""
    ns = 2 * s + side
    b = 4 * L * ns
    n = np.int64(lv_n[_X(ns)])
    i = n - 1
    pos = 0
    while i >= 0 and lv[_X(b + 4 * i)] != price:
        i -= 1
        pos += 1
    if i < 0:
        counters[C_LEVEL_MISS] += 1
        return NOCHANGE
    if shares == 0 and not order_gone:
        return NOCHANGE
    q = b + 4 * i
    left = np.int64(lv[_X(q + 1)]) - np.int64(shares)
    cnt = np.int64(lv[_X(q + 2)]) - (1 if order_gone else 0)
    if left <= 0 or cnt <= 0:
        for j in range(i, n - 1):
            _level_move(lv, b + 4 * j, b + 4 * j + 4)
        q = b + 4 * (n - 1)
        lv[_X(q)] = 0
        lv[_X(q + 1)] = 0
        lv[_X(q + 2)] = 0
        lv_n[_X(ns)] = n - 1
    else:
        lv[_X(q + 1)] = left
        lv[_X(q + 2)] = cnt
    return pos


@njit(inline="always", cache=True)
def _lv_top(lv, lv_n, L, s, side, k, field):
    """Field (0 price, 1 shares) of the k-th best level (0 when the side has fewer levels)."""
    ns = 2 * s + side
    i = np.int64(lv_n[_X(ns)]) - 1 - k
    return lv[_X(4 * (L * ns + i) + field)] if i >= 0 else np.uint32(0)


@njit(inline="always", cache=True)
def _top_price(lv, lv_n, s, side, k):
    """Price of the k-th best level (0 when the side has fewer levels); 4-d tables."""
    i = lv_n[s, side] - 1 - k
    return lv[s, side, i, 0] if i >= 0 else np.uint32(0)


@njit(cache=True)
def _map_slot(names, n_names, auto, locate_slot, loc, stock, may_allocate, counters):
    """Slot of a stock_locate, learning the mapping from a message that carries the stock.

    -1: not (yet) mapped; -2: seen and not tracked (names never change within a day).
    """
    s = locate_slot[loc]
    if s != -1:
        return s
    for i in range(n_names[0]):
        if names[i] == stock:
            locate_slot[loc] = i
            return i
    if auto[0]:
        if not may_allocate:
            return -1
        if n_names[0] < names.shape[0]:
            i = n_names[0]
            names[i] = stock
            n_names[0] = i + 1
            locate_slot[loc] = i
            return i
        counters[C_SYMBOL_OVERFLOW] += 1
    locate_slot[loc] = -2
    return -2


@njit(inline="always", cache=True)
def _refill(tokens, last, now, burst, refill_ns):
    if refill_ns > 0 and now > last:
        k = (now - last) // refill_ns
        if k > 0:
            tokens = min(burst, tokens + k)
            last = last + k * refill_ns
    if tokens >= burst:
        tokens = burst
        last = now
    return tokens, last


@njit(inline="always", cache=True)
def _risk_check(s, side, price, qty, now, rp, rs, position, sym_bucket, dup, rg):
    """Pre-trade risk: returns -1 to accept, else the index of the first failing reason."""
    # buckets refill before every check (time only moves forward)
    if rp[P_SYM_REFILL] > 0:
        t, l = _refill(sym_bucket[s, 0], sym_bucket[s, 1], now, rp[P_SYM_BURST], rp[P_SYM_REFILL])
        sym_bucket[s, 0] = t
        sym_bucket[s, 1] = l
    if rp[P_GLB_REFILL] > 0:
        t, l = _refill(rg[G_TOKENS], rg[G_LAST], now, rp[P_GLB_BURST], rp[P_GLB_REFILL])
        rg[G_TOKENS] = t
        rg[G_LAST] = l
    notional = qty * price
    if rp[P_KILL] != 0:
        return 0
    if rs[s, 0] == 0:
        return 1
    if qty > rp[P_MAX_QTY]:
        return 2
    if notional > rp[P_MAX_NOTIONAL]:
        return 3
    ref = rs[s, 1]
    if ref != 0 and abs(price - ref) * 10000 > rp[P_COLLAR_BPS] * ref:
        return 4
    if side == BID:
        if position[s] + qty > rs[s, 2]:
            return 5
    else:
        if position[s] - qty < -rs[s, 3]:
            return 5
    if rg[G_GROSS] + notional > rp[P_MAX_GROSS]:
        return 6
    if rp[P_SYM_REFILL] > 0 and sym_bucket[s, 0] <= 0:
        return 7
    if rp[P_GLB_REFILL] > 0 and rg[G_TOKENS] <= 0:
        return 8
    if (rp[P_DUP_WINDOW] > 0 and dup[s, 0] != 0 and dup[s, 1] == side and dup[s, 2] == price
            and dup[s, 3] == qty and now - dup[s, 4] < rp[P_DUP_WINDOW]):
        return 9
    return -1


@njit(cache=True, error_model="numpy", nogil=True)
def _trigger(s, k, now, seq, add_side, add_price, lv, lv_n, trig, armed, rp, rs, position,
             sym_bucket, dup, rg, counters, order_out, norders, wire):
    """Trigger engine and pre-trade risk for slot ``s`` after message ``k``; kept out of the
    book loop (called only for slots with an enabled trigger) so the hot loop stays small.
    ``wire``: wire triggers (only the add term, only the side the add can cross)."""
    for side in range(2):  # buy first
        if trig[s, 3 + side] == 0:
            continue
        # wire triggers: a buy is evaluated on an ask add, a sell on a bid add, nothing else
        if wire and add_side != (ASK if side == BID else BID):
            continue
        # the book after the message, or the order the message added (on the market even
        # when the book could not store it)
        if side == BID:
            px = trig[s, 0]
            cond = (not wire and lv_n[s, ASK] > 0 and
                    np.int64(_top_price(lv, lv_n, s, ASK, 0)) <= px) or \
                (add_side == ASK and add_price <= px)
        else:
            px = trig[s, 1]
            cond = (not wire and lv_n[s, BID] > 0 and
                    np.int64(_top_price(lv, lv_n, s, BID, 0)) >= px) or \
                (add_side == BID and add_price >= px)
        if not armed[s, side]:
            if trig[s, 5] == 1 and not cond:
                armed[s, side] = 1
            continue
        if not cond:
            continue
        armed[s, side] = 0
        counters[C_FIRED] += 1
        qty = trig[s, 2]
        r = _risk_check(s, side, px, qty, now, rp, rs, position, sym_bucket, dup, rg)
        if r >= 0:
            counters[C_REJECTS] += 1
            counters[C_REASON0 + r] += 1
            rg[G_TOTAL_REJECTS] += 1
            if rp[P_KILL_AFTER] > 0 and rg[G_TOTAL_REJECTS] >= rp[P_KILL_AFTER]:
                rp[P_KILL] = 1
            continue
        counters[C_SENT] += 1
        if side == BID:
            position[s] += qty
        else:
            position[s] -= qty
        rg[G_GROSS] += qty * px
        if rp[P_SYM_REFILL] > 0:
            sym_bucket[s, 0] -= 1
        if rp[P_GLB_REFILL] > 0:
            rg[G_TOKENS] -= 1
        dup[s, 0] = 1
        dup[s, 1] = side
        dup[s, 2] = px
        dup[s, 3] = qty
        dup[s, 4] = now
        order_out[norders, 0] = k
        order_out[norders, 1] = s
        order_out[norders, 2] = side
        order_out[norders, 3] = px
        order_out[norders, 4] = qty
        order_out[norders, 5] = rg[G_USER_REF]
        order_out[norders, 6] = seq
        order_out[norders, 7] = now
        rg[G_USER_REF] += 1
        norders += 1
    return norders


# ---- one message's book change, shared by process() and replay() -------------------------
# Each takes the flat order table ``ot`` and level views ``lv``/``lv_n`` (``L`` levels a side)
# and returns the top-of-book change (NOCHANGE when the visible levels stayed as they were).

@njit(inline="always", cache=True)
def _insert(ot, bits, way_bits, lv, lv_n, L, ref, s, side, price, shares, counters):
    """Store a new order and add it to its level: the change position; NOCHANGE where the
    table refused it (duplicate_ref, order_table_full)."""
    i, free = _ot_lookup(ot, ref, bits, way_bits)
    if i >= 0:
        counters[C_DUP_REF] += 1
    elif free < 0:
        counters[C_TABLE_FULL] += 1
    else:
        _ot_put(ot, free, ref, s, side, price, shares)
        return _level_add(lv, lv_n, L, s, side, price, shares, counters)
    return NOCHANGE


@njit(inline="always", cache=True)
def _book_add(data, o, s, ot, bits, way_bits, lv, lv_n, L, counters):
    """A or F on slot ``s``: (change, side, price)."""
    ref = _be64(data, o + O_A_REF)
    side = BID if data[o + O_A_SIDE] == 66 else ASK
    shares = _be32(data, o + O_A_SHARES)
    price = _be32(data, o + O_A_PRICE)
    change = _insert(ot, bits, way_bits, lv, lv_n, L, ref, s, side, price, shares, counters)
    return change, side, price


@njit(inline="always", cache=True)
def _book_reduce(data, o, t, ot, bits, way_bits, lv, lv_n, L, counters):
    """E C X D: (slot of the order or -1 when unknown, change)."""
    i, free = _ot_lookup(ot, _be64(data, o + O_E_REF), bits, way_bits)
    if i < 0:
        counters[C_UNKNOWN_REF] += 1
        return np.int64(-1), NOCHANGE
    e = _X(3 * i)
    pxsh = ot[e + _X(OT_PXSH)]
    meta = ot[e + _X(OT_META)]
    rem = np.int64(pxsh & np.uint64(0xFFFFFFFF))
    if t == 68:
        amt = rem
    elif t == 88:
        amt = np.int64(_be32(data, o + O_X_SHARES))
    else:
        amt = np.int64(_be32(data, o + O_E_SHARES))
    if amt > rem:
        counters[C_OVERFILL] += 1
        amt = rem
    gone = amt == rem
    s = np.int64(meta >> np.uint64(8))
    side = np.int64((meta >> np.uint64(1)) & np.uint64(1))
    change = _level_reduce(lv, lv_n, L, s, side, pxsh >> np.uint64(32), amt, gone, counters)
    if gone:
        ot[e + _X(OT_META)] = 0
    else:
        ot[e + _X(OT_PXSH)] = pxsh - np.uint64(amt)
    return s, change


@njit(inline="always", cache=True)
def _book_replace(data, o, ot, bits, way_bits, lv, lv_n, L, depth, snap, counters):
    """U: (slot of the original or -1 when unknown, change, side, new price); ``snap`` is
    scratch for the visible levels before it."""
    i, free = _ot_lookup(ot, _be64(data, o + O_U_OLD), bits, way_bits)
    if i < 0:
        counters[C_UNKNOWN_REF] += 1
        return np.int64(-1), NOCHANGE, np.int64(-1), np.uint64(0)
    e = _X(3 * i)
    pxsh = ot[e + _X(OT_PXSH)]
    meta = ot[e + _X(OT_META)]
    side = np.int64((meta >> np.uint64(1)) & np.uint64(1))
    s = np.int64(meta >> np.uint64(8))
    # a replace can leave the visible levels as they were: keep them to compare
    for kk in range(depth):
        snap[kk, 0] = _lv_top(lv, lv_n, L, s, side, kk, 0)
        snap[kk, 1] = _lv_top(lv, lv_n, L, s, side, kk, 1)
    c1 = _level_reduce(lv, lv_n, L, s, side, pxsh >> np.uint64(32),
                       np.int64(pxsh & np.uint64(0xFFFFFFFF)), True, counters)
    ot[e + _X(OT_META)] = 0
    price = _be32(data, o + O_U_PRICE)
    shares = _be32(data, o + O_U_SHARES)
    new = _be64(data, o + O_U_NEW)
    c2 = _insert(ot, bits, way_bits, lv, lv_n, L, new, s, side, price, shares, counters)
    change = min(c1, c2)
    if change < depth:
        same = True
        for kk in range(depth):
            if (snap[kk, 0] != _lv_top(lv, lv_n, L, s, side, kk, 0)
                    or snap[kk, 1] != _lv_top(lv, lv_n, L, s, side, kk, 1)):
                same = False
                break
        if same:
            change = NOCHANGE
    return s, change, side, price


@njit(inline="always", cache=True)
def _state_msg(data, o, t, loc, part, part_mask, names, n_names, auto, locate_slot,
               trading_state, last_trade, counters):
    """P Q R H, which change no book: last trade, symbol learning (R), trading state."""
    if t == 80 or t == 81:  # P Q
        cross = t == 81
        s = _map_slot(names, n_names, auto, locate_slot, loc,
                      _be64(data, o + (O_Q_STOCK if cross else O_P_STOCK)), False, counters)
        if s >= 0 and (s & part_mask) == part:
            last_trade[s, 0] = _be32(data, o + (O_Q_PRICE if cross else O_P_PRICE))
            last_trade[s, 1] = (_be64(data, o + O_Q_SHARES) if cross
                                else _be32(data, o + O_P_SHARES))
    elif t == 82:  # R
        _map_slot(names, n_names, auto, locate_slot, loc, _be64(data, o + O_R_STOCK), True,
                  counters)
    elif t == 72:  # H
        s = locate_slot[loc]
        if s >= 0 and (s & part_mask) == part:
            trading_state[s] = data[o + O_H_STATE]


@njit(cache=True, error_model="numpy", nogil=True)
def process(data, offsets, sequences, first_msg, writes, depth, part, part_mask,
            names, n_names, auto, locate_slot,
            ot, bits, way_bits,
            lv, lv_n, trading_state, last_trade,
            trig, armed, rp, rs, position, sym_bucket, dup, rg, counters,
            row_msg, row_seq, row_ts, row_slot, row_levels, order_out, wire):
    """Run messages through book → trigger → risk.

    ``wire[0]`` 1: wire triggers (docs/architecture.md "Trigger sources").

    ``offsets[i]`` is the offset of message i's type byte in ``data``; ``sequences[i]`` its
    sequence number. ``writes`` is the host-write schedule: rows (message index, slot,
    buy_price, sell_price, quantity, enable_buy, enable_sell, rearm, ref_price) applied before
    that message (index counted from ``first_msg``, the global index of offsets[0]).
    Only slots with ``slot & part_mask == part`` are processed (every call keeps its own copy
    of the symbol table, so parallel calls on the same messages learn identical mappings);
    one call with ``part = part_mask = 0`` does everything.
    Returns (rows, orders) written into ``row_*`` and ``order_out`` (msg, slot, side, price,
    qty, user_ref, sequence, timestamp); ``msg`` is the index into ``offsets``.
    """
    nrows = 0
    norders = 0
    snap = np.zeros((max(depth, 1), 2), np.int64)
    otf = ot.reshape(ot.size)
    lvf = lv.reshape(lv.size)
    lvnf = lv_n.reshape(lv_n.size)
    L = lv.shape[2]
    nw = 0
    W = writes.shape[0]
    for k in range(offsets.shape[0]):
        gk = first_msg + k
        while nw < W and writes[nw, 0] <= gk:
            ws = writes[nw, 1]
            if 0 <= ws < trig.shape[0]:
                for c in range(6):
                    trig[ws, c] = writes[nw, 2 + c]
                armed[ws, 0] = 1
                armed[ws, 1] = 1
                if writes[nw, 8] >= 0:
                    rs[ws, 1] = writes[nw, 8]
            nw += 1
        o = offsets[k]
        t = data[o]
        loc = np.int64(_u16(data, o + O_LOCATE))
        s = -1
        change = NOCHANGE
        book_msg = False
        add_side = -1  # side and price of an order this message put on the market
        add_price = np.int64(0)
        if t == 65 or t == 70:  # A F
            s = locate_slot[loc]
            if s == -1:
                s = _map_slot(names, n_names, auto, locate_slot, loc, _u64(data, o + O_A_STOCK),
                              True, counters)
            if s >= 0 and (s & part_mask) == part:
                book_msg = True
                change, add_side, price = _book_add(data, o, s, otf, bits, way_bits, lvf, lvnf,
                                                    L, counters)
                add_price = np.int64(price)
        elif t == 69 or t == 67 or t == 88 or t == 68:  # E C X D
            s = locate_slot[loc]
            if s >= 0 and (s & part_mask) == part:
                book_msg = True
                so, change = _book_reduce(data, o, t, otf, bits, way_bits, lvf, lvnf, L,
                                          counters)
                if so >= 0:
                    s = so
        elif t == 85:  # U
            s = locate_slot[loc]
            if s >= 0 and (s & part_mask) == part:
                book_msg = True
                so, change, side, price = _book_replace(data, o, otf, bits, way_bits, lvf,
                                                        lvnf, L, depth, snap, counters)
                if so >= 0:
                    s = so
                    add_side = side
                    add_price = np.int64(price)
        else:
            _state_msg(data, o, t, loc, part, part_mask, names, n_names, auto, locate_slot,
                       trading_state, last_trade, counters)
            continue
        if not book_msg or s < 0 or (s & part_mask) != part:
            continue
        counters[C_BOOK_MESSAGES] += 1
        if change < depth:
            counters[C_BOOK_UPDATES] += 1
            if row_msg.shape[0] > 0:
                row_msg[nrows] = k
                row_seq[nrows] = sequences[k]
                row_ts[nrows] = _u48(data, o + O_TS)
                row_slot[nrows] = s
                for kk in range(depth):
                    row_levels[nrows, kk, 0] = _lv_top(lvf, lvnf, L, s, ASK, kk, 0)
                    row_levels[nrows, kk, 1] = _lv_top(lvf, lvnf, L, s, ASK, kk, 1)
                    row_levels[nrows, kk, 2] = _lv_top(lvf, lvnf, L, s, BID, kk, 0)
                    row_levels[nrows, kk, 3] = _lv_top(lvf, lvnf, L, s, BID, kk, 1)
                nrows += 1
        # ---- trigger engine ----
        if trading_state[s] != STATE_TRADING or (trig[s, 3] == 0 and trig[s, 4] == 0):
            continue
        norders = _trigger(s, k, np.int64(_u48(data, o + O_TS)), np.int64(sequences[k]),
                           add_side, add_price, lv, lv_n, trig, armed, rp, rs, position,
                           sym_bucket, dup, rg, counters, order_out, norders, wire[0] != 0)
    return nrows, norders


# The replay kernel is compiled without NRT reference counting where numba offers it: the
# array helpers inlined into its loop would otherwise increment and decrement their arrays'
# reference counts (atomic operations) around every call. It allocates nothing.
_NO_REFCOUNT = {"_nrt": False} if hasattr(CPUTargetOptions, "_nrt") else {}


@njit(cache=True, error_model="numpy", nogil=True, **_NO_REFCOUNT)
def replay(data, offsets, sequences, count, first_msg, depth,
           names, n_names, auto, locate_slot, ot, bits, way_bits, lv, levels, lv_n,
           trading_state, last_trade, counters,
           row_msg, row_seq, row_ts, row_slot, row_levels, nrows, snap, lv_cols=0):
    """The book stage alone: :func:`process` for a pure replay (one call, ``part_mask = 0``,
    no host writes, no trigger enabled), same state changes, counters and rows, in a loop
    with fewer live values.

    Messages ``offsets[:count]`` (message ``k`` is message ``first_msg + k`` of the run);
    ``ot``, ``lv`` and ``lv_n`` are the flat views of ``State.orders``, ``State.lv`` and
    ``State.lv_n`` (``levels`` levels per side). Rows go to ``row_*[nrows:]`` (``row_msg``
    holds the run-wide message index; ``row_levels`` is flat, ``depth * 4`` values a row;
    empty arrays: no rows kept), which must have room for ``count`` more; returns the new
    row count. ``snap``: int64 scratch of ``max(depth, 1)`` rows, 2 columns. ``lv_cols`` > 0:
    ``row_levels`` holds ``depth * 4`` columns of ``lv_cols`` rows each instead (value ``j``
    of row ``r`` at ``j * lv_cols + r``), which a columnar writer takes without a copy.
    """
    lv_row, lv_val = (_X(1), _X(lv_cols)) if lv_cols > 0 else (_X(4 * depth), _X(1))
    keep = row_msg.shape[0] > 0
    n_book = 0
    n_updates = 0
    L = levels
    for k in range(count):
        if k + PREFETCH_AHEAD < count:
            _prefetch_buckets(data, offsets[k + PREFETCH_AHEAD], ot, bits, way_bits)
        o = offsets[k]
        t = data[o]
        loc = _be16(data, o + O_LOCATE)
        change = NOCHANGE
        if t == 65 or t == 70:  # A F
            s = np.int64(locate_slot[loc])
            if s == -1:
                s = _map_slot(names, n_names, auto, locate_slot, np.int64(loc),
                              _be64(data, o + O_A_STOCK), True, counters)
            if s < 0:
                continue
            change, side, price = _book_add(data, o, s, ot, bits, way_bits, lv, lv_n, L,
                                            counters)
        elif t == 68 or t == 69 or t == 88 or t == 67:  # D E X C
            s = np.int64(locate_slot[loc])
            if s < 0:
                continue
            so, change = _book_reduce(data, o, t, ot, bits, way_bits, lv, lv_n, L, counters)
            if so >= 0:
                s = so
        elif t == 85:  # U
            s = np.int64(locate_slot[loc])
            if s < 0:
                continue
            so, change, side, price = _book_replace(data, o, ot, bits, way_bits, lv, lv_n, L,
                                                    depth, snap, counters)
            if so >= 0:
                s = so
        else:
            _state_msg(data, o, t, np.int64(loc), 0, 0, names, n_names, auto, locate_slot,
                       trading_state, last_trade, counters)
            continue
        n_book += 1
        if change < depth:
            n_updates += 1
            if keep:
                row_msg[nrows] = first_msg + k
                row_seq[nrows] = sequences[k]
                row_ts[nrows] = _be48(data, o + O_TS)
                row_slot[nrows] = s
                r = lv_row * _X(nrows)
                for kk in range(depth):
                    row_levels[r] = _lv_top(lv, lv_n, L, s, ASK, kk, 0)
                    row_levels[r + lv_val] = _lv_top(lv, lv_n, L, s, ASK, kk, 1)
                    row_levels[r + _X(2) * lv_val] = _lv_top(lv, lv_n, L, s, BID, kk, 0)
                    row_levels[r + _X(3) * lv_val] = _lv_top(lv, lv_n, L, s, BID, kk, 1)
                    r += _X(4) * lv_val
                nrows += 1
    counters[C_BOOK_MESSAGES] += n_book
    counters[C_BOOK_UPDATES] += n_updates
    return nrows
