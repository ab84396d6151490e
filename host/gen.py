"""Deterministic synthetic NASDAQ TotalView-ITCH 5.0 day, MoldUDP64 packets and captures.

:func:`generate_day` simulates a trading day: per symbol a random-walk fair price, limit
orders added near the touch (geometric distance in ticks), most of them later deleted, partly
cancelled or replaced, executions at the touch when the fair price runs through the book,
hidden trades, opening/closing crosses, NOII, Reg SHO and market-maker messages. The books it
implies never lock or cross, and every execution, cancel, delete and replace refers to a live
order with enough shares, so the emulator's book builder can be checked on it exactly.

:func:`generate_deep_day` builds a book of about a million live orders, some sides over a
thousand levels deep, then trades, cancels and replaces in it, under the same guarantees;
:func:`book_stats` follows the book a day implies (live orders, levels per side).

Everything random is drawn from one ``numpy.random.default_rng(seed)`` in a fixed order, so a
(symbols, messages, seed) triple always gives the same bytes. The event loop is plain Python
fed with pre-drawn numpy chunks; the message bytes are built column-wise per type from the
ITCH table (no per-message encode), which is what keeps millions of messages fast.
"""

from __future__ import annotations

import bisect
import calendar
import itertools
import math
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import itch
from .genflow import FlowSchedule

__all__ = [
    "Day", "TICKERS", "symbol_names", "generate_day", "inject_faults", "FAULTS", "to_packets",
    "write_capture", "day_stats", "DEFAULT_EPOCH_NS", "generate_deep_day", "book_stats",
]

NS = 1_000_000_000
HOUR = 3600 * NS
MIN = 60 * NS
from ..spec.values import TICK  # noqa: E402

# Session clock (ns since midnight, US Eastern). The pre-open and post-close phases are kept
# short so captures do not fill up with hours of heartbeats.
T_START_MESSAGES = 9 * HOUR + 25 * MIN
T_START_SYSTEM = 9 * HOUR + 26 * MIN
T_PRE_OPEN_NOII = 9 * HOUR + 29 * MIN + 50 * NS
T_OPEN = 9 * HOUR + 30 * MIN
T_CLOSE_NOII = 15 * HOUR + 50 * MIN
T_CLOSE = 16 * HOUR
T_END_SYSTEM = 16 * HOUR + 5 * MIN
T_END_MESSAGES = 16 * HOUR + 5 * MIN + NS

#: pcap time of midnight of the synthetic day: 2024-06-03 00:00 EDT (04:00 UTC), in ns.
DEFAULT_EPOCH_NS = calendar.timegm((2024, 6, 3, 4, 0, 0)) * NS

# Real-looking NASDAQ listings with rough price levels (USD), most active first.
TICKERS: tuple[tuple[str, float], ...] = (
    ("AAPL", 192.0), ("MSFT", 415.0), ("NVDA", 118.0), ("AMZN", 181.0), ("TSLA", 177.0),
    ("META", 476.0), ("GOOGL", 171.0), ("AMD", 161.0), ("GOOG", 173.0), ("AVGO", 158.0),
    ("NFLX", 465.0), ("INTC", 31.0), ("CSCO", 47.5), ("QCOM", 201.0), ("PEP", 169.0),
    ("COST", 488.0), ("ADBE", 471.0), ("TMUS", 163.0), ("CMCSA", 39.2), ("TXN", 195.0),
    ("INTU", 455.0), ("AMGN", 305.0), ("HON", 203.0), ("AMAT", 214.0), ("ISRG", 398.0),
    ("SBUX", 80.1), ("MDLZ", 68.4), ("GILD", 64.9), ("ADP", 244.0), ("VRTX", 462.0),
    ("ADI", 231.0), ("PYPL", 63.2), ("MU", 131.0), ("PANW", 296.0), ("SNPS", 487.0),
    ("CDNS", 283.0), ("CSX", 33.6), ("MAR", 230.0), ("ORLY", 447.0), ("ABNB", 148.0),
    ("CTAS", 466.0), ("MNST", 52.1), ("FTNT", 59.4), ("CHTR", 281.0), ("KDP", 34.1),
    ("AEP", 89.3), ("DXCM", 114.0), ("PAYX", 120.0), ("ROST", 139.0), ("ODFL", 176.0),
    ("KHC", 35.6), ("EXC", 37.5), ("LULU", 319.0), ("MRNA", 142.0), ("CPRT", 53.8),
    ("IDXX", 493.0), ("FAST", 64.0), ("CTSH", 66.7), ("EA", 133.0), ("XEL", 55.2),
    ("VRSK", 251.0), ("BKR", 33.4), ("GEHC", 78.9), ("CSGP", 75.3), ("DDOG", 111.0),
    ("TEAM", 163.0), ("ZS", 172.0), ("ANSS", 321.0), ("ON", 70.2), ("CDW", 220.0),
    ("TTWO", 158.0), ("WBD", 8.21), ("BIIB", 226.0), ("ILMN", 104.0), ("DLTR", 117.0),
    ("WBA", 16.9), ("SIRI", 5.8), ("JD", 30.4), ("PDD", 149.0), ("LCID", 5.3),
    ("RIVN", 11.2), ("ZM", 60.1), ("DOCU", 55.8), ("OKTA", 93.0), ("CRWD", 376.0),
    ("MDB", 234.0), ("NTES", 92.4), ("BIDU", 97.5), ("EBAY", 53.9), ("EXPE", 113.0),
    ("TRIP", 18.3), ("HBAN", 13.1), ("FITB", 37.2), ("ZION", 43.6), ("NTRS", 84.1),
    ("ROKU", 58.2), ("SOFI", 6.9), ("HOOD", 21.4), ("COIN", 229.0), ("MRVL", 70.4),
    ("SMCI", 84.9), ("ARM", 125.0), ("CVLT", 102.0), ("QQQ", 450.0), ("TQQQ", 61.8),
)
_ETFS = {"QQQ", "TQQQ"}
# Market participant IDs used for attributed adds ('F') and 'L' messages.
MPIDS = ("NITE", "GSCO", "MSCO", "UBSS", "JPMS", "VIRT", "SUSQ", "CDEL", "HRTF", "CITD",
         "ETMM", "FLOW", "TWLV", "JSTR", "GTSM", "LEHM")


def symbol_names(n: int) -> list[str]:
    """The first ``n`` symbol names: the real-looking list, then synthetic ``Zxxx`` names."""
    names = [t for t, _ in TICKERS[:n]]
    taken = set(names)
    j = 0
    while len(names) < n:
        s, k = "", j
        for _ in range(3):
            s = chr(65 + k % 26) + s
            k //= 26
        name = ("Z" + s) if k == 0 else ("Z" + chr(65 + (k - 1) % 26) + s)
        j += 1
        if name not in taken:
            names.append(name)
            taken.add(name)
    return names


@dataclass
class Day:
    """A generated day: messages as one blob with offsets, in sequence order (1-based seq)."""

    blob: bytes
    offsets: np.ndarray  # int64, len(messages) + 1; message i is blob[offsets[i]:offsets[i+1]]
    timestamps: np.ndarray  # int64 ns since midnight, non-decreasing
    symbols: list[str]
    seed: int
    prices: list[float] = field(default_factory=list)  # opening price per symbol (USD)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> bytes:
        if i < 0:
            i += len(self)
        return self.blob[self.offsets[i]:self.offsets[i + 1]]

    def __iter__(self):
        off = self.offsets.tolist()
        blob = self.blob
        for i in range(len(off) - 1):
            yield blob[off[i]:off[i + 1]]

    @property
    def messages(self) -> list[bytes]:
        return list(self)

    @property
    def types(self) -> np.ndarray:
        """Type byte of every message (uint8)."""
        return np.frombuffer(self.blob, np.uint8)[self.offsets[:-1]]

    def counts(self) -> dict[str, int]:
        t, c = np.unique(self.types, return_counts=True)
        return {chr(a): int(b) for a, b in zip(t, c)}


# --------------------------------------------------------------------------------------------
# simulation

class _Sym:
    """Per-symbol state: fair price walk and the book (sorted price lists + FIFO levels)."""

    __slots__ = ("loc", "name", "r", "path", "noise", "half", "open_px", "sho",
                 "bid_px", "ask_px", "bids", "asks", "live", "trk", "hi")

    def __init__(self, loc, name, price, path, half, trk, hi):
        self.loc = loc
        self.name = name
        self.r = price * 100.0  # fair price in ticks (float), updated at each event
        # fair price = random walk sampled every _NODE ns (linearly interpolated, carries
        # the day's moves) + a mean-reverting per-event noise (the flicker around it)
        self.path = path
        self.noise = 0.0
        self.half = half
        self.open_px = int(round(price * 100)) * TICK
        self.sho = False
        self.bid_px: list[int] = []  # ascending; best bid is [-1]
        self.ask_px: list[int] = []  # ascending; best ask is [0]
        self.bids: dict[int, list[int]] = {}
        self.asks: dict[int, list[int]] = {}
        self.live: list[int] = []  # refs of live orders, for O(1) random pick/removal
        self.trk = trk
        self.hi = hi  # live-order cap: adds turn into deletes above it


# Event-kind thresholds on one uniform draw (cumulative): add, delete, replace, partial
# cancel, execution, hidden trade. Roughly NASDAQ's mix: ~45% adds, most orders deleted.
_P_ADD, _P_DEL, _P_REP, _P_CXL, _P_EXE = 0.450, 0.850, 0.915, 0.945, 0.985  # rest: P
_PR_EXE, _PR_REP = 0.30, 0.70  # when the fair price ran through a side: exec/replace/delete
_NOISE_STEP, _NOISE_KEEP = 0.12, 0.99  # per-event fair-price noise (ticks), AR(1) factor
_NODE = 15 * MIN  # spacing of the fair-price random walk's nodes
_P_MPID = 0.03   # share of adds that are 'F'
_P_C = 0.04      # share of executions reported as 'C'
_LO_LIVE = 6     # below this many live orders a symbol only adds
_CHUNK = 1 << 15


