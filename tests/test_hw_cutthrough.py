"""CutThrough (hw/trigger/cutthrough.py) on its own: which early views become a FastAdd strobe
(the whole pipeline: tests/test_rtl_cut_through.py)."""

import pytest
from amaranth.sim import Simulator

from tickwire.hw.trigger.cutthrough import CutThrough
from tickwire.hw.trigger.layouts import BOOK_ASK, BOOK_BID


def early(typ="A", *, complete=1, active=1, side="S", price=1000, locate=7, seq=5,
          fields=1):
    return {"active": active, "start": 0, "complete": complete,
            "msg": {"type": ord(typ), "locate": locate, "timestamp": 123, "sequence": seq,
                    "ref": 1, "new_ref": 0, "side": ord(side), "shares": 100, "price": price,
                    "stock": 0, "state": 0},
            "fields": {k: fields for k in ("type", "sequence", "locate", "timestamp", "ref",
                                           "new_ref", "side", "shares", "price", "stock",
                                           "state")}}


def run(steps, *, symbols=8):
    """``steps``: dicts of input values held for one cycle each (``early`` a dict as above,
    ``map``: (valid, slot) of the book's locate map, for every address). Returns per cycle
    (fast.valid, payload dict, quiet)."""
    dut = CutThrough(symbols=symbols, slot_bits=3)
    out = []

    async def tb(ctx):
        for st in steps:
            ctx.set(dut.early, st.get("early", early(active=0, complete=0, locate=0)))
            ctx.set(dut.held, st.get("held", 0))
            ctx.set(dut.ev_pending, st.get("ev_pending", 0))
            ev = st.get("ev")      # (slot, evaluate)
            ctx.set(dut.ev_take, ev is not None)
            ctx.set(dut.ev_slot, ev[0] if ev else 0)
            ctx.set(dut.ev_evaluate, ev[1] if ev else 0)
            ctx.set(dut.clear, st.get("clear", 0))
            valid, slot = st.get("map", (1, 3))
            ctx.set(dut.loc_valid, valid)
            ctx.set(dut.loc_slot, slot)
            await ctx.delay(1e-9)
            p = ctx.get(dut.fast.payload)
            out.append((ctx.get(dut.fast.valid),
                        {"slot": p.slot, "side": p.side, "price": p.price,
                         "sequence": p.sequence, "timestamp": p.timestamp,
                         "stamp_valid": p.stamp_valid},
                        ctx.get(dut.quiet)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return out


def fresh(slot=3):
    return {"ev": (slot, 1)}


def test_complete_add_of_a_mapped_fresh_slot_strobes():
    e = early("A", side="S", price=4321, seq=77)
    out = run([fresh(), {"early": e}, {"early": e}, {"early": e}])
    assert out[1][0] == 0            # the map's data: for the previous cycle's address
    assert out[2][0] == 0            # ... registered once more in CutThrough
    assert out[3][0] == 1 and out[3][2] == 1
    assert out[3][1] == {"slot": 3, "side": BOOK_ASK, "price": 4321, "sequence": 77,
                         "timestamp": 123, "stamp_valid": 0}
    f = {"early": early("F", side="B")}
    out = run([fresh(), f, f, f])
    assert out[3][0] == 1 and out[3][1]["side"] == BOOK_BID


@pytest.mark.parametrize("why", ["not_complete", "inactive", "type_U", "type_E",
                                 "unmapped", "locate_changed", "no_price", "not_fresh",
                                 "h_event_only", "h_event_after", "cleared"])
def test_no_strobe(why):
    kw = {"not_complete": dict(complete=0),
          "inactive": dict(active=0), "type_U": dict(typ="U"), "type_E": dict(typ="E"),
          "no_price": dict(fields=0)}.get(why, {})
    e = early(**kw)
    steps = [fresh(), {"early": e}, {"early": e}, {"early": e}]
    if why == "unmapped":
        steps[2]["map"] = (0, 3)
    if why == "locate_changed":
        steps[1]["early"] = early(locate=8)
    if why == "not_fresh":
        steps[0] = fresh(slot=2)
    if why == "h_event_only":
        steps[0] = {"ev": (3, 0)}
    if why == "h_event_after":
        steps.insert(1, {"ev": (3, 0)})
    if why == "cleared":
        steps.insert(1, {"clear": 1})
    out = run(steps)
    assert out[-1][0] == 0


def test_quiet():
    out = run([{}, {"held": 1}, {"ev_pending": 1}, {"held": 1, "ev_pending": 1}])
    assert [q for _, _, q in out] == [1, 0, 0, 0]
