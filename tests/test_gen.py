"""Synthetic market-data generator: determinism, ITCH validity, book sanity, statistics,
MoldUDP64 packets, captures and the shipped sample."""

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

from tickwire.host import capture, gen, itch, moldudp64

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "host" / "data"


@pytest.fixture(scope="module")
def day() -> gen.Day:
    return gen.generate_day(6, 30_000, 11)


@pytest.fixture(scope="module")
def decoded(day) -> list[dict]:
    return [itch.decode(m) for m in day]


def test_deterministic():
    a = gen.generate_day(4, 6_000, 3)
    b = gen.generate_day(4, 6_000, 3)
    assert a.blob == b.blob and np.array_equal(a.timestamps, b.timestamps)
    assert np.array_equal(a.offsets, b.offsets)
    assert gen.generate_day(4, 6_000, 4).blob != a.blob


def test_exact_count_and_day_structure(day, decoded):
    assert len(day) == 30_000 == len(decoded)
    names = day.symbols
    assert names == ["AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META"]
    types = "".join(d["type"] for d in decoded)
    events = [d["event_code"] for d in decoded if d["type"] == "S"]
    assert types[:2] == "SS" and events[:3] == ["O", "S", "Q"]
    assert events[-3:] == ["M", "E", "C"] and types[-3:] == "SSS"
    r = [d for d in decoded if d["type"] == "R"]
    assert [(d["stock_locate"], d["stock"]) for d in r] == list(enumerate(names, 1))
    h = [d for d in decoded if d["type"] == "H"]
    assert [(d["stock"], d["trading_state"]) for d in h] == [(n, "T") for n in names]
    # directory and trading state come before the first order; crosses open and close
    first_add = types.index("A")
    assert types.rindex("R") < first_add and types.rindex("H") < first_add
    crosses = [d["cross_type"] for d in decoded if d["type"] == "Q"]
    assert crosses.count("O") == len(names) and crosses.count("C") == len(names)
    for t in "AFECXDUPQIYL":
        assert t in types, t


def test_every_message_matches_itch_encode(day, decoded):
    """The column-built bytes equal itch.encode's for every message."""
    for i, (raw, d) in enumerate(zip(day, decoded)):
        assert itch.encode(d["type"], **{k: v for k, v in d.items() if k != "type"}) == raw, i


def test_fields_consistent(day, decoded):
    ts = np.array([d["timestamp"] for d in decoded])
    assert np.array_equal(ts, day.timestamps) and np.all(np.diff(ts) >= 0)
    flow = ts[(ts >= gen.T_OPEN) & (ts < gen.T_CLOSE)]
    assert flow.size > 0.99 * len(day) - 100
    names = day.symbols
    new_refs, matches = [], []
    for d in decoded:
        loc = d["stock_locate"]
        if d["type"] == "S":
            assert loc == 0
        else:
            assert 1 <= loc <= len(names)
            if "stock" in d:
                assert d["stock"] == names[loc - 1]
            assert d["tracking_number"] > 0
        if d["type"] in "AF":
            new_refs.append(d["order_reference_number"])
        elif d["type"] == "U":
            new_refs.append(d["new_order_reference_number"])
        if "match_number" in d:
            matches.append(d["match_number"])
        if d["type"] in "AFPU":
            assert d["price"] % 100 == 0 and d["price"] >= 100
    assert np.all(np.diff(new_refs) > 0), "order reference numbers increase"
    assert np.all(np.diff(matches) > 0), "match numbers increase"


class RefBook:
    """A tiny pure-Python book: orders by reference, shares per (locate, side, price)."""

    def __init__(self):
        self.orders = {}  # ref -> [loc, side, price, shares]
        self.levels = {}  # (loc, side) -> {price: shares}

    def best(self, loc, side):
        lv = self.levels.get((loc, side))
        if not lv:
            return None
        return max(lv) if side == "B" else min(lv)

    def add(self, ref, loc, side, price, shares):
        assert ref not in self.orders, f"duplicate ref {ref}"
        assert shares > 0
        self.orders[ref] = [loc, side, price, shares]
        lv = self.levels.setdefault((loc, side), {})
        lv[price] = lv.get(price, 0) + shares

    def reduce(self, ref, shares):
        assert ref in self.orders, f"reduction of unknown ref {ref}"
        o = self.orders[ref]
        assert 0 < shares <= o[3], f"ref {ref}: {shares} of {o[3]} shares"
        o[3] -= shares
        lv = self.levels[(o[0], o[1])]
        lv[o[2]] -= shares
        if lv[o[2]] == 0:
            del lv[o[2]]
        if o[3] == 0:
            del self.orders[ref]
        return o


