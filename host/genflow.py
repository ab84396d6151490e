"""The flow schedule of a generated day (when each order-flow event happens and for which
symbol), drawn in blocks so that a day of any length is generated in bounded memory.

The schedule was first written as whole-day numpy draws from one generator, in this order:
burst sizes (geometric), big-burst flags (uniform), big-burst extra sizes (integers), burst
start gaps (exponential), gaps within bursts (exponential), burst symbols, own symbols and
keep flags (uniform). Those bytes are the contract (a seed gives the same day), so here every
one of those draws is a stream of its own: one walk of the generator, discarding values,
records where each stream starts, and a generator per stream then draws it block by block.
numpy's draws of these distributions consume the bit stream value by value, so drawing in
pieces gives the same values as one call; the cumulative sums and running maxima carry their
last value from one block to the next and add in the same order.
"""

from __future__ import annotations

import numpy as np

_WALK = 1 << 20       # values per draw when walking a stream
_BURST_MEAN = 4.0


def _gen_at(state: dict) -> np.random.Generator:
    g = np.random.Generator(np.random.PCG64())
    g.bit_generator.state = state
    return g


def _walk(rng: np.random.Generator, n: int, draw, each=None) -> dict:
    """Draw ``n`` values in pieces (handing each to ``each``); the state before them."""
    start = rng.bit_generator.state
    for k0 in range(0, n, _WALK):
        v = draw(rng, min(_WALK, n - k0))
        if each is not None:
            each(v)
    return start


def _cumsum(v: np.ndarray, carry: float) -> np.ndarray:
    """Running sum of ``v`` continuing from ``carry``, added in the one-call order."""
    return np.cumsum(np.concatenate(([carry], v)))[1:]