def _draw_shares(u: float, g: int) -> int:
    """Order size: mostly round lots (geometric), some odd lots, a few blocks."""
    if u < 0.70:
        return 100 * g
    if u < 0.92:
        return 1 + int((u - 0.70) / 0.22 * 99)
    return 100 * (5 + int((u - 0.92) / 0.08 * 45))


def _zipf_cdf(n: int, s: float = 1.0) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return np.cumsum(w) / w.sum()


def _directory(i: int, nm: str, t: int) -> bytes:
    """The stock directory (R) message of symbol index ``i`` (locate ``i + 1``) at ``t``."""
    loc = i + 1
    etf = nm in _ETFS
    return itch.encode("R", stock_locate=loc, tracking_number=1 + (loc - 1) % 7, timestamp=t,
                       stock=nm, market_category="Q" if i < 60 else "G",
                       financial_status_indicator="N", round_lot_size=100,
                       round_lots_only="N", issue_classification="Q" if etf else "C",
                       issue_sub_type="I" if etf else "Z", authenticity="P",
                       short_sale_threshold_indicator="N", ipo_flag="N",
                       luld_reference_price_tier="1" if i < 60 else "2",
                       etp_flag="Y" if etf else "N",
                       etp_leverage_factor=3 if nm == "TQQQ" else (1 if etf else 0),
                       inverse_indicator="N")


def generate_day(symbols: int, messages: int, seed: int, *, session_ns: int | None = None
                 ) -> Day:
    """A deterministic synthetic ITCH 5.0 day of exactly ``messages`` messages.

    ``symbols`` stocks (locate = 1-based index, names from :func:`symbol_names`), activity
    Zipf-distributed over them (the first is busiest). ``session_ns``: squeeze the continuous
    trading into that many ns after the open (default: the whole session, 9:30 to 16:00), for
    streams as dense as a busy moment, whose fair prices stay near the open. Raises ValueError
    when ``messages`` is too small for the fixed start/end-of-day messages.
    """
    return join_days(list(day_chunks(symbols, messages, seed, session_ns=session_ns)))


