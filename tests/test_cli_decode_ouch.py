"""`tickwire decode` on SoupBinTCP/OUCH 5.0 captures: the real Enter Order field by field, the
order frames `tickwire run` writes, TCP streams split across segments, and what it counts."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tickwire.host import ouch
from tickwire.host import soupbintcp as soup
from tickwire.host.capture import write_pcap
from tickwire.host.cli import SAMPLE, app
from tickwire.host.framing import build_tcp_frame, build_udp_frame

STATIC = Path(__file__).resolve().parents[1] / "host" / "data" / "static_triggers.toml"


def decode(*args):
    return CliRunner().invoke(app, ["decode", *map(str, args)])


@pytest.fixture(scope="module")
def enter_order(shared_data):
    return shared_data / "ouch" / "EnterOrderMessage.pcap"


def test_real_enter_order_jsonl(enter_order):
    r = decode(enter_order, "--strict")                 # its IPv4 and TCP checksums hold
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    (line,) = r.stdout.splitlines()
    rec = json.loads(line)
    want = {"frame": 0, "soup": "U", "direction": "client", "type": "O",
            "message": "enter_order", "user_ref_num": 113, "side": "T", "quantity": 225,
            "symbol": "CVLT", "price": 630200, "time_in_force": "0", "display": "Y",
            "capacity": "A", "intermarket_sweep_eligibility": "N", "cross_type": "N",
            "cl_ord_id": "H8FUB8IV", "appendage_length": 6, "appendage": b"\x05\x02LIME".hex(),
            "options": {"firm": "LIME"}}
    assert {k: rec[k] for k in want} == want
    assert set(rec) - set(want) == {"time_ns", "src", "dst", "tcp_seq"}


def test_real_enter_order_table(enter_order):
    r = decode(enter_order, "--format", "table")
    assert r.exit_code == 0, r.output
    (line,) = r.stdout.splitlines()
    assert line.split()[:4] == ["0", "U", "O", "enter_order"]
    for field in ("user_ref_num=113", "side=T", "quantity=225", "symbol=CVLT", "price=630200",
                  "cl_ord_id=H8FUB8IV", "options.firm=LIME"):
        assert field in line.split()


def test_run_orders_out_decode(tmp_path):
    """The order frames `tickwire run` writes decode to the orders it reports."""
    pcap = tmp_path / "orders.pcap"
    r = CliRunner().invoke(app, ["run", "--backend", "emu", "--config", str(STATIC),
                                 "--orders-out", str(pcap), "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    d = decode(pcap, "--strict")
    assert d.exit_code == 0 and d.stderr == "", d.output
    recs = [json.loads(x) for x in d.stdout.splitlines()]
    assert len(recs) == s["orders"] > 20
    assert all(x["message"] == "enter_order" and x["direction"] == "client" for x in recs)
    assert [x["user_ref_num"] for x in recs] == list(range(1, len(recs) + 1))
    assert {x["symbol"] for x in recs} <= {"AAPL", "MSFT", "NVDA", "AMZN"}
    assert all(x["quantity"] == 100 and x["side"] in "BS" for x in recs)
    assert [x["cl_ord_id"] for x in recs] == [ouch.default_cl_ord_id(x["user_ref_num"])
                                             for x in recs]


TCP = dict(src_mac="02:00:00:00:00:01", dst_mac="02:00:00:00:00:02", window=65535)
CLIENT = dict(TCP, src_ip="10.0.0.1", dst_ip="10.0.0.2", src_port=40000, dst_port=8001)
SERVER = dict(TCP, src_ip="10.0.0.2", dst_ip="10.0.0.1", src_port=8001, dst_port=40000)


def _orders(n):
    return [ouch.encode_enter_order(user_ref_num=i + 1, side="B", quantity=100 + i,
                                    symbol="TEST", price=1_000_000 + i, cl_ord_id=f"C{i}")
            for i in range(n)]


def test_stream_across_segments(tmp_path):
    """Packets split across segments, a retransmission and both directions: each packet
    decodes once, in order; the session packets come out with their fields."""
    up = soup.login_request("user", "pw", "", 1) + b"".join(
        soup.unsequenced_data(m) for m in _orders(3))
    down = soup.login_accepted("SESS1", 1) + soup.sequenced_data(ouch.encode_order_accepted(
        timestamp=5, user_ref_num=1, side="B", quantity=100, symbol="TEST", price=1_000_000,
        order_reference_number=77, order_state="L", cl_ord_id="C0")) + soup.server_heartbeat()
    cut = [0, 30, 61, 100, len(up)]                       # cuts inside packets
    seq0, ack0 = 1000, 5000
    frames = [build_tcp_frame(b"", seq=seq0 - 1, ack=0, flags="S", **CLIENT),
              build_tcp_frame(down, seq=ack0, ack=seq0, **SERVER)]
    for a, b in zip(cut, cut[1:]):
        frames.append(build_tcp_frame(up[a:b], seq=seq0 + a, ack=ack0, **CLIENT))
        if a == 30:                                       # the same bytes again
            frames.append(build_tcp_frame(up[a:b], seq=seq0 + a, ack=ack0, **CLIENT))
    pcap = tmp_path / "stream.pcap"
    write_pcap(pcap, frames)
    r = decode(pcap, "--strict")
    assert r.exit_code == 0, r.output
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(x["soup"], x["message"]) for x in recs] == [
        ("A", "login_accepted"), ("S", "order_accepted"), ("H", "server_heartbeat"),
        ("L", "login_request"), ("U", "enter_order"), ("U", "enter_order"),
        ("U", "enter_order")]
    assert recs[0]["session"] == "SESS1" and recs[0]["sequence"] == 1
    assert recs[1]["order_reference_number"] == 77 and recs[1]["direction"] == "server"
    assert recs[3]["username"] == "user"
    assert [x["user_ref_num"] for x in recs[4:]] == [1, 2, 3]
    assert [x["quantity"] for x in recs[4:]] == [100, 101, 102]
    assert "tcp_retransmit" in r.stderr


def test_gap_and_truncation_counted(tmp_path):
    msgs = [soup.unsequenced_data(m) for m in _orders(3)]
    seq = 1
    frames = []
    for i, m in enumerate(msgs):
        if i != 1:                                        # the second packet is lost
            frames.append(build_tcp_frame(m, seq=seq, ack=1, **CLIENT))
        seq += len(m)
    frames.append(build_tcp_frame(msgs[0][:10], seq=seq, ack=1, **CLIENT))  # cut short
    pcap = tmp_path / "gap.pcap"
    write_pcap(pcap, frames)
    r = decode(pcap)
    assert r.exit_code == 0, r.output
    assert [json.loads(x)["user_ref_num"] for x in r.stdout.splitlines()] == [1, 3]
    assert "'tcp_gap': 1" in r.stderr and "'soup_truncated': 1" in r.stderr


def test_malformed_ouch_counted_with_reason(tmp_path):
    bad = soup.unsequenced_data(_orders(1)[0][:20])       # an Enter Order cut at 20 bytes
    pcap = tmp_path / "bad.pcap"
    write_pcap(pcap, [build_tcp_frame(bad, seq=1, ack=1, **CLIENT)])
    r = decode(pcap)
    assert r.exit_code == 0 and r.stdout == ""
    assert "'ouch_malformed': 1" in r.stderr and "truncated" in r.stderr


def test_protocol_choice(tmp_path):
    """A capture with TCP and UDP frames: auto asks which; --protocol ouch counts the UDP
    frames it leaves; ITCH captures still decode as ITCH."""
    mixed = tmp_path / "mixed.pcap"
    write_pcap(mixed, [build_tcp_frame(soup.unsequenced_data(_orders(1)[0]), seq=1, ack=1,
                                       **CLIENT), build_udp_frame(b"\x00" * 20)])
    r = decode(mixed)
    assert r.exit_code == 2 and "--protocol" in r.stderr
    r = decode(mixed, "--protocol", "ouch")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 1
    assert "'not_tcp': 1" in r.stderr
    r = decode(SAMPLE, "--limit", "1")
    assert r.exit_code == 0 and json.loads(r.stdout)["type"] == "S"
    assert decode(SAMPLE, "--protocol", "fix").exit_code == 2
