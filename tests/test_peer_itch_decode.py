"""Every message of the real captures decodes as an independent ITCH 5.0 decoder reads it.

The peer is itch-book (a C++ ITCH 5.0 decoder from PyPI). Each of the 120 messages of the
shared captures is written alone as a BinaryFILE (an ``E``/``C`` after an add of its order, so
that itch-book reports the execution with its match number) and every field itch-book reports
is compared with ours. The fields itch-book does not report (tracking number, stock symbol,
the ``L`` fields, ...) are listed per type below and read instead at the offsets of the
protocol facts in ``../shared/docs/protocols.md``; every message is re-encoded by
:func:`tickwire.host.itch.encode` to its exact wire bytes.
"""

from __future__ import annotations

import datetime as dt
import re

import itch_book
import pytest

from tickwire.host import capture, itch
from tickwire.host.emu import feed

DAY = dt.date(2023, 8, 22)
SHARED_MESSAGES = 120  # the shared captures' message count (../shared/data/README.md)
HEADER = ("stock_locate", "tracking_number", "timestamp")

# itch-book's columns -> our fields, per table the type's message lands in; every table also
# gives the timestamp (ts_event) and, but for system events, the stock locate
_ORDER = {"order_id": "order_reference_number"}
PEER = {
    "S": {"system_events": {"event": "event_code"}},
    "A": {"messages": {**_ORDER, "side": "buy_sell_indicator", "size": "shares", "price": "price"}},
    "F": {"messages": {**_ORDER, "side": "buy_sell_indicator", "size": "shares", "price": "price",
                       "mpid": "attribution"}},
    "E": {"messages": {**_ORDER, "size": "executed_shares"},
          "trades": {**_ORDER, "size": "executed_shares", "match_number": "match_number"}},
    "C": {"messages": {**_ORDER, "size": "executed_shares", "price": "execution_price",
                       "printable": "printable"},
          "trades": {**_ORDER, "size": "executed_shares", "price": "execution_price",
                     "match_number": "match_number"}},
    "X": {"messages": {**_ORDER, "size": "canceled_shares"}},
    "D": {"messages": {**_ORDER}},
    "U": {"messages": {"old_order_id": "original_order_reference_number",
                       "order_id": "new_order_reference_number", "size": "shares",
                       "price": "price"}},
    "P": {"trades": {**_ORDER, "size": "shares", "price": "price",
                     "match_number": "match_number"}},
    "Q": {"trades": {"size": "cross_shares", "price": "cross_price",
                     "match_number": "match_number", "cross_type": "cross_type"}},
    "I": {"noii": {"paired": "paired_shares", "imbalance": "imbalance_shares",
                   "direction": "imbalance_direction", "far_px": "far_price",
                   "near_px": "near_price", "ref_px": "current_reference_price",
                   "cross_type": "cross_type", "variation": "price_variation_indicator"}},
    "H": {"halts": {"state": "trading_state", "reason": "reason_code"}},
    "Y": {"reg_sho": {"action": "reg_sho_action"}},
    "J": {"luld": {"ref_px": "auction_collar_reference_price",
                   "upper_px": "upper_auction_collar_price",
                   "lower_px": "lower_auction_collar_price",
                   "extension": "auction_collar_extension"}},
    "L": {},  # itch-book frames L (checked below) but reports none of its fields
}
#: what itch-book does not report, per type (checked against the protocol facts instead)
NOT_BY_PEER = {
    **{t: {"tracking_number", "stock"} for t in "AFPQHYIJ"},
    **{t: {"tracking_number"} for t in "ECXDU"},
    "S": {"tracking_number", "stock_locate"},
    "L": {"stock_locate", "tracking_number", "timestamp", "mpid", "stock",
          "primary_market_maker", "market_maker_mode", "market_participant_state"},
}
NOT_BY_PEER["H"] |= {"reserved"}             # itch-book has no column for H's reserved byte
NOT_BY_PEER["P"] |= {"buy_sell_indicator"}   # itch-book reports every trade's side as 'N'


@pytest.fixture(scope="module")
def wire(shared_data) -> list[bytes]:
    """Every ITCH message of every shared capture, in file order."""
    msgs = []
    for f in sorted((shared_data / "itch").glob("*.pcap")):
        idx = feed.index_frames(capture.read_capture(f), None, check_ip_checksum=False,
                                track_sequence=False)
        msgs += [idx.message(i) for i in range(len(idx))]
    return msgs


@pytest.fixture(scope="module")
def spec_doc(shared_data) -> dict[str, list[tuple[str, int, int]]]:
    """{type: [(field, offset, size)]} read from the protocol facts' ITCH table."""
    text = (shared_data.parent / "docs" / "protocols.md").read_text()
    header = re.search(r"Every message starts with type@0:1, (.*?)\n", text).group(1)
    common = [(n, int(o), int(s)) for n, o, s in re.findall(r"(\w+)@(\d+):(\d+)", header)]
    out = {}
    for typ, body in re.findall(r"^\| (\w) \| \w+ \| \d+ \| (.*) \|$", text, re.M):
        out[typ] = common + [(n, int(o), int(s))
                             for n, o, s in re.findall(r"(\w+)@(\d+):(\d+)", body)]
    return out


