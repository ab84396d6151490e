"""A feed frame whose FCS turns out bad after cut-through, on the Verilated appliance
(docs/architecture.md "Bad FCS after cut-through"): the book and the orders are taken as the
emulator takes them; an order frame fired by a message of the bad frame that has not left
whole is aborted (``user`` on its last beat, the MAC ends it with a bad FCS) and gives its
TCP sequence space back, one that had left whole is counted late, and no other order frame
is touched."""

import copy

import pytest

from tickwire.backends import rtl
from tickwire.host.capture import Frames
from tickwire.host.emu import feed
from tickwire.host.framing import FcsError, after_aborts, build_tcp_frame, sent_as

from emu_helpers import emulate_orders
from test_rtl_orders import check_frames, sample_frames

pytestmark = pytest.mark.rtl

#: Cycles from a bad frame's last beat at the port to the last beat of an order frame that
#: can still be aborted (docs/architecture.md "Bad FCS after cut-through").
ABORT_MARGIN = 5      # the egress has the range 4 cycles after the frame ends


@pytest.fixture(scope="module")
def built():
    from tickwire.sim import fastsim
    return fastsim.build(rtl.harness())


def static_config(source):
    """``tickwire latency``'s static triggers, as book or wire triggers."""
    from tickwire.host.config import load_config
    from tickwire.host.latency_cli import DEFAULT_CONFIG
    cfg = rtl.rtl_config(load_config(DEFAULT_CONFIG))
    cfg.strategy.source = source
    return cfg


def frame_of(frames):
    """Sequence number -> index of the frame that delivered it."""
    idx = feed.index_frames(Frames.from_list(frames))
    return dict(zip(idx.sequences.tolist(), idx.frame_index.tolist()))


@pytest.mark.parametrize("source", ["wire", "book"])
def test_orders_of_a_bad_frame_are_aborted(built, source):
    frames = sample_frames()
    cfg = static_config(source)
    emu = emulate_orders(frames, copy.deepcopy(cfg))
    where = frame_of(frames)
    fired = sorted({where[int(s)] for s in emu.orders.sequence})
    bad = set(fired[::2])                       # every other frame that fired an order
    flagged = [FcsError(f) if i in bad else f for i, f in enumerate(frames)]
    got, c = rtl.run_orders(flagged, copy.deepcopy(cfg))

    from_bad = [where[int(s)] in bad for s in emu.orders.sequence]
    aborted = [isinstance(f, FcsError) for f in got]
    assert len(got) == len(emu.orders.frames)
    assert not any(a and not b for a, b in zip(aborted, from_bad)), "a good order aborted"
    want = after_aborts(emu.orders.frames, aborted)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a == b, f"frame {i}:\n rtl {a.hex()}\n emu {b.hex()}"
    check_frames([bytes(f) for f in got])
    assert c["fcs_errors"] == len(bad) and c["a_fcs_errors"] == len(bad)
    assert c["fcs_aborts"] == sum(aborted) > 0
    assert c["fcs_late"] == sum(b and not a for a, b in zip(aborted, from_bad))
    assert c["frames_sent"] == len(got)
    # aborted or late is a matter of time alone: an order frame is aborted when its last beat
    # comes at least ABORT_MARGIN cycles after its message's frame's last beat, else it has
    # left whole (the harness takes a beat per cycle and the order output is always ready)
    margins = {True: [], False: []}
    for k, (a, b) in enumerate(zip(aborted, from_bad)):
        if b:
            f = where[int(emu.orders.sequence[k])]
            frame_end = c["frame_cycles"][f] + (len(frames[f]) + 7) // 8 - 1
            margins[a].append(c["first_cycles"][k] + 12 - frame_end)
    assert min(margins[True]) >= ABORT_MARGIN
    assert not margins[False] or max(margins[False]) < ABORT_MARGIN
    if source == "wire":
        # an add near its packet's end is still leaving (the one-add packets'), one early
        # in a long packet has left
        assert margins[False]


def test_after_aborts_moves_later_sequence_numbers_back():
    kw = dict(src_mac="02:00:00:00:00:01", dst_mac="02:00:00:00:00:02", src_ip="10.0.0.1",
              dst_ip="10.0.0.2", src_port=40000, dst_port=15000, ack=7, window=512)
    frames = [build_tcp_frame(bytes([i]) * 50, seq=1000 + 50 * i, ip_id=i, **kw)
              for i in range(4)]
    out = after_aborts(frames, [False, True, False, True])
    assert [type(f) for f in out] == [bytes, FcsError, bytes, FcsError]
    assert out[:2] == frames[:2]
    # the third takes the aborted second's sequence number, the fourth the third's
    assert out[2] == build_tcp_frame(bytes([2]) * 50, seq=1050, ip_id=2, **kw)
    assert out[3] == build_tcp_frame(bytes([3]) * 50, seq=1100, ip_id=3, **kw)
    assert sent_as(out, frames) and sent_as(frames, frames)
    assert not sent_as(out[:3], frames[:3] + [frames[2]]) and not sent_as(out[:3], frames)
    assert not sent_as([bytes(f) for f in out], frames)    # the aborts must be marked
    with pytest.raises(ValueError, match="frame 0: not a TCP frame"):
        after_aborts([b"\0" * 60], [True])


