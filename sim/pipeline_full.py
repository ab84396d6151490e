"""The full tick-to-trade RTL back-end: feed frames in, order frames out.

Frames are streamed on line A through :class:`tickwire.hw.pipeline.TickToTrade` by the
generated C++ harness of :mod:`tickwire.sim.fastsim`. The host's set-up is applied as
``pulses`` (one write per cycle right after reset, before the first beat):

1. per slot: the risk limits (``limits.w``: enable, max_long, max_short) and, for the
   configured symbols, the symbol write (``symbols.w``: book symbol table + egress names);
2. ``orders.clear`` of the order path (loads user_ref := first_user_ref and the session's
   seq/ip_id, fills the throttle buckets), then idle cycles while it sweeps (``busy``);
3. the trigger writes (``triggers.w``, and ``refs.w`` where ``ref_price >= 0``).

Ports are named as Verilog flattens the pipeline's groups (``orders__params``,
``triggers__w__row``...); the observed status and counters are returned under their member
names (``lat_min``, ``orders_sent``...).

Risk parameters, session template and OUCH capacity are static ports. The emulator run that
matches is one whose trigger writes are all before message 0 (``write_trigger(0, ...)``).
"""

from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..host.config import Config
from ..host.emu.pipeline import WRITE_COLUMNS
from ..host.emu.core import pack_symbol
from ..host.framing import ip_to_int, mac_to_bytes
from . import fastsim
from .pipeline_rtl import AB_WINDOW, BUILD_DEPTH, FRAME_GAP, beats, frames_of, rtl_config

__all__ = ["harness", "run_rtl_orders", "emulate_orders", "dut_statics",
           "setup_pulses", "gather_frames", "wire_latencies", "field_latencies", "SYMBOLS"]

#: slots of the built gateware (as rtl_config)
SYMBOLS = 64
#: idle cycles after the order path's clear (its sweeps take max(symbols, 32, hist bins))
CLEAR_WAIT = 100

_WRITE_KEYS = WRITE_COLUMNS[1:]  # the emulator's host-write log, less the message index


def _observed():
    from ..hw.pipeline import COUNTERS
    return ["counters__" + k for k in list(COUNTERS) + ["overflow"]] + [
        "status__" + k for k in ("lat_count", "lat_sum", "lat_min", "lat_max", "next_seq",
                                 "next_ip_id", "user_ref", "tripped")] + ["fast_offered"]


@lru_cache(maxsize=2)
def harness(depth: int = BUILD_DEPTH, symbols: int = SYMBOLS) -> fastsim.Harness:
    from amaranth.back import verilog
    from amaranth.lib import data

    from ..hw.egress.layouts import SessionTemplate
    from ..hw.pipeline import OrderBeat, SymbolRow, TickToTrade
    from ..hw.report import component_ports
    from ..hw.risk.layouts import RiskParams, SlotLimits
    from ..hw.trigger.layouts import TriggerRow

    def to_verilog():
        top = TickToTrade(depth=depth, symbols=symbols)
        return verilog.convert(top, name="tick2trade", emit_src=False,
                               ports=component_ports(top))

    def w(shape):
        return data.Layout.cast(shape).size

    rx = [("data", 64), ("keep", 8), ("first", 1), ("last", 1)]
    slot_bits = max(1, (symbols - 1).bit_length())
    return fastsim.Harness(
        "tick2trade", to_verilog,
        inputs=[fastsim.StreamPort("rx_a", 74, has_ready=False, fields=rx),
                fastsim.StreamPort("rx_b", 74, has_ready=False, fields=rx)],
        outputs=[fastsim.StreamPort("o", w(OrderBeat))],
        drains=["updates"],
        statics={"feed__check_ip_checksum": 1, "feed__track_sequence": 1, "auto": 1,
                 "feed__ab_window": 16, "orders__enable": 1, "orders__fast_enable": 1,
                 "orders__lat_enable": 1, "orders__lat_bin_shift": 5, "orders__capacity": 8,
                 "orders__params": w(RiskParams), "orders__tmpl": w(SessionTemplate)},
        pulses=[("symbols__w__we", 1), ("symbols__w__index", slot_bits),
                ("symbols__w__row", w(SymbolRow)),
                ("limits__w__we", 1), ("limits__w__index", 8), ("limits__w__row", w(SlotLimits)),
                ("orders__clear", 1),
                ("triggers__w__we", 1), ("triggers__w__index", 8),
                ("triggers__w__row", w(TriggerRow)),
                ("refs__w__we", 1), ("refs__w__index", 8), ("refs__w__row", 32)],
        observe=_observed(),
        key=fastsim.source_key("tick2trade", depth, symbols))


