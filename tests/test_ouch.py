"""OUCH 5.0 and SoupBinTCP against a real capture, round trips and error reporting."""

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from tickwire.host import ouch, soupbintcp as soup

CAPTURE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ouch" / \
    "EnterOrderMessage.pcap"


@pytest.fixture(scope="module")
def tcp_payload() -> bytes:
    import scapy.all as scapy
    if not CAPTURE.exists():
        pytest.skip(f"shared data absent: {CAPTURE}")
    pkts = scapy.rdpcap(str(CAPTURE))
    assert len(pkts) == 1
    p = pkts[0]
    assert p.haslayer(scapy.Dot1Q) and p.haslayer(scapy.TCP)
    return bytes(p[scapy.TCP].payload)


def test_capture_soupbintcp_header(tcp_payload):
    assert tcp_payload[:3] == b"\x00\x36U"
    packets, rest = soup.split_packets(tcp_payload)
    assert rest == b"" and len(packets) == 1
    ptype, payload = packets[0]
    assert ptype == "U" and len(payload) == 0x36 - 1
    assert soup.decode_packet(ptype, payload)["name"] == "unsequenced_data"


def test_capture_enter_order_fields(tcp_payload):
    (ptype, msg), = soup.iter_packets(tcp_payload)
    d = ouch.decode(msg, "client")
    expected = {
        "type": "O", "user_ref_num": 113, "side": "T", "quantity": 225, "symbol": "CVLT",
        "price": 630200, "time_in_force": "0", "display": "Y", "capacity": "A",
        "intermarket_sweep_eligibility": "N", "cross_type": "N", "cl_ord_id": "H8FUB8IV",
        "appendage_length": 6, "appendage": b"\x05\x02LIME", "options": {"firm": "LIME"},
    }
    for name, value in expected.items():
        assert d[name] == value, name
    assert set(d) == set(expected)
    # byte offsets of protocols.md
    spec = ouch.MESSAGES[("client", "O")]
    assert [(f.name, f.offset, f.size) for f in spec.fields][:6] == [
        ("user_ref_num", 1, 4), ("side", 5, 1), ("quantity", 6, 4), ("symbol", 10, 8),
        ("price", 18, 8), ("time_in_force", 26, 1)]
    assert spec.field("cl_ord_id").offset == 31 and spec.length == 47


def test_capture_reencode_exact(tcp_payload):
    (_, msg), = soup.iter_packets(tcp_payload)
    d = ouch.decode(msg, "client")
    assert ouch.encode("O", "client", **d) == msg
    fields = {k: v for k, v in d.items() if k not in ("type", "appendage", "appendage_length")}
    assert ouch.encode_enter_order(**fields) == msg  # from the parsed options
    assert ouch.enter_order(113, "T", 225, "CVLT", 630200, time_in_force="0", capacity="A",
                            cl_ord_id="H8FUB8IV",
                            appendage=ouch.encode_options({"firm": "LIME"})) == msg
    assert soup.unsequenced_data(msg) == tcp_payload


def test_enter_order_contract():
    """docs/architecture.md "Order encoding": 47 bytes, IOC, TW + 12 digits, no appendage."""
    msg = ouch.enter_order(7, "B", 100, "AAPL", 1_912_300)
    assert len(msg) == 47
    d = ouch.decode(msg, "client")
    assert d["cl_ord_id"] == "TW000000000007"
    assert (d["time_in_force"], d["display"], d["capacity"]) == ("3", "Y", "P")
    assert (d["intermarket_sweep_eligibility"], d["cross_type"]) == ("N", "N")
    assert d["appendage_length"] == 0 and msg[-2:] == b"\x00\x00"
    assert soup.unsequenced_data(msg)[:3] == b"\x00\x30U"