@pytest.mark.parametrize("on_a", [True, False])
def test_bad_copies_on_both_lines(built, on_a):
    """The capture on both lines, level (40 idle cycles after each frame), the frames that
    fire orders flagged bad on line B, and on line A too or not. Line A delivers every packet
    (B's are its duplicates); the range a bad copy announces is the packet's either way, so the
    orders aborted are the same; when both lines flag a frame in the same cycle, line B's range
    follows line A's a cycle later."""
    frames = sample_frames()
    cfg = static_config("wire")
    emu = emulate_orders(frames, copy.deepcopy(cfg))
    where = frame_of(frames)
    bad = {where[int(s)] for s in emu.orders.sequence}
    flag = [FcsError(f) if i in bad else f for i, f in enumerate(frames)]
    gaps = [40] * len(frames)
    got, c = rtl.run_orders(flag if on_a else frames, copy.deepcopy(cfg), gaps_a=gaps,
                            line_b=flag, gaps_b=gaps)
    aborted = [isinstance(f, FcsError) for f in got]
    assert sent_as(got, emu.orders.frames)
    assert c["fcs_aborts"] == sum(aborted) > 0 and c["fcs_aborts"] + c["fcs_late"] == len(got)
    assert c["b_fcs_errors"] == len(bad) and c["a_fcs_errors"] == (len(bad) if on_a else 0)
    assert c["fcs_errors"] == c["a_fcs_errors"] + c["b_fcs_errors"]
    if on_a:
        alone, _ = rtl.run_orders(flag, copy.deepcopy(cfg), gaps_a=gaps)
        assert [isinstance(f, FcsError) for f in alone] == aborted


@pytest.mark.parametrize("source", ["book", "wire"])
def test_impaired_feed_with_bad_frames(built, source):
    """The impaired feed (frames cut inside a message or after it, duplicates, stale-session
    packets, gaps, a session change; random idle gaps) with a random fifth of its frames
    flagged bad: every feed, book and risk counter is the emulator's, and every order frame is
    the emulator's or aborted with its sequence bytes taken back."""
    import random
    from test_rtl_cut_through import impaired_case
    from test_rtl_orders import CHECKED
    frames, gaps, cfg, writes = impaired_case(51)
    cfg = copy.deepcopy(cfg)
    cfg.strategy.source = source
    rnd = random.Random(7)
    flagged = [FcsError(f) if rnd.random() < 0.2 else f for f in frames]
    got, c = rtl.run_orders(flagged, copy.deepcopy(cfg), writes, gaps_a=gaps)
    emu = emulate_orders(flagged, copy.deepcopy(cfg), writes)
    assert sent_as(got, emu.orders.frames) and len(got) > 20
    for k in CHECKED:
        assert c[k] == emu.counters[k], f"{k}: rtl {c[k]} emulator {emu.counters[k]}"
    aborted = sum(isinstance(f, FcsError) for f in got)
    assert c["fcs_errors"] == sum(isinstance(f, FcsError) for f in flagged) > 0
    assert c["fcs_aborts"] == aborted > 0 and c["frames_sent"] == len(got)


def test_a_range_held_at_a_session_change_is_let_go(built):
    """A session's last packet fails its FCS; the next session numbers its messages from 1
    again. The range is let go once the engine takes the new session's first message: the
    orders the new session fires at the old range's numbers leave, as the emulator's do."""
    import random
    from test_rtl_cut_through import BUY, NAMES, SELL, SESSION, Feed, OTHER
    from tickwire.host import itch
    from tickwire.sim.trigger_risk import model
    rnd = random.Random(5)
    fd = Feed(rnd)
    for loc in (1, 2):
        fd.packet([itch.encode("R", stock_locate=loc, timestamp=fd.ts, stock=NAMES[loc - 1])])

    def rounds(n, session):
        for _ in range(n):
            loc, side = rnd.choice((1, 2)), rnd.choice("BS")
            msgs = [fd.msg_delete() for _ in range(len(fd.live))]
            fd.packet(msgs + [fd.msg_add(loc, cross=False, side=side),      # re-arms
                              fd.msg_add(loc, cross=True, side=side)], session)

    rounds(30, SESSION)
    end = len(fd.frames)
    bad_lo, bad_msgs = fd.sent[-1]
    fd.seq, fd.sent = 1, []
    rounds(60, OTHER)
    frames = [FcsError(f) if i == end - 1 else f for i, f in enumerate(fd.frames)]
    cfg = model.random_config(random.Random(5), NAMES, BUY, permissive=True)
    cfg.strategy.source = "wire"
    writes = [dict(msg=0, slot=s, buy_price=BUY, sell_price=SELL, quantity=10, enable_buy=1,
                   enable_sell=1, rearm=1, ref_price=-1) for s in range(2)]
    emu = emulate_orders(frames, copy.deepcopy(cfg), writes)
    first = emulate_orders(frames[:end], copy.deepcopy(cfg), writes)
    seqs = emu.orders.sequence.tolist()
    in_range = [bad_lo <= s < bad_lo + len(bad_msgs) for s in seqs]
    n_first = len(first.orders.frames)
    # the old session's bad packet fired an order, and the new one fires at those numbers
    assert any(in_range[:n_first]) and any(in_range[n_first:])
    got, c = rtl.run_orders(frames, copy.deepcopy(cfg), writes, gaps_a=[20] * len(frames))
    assert sent_as(got, emu.orders.frames)
    aborted = [isinstance(f, FcsError) for f in got]
    assert not any(aborted[n_first:]), "an order of the new session aborted"
    assert c["fcs_aborts"] + c["fcs_late"] == sum(in_range[:n_first])
