"""How often the order table refuses an add, measured on real reference numbers.

The book builder's order table (docs/architecture.md, "Book builder") keeps an order in one
of ``ways`` entries of a bucket picked by hashing its reference number; an add that finds no
free entry is refused (``order_table_full``). Whether an entry is free depends only on how many
live orders share the bucket, so the table is modelled here by a count per bucket, for these
bucket indexes (the study's columns):

* ``fold`` — XOR-fold of ``ref >> log2(ways)`` (:func:`tickwire.host.emu.core.order_hash`,
  reproduced bit for bit in numpy): bank 0 of the built table, here alone;
* ``low`` — a direct map on the low bits of the reference: ``ref mod buckets``;
* ``mix`` — a multiplicative (Fibonacci) hash: the top bits of ``ref * 0x9E3779B97F4A7C15``;
* ``uniform`` — the baseline: a uniformly random bucket for each distinct reference;
* ``fold+mix`` — two choices in one table: the emptier of the ``fold`` and ``mix`` bucket;
* ``fold/rfold``, ``fold/mix``, ``fold/mix32`` — two choices in two banks of ``buckets / 2``:
  bank 0 by ``fold``, bank 1 by a second hash (``rfold``: fold of the bit-reversed
  reference; ``mix``; ``mix32``: :func:`tickwire.host.emu.core.mix_hash`); an add goes to the
  bucket with fewer live orders, bank 0 on a tie. ``fold/mix32`` is the built table
  (:data:`BUILT`): on the AMZN day its model refuses exactly the adds the emulator counts.

Streams of adds and removals come from ITCH messages (a replay, as the emulator sees it) or
from a steady-state churn at a chosen load (live orders / entries): each new order takes the
place of a live order picked at random. Run ``python -m tickwire.host.hashstats`` for the table
of docs/architecture.md ("Order-table hash on real reference numbers").
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

from . import itch

__all__ = ["INDEXES", "BUILT", "Stream", "fold_index", "low_index", "mix_index", "mix32_index",
           "rfold_index", "uniform_index", "itch_stream", "churn_stream", "sequential_keys",
           "uniform_keys", "bucket_choices", "refusals", "study", "markdown", "GEOMETRIES",
           "LOADS"]

#: the table geometries of the study: (buckets, ways) of the gateware, 4x it, the emulator's
GEOMETRIES = ((1 << 12, 4), (1 << 14, 4), (1 << 20, 4))
LOADS = (0.07, 0.25, 0.5, 0.75, 0.9)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _bits(n: int) -> int:
    if n < 1 or n & (n - 1):
        raise ValueError(f"{n}: must be a power of two")
    return n.bit_length() - 1


def fold_index(refs: np.ndarray, buckets: int, ways: int) -> np.ndarray:
    """The emulator's bucket of each reference (core.order_hash, vectorized)."""
    bits, wb = _bits(buckets), _bits(ways)
    r = np.asarray(refs, np.uint64) >> np.uint64(wb)
    h = np.zeros_like(r)
    for sh in range(0, 64, bits):
        h ^= r >> np.uint64(sh)
    return (h & np.uint64(buckets - 1)).astype(np.int64)


def low_index(refs: np.ndarray, buckets: int, ways: int) -> np.ndarray:
    """Direct map on the low bits: ``ref mod buckets``."""
    _bits(buckets)
    return (np.asarray(refs, np.uint64) & np.uint64(buckets - 1)).astype(np.int64)


def mix_index(refs: np.ndarray, buckets: int, ways: int) -> np.ndarray:
    """Multiplicative hash: the top ``log2(buckets)`` bits of ``ref * 0x9E3779B97F4A7C15``."""
    bits = _bits(buckets)
    with np.errstate(over="ignore"):
        p = np.asarray(refs, np.uint64) * _GOLDEN
    return (p >> np.uint64(64 - bits)).astype(np.int64)