SAMPLES = {
    ("client", "O"): dict(user_ref_num=1, side="S", quantity=300, symbol="MSFT",
                          price=4_151_200, time_in_force="3", display="Y", capacity="P",
                          intermarket_sweep_eligibility="N", cross_type="N",
                          cl_ord_id="TW000000000001", options={"min_qty": 100}),
    ("client", "U"): dict(orig_user_ref_num=1, user_ref_num=2, quantity=200, price=4_151_100,
                          time_in_force="0", display="Y", intermarket_sweep_eligibility="N",
                          cl_ord_id="TW000000000002", options={"max_floor": 100,
                                                               "post_only": "Y"}),
    ("client", "X"): dict(user_ref_num=2, quantity=0),
    ("server", "S"): dict(timestamp=34_200_000_000_000, event_code="S"),
    ("server", "A"): dict(timestamp=34_200_000_123_456, user_ref_num=1, side="B", quantity=5,
                          symbol="ZVZZT", price=100_000, time_in_force="3", display="Y",
                          order_reference_number=987654321, capacity="P",
                          intermarket_sweep_eligibility="N", cross_type="N", order_state="L",
                          cl_ord_id="TW000000000001", options={"firm": "TICK"}),
    ("server", "U"): dict(timestamp=1, orig_user_ref_num=1, user_ref_num=2, side="S",
                          quantity=10, symbol="QQQ", price=-5, time_in_force="0",
                          display="N", order_reference_number=2, capacity="A",
                          intermarket_sweep_eligibility="Y", cross_type="O", order_state="D",
                          cl_ord_id="X", options={}),
    ("server", "C"): dict(timestamp=2, user_ref_num=2, quantity=10, reason="I"),
    ("server", "E"): dict(timestamp=3, user_ref_num=1, quantity=5, price=100_000,
                          liquidity_flag="R", match_number=77,
                          options={"reference_price": 99_900, "reference_price_type": "N"}),
    ("server", "J"): dict(timestamp=4, user_ref_num=9, reject_reason=0x2A,
                          cl_ord_id="TW000000000009"),
}
LENGTHS = {("client", "O"): 47, ("client", "U"): 40, ("client", "X"): 9,
           ("server", "S"): 10, ("server", "A"): 64, ("server", "U"): 68,
           ("server", "C"): 18, ("server", "E"): 36, ("server", "J"): 29}


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_round_trip_every_type(key):
    direction, t = key
    spec = ouch.MESSAGES[key]
    assert spec.length == LENGTHS[key]
    msg = ouch.encode(t, direction, **SAMPLES[key])
    d = ouch.decode(msg, direction)
    for name, value in SAMPLES[key].items():
        assert d[name] == value, name
    assert ouch.encode(t, direction, **d) == msg
    # the named encoder gives the same bytes
    assert getattr(ouch, f"encode_{spec.name}")(**SAMPLES[key]) == msg
    assert soup.decode_packet(*soup.split_packets(soup.sequenced_data(msg))[0][0])[
        "message"] == msg


@settings(max_examples=60, deadline=None)
@given(urn=st.integers(0, 2**32 - 1), qty=st.integers(0, 2**32 - 1),
       price=st.integers(-2**63, 2**63 - 1), side=st.sampled_from("BSTE"),
       sym=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ.", min_size=1, max_size=8),
       firm=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=4))
def test_enter_order_property(urn, qty, price, side, sym, firm):
    urn %= 10**12
    msg = ouch.enter_order(urn, side, qty, sym, price,
                           appendage=ouch.encode_options({"firm": firm}))
    d = ouch.decode(msg, "client")
    assert (d["user_ref_num"], d["quantity"], d["price"], d["side"], d["symbol"]) == \
        (urn, qty, price, side, sym)
    assert d["options"] == {"firm": firm}
    assert ouch.encode("O", "client", **d) == msg