def run_peer(path, msgs: list[bytes]):
    """itch-book over ``msgs``: (stats, {table: [row dict]}, mpid names)."""
    capture.write_binaryfile(path, msgs)
    fb = itch_book.Feed(str(path), date=DAY, price_type="fixed")
    tables: dict[str, list[dict]] = {}
    for b in fb.batches(tables=tuple(t for tab in PEER.values() for t in tab) + ("messages",)):
        for name, cols in vars(b).items():
            n = len(cols["seq"])
            tables.setdefault(name, []).extend(
                {c: v[i].item() if hasattr(v[i], "item") else v[i] for c, v in cols.items()}
                for i in range(n))
    return fb.stats, tables, fb.mpids


def _value(column: str, v, mpids: list[str]):
    if column == "mpid":
        return mpids[v]
    if column == "printable":
        return "Y" if v else "N"
    if isinstance(v, bytes):
        return v.decode("latin-1").rstrip(" ")
    return v


def peer_fields(tmp_path, raw: bytes) -> dict:
    """Our field names -> the values itch-book reports for ``raw`` (an E/C is preceded by an
    add of its order so that itch-book emits the execution as a trade)."""
    m = itch.decode(raw)
    seeds = []
    if m["type"] in "EC":
        seeds.append(itch.encode("A", stock_locate=m["stock_locate"], buy_sell_indicator="S",
                                 order_reference_number=m["order_reference_number"],
                                 shares=10 ** 9, stock="SEED", price=1))
    stats, tables, mpids = run_peer(tmp_path / "one.itch", seeds + [raw])
    assert (stats["messages"], stats["unknown"], stats["malformed"]) == (len(seeds) + 1, 0, 0)
    seq = len(seeds) + 1
    midnight = itch_book.midnight_ns(DAY)
    got: dict = {}
    for table, columns in PEER[m["type"]].items():
        rows = [r for r in tables.get(table, []) if r["seq"] == seq]
        if table == "trades" and m["type"] == "C" and m["printable"] == "N":
            assert rows == []  # a non-printable execution is no trade: no match number to read
            continue
        (r,) = rows
        kind = r.get("type", r.get("kind"))
        if kind is not None:
            assert kind.decode() == m["type"]
        got["timestamp"] = r["ts_event"] - midnight
        if "locate" in r:
            got["stock_locate"] = r["locate"]
        for col, name in columns.items():
            v = _value(col, r[col], mpids)
            assert got.setdefault(name, v) == v, (table, col)
    return got


def test_every_shared_message_matches_peer_field_by_field(wire, tmp_path):
    assert len(wire) == SHARED_MESSAGES
    assert {chr(w[0]) for w in wire} == set("SAFECXDUPQHYLIJ")
    checked = 0
    for i, raw in enumerate(wire):
        ours = itch.decode(raw)
        theirs = peer_fields(tmp_path, raw)
        assert {k: ours[k] for k in theirs} == theirs, (i, ours)
        fields = {f.name for f in itch.MESSAGES[ours["type"]].fields}
        not_by_peer = set(NOT_BY_PEER[ours["type"]])
        if ours["type"] == "C" and ours["printable"] == "N":
            not_by_peer.add("match_number")
        assert set(theirs) == fields - not_by_peer, (i, ours["type"])
        checked += 1
    assert checked == SHARED_MESSAGES


def test_peer_frames_every_type_at_our_length(wire, tmp_path):
    """itch-book counts each type (L included) well-formed at our length and malformed at one
    byte less or more: the two decoders agree on every type's length."""
    lead = next(w for w in wire if w[:1] == b"S")
    for typ in sorted({w[:1] for w in wire}):
        raw = next(w for w in wire if w[:1] == typ)
        assert len(raw) == itch.LENGTHS[typ.decode()]
        for body, malformed in ((raw, 0), (raw[:-1], 1), (raw + b"\0", 1)):
            stats, _, _ = run_peer(tmp_path / "len.itch", [lead, body])
            assert (stats["unknown"], stats["malformed"]) == (0, malformed), (typ, len(body))


def test_every_field_at_the_protocol_facts_offsets(wire, spec_doc):
    """Every field of every message (those itch-book does not report included) equals the
    wire bytes at the offset and size the protocol facts give it."""
    for raw in wire:
        ours = itch.decode(raw)
        layout = spec_doc[ours["type"]]
        assert {n for n, _, _ in layout} == set(ours) - {"type"}
        assert max(o + s for _, o, s in layout) == len(raw)
        for name, off, size in layout:
            chunk = raw[off:off + size]
            if isinstance(ours[name], str):
                assert ours[name] == chunk.decode("ascii").rstrip(" "), name
            else:
                assert ours[name] == int.from_bytes(chunk, "big"), name
    # the captures exercise these fields (not all zero or blank)
    assert any(itch.decode(w)["tracking_number"] for w in wire)
    assert all(itch.decode(w)["stock"] for w in wire if w[:1] in b"AFPQHYIJL")


def test_every_message_reencodes_to_its_wire_bytes(wire):
    for i, raw in enumerate(wire):
        m = itch.decode(raw)
        assert itch.encode(m["type"], **{k: v for k, v in m.items() if k != "type"}) == raw, i