def test_books_never_cross_and_flow_is_valid(decoded):
    book = RefBook()
    dist = []  # ticks between an add and its side's best
    executed_at_touch = 0
    executions = 0
    for i, d in enumerate(decoded):
        t = d["type"]
        loc = d["stock_locate"]
        if t in "AF":
            side, px = d["buy_sell_indicator"], d["price"]
            best = book.best(loc, side)
            if best is not None:
                dist.append(abs(px - best) // 100)
            book.add(d["order_reference_number"], loc, side, px, d["shares"])
        elif t in "EC":
            o = book.orders.get(d["order_reference_number"])
            assert o is not None, f"message {i}: execution of unknown order"
            executions += 1
            executed_at_touch += o[2] == book.best(o[0], o[1])
            if t == "C":
                assert d["execution_price"] == o[2]
            book.reduce(d["order_reference_number"], d["executed_shares"])
        elif t == "X":
            o = book.orders[d["order_reference_number"]]
            assert d["canceled_shares"] < o[3], "a partial cancel leaves shares"
            book.reduce(d["order_reference_number"], d["canceled_shares"])
        elif t == "D":
            book.reduce(d["order_reference_number"], book.orders[d["order_reference_number"]][3])
        elif t == "U":
            o = book.reduce(d["original_order_reference_number"],
                            book.orders[d["original_order_reference_number"]][3])
            book.add(d["new_order_reference_number"], o[0], o[1], d["price"], d["shares"])
        else:
            continue
        bb, ba = book.best(loc, "B"), book.best(loc, "S")
        assert bb is None or ba is None or bb < ba, f"message {i}: book {loc} {bb} >= {ba}"
    dist = np.array(dist)
    assert np.median(dist) <= 3 and np.percentile(dist, 90) <= 10, "adds near the touch"
    assert executed_at_touch == executions, "executions hit the best price"


def test_statistics(day, decoded):
    st = gen.day_stats(day)
    assert 0.35 < st["fraction_adds"] < 0.50
    assert 0.30 < st["fraction_cancels"] < 0.50
    assert 0.02 < st["fraction_execs"] < 0.08
    assert 0.03 < st["fraction_replaces"] < 0.15
    assert st["orders_cancelled"] > 0.8, "most orders end cancelled"
    assert 0 < st["counts"]["F"] < st["counts"]["A"] / 10
    assert 0 < st["counts"]["C"] < st["counts"]["E"] / 5
    assert 0 < st["counts"]["P"] < st["counts"]["E"]
    # Zipf-like activity: the first symbol is the busiest, activity falls with rank
    per = np.bincount([d["stock_locate"] for d in decoded if d["type"] in "AFEXDUCP"])[1:]
    assert per[0] == per.max() and per[0] > 2 * per[-1]
    # bursty: many messages within microseconds of the previous one, and long gaps too
    gaps = np.diff(day.timestamps[(day.timestamps > gen.T_OPEN)
                                  & (day.timestamps < gen.T_CLOSE)])
    assert np.mean(gaps < 5_000) > 0.5 and gaps.max() > 1_000_000_000


def test_too_few_messages():
    with pytest.raises(ValueError, match="fixed start/end-of-day messages"):
        gen.generate_day(10, 20, 0)
    d = gen.generate_day(2, 60, 0)
    assert len(d) == 60 and all(itch.decode(m) for m in d)


def test_symbol_names():
    names = gen.symbol_names(300)
    assert len(set(names)) == 300 and names[:3] == ["AAPL", "MSFT", "NVDA"]
    assert all(1 <= len(n) <= 8 and n.isalpha() and n.isupper() for n in names)
    assert all(n.startswith("Z") for n in names[len(gen.TICKERS):])
    d = gen.generate_day(300, 8_000, 2)  # more symbols than one byte of locate
    assert d.symbols == names
    assert all(5.0 <= p <= 500.0 for p in d.prices)
    dec = [itch.decode(m) for m in d]
    assert max(x["stock_locate"] for x in dec) == 300
    assert {x["stock"] for x in dec if x["type"] == "R"} == set(names)


def test_packets(day):
    pk = gen.to_packets(day, session="TESTSESS01", max_payload=600,
                        heartbeat_every_ns=1_000_000_000)
    seq, msgs, counts = 1, [], []
    last_t = 0
    for t, payload in pk:
        assert t >= last_t
        last_t = t
        assert len(payload) <= 600
        p = moldudp64.unpack(payload)
        assert p.session == "TESTSESS01" and p.sequence == seq, "contiguous sequence numbers"
        if p.is_end_of_session:
            break
        counts.append(p.count)
        seq += p.count
        msgs.extend(p.messages)
    assert pk[-1][1] == moldudp64.end_of_session("TESTSESS01", len(day) + 1)
    assert msgs == day.messages
    counts = np.array(counts)
    assert (counts == 0).sum() > 100, "heartbeats in quiet periods"
    assert counts.max() > 5 and (counts == 1).sum() > 0, "bursty packets of 1..N messages"


def test_pcap_in_scapy_and_feed(tmp_path):
    import scapy.all as scapy
    d = gen.generate_day(3, 3_000, 5)
    hb = 30_000_000_000  # fewer heartbeats: scapy parses ~4k packets/s
    path = gen.write_capture(d, tmp_path / "day.pcap", vlan=5, heartbeat_every_ns=hb)
    pk = gen.to_packets(d, heartbeat_every_ns=hb)
    pkts = scapy.rdpcap(str(path))
    assert len(pkts) == len(pk)
    for p, (t, payload) in zip(pkts, pk):
        assert p.haslayer(scapy.Dot1Q) and p[scapy.Dot1Q].vlan == 5
        assert bytes(p[scapy.UDP].payload)[:len(payload)] == payload
        assert p[scapy.IP].dst == "233.54.12.111" and p[scapy.UDP].dport == 26477
        assert int(p.time * 1_000_000_000) // 1000 == (gen.DEFAULT_EPOCH_NS + t) // 1000
    feed = moldudp64.reference_feed(capture.read_pcap(path))
    assert [m.data for m in feed.messages] == d.messages
    assert [m.sequence for m in feed.messages] == list(range(1, len(d) + 1))
    assert feed.counters["gaps"] == 0 and feed.counters["end_of_session"] == 1


def test_binaryfile(tmp_path):
    d = gen.generate_day(3, 2_000, 6)
    path = gen.write_capture(d, tmp_path / "day.bin", fmt="binaryfile")
    blob, offsets, lengths = capture.read_binaryfile(path)
    got = [bytes(blob[o:o + n]) for o, n in zip(offsets, lengths)]
    assert got == d.messages
    with pytest.raises(ValueError):
        gen.write_capture(d, tmp_path / "x", fmt="csv")


def test_sample_regenerates_identically(tmp_path):
    shipped = SAMPLE_DIR / "sample.pcap"
    assert shipped.exists(), "host/data/sample.pcap is missing (run host/data/make_sample.py)"
    assert shipped.stat().st_size < 1_500_000
    spec = importlib.util.spec_from_file_location("make_sample", SAMPLE_DIR / "make_sample.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.make(tmp_path / "sample.pcap")
    assert out.read_bytes() == shipped.read_bytes()


def test_large_day():
    """A day of 50 symbols and 300k messages: every message framed at its type's length, time
    never goes back, every symbol trades. (Its generation time is printed, not asserted: the
    suite runs on shared, loaded machines.)"""
    t = time.perf_counter()
    d = gen.generate_day(50, 300_000, 9)
    elapsed = time.perf_counter() - t
    assert len(d) == 300_000
    lengths = np.diff(d.offsets)
    assert np.array_equal(lengths, np.asarray(itch.LENGTH_BY_BYTE)[d.types])
    assert (np.diff(d.timestamps) >= 0).all()
    adds = np.flatnonzero(d.types == ord("A"))
    blob = np.frombuffer(d.blob, np.uint8)
    at = d.offsets[adds][:, None] + itch.field_offset("A", "stock_locate") + np.arange(2)
    locates = blob[at].astype(np.int64) @ np.array([256, 1])
    assert set(np.unique(locates).tolist()) == set(range(1, 51))
    print(f"generated {len(d):,} messages in {elapsed:.1f} s")


def test_session_squeezed():
    """``session_ns``: the continuous trading within that span after the open; bad spans
    refused. (The default path is byte-for-byte the shipped sample's, above.)"""
    d = gen.generate_day(3, 2_000, 5, session_ns=2_000_000)
    flow = d.timestamps[(d.timestamps > gen.T_OPEN + 3_000) & (d.timestamps < gen.T_CLOSE)]
    assert len(flow) > 1_900 and flow.max() < gen.T_OPEN + 2_100_000
    assert np.all(np.diff(d.timestamps) >= 0)
    for bad in (999, gen.T_CLOSE - gen.T_OPEN):
        with pytest.raises(ValueError, match="session_ns"):
            gen.generate_day(3, 2_000, 5, session_ns=bad)


@pytest.fixture(scope="module")
def small_day() -> gen.Day:
    return gen.generate_day(4, 3_000, 2)


def _book_counters(msgs, **capacity):
    from tickwire.sim.book_builder.gen import emulator_rows
    return emulator_rows(msgs, **capacity)[1]


def test_faults_off_and_deterministic(small_day):
    assert gen.inject_faults(small_day, 1, {}) == small_day.messages
    every = dict.fromkeys(gen.FAULTS, 0.05)
    a = gen.inject_faults(small_day, 1, every)
    assert a == gen.inject_faults(small_day, 1, every) != gen.inject_faults(small_day, 2, every)
    with pytest.raises(ValueError, match="unknown fault"):
        gen.inject_faults(small_day, 1, {"dup": 0.1})


@pytest.mark.parametrize("fault, counter", [
    ("duplicate_ref", "duplicate_ref"), ("unknown_ref", "unknown_ref"),
    ("overfill", "overfill"), ("far_price", "level_overflow"),
    ("deep_book", "level_overflow")])
def test_fault_counted_by_the_book(small_day, fault, counter):
    """Each fault the book counts: more of it once the fault is put in (the clean day has no
    bad reference or overfill)."""
    caps = dict(levels=8, depth=4)
    base = _book_counters(small_day.messages, **caps)
    assert base["duplicate_ref"] == base["unknown_ref"] == base["overfill"] == 0
    assert _book_counters(gen.inject_faults(small_day, 3, {fault: 0.3}),
                          **caps)[counter] > base[counter]


def test_faults_in_the_fields(small_day):
    """The faults the book does not count, seen in the messages themselves."""
    def dec(fault):
        return [itch.decode(m) for m in gen.inject_faults(small_day, 4, {fault: 0.05})]
    clean = [itch.decode(m) for m in small_day]
    assert not any(d["type"] in "AF" and d["buy_sell_indicator"] not in "BS" for d in clean)
    assert any(d["type"] in "AF" and d["buy_sell_indicator"] == "X" for d in dec("bad_side"))
    assert any(d["type"] in "AFU" and d["shares"] == 0 for d in dec("zero_shares"))
    assert any(d["type"] == "U" and d["original_order_reference_number"]
               == d["new_order_reference_number"] for d in dec("reused_ref"))
    assert max(d.get("order_reference_number", 0) for d in dec("wide_ref")) >= 1 << 32
    ts = [d["timestamp"] for d in dec("clock_back")]
    assert any(b < a for a, b in zip(ts, ts[1:]))
    halts = [d["trading_state"] for d in dec("halt") if d["type"] == "H"]
    assert len(halts) > len(small_day.symbols) and set(halts) - {"T"}