def join_days(parts: list[Day]) -> Day:
    """One :class:`Day` of consecutive parts (as :func:`day_chunks` gives them)."""
    lens = np.concatenate([np.diff(p.offsets) for p in parts])
    offsets = np.zeros(len(lens) + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    p0 = parts[0]
    return Day(blob=b"".join(p.blob for p in parts), offsets=offsets,
               timestamps=np.concatenate([p.timestamps for p in parts]), symbols=p0.symbols,
               seed=p0.seed, prices=p0.prices)


def day_chunks(symbols: int, messages: int, seed: int, *, session_ns: int | None = None,
               block: int = 8 * _CHUNK):
    """The day :func:`generate_day` gives, as consecutive :class:`Day` parts (the
    start-of-day messages, then ``block`` flow events at a time, then the end of day), so that
    a day of any length is generated and written in bounded memory: the same bytes."""
    if block < 1 or block % _CHUNK:
        raise ValueError(f"block={block}: a positive multiple of {_CHUNK}")
    if symbols < 1:
        raise ValueError("symbols must be at least 1")
    full = T_CLOSE - T_OPEN - 2 * NS
    if session_ns is not None and not 1000 <= session_ns <= full:
        raise ValueError(f"session_ns={session_ns}: must be 1000..{full}")
    rng = np.random.default_rng(seed)
    names = symbol_names(symbols)
    known = dict(TICKERS)
    synth_px = np.exp(rng.uniform(math.log(5.0), math.log(500.0), size=symbols))
    vols = rng.uniform(0.01, 0.035, size=symbols)
    n_mm = rng.integers(1, 4, size=symbols)  # market makers ('L') per symbol
    prices = [min(max(known.get(nm, float(synth_px[i])), 5.0), 500.0)
              for i, nm in enumerate(names)]

    pre: list[tuple[int, bytes]] = []  # (timestamp, message) before the continuous session
    post: list[tuple[int, bytes]] = []
    enc = itch.encode

    def trk_of(loc: int) -> int:
        return 1 + (loc - 1) % 7  # stands in for NASDAQ's matching-engine tracking number

    pre.append((T_START_MESSAGES, enc("S", timestamp=T_START_MESSAGES, event_code="O")))
    pre.append((T_START_SYSTEM, enc("S", timestamp=T_START_SYSTEM, event_code="S")))
    t = T_START_SYSTEM + 1_000_000
    for i, nm in enumerate(names):
        pre.append((t, _directory(i, nm, t)))
        t += 2_000
    for i, nm in enumerate(names):
        loc = i + 1
        pre.append((t, enc("H", stock_locate=loc, tracking_number=trk_of(loc), timestamp=t,
                           stock=nm, trading_state="T", reserved=" ")))
        t += 2_000
    for i, nm in enumerate(names):
        loc = i + 1
        pre.append((t, enc("Y", stock_locate=loc, tracking_number=trk_of(loc), timestamp=t,
                           stock=nm, reg_sho_action="0")))
        t += 2_000
    for i, nm in enumerate(names):
        loc = i + 1
        for k in range(int(n_mm[i])):
            mpid = MPIDS[(i * 5 + k * 3) % len(MPIDS)]
            pre.append((t, enc("L", stock_locate=loc, tracking_number=trk_of(loc),
                               timestamp=t, mpid=mpid, stock=nm,
                               primary_market_maker="Y" if k == 0 else "N",
                               market_maker_mode="N", market_participant_state="A")))
            t += 2_000
    t = T_PRE_OPEN_NOII
    for i, nm in enumerate(names):
        loc = i + 1
        px = int(round(prices[i] * 100)) * TICK
        imb = int(rng.integers(1, 50)) * 100
        pre.append((t, enc("I", stock_locate=loc, tracking_number=trk_of(loc), timestamp=t,
                           paired_shares=imb * 10, imbalance_shares=imb,
                           imbalance_direction="B" if i % 2 == 0 else "S", stock=nm,
                           far_price=px, near_price=px, current_reference_price=px,
                           cross_type="O", price_variation_indicator="L")))
        t += 10_000
    pre.append((T_OPEN, enc("S", timestamp=T_OPEN, event_code="Q")))
    match = 1
    for i, nm in enumerate(names):
        loc = i + 1
        tq = T_OPEN + 1 + i * 1000
        pre.append((tq, enc("Q", stock_locate=loc, tracking_number=trk_of(loc), timestamp=tq,
                            cross_shares=int(rng.integers(10, 5000)) * 100, stock=nm,
                            cross_price=int(round(prices[i] * 100)) * TICK,
                            match_number=match, cross_type="O")))
        match += 1
    n_post = symbols + 3
    n_flow = messages - len(pre) - n_post
    if n_flow < 0:
        raise ValueError(f"messages={messages} is less than the {len(pre) + n_post} fixed "
                         f"start/end-of-day messages of {symbols} symbols")
    # opening crosses sit at T_OPEN + i us; flow starts after them
    span, end = (full, T_CLOSE - NS) if session_ns is None else (session_ns,
                                                                  T_OPEN + 2000 + session_ns)
    # symbol per event: mostly the burst's symbol, Zipf-distributed
    flow = FlowSchedule(rng, n_flow, span, end, T_OPEN, T_OPEN + symbols * 1000 + 1,
                        _zipf_cdf(symbols))
    # per-symbol live-order cap grows with activity (busier books are deeper)
    share = flow.symbol_counts() / max(n_flow, 1)
    # the day's fair-price walk per symbol, in ticks, sampled every _NODE
    n_nodes = -(-(T_CLOSE - T_OPEN) // _NODE)
    steps = rng.standard_normal((symbols, n_nodes)) * (vols * np.asarray(prices) * 100.0
                                                       / math.sqrt(n_nodes))[:, None]
    paths = np.asarray(prices)[:, None] * 100.0 + np.concatenate(
        [np.zeros((symbols, 1)), np.cumsum(steps, axis=1)], axis=1)
    np.maximum(paths, 100.0, out=paths)
    states = [_Sym(i + 1, nm, prices[i], paths[i].tolist(),
                   0 if prices[i] < 50 else (1 if prices[i] < 200 else 2), trk_of(i + 1),
                   int(40 + 600 * min(1.0, share[i] * 4))) for i, nm in enumerate(names)]

    # closing NOII: one per symbol per minute from 15:50, at most ~1% of the flow (each
    # takes the slot of the first flow event at or after its time)
    sched = sorted((T_CLOSE_NOII + k * MIN + i * 7_000, i)
                   for k in range(10) for i in range(symbols))[:n_flow // 100]
    sched_i = 0
    next_sched = sched[0][0] if sched else 1 << 62


    orders: dict[int, list] = {}  # ref -> [sym, is_ask, price, shares, live_pos]
    next_ref = 1 + int(rng.integers(0, 1000))
    B, S_, A_, F_, E_, C_, X_, D_, U_, P_ = (ord(c) for c in "BSAFECXDUP")
    floor = math.floor
    n_mpid = len(MPIDS)

    def remove(o, ref, st):
        """Take order ``ref`` off its level and out of the live list."""
        px = o[2]
        book, prices = (st.asks, st.ask_px) if o[1] else (st.bids, st.bid_px)
        lvl = book[px]
        lvl.remove(ref)
        if not lvl:
            del book[px]
            del prices[bisect.bisect_left(prices, px)]
        live = st.live
        pos = o[4]
        last = live.pop()
        if last != ref:
            live[pos] = last
            orders[last][4] = pos
        del orders[ref]

    def insert(ref, st, is_ask, px, shares):
        orders[ref] = [st, is_ask, px, shares, len(st.live)]
        st.live.append(ref)
        book, prices = (st.asks, st.ask_px) if is_ask else (st.bids, st.bid_px)
        lvl = book.get(px)
        if lvl is None:
            book[px] = [ref]
            bisect.insort(prices, px)
        else:
            lvl.append(ref)

    yield _fixed(pre, names, prices, seed)
    blocks = flow.blocks(block)
    for c0 in range(0, n_flow, _CHUNK):
        if c0 % block == 0:   # a new block: its schedule, fresh columns
            b0, (flow_ts, ev_sym) = c0, next(blocks)
            col_typ, col_ref, col_ref2, col_side, col_sh, col_px, col_aux = map(array,
                                                                                 "BQQBIIB")
            rare: dict[int, bytes] = {}  # block index -> bytes of the few non-table types
        m = min(_CHUNK, n_flow - c0)
        z = rng.standard_normal(m).tolist()
        u_kind = rng.random(m).tolist()
        u_side = rng.random(m).tolist()
        u_pick = rng.random(m).tolist()
        u_aux = rng.random(m).tolist()
        u_sh = rng.random(m).tolist()
        g_sh = rng.geometric(0.45, m).tolist()
        dist = (rng.geometric(0.32, m) - 1).tolist()
        dist2 = (rng.geometric(0.32, m) - 1).tolist()
        gaps = rng.geometric(0.7, m).tolist()
        ts_l = flow_ts[c0 - b0:c0 - b0 + m].tolist()
        sym_l = ev_sym[c0 - b0:c0 - b0 + m].tolist()
        for k in range(m):
            t = ts_l[k]
            st = states[sym_l[k]]
            # -- scheduled closing NOII takes this event's slot
            if t >= next_sched:
                sst = states[sched[sched_i][1]]
                sched_i += 1
                next_sched = sched[sched_i][0] if sched_i < len(sched) else 1 << 62
                px = max(1, int(sst.r)) * TICK
                imb = 100 * (1 + int(u_aux[k] * 200))
                d_ = "BSNO"[int(u_side[k] * 4)]
                rare[c0 - b0 + k] = enc("I", stock_locate=sst.loc, tracking_number=sst.trk,
                                   timestamp=t, paired_shares=imb * (5 + g_sh[k]),
                                   imbalance_shares=0 if d_ in "NO" else imb,
                                   imbalance_direction=d_, stock=sst.name, far_price=px,
                                   near_price=px, current_reference_price=px,
                                   cross_type="C", price_variation_indicator="L")
                col_typ.append(73)
                col_ref.append(0); col_ref2.append(0); col_side.append(0)
                col_sh.append(0); col_px.append(0); col_aux.append(0)
                continue
            # -- fair price: interpolated walk + AR(1) noise
            el = t - T_OPEN
            j = el // _NODE
            if j >= n_nodes:
                j = n_nodes - 1
            path = st.path
            noise = st.noise * _NOISE_KEEP + z[k] * _NOISE_STEP
            st.noise = noise
            r = path[j] + (path[j + 1] - path[j]) * ((el - j * _NODE) / _NODE) + noise
            if r < 100.0:
                r = 100.0  # keep above $1
            st.r = r
            if not st.sho and r * TICK < 0.9 * st.open_px:
                # Reg SHO short-sale price test triggered by a 10% drop
                st.sho = True
                rare[c0 - b0 + k] = enc("Y", stock_locate=st.loc, tracking_number=st.trk,
                                   timestamp=t, stock=st.name, reg_sho_action="1")
                col_typ.append(89)
                col_ref.append(0); col_ref2.append(0); col_side.append(0)
                col_sh.append(0); col_px.append(0); col_aux.append(0)
                continue
            fl = floor(r)
            bid_anchor = (fl - st.half) * TICK
            ask_anchor = (fl + 1 + st.half) * TICK
            if bid_anchor < TICK:
                bid_anchor = TICK
                if ask_anchor <= bid_anchor:
                    ask_anchor = bid_anchor + TICK
            bid_px = st.bid_px
            ask_px = st.ask_px
            best_bid = bid_px[-1] if bid_px else 0
            best_ask = ask_px[0] if ask_px else 0
            nlive = len(st.live)
            uk = u_kind[k]
            # -- choose what happens
            kind = 0  # 0 add, 1 delete, 2 replace, 3 cancel, 4 exec, 5 hidden
            ex_ask = -1
            if best_ask and best_ask < bid_anchor:
                # fair price ran through the offers: buyers lift them, or they are repriced
                # or pulled
                kind = 4 if uk < _PR_EXE else (2 if uk < _PR_REP else 1)
                ex_ask = 1
            elif best_bid and best_bid > ask_anchor:
                kind = 4 if uk < _PR_EXE else (2 if uk < _PR_REP else 1)
                ex_ask = 0
            elif nlive < _LO_LIVE or uk < _P_ADD:
                kind = 0
            elif uk < _P_DEL:
                kind = 1
            elif uk < _P_REP:
                kind = 2
            elif uk < _P_CXL:
                kind = 3
            elif uk < _P_EXE:
                kind = 4
            else:
                kind = 5
            if kind == 0 and nlive >= st.hi:
                kind = 1
            if kind != 0 and kind != 5 and nlive == 0:
                kind = 0
            if kind == 1 or kind == 2 or kind == 3:
                if ex_ask >= 0:  # pull the stale best order of that side
                    ref = (st.asks[best_ask] if ex_ask else st.bids[best_bid])[0]
                else:
                    up = u_pick[k]
                    live = st.live
                    ref = live[-1] if up < 0.5 else live[int((up - 0.5) * 2.0 * nlive)]
            if kind == 0:
                # -- add near the touch
                if not bid_px and ask_px:
                    is_ask = False
                elif not ask_px and bid_px:
                    is_ask = True
                else:
                    is_ask = u_side[k] >= 0.5
                d = dist[k]
                ua = u_aux[k]
                inside = u_pick[k] < 0.12 and best_bid and best_ask and best_ask - best_bid > TICK
                if is_ask:
                    px = ask_anchor + d * TICK
                    if inside:
                        px = best_ask - TICK  # improve the offer inside the spread
                    if best_bid and px <= best_bid:
                        px = best_bid + TICK
                else:
                    px = bid_anchor - d * TICK
                    if inside:
                        px = best_bid + TICK  # improve the bid inside the spread
                    if best_ask and px >= best_ask:
                        px = best_ask - TICK
                    if px < TICK:
                        px = TICK
                sh = _draw_shares(u_sh[k], g_sh[k])
                ref_new = next_ref
                next_ref += gaps[k]
                insert(ref_new, st, is_ask, px, sh)
                mp = ua < _P_MPID
                col_typ.append(F_ if mp else A_)
                col_ref.append(ref_new); col_ref2.append(0)
                col_side.append(S_ if is_ask else B)
                col_sh.append(sh); col_px.append(px)
                col_aux.append(int(ua / _P_MPID * n_mpid) if mp else 0)
            elif kind == 1:
                o = orders[ref]
                remove(o, ref, st)
                col_typ.append(D_)
                col_ref.append(ref); col_ref2.append(0); col_side.append(0)
                col_sh.append(0); col_px.append(0); col_aux.append(0)
            elif kind == 2:
                # -- cancel/replace: same side, new price near the touch, new ref
                o = orders[ref]
                is_ask = o[1]
                d = dist2[k]
                if is_ask:
                    px = ask_anchor + d * TICK
                    if best_bid and px <= best_bid:
                        px = best_bid + TICK
                else:
                    px = bid_anchor - d * TICK
                    if best_ask and px >= best_ask:
                        px = best_ask - TICK
                    if px < TICK:
                        px = TICK
                sh = o[3] if u_sh[k] < 0.5 else _draw_shares(u_aux[k], g_sh[k])
                remove(o, ref, st)
                ref_new = next_ref
                next_ref += gaps[k]
                insert(ref_new, st, is_ask, px, sh)
                col_typ.append(U_)
                col_ref.append(ref); col_ref2.append(ref_new); col_side.append(0)
                col_sh.append(sh); col_px.append(px); col_aux.append(0)
            elif kind == 3:
                # -- partial cancel (a full one is a delete)
                o = orders[ref]
                sh = o[3]
                if sh < 2:
                    remove(o, ref, st)
                    col_typ.append(D_)
                    col_ref.append(ref); col_ref2.append(0); col_side.append(0)
                    col_sh.append(0); col_px.append(0); col_aux.append(0)
                    continue
                if sh >= 200 and sh % 100 == 0:
                    cx = 100 * (1 + int(u_aux[k] * (sh // 100 - 1)))
                else:
                    cx = 1 + int(u_aux[k] * (sh - 1))
                o[3] = sh - cx
                col_typ.append(X_)
                col_ref.append(ref); col_ref2.append(0); col_side.append(0)
                col_sh.append(cx); col_px.append(0); col_aux.append(0)
            elif kind == 4:
                # -- execution against the best order (price-time priority) of one side
                if ex_ask < 0:
                    if not ask_px:
                        ex_ask = 0
                    elif not bid_px:
                        ex_ask = 1
                    else:
                        ex_ask = 1 if u_side[k] < 0.5 else 0
                ref = (st.asks[best_ask] if ex_ask else st.bids[best_bid])[0]
                o = orders[ref]
                sh = o[3]
                ua = u_aux[k]
                if ua < 0.6 or sh < 2:
                    ex = sh
                elif sh >= 200 and sh % 100 == 0:
                    ex = 100 * (1 + int((ua - 0.6) / 0.4 * (sh // 100 - 1)))
                else:
                    ex = 1 + int((ua - 0.6) / 0.4 * (sh - 1))
                if ex >= sh:
                    remove(o, ref, st)
                else:
                    o[3] = sh - ex
                withp = u_pick[k] < _P_C
                col_typ.append(C_ if withp else E_)
                col_ref.append(ref); col_ref2.append(match)
                col_side.append((78 if u_sh[k] < 0.1 else 89) if withp else 0)  # N / Y
                col_sh.append(ex); col_px.append(o[2]); col_aux.append(0)
                match += 1
            else:
                # -- hidden (non-displayed) trade inside the spread: no book change
                if best_bid and best_ask:
                    px = ((best_bid + best_ask) // 2 // TICK) * TICK
                    if px <= best_bid:
                        px = best_bid if u_side[k] < 0.5 else best_ask
                else:
                    px = bid_anchor if u_side[k] < 0.5 else ask_anchor
                col_typ.append(P_)
                col_ref.append(0); col_ref2.append(match)
                col_side.append(B if u_side[k] < 0.5 else S_)
                col_sh.append(_draw_shares(u_sh[k], g_sh[k])); col_px.append(px)
                col_aux.append(0)
                match += 1

        if c0 + m - b0 == len(flow_ts):   # the block is done
            yield _assemble(names, prices, seed, flow_ts, ev_sym, col_typ, col_ref, col_ref2,
                            col_side, col_sh, col_px, col_aux, rare)

    # closing crosses, end of market / system / messages
    for i, nm in enumerate(names):
        st = states[i]
        tq = T_CLOSE + 1 + i * 1000
        post.append((tq, enc("Q", stock_locate=i + 1, tracking_number=st.trk, timestamp=tq,
                             cross_shares=int(rng.integers(10, 8000)) * 100, stock=nm,
                             cross_price=max(1, int(st.r)) * TICK, match_number=match,
                             cross_type="C")))
        match += 1
    t_m = T_CLOSE + symbols * 1000 + NS // 2
    post.append((t_m, enc("S", timestamp=t_m, event_code="M")))
    post.append((T_END_SYSTEM, enc("S", timestamp=T_END_SYSTEM, event_code="E")))
    post.append((T_END_MESSAGES, enc("S", timestamp=T_END_MESSAGES, event_code="C")))

    yield _fixed(post, names, prices, seed)


# --------------------------------------------------------------------------------------------
# bytes

# Types built column-wise: field name -> column key (see _assemble).
_TABLE_TYPES = {
    "A": {"order_reference_number": "ref", "buy_sell_indicator": "side", "shares": "sh",
          "stock": "stock", "price": "px"},
    "F": {"order_reference_number": "ref", "buy_sell_indicator": "side", "shares": "sh",
          "stock": "stock", "price": "px", "attribution": "mpid"},
    "E": {"order_reference_number": "ref", "executed_shares": "sh", "match_number": "ref2"},
    "C": {"order_reference_number": "ref", "executed_shares": "sh", "match_number": "ref2",
          "printable": "side", "execution_price": "px"},
    "X": {"order_reference_number": "ref", "canceled_shares": "sh"},
    "D": {"order_reference_number": "ref"},
    "U": {"original_order_reference_number": "ref", "new_order_reference_number": "ref2",
          "shares": "sh", "price": "px"},
    "P": {"order_reference_number": "ref", "buy_sell_indicator": "side", "shares": "sh",
          "stock": "stock", "price": "px", "match_number": "ref2"},
}


def _build_type(type_: str, cols: dict[str, np.ndarray]) -> np.ndarray:
    """Messages of one type as an (n, length) uint8 array, every field from the ITCH table."""
    spec = itch.MESSAGES[type_]
    n = len(cols["timestamp"])
    out = np.empty((n, spec.length), np.uint8)
    out[:, 0] = ord(type_)
    for f in spec.fields:
        col = cols[f.name]
        if f.kind == "u":
            b = np.ascontiguousarray(col, dtype=">u8").view(np.uint8).reshape(n, 8)
            out[:, f.offset:f.offset + f.size] = b[:, 8 - f.size:]
        elif col.dtype == np.uint8:  # one character given as its code
            out[:, f.offset] = col
        else:  # fixed-width, already space-padded text
            out[:, f.offset:f.offset + f.size] = col.view(np.uint8).reshape(n, f.size)
    return out


def _fixed(msgs: list[tuple[int, bytes]], names, prices, seed) -> Day:
    """The start- or end-of-day messages ((timestamp, bytes) in order) as a part of a day."""
    lengths = np.asarray(itch.LENGTH_BY_BYTE, np.int64)[[m[0] for _, m in msgs]]
    for (_, msg), n in zip(msgs, lengths):
        if len(msg) != n:
            raise AssertionError(f"{chr(msg[0])} message of {len(msg)} bytes, ITCH length {n}")
    offsets = np.zeros(len(msgs) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return Day(blob=b"".join(m for _, m in msgs), offsets=offsets,
               timestamps=np.array([t for t, _ in msgs], np.int64), symbols=list(names),
               seed=seed, prices=list(prices))


def _assemble(names, prices, seed, flow_ts, ev_sym, col_typ, col_ref, col_ref2, col_side,
              col_sh, col_px, col_aux, rare) -> Day:
    """A block of flow events as a part of a day: the table types built column-wise, the
    few others (``rare``: block index -> bytes) put in place."""
    n_flow = len(flow_ts)
    f_typ = np.frombuffer(col_typ, np.uint8)
    lengths = np.asarray(itch.LENGTH_BY_BYTE, np.int64)[f_typ]
    offsets = np.zeros(n_flow + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    blob = np.zeros(int(offsets[-1]), np.uint8)
    for j, msg in rare.items():
        if len(msg) != lengths[j]:
            raise AssertionError(f"message {j}: {len(msg)} bytes, ITCH length {lengths[j]}")
        blob[offsets[j]:offsets[j] + len(msg)] = np.frombuffer(msg, np.uint8)
    if n_flow:
        f_loc = ev_sym.astype(np.int64) + 1
        stock_names = np.array([nm.ljust(8).encode("ascii") for nm in names], "S8")
        mpids = np.array([m.encode("ascii") for m in MPIDS], "S4")
        base = {
            "ref": np.frombuffer(col_ref, np.uint64), "ref2": np.frombuffer(col_ref2, np.uint64),
            "side": np.frombuffer(col_side, np.uint8), "sh": np.frombuffer(col_sh, np.uint32),
            "px": np.frombuffer(col_px, np.uint32), "aux": np.frombuffer(col_aux, np.uint8),
        }
        for t_, mapping in _TABLE_TYPES.items():
            sel = np.flatnonzero(f_typ == ord(t_))
            if sel.size == 0:
                continue
            loc = f_loc[sel]
            cols = {"stock_locate": loc, "tracking_number": 1 + (loc - 1) % 7,
                    "timestamp": flow_ts[sel]}
            for fname, key in mapping.items():
                if key == "stock":
                    cols[fname] = stock_names[loc - 1]
                elif key == "mpid":
                    cols[fname] = mpids[base["aux"][sel]]
                else:
                    cols[fname] = base[key][sel]
            out = _build_type(t_, cols)
            starts = offsets[sel]
            for b in range(out.shape[1]):
                blob[starts + b] = out[:, b]
    return Day(blob=blob.tobytes(), offsets=offsets, timestamps=np.asarray(flow_ts, np.int64),
               symbols=list(names), seed=seed, prices=list(prices))


# --------------------------------------------------------------------------------------------
# deep-book day

#: Prices (ticks from the side's best possible price) an ordinary side of the deep-book day
#: spreads its orders over; a deep side spreads over ``deep_levels``.
_DEEP_NORMAL_W = 200
#: Shares of the session's events: executions at the touch, deletes, partial cancels and
#: replaces of resting orders, new orders; hidden trades fill the rest.
_DEEP_MIX = {"exe": 0.12, "del": 0.24, "cxl": 0.08, "rep": 0.12, "add": 0.20}
#: Follow-ups, as shares of the events they follow: a delete after a partial cancel; a delete
#: or a partial cancel of a replace's new order, or of a new order.
_DEEP_FOLLOW = {"cxl_del": 0.40, "rep_del": 0.40, "rep_cxl": 0.10, "add_del": 0.55,
                "add_cxl": 0.10}


def _deep_side_list(symbols: int, k: int) -> list[tuple[int, int]]:
    """The (symbol index, side: 0 bid, 1 ask) of the ``k`` deep sides: both sides of the
    busiest symbol, the bids of the second, the asks of the quietest, then others."""
    out: list[tuple[int, int]] = []
    for c in ([(0, 0), (0, 1), (1, 0), (symbols - 1, 1)] + [(i, i % 2) for i in range(symbols)]
              + [(i, 1 - i % 2) for i in range(symbols)]):
        if 0 <= c[0] < symbols and c not in out:
            out.append(c)
    return out[:k]


def _shares_v(u: np.ndarray, g: np.ndarray) -> np.ndarray:
    """:func:`_draw_shares`, column-wise."""
    return np.where(u < 0.70, 100 * g, np.where(
        u < 0.92, 1 + ((u - 0.70) / 0.22 * 99).astype(np.int64),
        100 * (5 + ((u - 0.92) / 0.08 * 45).astype(np.int64)))).astype(np.int64)


def _part_v(sh: np.ndarray, u: np.ndarray) -> np.ndarray:
    """A part 1..sh-1 of each ``sh`` (>= 2): whole round lots of a round-lot order."""
    lots = (sh >= 200) & (sh % 100 == 0)
    return np.where(lots, 100 * (1 + (u * (sh // 100 - 1)).astype(np.int64)),
                    1 + (u * (sh - 1)).astype(np.int64))


def generate_deep_day(symbols: int = 64, messages: int = 1_300_000, seed: int = 1, *,
                      deep_sides: int = 4, deep_levels: int = 1040, build_share: float = 0.8,
                      session_ns: int = 10 * MIN) -> Day:
    """A deterministic ITCH day whose book gets big and deep: exactly ``messages`` messages.

    Before the open a build-up of ``build_share`` of the flow adds orders and removes none, so
    the live orders peak at about that many. ``deep_sides`` sides (:func:`_deep_side_list`)
    spread theirs over ``deep_levels`` consecutive prices, each of which gets at least one
    order; the others over up to 200 prices, mostly near the touch. The session
    (``session_ns`` from the open; the market closes after it) then executes orders at the
    touch in price-time priority (sweeps, some orders in two parts), deletes, partly cancels
    and replaces resting orders anywhere in the book, adds orders at or behind the touch (or,
    after that side's last sweep, inside it), many of them soon cancelled again, and reports
    hidden trades.

    Every side keeps its orders in a fixed range of prices (bids below asks), so the books
    never lock or cross and a side never holds more than ``deep_levels`` (or 200) levels;
    every E, C, X, D and U refers to a live order with enough shares. Same arguments, same
    bytes (one ``numpy.random.default_rng(seed)``, column-wise). Raises ValueError for
    arguments that cannot give such a day.
    """
    if symbols < 1:
        raise ValueError("symbols must be at least 1")
    if not 0 <= deep_sides <= 2 * symbols:
        raise ValueError(f"deep_sides={deep_sides}: must be 0..{2 * symbols}")
    if not 1 <= deep_levels <= 4096:
        raise ValueError(f"deep_levels={deep_levels}: must be 1..4096")
    if not 0.0 < build_share < 1.0:
        raise ValueError(f"build_share={build_share}: must be between 0 and 1")
    longest = T_CLOSE - T_OPEN - 2 * MIN
    if not 1000 <= session_ns <= longest:
        raise ValueError(f"session_ns={session_ns}: must be 1000..{longest}")
    rng = np.random.default_rng(seed)
    names = symbol_names(symbols)
    known = dict(TICKERS)
    synth_px = np.exp(rng.uniform(math.log(5.0), math.log(500.0), size=symbols))
    prices = [min(max(known.get(nm, float(synth_px[i])), 5.0), 500.0)
              for i, nm in enumerate(names)]
    n_fixed = 2 + 2 * symbols + 1 + 3   # S O, S S, R and H per symbol, S Q; S M, S E, S C
    n_flow = messages - n_fixed
    n_build = int(n_flow * build_share)
    n_act = n_flow - n_build
    n_fill = deep_sides * deep_levels
    if n_build < n_fill + 2 * symbols:
        raise ValueError(f"messages={messages}: a build-up of {max(n_build, 0)} adds cannot "
                         f"fill {deep_sides} sides of {deep_levels} levels")

    # -- sides (2 * symbol index + 1 for asks): orders at distance d (ticks) from the side's
    #    top, price top - d for bids, top + d for asks, d < the side's width
    n_sides = 2 * symbols
    side_sym = np.arange(n_sides) // 2
    side_ask = np.arange(n_sides) % 2
    deep = np.zeros(n_sides, bool)
    for s, a in _deep_side_list(symbols, deep_sides):
        deep[2 * s + a] = True
    px_usd = np.asarray(prices)
    half = np.where(px_usd < 50, 0, np.where(px_usd < 200, 1, 2))
    width = np.where(deep, deep_levels, _DEEP_NORMAL_W)
    # a deep bid side needs a price range above 0: its symbol trades high enough
    mid = np.maximum(np.rint(px_usd * 100).astype(np.int64),
                     np.where(deep[0::2], deep_levels, 1) + half)
    width[0::2] = np.minimum(width[0::2], mid - half)
    top = np.where(side_ask == 1, mid[side_sym] + 1 + half[side_sym],
                   mid[side_sym] - half[side_sym])
    sign = np.where(side_ask == 1, 1, -1)
    sym_w = np.diff(np.concatenate([[0.0], _zipf_cdf(symbols)]))
    side_w = sym_w[side_sym] / 2

    # -- the build-up: per deep side one order at each of its prices, the rest by activity
    fill = np.where(deep, deep_levels, 0)
    count = fill + rng.multinomial(n_build - n_fill, side_w)
    b_side = np.repeat(np.arange(n_sides), count)
    pos = np.arange(n_build) - np.repeat(np.cumsum(count) - count, count)
    u = rng.random(n_build)
    geo = rng.geometric(0.15, n_build) - 1
    uni = (rng.random(n_build) * width[b_side]).astype(np.int64)
    d = np.where(pos < fill[b_side], pos,
                 np.where(u < np.where(deep, 0.5, 0.15)[b_side], uni, geo))
    d = np.minimum(d, width[b_side] - 1)
    sh = _shares_v(rng.random(n_build), rng.geometric(0.45, n_build))
    ua = rng.random(n_build)
    perm = rng.permutation(n_build)   # time order; an order's id is its place in it
    b_side, d, sh, ua = b_side[perm], d[perm], sh[perm], ua[perm]
    gaps = 1 + rng.exponential(400.0, n_build).astype(np.int64)
    pause = rng.random(n_build) < 1 / 2000
    gaps[pause] += rng.integers(10_000_000, 500_000_000, int(pause.sum()))
    t_build = T_START_SYSTEM + NS
    budget = T_OPEN - MIN - t_build   # done a minute before the open
    if int(gaps.sum()) > budget:
        gaps = gaps * budget // int(gaps.sum())
    b_ts = t_build + np.cumsum(gaps)
    # priority on each side once built: best price first, then time
    prio = np.lexsort((np.arange(n_build), d, b_side))
    p0 = np.cumsum(count) - count

    # -- the session's moments: bursts of events around random instants
    a0 = T_OPEN + symbols * 1000 + 1_000_000
    n_burst = max(1, n_act // 16)
    centres = np.sort(rng.integers(a0, a0 + session_ns, n_burst))

    def moments(n):
        return centres[rng.integers(0, n_burst, n)] + rng.exponential(1500.0, n).astype(
            np.int64)

    def later(t):   # 1 us .. 10 s after, log-uniform
        return t + 1 + np.exp(rng.uniform(math.log(1e3), math.log(1e10), len(t))).astype(
            np.int64)

    keys = ("t", "typ", "oid", "oid2", "side", "sh", "d", "aux")
    ev: dict[str, list] = {k: [] for k in keys}

    def emit(t, typ, oid, side, sh_=0, d_=0, oid2=-1, aux=0):
        for k, v in zip(keys, (t, typ, oid, oid2, side, sh_, d_, aux)):
            ev[k].append(np.broadcast_to(np.asarray(v, np.int64), (len(t),)))

    A_, F_, E_, C_, X_, D_, U_, P_ = (ord(c) for c in "AFECXDUP")
    # -- executions: sweeps down each side's priority order, pieces shared by activity (at
    #    most a third of a side's orders)
    pieces = np.minimum(rng.multinomial(int(n_act * _DEEP_MIX["exe"]), count / n_build),
                        count // 3)
    reserved = np.zeros(n_build, bool)   # executed (or partly): nothing else touches them
    touch = np.zeros(n_sides, np.int64)  # distance of the touch once the sweeps are done
    t_last = np.full(n_sides, a0, np.int64)   # the side's last execution
    for s in np.flatnonzero(pieces):
        e = int(pieces[s])
        cand = prio[p0[s]:p0[s] + e + 1]
        split = (rng.random(e + 1) < 0.25) & (sh[cand] >= 2)
        part = _part_v(np.maximum(sh[cand], 2), rng.random(e + 1))
        per = 1 + split
        k = int(np.searchsorted(np.cumsum(per), e))   # the order of the e-th piece
        o_ = np.repeat(np.arange(k + 1), per[:k + 1])
        second = np.zeros(len(o_), bool)
        second[1:] = o_[1:] == o_[:-1]
        p_sh = np.where(split[o_], np.where(second, sh[cand][o_] - part[o_], part[o_]),
                        sh[cand][o_])[:e]
        o_ = o_[:e]
        reserved[cand[:k + 1]] = True
        # its second piece cut off, order k stays at the touch; else the next order is there
        touch[s] = d[cand[k]] if len(second) > e else d[cand[k + 1]]
        sweep = np.repeat(np.arange(e), rng.geometric(0.3, e))[:e]
        starts = np.searchsorted(sweep, np.arange(sweep[-1] + 1))
        lens = np.diff(np.append(starts, e))
        st = np.sort(centres[rng.integers(0, n_burst, len(starts))])
        for j in range(1, len(st)):   # a sweep starts once the one before is done
            st[j] = max(st[j], st[j - 1] + lens[j - 1])
        p_t = st[sweep] + np.arange(e) - starts[sweep]
        t_last[s] = p_t[-1]
        withp = rng.random(e) < 0.08
        printable = np.where(rng.random(e) < 0.1, ord("N"), ord("Y"))
        emit(p_t, np.where(withp, C_, E_), cand[o_], s, p_sh, d[cand[o_]],
             aux=np.where(withp, printable, 0))

    def new_d(side, t):
        """Distance of a new order: at or behind the final touch, or inside it once the
        side's sweeps are done."""
        n = len(side)
        u1, u2, u3 = rng.random(n), rng.random(n), rng.random(n)
        near = rng.geometric(0.3, n) - 1
        ft, w = touch[side], width[side]
        behind = ft + np.where(u2 < 0.85, near, (u3 * (w - ft)).astype(np.int64))
        inside = (t > t_last[side]) & (ft > 0) & (u1 < 0.25)
        return np.where(inside, (u3 * ft).astype(np.int64), np.minimum(behind, w - 1))

    # -- resting orders deleted, partly cancelled, replaced
    n_del, n_cxl, n_rep, n_add = (int(n_act * _DEEP_MIX[k]) for k in ("del", "cxl", "rep",
                                                                      "add"))
    pool = np.flatnonzero(~reserved)
    if len(pool) < n_del + n_cxl + n_rep:
        raise ValueError(f"build_share={build_share}: too few resting orders for the session")
    pick = rng.permutation(pool)[:n_del + n_cxl + n_rep]
    o = pick[:n_del]
    emit(moments(len(o)), D_, o, b_side[o])
    o = pick[n_del:n_del + n_cxl]
    t = moments(len(o))
    whole = sh[o] < 2   # one share: a partial cancel is a delete
    emit(t, np.where(whole, D_, X_), o, b_side[o], np.where(whole, 0,
                                                            _part_v(np.maximum(sh[o], 2),
                                                                    rng.random(len(o)))))
    f = rng.permutation(np.flatnonzero(~whole))[:int(n_cxl * _DEEP_FOLLOW["cxl_del"])]
    emit(later(t[f]), D_, o[f], b_side[o[f]])
    n_new = n_rep + n_add
    new_side = np.concatenate([b_side[pick[n_del + n_cxl:]],
                               rng.choice(n_sides, n_add, p=side_w)])
    new_t = moments(n_new)
    new_d_ = new_d(new_side, new_t)
    new_sh = _shares_v(rng.random(n_new), rng.geometric(0.45, n_new))
    o = pick[n_del + n_cxl:]
    same = rng.random(n_rep) < 0.5
    new_sh[:n_rep] = np.where(same, sh[o], new_sh[:n_rep])
    new_oid = n_build + np.arange(n_new)
    emit(new_t[:n_rep], U_, o, new_side[:n_rep], new_sh[:n_rep], new_d_[:n_rep],
         oid2=new_oid[:n_rep])
    u_mp = rng.random(n_add)
    mp = u_mp < _P_MPID
    emit(new_t[n_rep:], np.where(mp, F_, A_), new_oid[n_rep:], new_side[n_rep:],
         new_sh[n_rep:], new_d_[n_rep:], aux=np.where(mp, (u_mp / _P_MPID * len(MPIDS))
                                                      .astype(np.int64), 0))
    # -- follow-ups of new orders: deleted, or partly cancelled (one share: deleted)
    for lo, n, kd, kx in ((0, n_rep, "rep_del", "rep_cxl"), (n_rep, n_add, "add_del",
                                                              "add_cxl")):
        f = lo + rng.permutation(n)
        n_d, n_x = int(n * _DEEP_FOLLOW[kd]), int(n * _DEEP_FOLLOW[kx])
        emit(later(new_t[f[:n_d]]), D_, new_oid[f[:n_d]], new_side[f[:n_d]])
        fx = f[n_d:n_d + n_x]
        whole = new_sh[fx] < 2
        emit(later(new_t[fx]), np.where(whole, D_, X_), new_oid[fx], new_side[fx],
             np.where(whole, 0, _part_v(np.maximum(new_sh[fx], 2), rng.random(len(fx)))))
    # -- hidden trades fill the count
    n_p = n_act - sum(len(x) for x in ev["t"])
    if n_p < 0:
        raise AssertionError(f"{-n_p} session events too many")
    p_side = rng.choice(n_sides, n_p, p=side_w)
    emit(moments(n_p), P_, -1, p_side, _shares_v(rng.random(n_p),
                                                   rng.geometric(0.45, n_p)))

    # -- the session in time order; references in the order the orders appear
    a = {k: np.concatenate(v) for k, v in ev.items()}
    order = np.lexsort((np.arange(len(a["t"])), a["t"]))
    a = {k: v[order] for k, v in a.items()}
    typ = a["typ"]
    made = np.where(typ == U_, a["oid2"], a["oid"])[(typ == A_) | (typ == F_) | (typ == U_)]
    n_orders = n_build + n_new
    ref_of = np.zeros(n_orders, np.uint64)
    ref_of[np.concatenate([np.arange(n_build), made])] = (
        1 + rng.integers(0, 1000) + np.cumsum(rng.geometric(0.7, n_orders))).astype(np.uint64)

    # -- columns of the flow: build-up, the open (S Q), the session
    B_, S_ = ord("B"), ord("S")   # sides; S is also the system event's type
    mpb = ua < _P_MPID
    side_all = np.concatenate([b_side, [0], a["side"]])
    ask_all = side_ask[side_all] == 1
    typ_all = np.concatenate([np.where(mpb, F_, A_), [S_], typ]).astype(np.uint8)
    d_all = np.concatenate([d, [0], a["d"]])
    tradeish = (typ_all == E_) | (typ_all == C_) | (typ_all == P_)
    match = np.where(tradeish, np.cumsum(tradeish), 0).astype(np.uint64)
    oid_all = np.concatenate([np.arange(n_build), [-1], a["oid"]])
    oid2_all = np.concatenate([np.full(n_build + 1, -1), a["oid2"]])
    col_ref = np.where(oid_all >= 0, ref_of[np.maximum(oid_all, 0)], 0).astype(np.uint64)
    col_ref[typ_all == P_] = 0
    col_ref2 = np.where(typ_all == U_, ref_of[np.maximum(oid2_all, 0)], match)
    book_side = (typ_all == A_) | (typ_all == F_) | (typ_all == P_)
    aux_all = np.concatenate([(ua / _P_MPID * len(MPIDS)).astype(np.int64) * mpb, [0],
                              a["aux"]])
    col_side = np.where(book_side, np.where(ask_all, S_, B_),
                        np.where(typ_all == C_, aux_all, 0)).astype(np.uint8)
    col_aux = np.where(typ_all == F_, aux_all, 0).astype(np.uint8)
    col_sh = np.concatenate([sh, [0], a["sh"]]).astype(np.uint32)
    px = (top[side_all] + sign[side_all] * d_all) * TICK
    px = np.where(typ_all == P_, mid[side_sym[side_all]] * TICK, px)
    has_px = book_side | (typ_all == U_) | (typ_all == C_)
    col_px = np.where(has_px, px, 0).astype(np.uint32)
    flow_ts = np.concatenate([b_ts, [T_OPEN], a["t"]]).astype(np.int64)
    ev_sym = side_sym[side_all]
    rare = {n_build: itch.encode("S", timestamp=T_OPEN, event_code="Q")}

    pre = [(T_START_MESSAGES, itch.encode("S", timestamp=T_START_MESSAGES, event_code="O")),
           (T_START_SYSTEM, itch.encode("S", timestamp=T_START_SYSTEM, event_code="S"))]
    t = T_START_SYSTEM + 1_000_000
    for i, nm in enumerate(names):
        pre.append((t, _directory(i, nm, t)))
        t += 2_000
    for i, nm in enumerate(names):
        pre.append((t, itch.encode("H", stock_locate=i + 1, tracking_number=1 + i % 7,
                                   timestamp=t, stock=nm, trading_state="T", reserved=" ")))
        t += 2_000
    t_close = max(int(flow_ts[-1]), a0 + session_ns) + 1_000_000
    post = [(t_close, itch.encode("S", timestamp=t_close, event_code="M")),
            (t_close + NS, itch.encode("S", timestamp=t_close + NS, event_code="E")),
            (t_close + 2 * NS, itch.encode("S", timestamp=t_close + 2 * NS, event_code="C"))]
    return join_days([
        _fixed(pre, names, prices, seed),
        _assemble(names, prices, seed, flow_ts, ev_sym, typ_all, col_ref, col_ref2, col_side,
                  col_sh, col_px, col_aux, rare),
        _fixed(post, names, prices, seed)])


# --------------------------------------------------------------------------------------------
# faults

#: What :func:`inject_faults` can put into a clean day (each with a rate, per message it
#: applies to): ``duplicate_ref`` an extra add (or a replace's new order) on a live reference;
#: ``unknown_ref`` an extra E/X/D/U of a reference never added; ``overfill`` an E/C/X of more
#: shares than the order has left; ``zero_shares`` an add, reduction or replace of 0 shares;
#: ``bad_side`` an add whose side is neither B nor S; ``reused_ref`` a replace whose new
#: reference is its old one; ``far_price`` an add (and its order) moved 1..64 ticks away from
#: the touch (more price points than a bounded book holds); ``deep_book`` after an add, an
#: extra order of a fresh reference 1..64 ticks behind it that no message removes (books
#: deeper than a bounded book holds); ``wide_ref`` a new order's
#: reference moved into the high 32 bits (every message about it follows); ``clock_back`` a
#: timestamp a little earlier than the one before; ``halt`` a halt (H, P or Q state) or,
#: for a halted symbol, the resumption (T) after one of its messages.
FAULTS = ("duplicate_ref", "unknown_ref", "overfill", "zero_shares", "bad_side", "reused_ref",
          "far_price", "deep_book", "wide_ref", "clock_back", "halt")


def inject_faults(messages, seed: int, faults: dict[str, float]) -> list[bytes]:
    """The messages of a day (a :class:`Day` or a list of bytes) with the ``faults`` (name ->
    rate, see :data:`FAULTS`) put in, deterministically by ``seed``. Messages that no fault
    touches keep their bytes; inserted ones take the timestamp of the message they follow."""
    import random

    unknown = set(faults) - set(FAULTS)
    if unknown:
        raise ValueError(f"unknown fault {sorted(unknown)} (known: {', '.join(FAULTS)})")
    rng = random.Random(seed)
    rate = dict.fromkeys(FAULTS, 0.0)
    rate.update(faults)

    def hit(name: str) -> bool:
        return rate[name] > 0 and rng.random() < rate[name]

    live: dict[int, list] = {}      # reference (as sent) -> [locate, stock, side, shares]
    wide: dict[int, int] = {}       # reference of the clean day -> reference sent
    names: dict[int, str] = {}      # locate -> stock
    halted: set[int] = set()
    next_unknown, next_deep = 1 << 62, 1 << 61
    last_ts = 0
    out: list[bytes] = []
    for raw in messages:
        f = itch.decode(raw)
        t = f.pop("type")
        loc, ts = f["stock_locate"], f["timestamp"]
        touched = False
        extra: list[bytes] = []
        for key in ("order_reference_number", "original_order_reference_number"):
            if key in f and f[key] in wide:
                f[key], touched = wide[f[key]], True
        if "stock" in f:
            names[loc] = f["stock"]
        if t in "AFU":
            new_key = "order_reference_number" if t in "AF" else "new_order_reference_number"
            if hit("wide_ref"):
                wide[f[new_key]] = f[new_key] | rng.randrange(1, 1 << 32) << 32
                f[new_key], touched = wide[f[new_key]], True
        if t in "AF":
            if hit("far_price"):
                k = rng.randint(1, 64) * TICK
                f["price"] = f["price"] + k if f["buy_sell_indicator"] == "S" else \
                    max(TICK, f["price"] - k)
                touched = True
            if hit("zero_shares"):
                f["shares"], touched = 0, True
            if live and hit("duplicate_ref"):
                dup = dict(f, order_reference_number=rng.choice(list(live)))
                extra.append(itch.encode(t, **dup))
            if hit("deep_book"):
                next_deep += 1
                k = rng.randint(1, 64) * TICK
                deep = dict(f, order_reference_number=next_deep, price=f["price"] + k
                            if f["buy_sell_indicator"] == "S" else max(TICK, f["price"] - k))
                extra.append(itch.encode(t, **deep))
            if hit("bad_side"):
                f["buy_sell_indicator"], touched = "X", True
        elif t in "ECX":
            key = "executed_shares" if t != "X" else "canceled_shares"
            o = live.get(f["order_reference_number"])
            if o is not None and hit("overfill"):
                f[key], touched = o[3] + rng.randint(1, 50), True
            elif hit("zero_shares"):
                f[key], touched = 0, True
        elif t == "U":
            if hit("reused_ref"):
                f["new_order_reference_number"] = f["original_order_reference_number"]
                touched = True
            elif live and hit("duplicate_ref"):
                f["new_order_reference_number"], touched = rng.choice(list(live)), True
            if hit("zero_shares"):
                f["shares"], touched = 0, True
        if last_ts and hit("clock_back"):
            f["timestamp"], touched = max(0, last_ts - rng.choice((1, 50, 300))), True
        if loc and hit("unknown_ref"):
            next_unknown += rng.randrange(1, 1 << 20)
            u = rng.choice("EXDU")
            g = dict(stock_locate=loc, timestamp=ts)
            if u == "U":
                g.update(original_order_reference_number=next_unknown,
                         new_order_reference_number=next_unknown + 1, shares=100, price=TICK)
            else:
                g["order_reference_number"] = next_unknown
                if u == "E":
                    g.update(executed_shares=100, match_number=next_unknown)
                elif u == "X":
                    g["canceled_shares"] = 100
            extra.append(itch.encode(u, **g))
        if loc in names and t != "H" and hit("halt"):
            state = "T" if loc in halted else rng.choice("HPQ")
            (halted.discard if state == "T" else halted.add)(loc)
            extra.append(itch.encode("H", stock_locate=loc, timestamp=ts, stock=names[loc],
                                     trading_state=state))
        msg = itch.encode(t, **f) if touched else raw
        out.append(msg)
        out.extend(extra)
        last_ts = f["timestamp"]
        for m in (msg, *extra):
            _track(m, live)
    return out


def _track(msg: bytes, live: dict) -> None:
    """Follow the live orders (reference -> [locate, stock, side, shares]) as a book would."""
    t = chr(msg[0])
    if t not in "AFECXDU":
        return
    f = itch.decode(msg)
    if t in "AF":
        live.setdefault(f["order_reference_number"], [f["stock_locate"], f["stock"],
                                                      f["buy_sell_indicator"], f["shares"]])
    elif t in "ECX":
        o = live.get(f["order_reference_number"])
        if o is not None:
            o[3] -= f.get("executed_shares", f.get("canceled_shares", 0))
            if o[3] <= 0:
                del live[f["order_reference_number"]]
    elif t == "D":
        live.pop(f["order_reference_number"], None)
    else:
        o = live.pop(f["original_order_reference_number"], None)
        if o is not None:
            live.setdefault(f["new_order_reference_number"], [o[0], o[1], o[2], f["shares"]])


# --------------------------------------------------------------------------------------------
# statistics

def day_stats(day: Day) -> dict:
    """Message mix of a day: counts, fractions of all messages, and the share of orders
    (adds and replacement orders) that end cancelled (deleted or replaced away)."""
    counts = day.counts()
    n = len(day)
    adds = counts.get("A", 0) + counts.get("F", 0)
    orders = adds + counts.get("U", 0)  # a replace creates a new order
    out = {"messages": n, "counts": counts,
           "fraction": {k: v / n for k, v in sorted(counts.items())},
           "fraction_adds": adds / n,
           "fraction_cancels": (counts.get("X", 0) + counts.get("D", 0)) / n,
           "fraction_execs": (counts.get("E", 0) + counts.get("C", 0)) / n,
           "fraction_replaces": counts.get("U", 0) / n}
    out["orders_cancelled"] = ((counts.get("D", 0) + counts.get("U", 0)) / orders
                               if orders else 0.0)
    return out


def _be_col(buf: np.ndarray, starts: np.ndarray, type_: str, name: str) -> np.ndarray:
    """Field ``name`` of the ``type_`` messages starting at ``starts``, column-wise."""
    f = next(f for f in itch.MESSAGES[type_].fields if f.name == name)
    v = np.zeros(len(starts), np.int64)
    for b in range(f.size):
        v = (v << 8) | buf[starts + f.offset + b]
    return v


def _group_cumsum(x: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Running sum of ``x`` that restarts wherever ``first`` is set (groups laid end to end)."""
    c = np.cumsum(x)
    g = np.maximum.accumulate(np.where(first, np.arange(len(x)), 0))
    return c - c[g] + x[g]


def _group_starts(key: np.ndarray) -> np.ndarray:
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]
    return first


def book_stats(day: Day) -> dict:
    """The book a day implies, followed order by order from its messages alone (column-wise):
    the live orders after each message and the price levels (prices with a live order) of
    each side, to check a generated day and a book builder against each other.

    Returns ``peak_live_orders`` and ``peak_at`` (the first message after which that many
    are live), ``final_live_orders``, ``deepest_levels`` (the most levels one side held) with
    ``deepest_symbol``, ``deepest_side`` (B or S) and ``deepest_at``, ``levels_at_peak``
    (levels after message ``peak_at``, an int array [locate, 0 bid / 1 ask]) and ``errors``:
    the messages that name no live order (``unknown_ref``), take more shares than it has
    (``overfill``), add a reference used before (``duplicate_ref``) or carry 0 shares
    (``zero_shares``). The figures are exact when every error count is 0.
    """
    buf = np.frombuffer(day.blob, np.uint8)
    starts = day.offsets[:-1]
    typ = buf[starts]
    n = len(starts)
    names = ("ref", "idx", "kind", "delta", "loc", "ask", "px", "old")
    cols: dict[str, list] = {k: [] for k in names}

    def put(ref, idx, kind, delta, loc=-1, ask=-1, px=0, old=-1):
        for k, v in zip(names, (ref, idx, kind, delta, loc, ask, px, old)):
            cols[k].append(np.broadcast_to(np.asarray(v, np.int64), (len(idx),)))

    # kinds: 0 an order appears (A, F, U's new one), 1 a reduction (E, C, X), 2 the order's
    # removal (D, U's original)
    for t_ in "AF":
        i = np.flatnonzero(typ == ord(t_))
        s = starts[i]
        put(_be_col(buf, s, t_, "order_reference_number"), i, 0, _be_col(buf, s, t_, "shares"),
            _be_col(buf, s, t_, "stock_locate"),
            buf[s + itch.field_offset(t_, "buy_sell_indicator")] != ord("B"),
            _be_col(buf, s, t_, "price"))
    for t_, f_ in (("E", "executed_shares"), ("C", "executed_shares"), ("X", "canceled_shares")):
        i = np.flatnonzero(typ == ord(t_))
        put(_be_col(buf, starts[i], t_, "order_reference_number"), i, 1,
            -_be_col(buf, starts[i], t_, f_))
    i = np.flatnonzero(typ == ord("D"))
    put(_be_col(buf, starts[i], "D", "order_reference_number"), i, 2, 0)
    i = np.flatnonzero(typ == ord("U"))
    s = starts[i]
    old = _be_col(buf, s, "U", "original_order_reference_number")
    put(old, i, 2, 0)
    put(_be_col(buf, s, "U", "new_order_reference_number"), i, 0, _be_col(buf, s, "U", "shares"),
        px=_be_col(buf, s, "U", "price"), old=old)
    c = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in cols.items()}
    # a replacement order has its original's locate and side: resolve chains of replaces
    made = np.flatnonzero(c["kind"] == 0)
    made = made[np.argsort(c["ref"][made], kind="stable")]
    made_refs = c["ref"][made]
    todo = np.flatnonzero((c["kind"] == 0) & (c["loc"] < 0))
    while len(todo) and len(made):
        j = np.minimum(np.searchsorted(made_refs, c["old"][todo]), len(made) - 1)
        src = made[j]
        hit = (made_refs[j] == c["old"][todo]) & (c["loc"][src] >= 0)
        if not hit.any():
            break
        c["loc"][todo[hit]], c["ask"][todo[hit]] = c["loc"][src[hit]], c["ask"][src[hit]]
        todo = todo[~hit]
    # each reference's events in message order (at one message a removal first)
    o = np.lexsort((-c["kind"], c["idx"], c["ref"]))
    c = {k: v[o] for k, v in c.items()}
    kind, delta, idx = c["kind"], c["delta"], c["idx"]
    first = _group_starts(c["ref"])
    left = _group_cumsum(delta, first)
    made_n = _group_cumsum((kind == 0).astype(np.int64), first)
    ends = (kind == 2) | ((kind == 1) & (left <= 0))
    live_before = (made_n - (kind == 0) > 0) & (_group_cumsum(ends.astype(np.int64), first)
                                                 - ends == 0)
    errors = {"unknown_ref": int(((kind != 0) & ~live_before).sum()),
              "overfill": int(((kind == 1) & live_before & (left < 0)).sum()),
              "duplicate_ref": int(((kind == 0) & (made_n > 1)).sum()),
              "zero_shares": int(((kind != 2) & (delta == 0)).sum())}
    gone = ends & live_before   # the one message that ends each order
    born = (kind == 0) & (made_n == 1)
    live = np.cumsum(np.bincount(idx[born], minlength=n) - np.bincount(idx[gone], minlength=n))
    peak_at = int(np.argmax(live)) if n else 0
    # levels: an order holds its (locate, side, price) from the message that adds it to the
    # one that ends it
    grp = np.cumsum(first) - 1
    end_of = np.full(int(first.sum()), n, np.int64)
    end_of[grp[gone]] = idx[gone]
    b = np.flatnonzero(born & (c["loc"] >= 0))
    t_out = end_of[grp[b]]
    out_ = t_out < n
    side_key = np.concatenate([c["loc"][b] * 2 + c["ask"][b], (c["loc"][b] * 2 + c["ask"][b])
                               [out_]])
    at = np.concatenate([idx[b], t_out[out_]])
    step = np.concatenate([np.ones(len(b), np.int64), -np.ones(int(out_.sum()), np.int64)])
    lv_key = (side_key << 33) | np.concatenate([c["px"][b], c["px"][b][out_]])
    o = np.lexsort((step, at, lv_key))   # the book takes an order off before adding one
    lv_key, at, step = lv_key[o], at[o], step[o]
    cnt = _group_cumsum(step, _group_starts(lv_key))
    chg = ((step == 1) & (cnt == 1)) | ((step == -1) & (cnt == 0))   # a level opens/closes
    s_key, s_at, s_step = lv_key[chg] >> 33, at[chg], step[chg]
    o = np.lexsort((s_step, s_at, s_key))
    s_key, s_at, s_step = s_key[o], s_at[o], s_step[o]
    s_first = _group_starts(s_key)
    levels = _group_cumsum(s_step, s_first)
    n_loc = int(c["loc"].max()) + 1 if len(c["loc"]) else 1
    at_peak = np.zeros((max(n_loc, 1), 2), np.int64)
    upto = s_at <= peak_at
    last = upto & (np.append(s_first[1:], True) | np.append(~upto[1:], True))
    at_peak[s_key[last] // 2, s_key[last] % 2] = levels[last]
    out = {"messages": n, "peak_live_orders": int(live[peak_at]) if n else 0,
           "peak_at": peak_at, "final_live_orders": int(live[-1]) if n else 0,
           "levels_at_peak": at_peak, "errors": errors, "deepest_levels": 0,
           "deepest_at": -1, "deepest_symbol": "", "deepest_side": ""}
    if len(levels):
        j = int(np.argmax(levels))
        loc = int(s_key[j]) // 2
        out.update(deepest_levels=int(levels[j]), deepest_at=int(s_at[j]),
                   deepest_symbol=day.symbols[loc - 1] if 0 < loc <= len(day.symbols)
                   else str(loc), deepest_side="S" if s_key[j] % 2 else "B")
    return out


# --------------------------------------------------------------------------------------------
# packets and captures

def to_packets(day: Day, session: str = "TICKWIRE01", max_payload: int = 1400,
               heartbeat_every_ns: int = NS, burst_ns: int = 5_000,
               first_seq: int = 1) -> list[tuple[int, bytes]]:
    """MoldUDP64 packets (UDP payloads) with their send times (ns since midnight).

    Messages less than ``burst_ns`` apart share a packet while it fits ``max_payload`` bytes
    (20-byte header + 2-byte length per message), so bursts give packets of 1..N messages;
    gaps longer than ``heartbeat_every_ns`` get heartbeats (count 0) every
    ``heartbeat_every_ns``; an end-of-session packet (count 0xFFFF) closes the stream.
    """
    from . import moldudp64

    if max_payload < 20 + 2 + 50:
        raise ValueError(f"max_payload={max_payload} cannot hold the largest ITCH message")
    off = day.offsets.tolist()
    ts = day.timestamps.tolist()
    blob = day.blob
    out: list[tuple[int, bytes]] = []
    seq = first_seq
    i, n = 0, len(day)
    last_sent = None
    while i < n:
        t0 = ts[i]
        if last_sent is not None and heartbeat_every_ns:
            hb = last_sent + heartbeat_every_ns
            while hb < t0:
                out.append((hb, moldudp64.heartbeat(session, seq)))
                hb += heartbeat_every_ns
        size = 20 + 2 + off[i + 1] - off[i]
        j = i + 1
        while j < n and ts[j] - ts[j - 1] <= burst_ns:
            add = 2 + off[j + 1] - off[j]
            if size + add > max_payload:
                break
            size += add
            j += 1
        msgs = [blob[off[k]:off[k + 1]] for k in range(i, j)]
        last_sent = ts[j - 1]
        out.append((last_sent, moldudp64.pack(session, seq, msgs)))
        seq += j - i
        i = j
    t_end = (last_sent if last_sent is not None else 0) + 1_000_000
    out.append((t_end, moldudp64.end_of_session(session, seq)))
    return out


def write_capture(day: Day, path, fmt: str = "pcap", vlan: int | None = None, *,
                  session: str = "TICKWIRE01", max_payload: int = 1400,
                  heartbeat_every_ns: int = NS, epoch_ns: int = DEFAULT_EPOCH_NS,
                  nanosecond: bool = True, compress: bool | None = None,
                  **frame_kwargs) -> Path:
    """Write ``day`` as a pcap of Ethernet/[802.1Q]/IPv4/UDP/MoldUDP64 frames (``fmt="pcap"``,
    frame times ``epoch_ns`` + packet time) or as a NASDAQ BinaryFILE (``fmt="binaryfile"``).

    ``frame_kwargs`` (dst_ip, dst_port, src_ip, src_port, ...) go to
    :func:`tickwire.host.framing.build_udp_frame`.
    """
    from . import capture

    path = Path(path)
    if fmt == "pcap":
        from . import framing

        packets = to_packets(day, session=session, max_payload=max_payload,
                             heartbeat_every_ns=heartbeat_every_ns)
        frames = [framing.build_udp_frame(p, vlan=vlan, **frame_kwargs) for _, p in packets]
        capture.write_pcap(path, frames, [epoch_ns + t for t, _ in packets],
                           nanosecond=nanosecond)
    elif fmt == "binaryfile":
        if vlan is not None or frame_kwargs:
            raise ValueError("vlan and frame options apply to pcap output only")
        capture.write_binaryfile(path, iter(day), compress=compress)
    else:
        raise ValueError(f"unknown capture format {fmt!r} (pcap or binaryfile)")
    return path


def binaryfile_records(part: Day) -> np.ndarray:
    """A part of a day as BinaryFILE records (2-byte big-endian length, then the message)."""
    lens = np.diff(part.offsets)
    starts = part.offsets[:-1] + 2 * np.arange(len(lens))
    out = np.empty(len(part.blob) + 2 * len(lens), np.uint8)
    body = np.ones(len(out), bool)
    body[starts] = body[starts + 1] = False
    out[starts], out[starts + 1] = lens >> 8, lens & 0xFF
    out[body] = np.frombuffer(part.blob, np.uint8)
    return out


def write_day(path, symbols: int, messages: int, seed: int, *, session_ns: int | None = None,
              compress: bool | None = None, progress=None) -> Path:
    """Generate the day of :func:`generate_day` straight into a BinaryFILE (gzip when
    ``compress``, default: a .gz name), part by part, in memory that does not grow with the
    day: the same bytes as ``write_capture(generate_day(...), path, "binaryfile")``.
    ``progress(n)`` is called with the messages of each part written."""
    import gzip

    path = Path(path)
    if compress is None:
        compress = path.name.endswith(".gz")
    parts = day_chunks(symbols, messages, seed, session_ns=session_ns)
    first = next(parts)   # bad arguments raise here, before the file is made
    with open(path, "wb") as raw:
        # mtime=0: the same messages always give the same file
        f = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if compress else raw
        try:
            for part in itertools.chain([first], parts):
                f.write(binaryfile_records(part))
                if progress is not None:
                    progress(len(part))
        finally:
            if compress:
                f.close()
    return path