def test_errors_name_what_and_where():
    msg = ouch.enter_order(1, "B", 1, "A", 1)
    with pytest.raises(ouch.OuchError, match=r"'O' \(enter_order\) truncated.*cl_ord_id.*31"):
        ouch.decode(msg[:35], "client")
    with pytest.raises(ValueError, match=r"unknown OUCH client message type 0x51"):
        ouch.decode(b"Q" + msg[1:], "client")
    with pytest.raises(ouch.OuchError, match=r"appendage length 6 at offset 45"):
        ouch.decode(msg[:-2] + b"\x00\x06\x05\x02LI", "client")
    with pytest.raises(ouch.OuchError, match=r"appendage offset 0: optional field of length 9"):
        ouch.decode(msg[:-2] + b"\x00\x02\x09\x02", "client")
    with pytest.raises(ouch.OuchError, match=r"'X' \(cancel_order\): 10 bytes, spec length is 9"):
        ouch.decode(ouch.encode_cancel_order(user_ref_num=1) + b"\x00", "client")
    with pytest.raises(ouch.OuchError, match=r"'S' \(system_event\) truncated.*event_code"):
        ouch.decode(ouch.encode_system_event(event_code="S")[:9], "server")
    with pytest.raises(ouch.OuchError, match=r"quantity=-1 does not fit"):
        ouch.enter_order(1, "B", -1, "A", 1)
    with pytest.raises(ouch.OuchError, match=r"symbol=.* longer than 8"):
        ouch.enter_order(1, "B", 1, "TOOLONGSYM", 1)
    with pytest.raises(ouch.OuchError, match=r"has no field"):
        ouch.encode("X", "client", user_ref_num=1, price=3)
    with pytest.raises(ouch.OuchError, match=r"direction"):
        ouch.decode(msg, "inbound")
    with pytest.raises(ouch.OuchError, match=r"empty"):
        ouch.decode(b"", "server")


def test_soupbintcp_framing_and_partial_tail():
    order = ouch.enter_order(5, "B", 10, "IBM", 1_500_000)
    stream = (soup.login_request("TWUSER", "secret", "", 1) + soup.client_heartbeat()
              + soup.unsequenced_data(order) + soup.logout_request())
    packets = list(soup.iter_packets(stream))
    assert [t for t, _ in packets] == ["L", "R", "U", "O"]
    login = soup.decode_packet(*packets[0])
    assert (login["username"], login["password"], login["session"], login["sequence"]) == \
        ("TWUSER", "secret", "", 1)
    assert packets[0][1][-20:] == b" " * 19 + b"1"  # numeric: right-justified
    assert soup.frame("H", b"") == b"\x00\x01H"
    # any cut leaves a partial tail that the reader keeps until the rest arrives
    for cut in range(len(stream) + 1):
        whole, rest = soup.split_packets(stream[:cut])
        assert len(list(soup.iter_packets(stream[:cut]))) == len(whole)
        assert b"".join(soup.frame(t, p) for t, p in whole) + rest == stream[:cut]
        reader = soup.PacketReader()
        got = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
        assert got == packets and reader.pending == b""


def test_soupbintcp_server_packets():
    acc = soup.decode_packet(*soup.split_packets(soup.login_accepted("TICKWIRE01", 42))[0][0])
    assert (acc["session"], acc["sequence"]) == ("TICKWIRE01", 42)
    rej = soup.split_packets(soup.login_rejected("A"))[0][0]
    assert soup.decode_packet(*rej)["reason"] == "A"
    assert soup.split_packets(soup.server_heartbeat() + soup.end_of_session())[0] == \
        [("H", b""), ("Z", b"")]
    assert soup.decode_packet("+", b"hello")["text"] == "hello"
    with pytest.raises(soup.SoupBinTCPError, match=r"unknown SoupBinTCP packet type 'Q'"):
        soup.decode_packet("Q", b"")
    with pytest.raises(soup.SoupBinTCPError, match=r"login_accepted payload is 3 bytes"):
        soup.decode_packet("A", b"abc")
    with pytest.raises(soup.SoupBinTCPError, match=r"stream offset 3: .*length 0"):
        soup.split_packets(soup.frame("R") + b"\x00\x00R")
    with pytest.raises(soup.SoupBinTCPError, match=r"reject reason"):
        soup.login_rejected("X")