def _pack(shape, d: dict) -> int:
    from amaranth.lib import data
    return data.Layout.cast(shape).const(d).as_value().value


def dut_statics(cfg: Config, fast: bool = True) -> dict:
    """Static ports for a configuration: risk parameters, session template, capacity;
    ``fast``: the cut-through trigger path (``fast_enable``, on by default)."""
    from ..hw.egress.layouts import SessionTemplate
    from ..hw.risk.layouts import RiskParams
    r, s = cfg.risk, cfg.session
    params = {
        "kill": int(r.kill), "kill_after_rejects": r.kill_after_rejects,
        "max_order_qty": r.max_order_qty, "max_notional": r.max_notional,
        "collar_bps": r.collar_bps, "max_gross": r.max_gross,
        "symbol_burst": r.symbol_burst, "symbol_refill_ns": r.symbol_refill_ns,
        "global_burst": r.global_burst, "global_refill_ns": r.global_refill_ns,
        "dup_window_ns": r.dup_window_ns, "first_user_ref": cfg.orders.first_user_ref,
    }
    from ..hw.risk.layouts import PARAM_LIMITS
    for k, v in params.items():
        if not 0 <= int(v) <= PARAM_LIMITS[k]:
            raise ValueError(f"risk parameter {k}={v}: the gateware's register holds "
                             f"0..{PARAM_LIMITS[k]}")
    tmpl = {
        "dst_mac": int.from_bytes(mac_to_bytes(s.dst_mac), "big"),
        "src_mac": int.from_bytes(mac_to_bytes(s.src_mac), "big"),
        "vlan_en": int(s.vlan >= 0), "vlan": max(s.vlan, 0),
        "src_ip": ip_to_int(s.src_ip), "dst_ip": ip_to_int(s.dst_ip),
        "src_port": s.src_port, "dst_port": s.dst_port, "seq": s.seq & 0xFFFF_FFFF,
        "ack": s.ack & 0xFFFF_FFFF, "window": s.window, "ttl": s.ttl,
        "ip_id": s.ip_id & 0xFFFF,
    }
    return {"feed__check_ip_checksum": 1, "feed__track_sequence": 1, "auto": 0,
            "feed__ab_window": AB_WINDOW, "orders__enable": 1, "orders__fast_enable": int(fast),
            "orders__lat_enable": 1, "orders__lat_bin_shift": 0,
            "orders__capacity": ord(cfg.orders.capacity),
            "orders__params": _pack(RiskParams, params),
            "orders__tmpl": _pack(SessionTemplate, tmpl)}


def slot_limits(cfg: Config, limits: dict | None = None, symbols: int = SYMBOLS) -> list:
    """(enable, max_long, max_short) per slot, as the emulator's ``risk_slot`` after its
    first poll (disabled names) and the per-slot overrides ``limits`` {slot: (long, short)}."""
    r = cfg.risk
    names = list(cfg.symbols)
    out = []
    for s in range(symbols):
        en = int(not (s < len(names) and names[s] in r.disabled))
        ml, ms = (limits or {}).get(s, (r.max_long, r.max_short))
        out.append((en, int(ml), int(ms)))
    return out


def setup_pulses(cfg: Config, writes: list[dict], limits: dict | None = None,
                 symbols: int = SYMBOLS) -> list[dict]:
    """The host writes (one record per cycle): limits + symbols, clear, trigger writes."""
    from ..hw.pipeline import SymbolRow
    from ..hw.risk.layouts import SlotLimits
    from ..hw.trigger.layouts import TriggerRow
    names = list(cfg.symbols)
    if len(names) > symbols:
        raise ValueError(f"{len(names)} symbols: the gateware has {symbols} slots")
    out = []
    for s, (en, ml, ms) in enumerate(slot_limits(cfg, limits, symbols)):
        rec = {"limits__w__we": 1, "limits__w__index": s, "limits__w__row": _pack(
            SlotLimits, {"enable": en, "max_long": ml, "max_short": ms})}
        if s < len(names):
            rec.update(symbols__w__we=1, symbols__w__index=s, symbols__w__row=_pack(
                SymbolRow, {"name": pack_symbol(names[s]), "valid": 1}))
        out.append(rec)
    out += [{}] * 4 + [{"orders__clear": 1}] + [{}] * CLEAR_WAIT
    for wr in writes:
        if wr.get("msg", 0) != 0:
            raise ValueError("run_rtl_orders applies trigger writes before the stream only "
                             f"(msg 0), not {wr}")
        row = {k: int(wr[k]) for k in ("buy_price", "sell_price", "quantity", "enable_buy",
                                       "enable_sell", "rearm")}
        rec = {"triggers__w__we": 1, "triggers__w__index": int(wr["slot"]),
               "triggers__w__row": _pack(TriggerRow, row)}
        if int(wr["ref_price"]) >= 0:
            rec.update(refs__w__we=1, refs__w__index=int(wr["slot"]),
                       refs__w__row=int(wr["ref_price"]))
        out.append(rec)
    return out + [{}] * 4