def mix32_index(refs: np.ndarray, buckets: int, ways: int) -> np.ndarray:
    """The built bank-1 hash (core.mix_hash): the top ``log2(buckets)`` bits of
    ``k * 0x9E3779B9 mod 2^32``, ``k = (ref ^ ref >> 32) mod 2^32``."""
    bits = _bits(buckets)
    if bits > 32:
        raise ValueError(f"{buckets} buckets: mix32 gives at most 2^32")
    r = np.asarray(refs, np.uint64)
    k = (r ^ (r >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
    p = (k * np.uint64(0x9E3779B9)) & np.uint64(0xFFFFFFFF)
    return (p >> np.uint64(32 - bits)).astype(np.int64)


def rfold_index(refs: np.ndarray, buckets: int, ways: int) -> np.ndarray:
    """A second hash with no multiply: the XOR-fold of the bit-reversed reference."""
    r = np.asarray(refs, np.uint64)
    rev = np.zeros_like(r)
    for i in range(64):
        rev |= ((r >> np.uint64(i)) & np.uint64(1)) << np.uint64(63 - i)
    return fold_index(rev, buckets, 1)


def uniform_index(refs: np.ndarray, buckets: int, ways: int, seed: int = 1) -> np.ndarray:
    """The baseline: a uniformly random bucket per distinct reference (seeded)."""
    _bits(buckets)
    uniq, inv = np.unique(np.asarray(refs, np.uint64), return_inverse=True)
    return np.random.default_rng(seed).integers(0, buckets, len(uniq))[inv]


#: bucket index of each study column: ("one", f) one choice; ("table", f, g) two choices in
#: one table of all buckets; ("banks", f, g) two choices, f over bank 0 and g over bank 1,
#: each of half the buckets
INDEXES = {"fold": ("one", fold_index), "low": ("one", low_index), "mix": ("one", mix_index),
           "uniform": ("one", uniform_index),
           "fold+mix": ("table", fold_index, mix_index),
           "fold/rfold": ("banks", fold_index, rfold_index),
           "fold/mix": ("banks", fold_index, mix_index),
           "fold/mix32": ("banks", fold_index, mix32_index)}
#: the index the emulator and the gateware build (docs/architecture.md, "Order table")
BUILT = "fold/mix32"


@dataclass
class Stream:
    """Adds and removals of an order table: ``pair[i]`` is, for a removal, the index of the
    add it undoes (-1 for a reference never added); ``warm`` is where counting starts."""
    ref: np.ndarray      # uint64
    is_add: np.ndarray   # bool
    pair: np.ndarray     # int64
    warm: int = 0

    @property
    def adds(self) -> int:
        return int(self.is_add[self.warm:].sum())


def itch_stream(messages, keep=None) -> Stream:
    """The order-table operations of ITCH messages (bytes each): A F add; U removes the old
    reference and adds the new; D removes; X E C remove when no shares are left. ``keep``:
    a predicate on references, to study part of the stream (e.g. the real ones)."""
    refs, adds, pair = [], [], []
    live: dict[int, list[int]] = {}     # ref -> [add index, shares]

    def add(r, shares):
        if keep is None or keep(r):
            live[r] = [len(refs), shares]
            refs.append(r), adds.append(True), pair.append(-1)

    def remove(r):
        if keep is None or keep(r):
            refs.append(r), adds.append(False), pair.append(live.pop(r, [-1])[0])

    for m in messages:
        t = chr(m[0])
        if t not in "AFUDXEC":
            continue
        f = itch.decode(m)
        if t in "AF":
            add(f["order_reference_number"], f["shares"])
        elif t == "U":
            remove(f["original_order_reference_number"])
            add(f["new_order_reference_number"], f["shares"])
        else:
            r = f["order_reference_number"]
            o = live.get(r)
            if t == "D" or o is None:
                remove(r)
                continue
            o[1] -= f["canceled_shares"] if t == "X" else f["executed_shares"]
            if o[1] <= 0:
                remove(r)
    return Stream(np.array(refs, np.uint64), np.array(adds, bool), np.array(pair, np.int64))


@njit(cache=True)
def _churn(n_keys, live, seed):
    """Fill ``live`` orders, then each further key replaces a live order picked at random."""
    np.random.seed(seed)
    n = live + 2 * (n_keys - live)
    key = np.empty(n, np.int64)       # index into the key array
    is_add = np.empty(n, np.bool_)
    pair = np.full(n, -1, np.int64)
    pool = np.empty(live, np.int64)   # stream index of each live add
    i = 0
    for k in range(n_keys):
        if k >= live:
            j = np.random.randint(0, live)
            a = pool[j]
            key[i], is_add[i], pair[i] = key[a], False, a
            i += 1
            pool[j] = i
        else:
            pool[k] = i
        key[i], is_add[i] = k, True
        i += 1
    return key, is_add, pair


def churn_stream(keys: np.ndarray, live: int, seed: int = 1, count: int | None = None) -> Stream:
    """Steady state at ``live`` orders over ``keys`` in order: the fill, then one replacement
    per further key; refusals are counted over the last ``count`` adds (default: all after
    the fill). An order lives ``live`` replacements on average, so the table settles after
    a few times ``live`` replacements."""
    if not 0 < live < len(keys):
        raise ValueError(f"live={live}: must be 1..{len(keys) - 1} for {len(keys)} keys")
    k, is_add, pair = _churn(len(keys), live, seed)
    replaced = len(keys) - live
    count = replaced if count is None else min(count, replaced)
    return Stream(np.asarray(keys, np.uint64)[k], is_add, pair,
                  warm=live + 2 * (replaced - count))


def sequential_keys(n: int, step: int = 1, rng=None, start: int = 1) -> np.ndarray:
    """References as NASDAQ assigns them: increasing by ``step``, or by a random step in
    1..``-step`` when ``step`` is negative (the orders of a subset of the symbols)."""
    if step > 0:
        return np.arange(n, dtype=np.uint64) * np.uint64(step) + np.uint64(start)
    rng = rng or np.random.default_rng(1)
    return np.cumsum(rng.integers(1, -step + 1, n), dtype=np.uint64) + np.uint64(start)


def uniform_keys(n: int, rng=None) -> np.ndarray:
    """The baseline: uniformly random 63-bit references (distinct with overwhelming odds)."""
    rng = rng or np.random.default_rng(1)
    return rng.integers(1, 1 << 63, n, dtype=np.uint64)


@njit(cache=True)
def _count(b1, b2, is_add, pair, ways, n_buckets, warm):
    """Refused adds (after ``warm``) and peak live orders; an add takes the emptier of its
    buckets ``b1``, ``b2``, ``b1`` on a tie (the same bucket twice: a one-choice table)."""
    occ = np.zeros(n_buckets, np.int32)
    at = np.full(len(b1), -1, np.int64)      # bucket each stored add went to
    refused = 0
    live = 0
    peak = 0
    for i in range(len(b1)):
        if is_add[i]:
            b = b1[i] if occ[b1[i]] <= occ[b2[i]] else b2[i]
            if occ[b] < ways:
                occ[b] += 1
                at[i] = b
                live += 1
                peak = max(peak, live)
            elif i >= warm:
                refused += 1
        else:
            a = pair[i]
            if a >= 0 and at[a] >= 0:
                occ[at[a]] -= 1
                at[a] = -1
                live -= 1
    return refused, peak


def bucket_choices(refs: np.ndarray, buckets: int, ways: int, index: str = BUILT):
    """The two buckets (0..buckets-1) an add may take under ``index`` (see INDEXES; the same
    twice for one choice); bank 1's buckets follow bank 0's."""
    kind, *fns = INDEXES[index]
    if kind == "one":
        b = fns[0](refs, buckets, ways)
        return b, b
    if kind == "table":
        return fns[0](refs, buckets, ways), fns[1](refs, buckets, ways)
    half = buckets // 2
    if half < 2:
        raise ValueError(f"{buckets} buckets: two banks need at least 4")
    return fns[0](refs, half, ways), fns[1](refs, half, ways) + half


def refusals(stream: Stream, buckets: int, ways: int, index: str = BUILT) -> dict:
    """Adds refused by a ``buckets`` x ``ways`` table with bucket ``index`` (see INDEXES)."""
    b1, b2 = bucket_choices(stream.ref, buckets, ways, index)
    refused, peak = _count(b1, b2, stream.is_add, stream.pair, ways, buckets, stream.warm)
    adds = stream.adds
    return {"adds": adds, "refused": int(refused), "rate": refused / adds if adds else 0.0,
            "peak_live": int(peak), "peak_load": peak / (buckets * ways)}


# ------------------------------------------------------------------------------- the study

def real_streams(shared: Path) -> dict[str, Stream]:
    """The replays of the shared data: the AMZN day (all, and its real references only), the
    AAPL sample and every ITCH capture (messages in file order)."""
    from . import lobster
    from .emu.pipeline import load_source
    lob = Path(shared) / "lobster"
    amzn = lobster.load(lob / "AMZN_2012-06-21_34200000_57600000_message_1.csv.gz",
                        lob / "AMZN_2012-06-21_34200000_57600000_orderbook_1.csv.gz")
    amzn_msgs = lobster.to_itch(amzn, "AMZN")[0]
    aapl = lobster.load(lob / "AAPL_2012-06-21_34200000_57600000_message_10.csv",
                        lob / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv")
    cap = []
    for p in sorted(glob.glob(str(Path(shared) / "itch" / "*.pcap"))):
        src = load_source(p, track_sequence=False, check_ip_checksum=False)
        for o in src.offsets.tolist():
            t = chr(src.data[o])
            if t in itch.MESSAGES:
                cap.append(bytes(src.data[o:o + itch.MESSAGES[t].length]))
    return {
        "AMZN day replay (real + made-up refs)": itch_stream(amzn_msgs),
        "AMZN day replay, real refs only": itch_stream(
            amzn_msgs, keep=lambda r: r < lobster.SYNTHETIC_REF_BASE),
        "AAPL sample replay": itch_stream(lobster.to_itch(aapl)[0]),
        "ITCH captures (2023)": itch_stream(cap),
    }


def key_sources(n: int, amzn: Stream | None = None) -> dict[str, np.ndarray]:
    """Key streams for the churn at a chosen load: sequential patterns, the random baseline,
    and the AMZN day's references in the order they are added."""
    out = {"sequential, step 1": sequential_keys(n, 1),
           "sequential, step 4 (one 2023 shard)": sequential_keys(n, 4, start=3),
           "sequential, random step 1..16": sequential_keys(n, -16)}
    if amzn is not None:
        from .lobster import SYNTHETIC_REF_BASE
        refs = amzn.ref[amzn.is_add]
        out["AMZN day, real refs in add order"] = refs[refs < SYNTHETIC_REF_BASE]
        out["AMZN day, real + made-up refs"] = refs
    return out


def study(shared: Path | None, geometries=GEOMETRIES, churn_geometries=GEOMETRIES[:2],
          loads=LOADS, settle: int = 3, measure: int = 2):
    """Rows ``(source, load or None, buckets, ways, index, result)``: the replays at their own
    load on ``geometries``, then the churn of each key source at each load on
    ``churn_geometries``: ``settle`` x live replacements to reach the steady state, then
    refusals counted over ``measure`` x live more (blank where a source has too few keys)."""
    rows = []
    reals = real_streams(shared) if shared is not None else {}
    for name, s in reals.items():
        for nb, w in geometries:
            for ix in INDEXES:
                rows.append((name, None, nb, w, ix, refusals(s, nb, w, ix)))
    amzn = reals.get("AMZN day replay (real + made-up refs)")
    for nb, w in churn_geometries:
        entries = nb * w
        need = int(entries * max(loads) * (1 + settle + measure)) + 1
        for name, keys in key_sources(need, amzn).items():
            for load in loads:
                live = int(load * entries)
                n = live * (1 + settle + measure)
                if len(keys) < n:
                    continue   # too few real keys to reach this load's steady state
                s = churn_stream(keys[:n], live, count=measure * live)
                for ix in INDEXES:
                    rows.append((name, load, nb, w, ix, refusals(s, nb, w, ix)))
    return rows


def markdown(rows) -> str:
    """The study as a table: one line per source, load and geometry; a column per index."""
    lines = ["| references | load | table | " + " | ".join(INDEXES) + " |",
             "|---|---|---|" + "---|" * len(INDEXES)]
    groups: dict[tuple, dict] = {}
    for name, load, nb, w, ix, r in rows:
        groups.setdefault((name, load, nb, w), {})[ix] = r
    for (name, load, nb, w), res in groups.items():
        any_r = next(iter(res.values()))
        ld = f"{load:.0%}" if load is not None else f"peak {any_r['peak_load']:.1%}"
        cells = [f"{res[ix]['rate']:.2%} ({res[ix]['refused']}/{res[ix]['adds']})"
                 if ix in res else "" for ix in INDEXES]
        geo = f"2^{_bits(nb)}x{w}"
        lines.append(f"| {name} | {ld} | {geo} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m tickwire.host.hashstats",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"
                                            / "data"), help="the shared data folder")
    ap.add_argument("--big", action="store_true",
                    help="churn the 2^20 x 4 table too (minutes)")
    a = ap.parse_args(argv)
    shared = Path(a.shared) if Path(a.shared).is_dir() else None
    churn = GEOMETRIES if a.big else GEOMETRIES[:2]
    print(markdown(study(shared, churn_geometries=churn)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