class FlowSchedule:
    """Timestamps (ns since midnight) and symbol indices of ``n`` flow events, bursty and
    U-shaped over the session (bursts starting within ``span`` ns of the open, no event at
    or after ``end``, none before ``floor_ts`` + its index), each burst's symbol Zipf-drawn
    by ``zipf_cdf`` and kept by 85 % of its events (the others draw their own).

    Construction walks ``rng`` past every draw of the schedule (as the whole-day draws left
    it); :meth:`blocks` then gives the events in order, any number of times."""

    def __init__(self, rng: np.random.Generator, n: int, span: int, end: int, t_open: int,
                 floor_ts: int, zipf_cdf: np.ndarray):
        self.n, self.span, self.end, self.t_open, self.floor_ts = n, span, end, t_open, floor_ts
        self.zc, self.symbols = zipf_cdf, len(zipf_cdf)
        self.clusters = 0
        if n == 0:
            self._z1 = _walk(rng, 1, lambda g, k: g.random(k))
            return
        n_sizes = n // 2 + 16
        self._g = _walk(rng, n_sizes, lambda g, k: g.geometric(1.0 / _BURST_MEAN, k))
        n_big = [0]
        self._r = _walk(rng, n_sizes, lambda g, k: g.random(k),
                        lambda v: n_big.__setitem__(0, n_big[0] + int((v < 0.03).sum())))
        self._i = _walk(rng, n_big[0], lambda g, k: g.integers(8, 48, size=k))
        # the number of bursts: the first whose sizes sum to n or more, and the last one
        # cut to fit
        c, total = 0, 0
        for sizes in self._sizes():
            cs = total + np.cumsum(sizes)
            j = int(np.searchsorted(cs, n))
            if j < len(cs):
                c += j + 1
                break
            c, total = c + len(sizes), int(cs[-1])
        self.clusters = c
        first_last = [None, 0.0]

        def starts(v):
            if first_last[0] is None:
                first_last[0] = float(v[0])
            first_last[1] = float(_cumsum(v, first_last[1])[-1])
        self._e1 = _walk(rng, c, lambda g, k: g.exponential(1.0, k), starts)
        self._s0, self._s_end = first_last
        self._e2 = _walk(rng, n, lambda g, k: g.exponential(600.0, k))
        self._z1 = _walk(rng, c, lambda g, k: g.random(k))
        self._z2 = _walk(rng, n, lambda g, k: g.random(k))
        self._z3 = _walk(rng, n, lambda g, k: g.random(k))
        # the burst-start warp: uniform starts through the inverse CDF of a U-shaped
        # intensity (busy open and close)
        grid = np.linspace(0.0, 1.0, 4097)
        lam = 1.0 + 3.0 * np.exp(-grid / 0.03) + 1.5 * np.exp(-(1.0 - grid) / 0.04)
        cdf = np.concatenate([[0.0], np.cumsum((lam[1:] + lam[:-1]) * 0.5)])
        self._grid, self._cdf = grid, cdf / cdf[-1]

    def _sizes(self, batch: int = 1 << 16):
        """Burst sizes, batch by batch (uncut: the caller stops at ``n`` events)."""
        g, r, i = _gen_at(self._g), _gen_at(self._r), _gen_at(self._i)
        while True:
            sizes = g.geometric(1.0 / _BURST_MEAN, batch)
            big = r.random(batch) < 0.03
            sizes[big] += i.integers(8, 48, size=int(big.sum()))
            yield sizes

    def symbol_counts(self, block: int = 1 << 20) -> np.ndarray:
        """Events per symbol over the whole schedule (one pass, no timestamps)."""
        counts = np.zeros(self.symbols, np.int64)
        for _, sym in self.blocks(block, times=False):
            counts += np.bincount(sym, minlength=self.symbols)
        return counts

    def blocks(self, block: int, times: bool = True):
        """(timestamps int64 or None, symbols int64) of ``block`` events at a time."""
        n = self.n
        if n == 0:
            return
        sizes_it = self._sizes()
        e1, e2 = _gen_at(self._e1), _gen_at(self._e2)
        z1, z2, z3 = _gen_at(self._z1), _gen_at(self._z2), _gen_at(self._z3)
        # bursts not yet finished: first event, start time, symbol
        pos = np.zeros(0, np.int64)
        cstart = np.zeros(0, np.int64)
        csym = np.zeros(0, np.int64)
        next_pos, s_carry = 0, 0.0          # first event of the next burst to draw; sum
        cum_carry, base_carry = 0.0, 0.0    # running sum of the gaps; at the open burst's start
        max_carry = np.iinfo(np.int64).min  # running max of ts - index
        floor_carry = np.iinfo(np.int64).min
        for e0 in range(0, n, block):
            e1_ = min(n, e0 + block)
            while next_pos < e1_:           # draw bursts until they cover this block
                sizes = next(sizes_it)
                p = next_pos + np.concatenate(([0], np.cumsum(sizes)[:-1]))
                next_pos = int(p[-1] + sizes[-1])
                k = len(sizes)
                csym = np.concatenate((csym, np.searchsorted(self.zc, z1.random(k),
                                                             side="right")))
                if times:
                    s = _cumsum(e1.exponential(1.0, k), s_carry)
                    s_carry = float(s[-1])
                    u = (s - self._s0) / (self._s_end - self._s0 + 1.0)
                    x = np.interp(u, self._cdf, self._grid)
                    cstart = np.concatenate((cstart, self.t_open + 1000
                                             + (x * self.span).astype(np.int64)))
                pos = np.concatenate((pos, p))
            idx = np.arange(e0, e1_, dtype=np.int64)
            cid = np.searchsorted(pos, idx, side="right") - 1
            m = e1_ - e0
            own = np.searchsorted(self.zc, z2.random(m), side="right")
            keep = z3.random(m) < 0.85
            sym = np.where(keep, csym[cid], own).astype(np.int64)
            np.minimum(sym, self.symbols - 1, out=sym)
            ts = None
            if times:
                first = pos[cid] == idx
                within = e2.exponential(600.0, m)
                within[first] = 0.0
                cum = _cumsum(within, cum_carry)
                cum_carry = float(cum[-1])
                starts = cum[first]
                j = np.cumsum(first) - 1
                base = np.where(j >= 0, starts[np.maximum(j, 0)], base_carry)
                if len(starts):
                    base_carry = float(starts[-1])
                ts = cstart[cid] + (cum - base).astype(np.int64)
                np.minimum(ts, self.end, out=ts)
                v = np.maximum.accumulate(np.maximum(ts - idx, max_carry))
                max_carry = int(v[-1])
                ts = v + idx
                ts = np.maximum.accumulate(np.maximum(np.maximum(ts, self.floor_ts + idx),
                                                      floor_carry))
                floor_carry = int(ts[-1])
            # keep only the bursts this block's last event or later ones belong to
            keep_from = int(cid[-1])
            pos, csym = pos[keep_from:], csym[keep_from:]
            if times:
                cstart = cstart[keep_from:]
            yield ts, sym