def gather_frames(out: np.ndarray) -> tuple[list[bytes], list[int], list[int]]:
    """Frames of the ``o`` records (data, keep, first, last); (frames, first cycles, last
    cycles). Raises on a malformed beat sequence."""
    frames, firsts, lasts = [], [], []
    cur = bytearray()
    raw = np.ascontiguousarray(out["payload"])
    for cyc, rec in zip(out["cycle"].tolist(), raw):
        v = int.from_bytes(bytes(rec), "little")
        d, keep, first, last = v & ((1 << 64) - 1), (v >> 64) & 0xFF, (v >> 72) & 1, (v >> 73) & 1
        n = bin(keep).count("1")
        if keep != (1 << n) - 1 or (not last and n != 8):
            raise AssertionError(f"cycle {cyc}: keep {keep:#x}")
        if bool(first) != (len(cur) == 0):
            raise AssertionError(f"cycle {cyc}: first flag out of place")
        if first:
            firsts.append(cyc)
        cur += d.to_bytes(8, "little")[:n]
        if last:
            frames.append(bytes(cur))
            lasts.append(cyc)
            cur = bytearray()
    if cur:
        raise AssertionError("the last frame has no last beat")
    return frames, firsts, lasts


def _mold_ranges(frames: list[bytes]):
    """(sequence of the first message, count) of each MoldUDP64 frame (untagged IPv4/UDP
    with a 20-byte IP header; others: (0, 0))."""
    out = []
    for f in frames:
        if len(f) >= 62 and f[12:14] == b"\x08\x00" and f[14] == 0x45 and f[23] == 17:
            out.append((int.from_bytes(f[52:60], "big"), int.from_bytes(f[60:62], "big")))
        else:
            out.append((0, 0))
    return out


def wire_latencies(frames: list[bytes], order_seq, firsts: list[int], gap: int = FRAME_GAP
                   ) -> list[int]:
    """Cycles from the last beat of the feed frame that carried each order's triggering
    message (first arrival on line A) to the order frame's first beat on ``o``."""
    last_beat, cyc = [], 0
    for f in frames:
        cyc += gap
        cyc += (len(f) + 7) // 8
        last_beat.append(cyc - 1)
    ranges = _mold_ranges(frames)
    out = []
    for seq, fc in zip(np.asarray(order_seq).tolist(), firsts):
        k = next((i for i, (a, n) in enumerate(ranges) if a <= seq < a + n), None)
        out.append(-1 if k is None else fc - last_beat[k])
    return out


def _field_end(t: int, length: int) -> int:
    """Offset of the last byte of the field that can fire a trigger, within its message (an
    add's or replace's price; other messages: their last byte), as ``tickwire latency``."""
    from ..host import itch
    if chr(t) in "AFU":
        f = itch.MESSAGES[chr(t)].field("price")
        return f.offset + f.size - 1
    return length - 1


def field_latencies(frames: list[bytes], order_seq, firsts: list[int], gap: int = FRAME_GAP,
                    gaps: list[int] | None = None) -> list[int]:
    """Cycles from the beat that carried the last byte of each order's triggering field (see
    ``_field_end``; first complete copy on line A) to the order frame's first beat on ``o``
    (-1: message not found). Frames: untagged IPv4 (IHL 5) / UDP / MoldUDP64."""
    where, cyc = {}, 0
    for k, f in enumerate(frames):
        cyc += gaps[k] if gaps is not None else gap
        first_beat = cyc
        cyc += (len(f) + 7) // 8
        if not (len(f) >= 62 and f[12:14] == b"\x08\x00" and f[14] == 0x45 and f[23] == 17):
            continue
        if len(f) < 14 + int.from_bytes(f[16:18], "big"):
            continue                       # truncated (ip_length): not the delivering copy
        end = 34 + int.from_bytes(f[38:40], "big")
        seq, n, off = int.from_bytes(f[52:60], "big"), int.from_bytes(f[60:62], "big"), 62
        for i in range(n if n != 0xFFFF else 0):
            if off + 2 > end:
                break
            ln = int.from_bytes(f[off:off + 2], "big")
            if ln == 0 or off + 2 + ln > end:
                break
            if seq + i not in where:
                byte = off + 2 + _field_end(f[off + 2], ln)
                where[seq + i] = first_beat + byte // 8
            off += 2 + ln
    return [fc - where[s] if s in where else -1
            for s, fc in zip(np.asarray(order_seq).tolist(), firsts)]


