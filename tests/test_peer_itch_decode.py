"""Every message of the real captures decodes as an independent ITCH 5.0 decoder reads it.

The peer is itch-book (a C++ ITCH 5.0 decoder from PyPI): the captures' messages are written as
a BinaryFILE, itch-book reads it, and every field it reports is compared with ours by
sequence number.
"""

import datetime as dt

import numpy as np
import pytest

itch_book = pytest.importorskip("itch_book")

from tickwire.host import capture, itch  # noqa: E402
from tickwire.host.emu import feed  # noqa: E402

DAY = dt.date(2023, 8, 22)


@pytest.fixture(scope="module")
def decoded(shared_data, tmp_path_factory):
    msgs = []
    for f in sorted((shared_data / "itch").glob("*.pcap")):
        idx = feed.index_frames(capture.read_capture(f), None, check_ip_checksum=False,
                                track_sequence=False)
        msgs += [idx.message(i) for i in range(len(idx))]
    path = tmp_path_factory.mktemp("peer") / "shared.itch"
    capture.write_binaryfile(path, msgs)
    tables = {}
    fb = itch_book.Feed(str(path), date=DAY, price_type="fixed")
    for b in fb.batches(tables=("messages", "trades", "noii", "halts", "reg_sho", "luld",
                                "system_events")):
        for name, cols in vars(b).items():
            for c, v in cols.items():
                tables.setdefault(name, {}).setdefault(c, []).append(np.asarray(v))
    tables = {n: {c: np.concatenate(v) for c, v in cols.items()} for n, cols in tables.items()}
    ours = {i + 1: itch.decode(m) for i, m in enumerate(msgs)}
    return ours, tables


def rows(table):
    n = len(table["seq"])
    return [{c: (v[i].decode() if isinstance(v[i], bytes) else v[i].item())
             for c, v in table.items()} for i in range(n)]


def test_all_types_of_the_captures_decode(decoded):
    ours, _ = decoded
    assert set(m["type"] for m in ours.values()) == set("SAFECXDUPQHYLIJ")
    for m in ours.values():  # re-encoding gives the wire bytes back
        assert itch.decode(itch.encode(m["type"], **{k: v for k, v in m.items()
                                                    if k != "type"})) == m


def test_order_messages_match_peer(decoded):
    ours, t = decoded
    midnight = itch_book.midnight_ns(DAY)
    checked = 0
    for r in rows(t["messages"]):
        m = ours[r["seq"]]
        assert m["type"] == r["type"] and m["stock_locate"] == r["locate"]
        assert m["timestamp"] == r["ts_event"] - midnight
        typ = m["type"]
        if typ in "AF":
            assert (m["order_reference_number"], m["buy_sell_indicator"], m["shares"],
                    m["price"]) == (r["order_id"], r["side"], r["size"], r["price"])
        elif typ == "U":
            assert (m["original_order_reference_number"], m["new_order_reference_number"],
                    m["shares"], m["price"]) == (r["old_order_id"], r["order_id"], r["size"],
                                                 r["price"])
        elif typ in "ECXD":
            assert m["order_reference_number"] == r["order_id"]
            if typ in "EC":
                assert m["executed_shares"] == r["size"]
            if typ == "C":
                assert m["execution_price"] == r["price"]
                assert (m["printable"] == "Y") == r["printable"]
            if typ == "X":
                assert m["canceled_shares"] == r["size"]
        checked += 1
    assert checked >= 50


def test_trades_imbalances_halts_match_peer(decoded):
    ours, t = decoded
    n = 0
    for r in rows(t["trades"]):
        m = ours[r["seq"]]
        if m["type"] == "Q":
            assert (m["cross_shares"], m["cross_price"], m["match_number"], m["cross_type"]) \
                == (r["size"], r["price"], r["match_number"], r["cross_type"])
            n += 1
        elif m["type"] == "P":
            assert (m["shares"], m["price"], m["match_number"], m["order_reference_number"]) \
                == (r["size"], r["price"], r["match_number"], r["order_id"])
            n += 1
    for r in rows(t["noii"]):
        m = ours[r["seq"]]
        assert (m["paired_shares"], m["imbalance_shares"], m["imbalance_direction"],
                m["far_price"], m["near_price"], m["current_reference_price"],
                m["cross_type"]) == (r["paired"], r["imbalance"], r["direction"], r["far_px"],
                                     r["near_px"], r["ref_px"], r["cross_type"])
        n += 1
    for r in rows(t["halts"]):
        m = ours[r["seq"]]
        if m["type"] == "H":
            assert (m["trading_state"], m["reason_code"]) == (r["state"], r["reason"].strip())
            n += 1
    for r in rows(t["luld"]):
        m = ours[r["seq"]]
        assert (m["auction_collar_reference_price"], m["upper_auction_collar_price"],
                m["lower_auction_collar_price"], m["auction_collar_extension"]) == (
            r["ref_px"], r["upper_px"], r["lower_px"], r["extension"])
        n += 1
    for r in rows(t["reg_sho"]):
        assert ours[r["seq"]]["reg_sho_action"] == r["action"]
        n += 1
    for r in rows(t["system_events"]):
        assert ours[r["seq"]]["event_code"] == r["event"]
        n += 1
    assert n >= 30
