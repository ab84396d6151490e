"""The deep-book day: 64 symbols, over 10^6 live orders at its peak, a side of over 1,000
levels, every message consistent; the emulator holds it all at 1056 levels and 2^20 x 4
order-table entries with no loss, its table and levels agreeing with the day's own count."""

import hashlib

import numpy as np
import pytest
from typer.testing import CliRunner

from tickwire.host import gen, itch
from tickwire.host.cli import app
from tickwire.host.config import Config
from tickwire.host.emu.core import OT_META
from tickwire.host.emu.pipeline import Emulator

SYMBOLS, MESSAGES, SEED = 64, 1_300_000, 1
CAPACITY = {"symbols": 64, "levels": 1056, "order_buckets": 1 << 20, "order_ways": 4}
LOSSES = ("order_table_full", "level_overflow", "level_miss", "duplicate_ref", "unknown_ref",
          "overfill", "symbol_overflow")


def digest(day: gen.Day) -> str:
    return hashlib.sha256(day.blob + day.offsets.tobytes() + day.timestamps.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def day() -> gen.Day:
    return gen.generate_deep_day(SYMBOLS, MESSAGES, SEED)


@pytest.fixture(scope="module")
def stats(day) -> dict:
    return gen.book_stats(day)


def table_orders(emu: Emulator) -> int:
    return int((emu.state.orders[:, OT_META] & np.uint64(1)).sum())


def test_deterministic(day):
    assert digest(gen.generate_deep_day(SYMBOLS, MESSAGES, SEED)) == digest(day)
    other = gen.generate_deep_day(8, 60_000, SEED + 1, deep_levels=300)
    assert digest(gen.generate_deep_day(8, 60_000, SEED + 1, deep_levels=300)) == digest(other)
    assert digest(gen.generate_deep_day(8, 60_000, SEED + 2, deep_levels=300)) != digest(other)


def test_day_shape_and_book(day, stats):
    assert len(day) == MESSAGES and day.symbols == gen.symbol_names(SYMBOLS)
    assert np.all(np.diff(day.timestamps) >= 0)
    counts = day.counts()
    assert counts["R"] == counts["H"] == SYMBOLS
    adds = counts["A"] + counts["F"]
    assert adds > 0.75 * MESSAGES, "mostly adds"
    for t in "ECXDUP":   # the session does more than add
        assert counts[t] > 1000, t
    assert stats["errors"] == dict.fromkeys(stats["errors"], 0), stats["errors"]
    assert stats["peak_live_orders"] >= 1_000_000
    assert 1000 <= stats["deepest_levels"] <= CAPACITY["levels"]
    assert stats["levels_at_peak"].max() >= 1000
    print(f"\ndeep day: {MESSAGES:,} messages {counts}; peak {stats['peak_live_orders']:,} live "
          f"orders after message {stats['peak_at']:,}, final {stats['final_live_orders']:,}; "
          f"deepest side {stats['deepest_symbol']} {stats['deepest_side']} "
          f"{stats['deepest_levels']} levels")


def test_every_kind_of_message_matches_itch_encode(day):
    """The column-built bytes equal itch.encode's: the first message of each type, then a
    sample."""
    types = day.types
    picks = {int(np.flatnonzero(types == t)[0]) for t in np.unique(types)}
    picks |= set(np.random.default_rng(0).integers(0, len(day), 2000).tolist())
    for i in sorted(picks):
        f = itch.decode(day[i])
        assert itch.encode(f.pop("type"), **f) == day[i], i


def test_emulator_holds_the_whole_book(day, stats):
    cfg = Config()
    for k, v in CAPACITY.items():
        setattr(cfg.capacity, k, v)
    cfg.symbols = list(day.symbols)   # slot i is locate i + 1
    cfg.strategy.kind = "none"
    emu = Emulator(cfg, depth=1)
    data = np.frombuffer(day.blob, np.uint8)
    offsets = day.offsets[:-1]
    seqs = np.arange(1, len(day) + 1, dtype=np.uint64)
    cut = stats["peak_at"] + 1
    first = emu.run(data, offsets[:cut], seqs[:cut])
    # at the peak: the table holds every live order, each side the levels the day implies
    assert table_orders(emu) == stats["peak_live_orders"] >= 1_000_000
    want = stats["levels_at_peak"][1:SYMBOLS + 1]
    assert np.array_equal(emu.state.lv_n, want)
    assert emu.state.lv_n.max() >= 1000
    rest = emu.run(data, offsets[cut:], seqs[cut:])
    assert table_orders(emu) == stats["final_live_orders"]
    c = rest.counters
    assert {k: c[k] for k in LOSSES} == dict.fromkeys(LOSSES, 0)
    # the best bid stays below the best ask in every row
    for res in (first, rest):
        top = res.rows.levels[:, 0, :].astype(np.int64)   # ask p, ask s, bid p, bid s
        both = (top[:, 0] > 0) & (top[:, 2] > 0)
        assert both.sum() > 0 and np.all(top[both, 2] < top[both, 0])
    secs = first.timings["book_trigger_risk"] + rest.timings["book_trigger_risk"]
    print(f"\nemulator: {secs:.2f} s for {len(day):,} messages; "
          f"{len(first.rows) + len(rest.rows):,} top-of-book rows")


def test_cli_profile_deep(tmp_path):
    out = tmp_path / "deep.itch"
    r = CliRunner().invoke(app, ["gen", "--profile", "deep", "--symbols", "6", "--messages",
                                 "40000", "--seed", "3", "--format", "binaryfile", "--out",
                                 str(out)])
    assert r.exit_code == 0, r.output
    day = gen.generate_deep_day(6, 40_000, 3)
    lens = np.diff(day.offsets)
    want = b"".join(int(n).to_bytes(2, "big") + m for n, m in zip(lens, day))
    assert out.read_bytes() == want
    r = CliRunner().invoke(app, ["gen", "--profile", "wide", "--out", str(out)])
    assert r.exit_code == 2 and "--profile" in r.output


@pytest.mark.parametrize("kw", [dict(messages=2000), dict(deep_sides=200),
                                dict(deep_levels=0), dict(build_share=1.0),
                                dict(session_ns=10)])
def test_arguments_checked(kw):
    args = dict(symbols=8, messages=60_000, seed=1)
    args.update(kw)
    with pytest.raises(ValueError):
        gen.generate_deep_day(**args)