def run_rtl_orders(frames: list[bytes], config: Config, writes: list[dict], *,
                   limits: dict | None = None, random_ready: bool = False,
                   gap: int = FRAME_GAP, fast: bool = True, line_b: list[bytes] | None = None,
                   gaps_a: list[int] | None = None, gaps_b: list[int] | None = None,
                   ab_window: int = AB_WINDOW):
    """Stream ``frames`` on line A through TickToTrade; returns (order frames, counters).
    ``line_b``: frames for line B; ``gaps_a``/``gaps_b``: idle cycles before each frame of
    a line (default ``gap`` each); ``ab_window``: the tracker's A/B window in cycles.

    ``config``: symbols (explicit; they name the slots of book and egress), risk, orders,
    session (the gateware's capacities are ``rtl_config``'s). ``writes``: trigger writes as
    dicts of the emulator's ``write_trigger`` arguments (``msg`` 0 only). ``limits``: per-slot
    (max_long, max_short) overrides. ``fast``: the cut-through trigger path on
    (``fast_enable``; the order frames are the same either way). The counters are the
    observed ports plus ``cycles``, ``sim_seconds``, ``first_cycles`` (of each order frame)
    and ``lat_*`` (the egress's latency histogram summary: book input, or the cut-through
    strobe, -> first order byte, in cycles)."""
    if not config.symbols:
        raise ValueError("the RTL order path needs explicit symbols (config.symbols): they "
                         "name the slots of the book and of the egress")
    h = harness()
    statics = dict(dut_statics(config, fast), feed__ab_window=ab_window)
    pulses = setup_pulses(config, writes, limits)
    fastsim.build(h)   # cached; a (re)build is not part of the simulation time
    t0 = time.perf_counter()
    outs, cycles = fastsim.run(h, [beats(frames, gap, gaps_a),
                                   beats(line_b or [], gap, gaps_b)],
                               statics, pulses=pulses, idle_cycles=512,
                               random_ready=random_ready)
    secs = time.perf_counter() - t0
    counters, o = {k.split("__")[-1]: v for k, v in outs[0].items()}, outs[1]
    got, firsts, _ = gather_frames(o)
    counters = dict(counters, cycles=cycles, sim_seconds=secs, first_cycles=firsts)
    return got, counters


def emulate_orders(frames: list[bytes], config: Config, writes: list[dict], *,
                   limits: dict | None = None):
    """The emulator on the same frames, configuration and writes (all before message 0)."""
    from ..host.capture import Frames
    from ..host.emu import feed
    from ..host.emu.pipeline import Emulator
    data = np.frombuffer(b"".join(frames), np.uint8).copy()
    lens = np.array([len(f) for f in frames], np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    idx = feed.index_frames(Frames(data, offs, lens, np.arange(len(frames), dtype=np.int64), 1))
    cfg = rtl_config(config)
    cfg.strategy.kind = "none"
    emu = Emulator(cfg, 0)
    for s, (ml, ms) in (limits or {}).items():
        emu.state.risk_slot[s, 2] = ml
        emu.state.risk_slot[s, 3] = ms
    for wr in writes:
        emu.write_trigger(**{"msg": 0, **{k: wr[k] for k in _WRITE_KEYS}})
    return emu.run(idx.data, idx.offsets, idx.sequences, idx.counters)


def startup_writes(cfg: Config) -> list[dict]:
    """The trigger writes the configured strategy makes before message 0 (its first poll),
    as ``Emulator.write_trigger`` keyword arguments: what the RTL back-end can apply."""
    from ..host.emu.pipeline import Emulator
    emu = Emulator(cfg, 0)
    emu._poll(0)
    return [dict(zip(WRITE_COLUMNS, (int(x) for x in w))) for w in emu.writes if w[0] == 0]
