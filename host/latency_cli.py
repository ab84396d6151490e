"""`tickwire latency`: tick-to-trade of the gateware, measured in RTL simulation.

Every order frame of the run is matched with the ITCH message that triggered it (the emulator
on the same capture and configuration gives the sequence number: the RTL's frames are the
emulator's, byte for byte). Cycles are counted on the harness clock from

* the first byte of the feed frame that carried the triggering message,
* the last byte of the triggering field (the add's price; other messages: their last byte),

to the first beat of the order frame; nanoseconds at the 322 MHz target clock. MAC/PCS/PHY
and the wire are not included (the harness drives the MAC-side stream directly). The
cut-through trigger path is on (``fast_enable``): ``cut_through`` reports how many orders it
fired (``book_event_to_order`` then mixes book input -> order and strobe -> order).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import typer

CLOCK_MHZ = 322.265625  # 25G MAC user clock (64-bit at 20.6 Gb/s of raw bandwidth)
DEFAULT_CONFIG = Path(__file__).resolve().parent / "data" / "static_triggers.toml"


def _field_end(t: int, length: int) -> int:
    """Offset of the last byte of the field that can fire a trigger, within its message."""
    from . import itch
    if t in (ord("A"), ord("F")):
        f = itch.MESSAGES[chr(t)].field("price")
        return f.offset + f.size - 1
    if t == ord("U"):
        f = itch.MESSAGES["U"].field("price")
        return f.offset + f.size - 1
    return length - 1


def measure(capture: Path, config_path: Path) -> dict:
    from .config import load_config
    from .emu import feed
    from .emu.pipeline import Emulator
    from .capture import Frames
    from ..sim.pipeline_full import run_rtl_orders, startup_writes
    from ..sim.pipeline_rtl import FRAME_GAP, frames_of, rtl_config

    cfg = rtl_config(load_config(config_path))
    if not cfg.symbols:
        raise ValueError(f"{config_path}: the RTL back-end needs explicit symbols")
    frames = frames_of(capture)
    # the emulator on the same frames: which message triggered each order
    data = np.frombuffer(b"".join(frames), np.uint8).copy()
    lens = np.array([len(f) for f in frames], np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    idx = feed.index_frames(Frames(data, starts, lens, np.zeros(len(frames), np.int64), 1))
    writes = startup_writes(cfg)
    res = Emulator(cfg, 0)
    for w in writes:
        res.write_trigger(**w)
    er = res.run(idx.data, idx.offsets, idx.sequences, idx.counters)
    got, counters = run_rtl_orders(frames, cfg, writes)
    if [bytes(f) for f in got] != er.orders.frames:
        raise RuntimeError("RTL and emulator order frames differ: no latency to report")
    # cycle at which each frame's first beat is presented (the harness puts FRAME_GAP idle
    # cycles before every frame)
    beats = (lens + 7) // 8
    first_beat = np.cumsum(beats + FRAME_GAP) - beats
    pos = {int(s): k for k, s in enumerate(idx.sequences)}
    from_frame, from_field = [], []
    for k, fc in enumerate(counters["first_cycles"]):
        m = pos[int(er.orders.sequence[k])]
        fr = int(idx.frame_index[m])
        off = int(idx.offsets[m] - starts[fr])           # message offset in its frame
        t = int(data[idx.offsets[m]])
        field_byte = off + _field_end(t, int(idx.lengths[m]))
        from_frame.append(fc - int(first_beat[fr]))
        from_field.append(fc - int(first_beat[fr] + field_byte // 8))

    def stats(v):
        a = np.array(v, np.int64)
        q = {"min": int(a.min()), "p50": float(np.percentile(a, 50)),
             "p99": float(np.percentile(a, 99)), "max": int(a.max())}
        return {"cycles": q, "ns": {k: round(x * 1000 / CLOCK_MHZ, 1) for k, x in q.items()}}

    return {"backend": "rtl", "capture": str(capture), "orders": len(got),
            "clock_mhz": CLOCK_MHZ,
            "from_frame_first_byte": stats(from_frame) if got else None,
            "from_trigger_field": stats(from_field) if got else None,
            "book_event_to_order": {"min": counters.get("lat_min"),
                                    "max": counters.get("lat_max"),
                                    "mean": (counters.get("lat_sum", 0)
                                             / max(1, counters.get("lat_count", 0)))},
            "cut_through": {k: counters.get(k) for k in ("fast_offered", "fast_taken",
                                                         "fast_orders", "fast_mismatch")},
            "includes": "feed handler (cut-through for an add that ends its packet, fired by "
                        "the trigger engine from the decoder's strobe; otherwise store-and-"
                        "forward per packet), book builder, trigger, risk, order egress; not "
                        "MAC/PCS/PHY or the wire"}


def register(app, hw_app, model_app) -> None:
    @app.command()
    def latency(backend: str = typer.Option("rtl", help="rtl (the Verilated gateware)"),
                capture: Optional[Path] = typer.Option(None, help="capture (default: the "
                                                       "bundled sample)"),
                config: Optional[Path] = typer.Option(None, help="TOML config with symbols "
                                                      "and static triggers"),
                as_json: bool = typer.Option(False, "--json")):
        """Tick-to-trade in cycles and ns: min, p50, p99, max per order."""
        from .cli import SAMPLE
        if backend != "rtl":
            typer.echo("tickwire: latency is measured on the RTL back-end (--backend rtl)",
                       err=True)
            raise typer.Exit(2)
        try:
            r = measure(capture or SAMPLE, config or DEFAULT_CONFIG)
        except (ValueError, FileNotFoundError) as e:
            typer.echo(f"tickwire: {e}", err=True)
            raise typer.Exit(2)
        if as_json:
            typer.echo(json.dumps(r))
            return
        typer.echo(f"{r['orders']} orders, RTL at {CLOCK_MHZ:.1f} MHz")
        for k in ("from_frame_first_byte", "from_trigger_field"):
            s = r[k]
            if s:
                c, n = s["cycles"], s["ns"]
                typer.echo(f"{k:>22}: min {c['min']} p50 {c['p50']:.0f} p99 {c['p99']:.0f} "
                           f"max {c['max']} cycles = {n['min']}/{n['p50']}/{n['p99']}/"
                           f"{n['max']} ns")
        ct = r["cut_through"]
        typer.echo(f"cut-through: {ct['fast_orders']} orders from {ct['fast_taken']} adds "
                   f"taken on the fast path ({ct['fast_offered']} presented)")
        typer.echo(f"includes: {r['includes']}")
