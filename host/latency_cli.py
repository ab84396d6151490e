"""`tickwire latency`: tick-to-trade of the gateware, measured in RTL simulation.

Every order frame of the run is matched with the ITCH message that triggered it (the emulator
on the same capture and configuration gives the sequence number: the RTL's frames are the
emulator's, byte for byte). Cycles are counted on the harness clock from

* the first byte of the feed frame that carried the triggering message,
* the last byte of the triggering field (the add's price; other messages: their last byte),

to the first beat of the order frame; nanoseconds at the 322 MHz target clock. MAC/PCS/PHY
and the wire are not included (the harness drives the MAC-side stream directly). The
cut-through trigger path is on (``fast_enable``): ``cut_through`` reports how many orders it
fired (``book_event_to_order`` then mixes book input -> order and strobe -> order). The
gateware's per-order records split off the time an order waited behind another order frame
(``egress_wait``); ``from_trigger_field_not_queued`` is the path alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from ..spec.counters import BOOK_LOSS_COUNTERS
from .framing import sent_as

CLOCK_MHZ = 322.265625  # 25G MAC user clock (64-bit at 20.6 Gb/s of raw bandwidth)
DEFAULT_CONFIG = Path(__file__).resolve().parent / "data" / "static_triggers.toml"


def measure(capture: Path, config_path: Path | None, source: str | None = None) -> dict:
    """Run the capture through the RTL device and the emulator with the same host loop (any
    strategy), check the order frames are identical, and time every order on the RTL.
    ``source``: the trigger source ("book"/"wire"; default: the config's)."""
    import copy

    from ..backends.emu import EmuDevice
    from ..backends.rtl import RtlDevice, rtl_config
    from ..backends.wire import frames_of, trigger_latencies
    from ..spec.capacity import ROW_DEPTH
    from .config import load_config
    from .hostloop import run_device

    cfg = rtl_config(load_config(config_path))
    if source is not None:
        cfg.strategy.source = source
        cfg.validate()
    frames = frames_of(capture)
    er = run_device(EmuDevice(copy.deepcopy(cfg), ROW_DEPTH), frames, copy.deepcopy(cfg))
    lat = []
    with RtlDevice() as dev:
        rr = run_device(dev, frames, copy.deepcopy(cfg),
                        on_poll=lambda ctx, out: lat.append(out.latency))
    if not sent_as(rr.orders.frames, er.orders.frames):   # aborted ones: bad feed FCS
        raise RuntimeError("RTL and emulator order frames differ: no latency to report")
    from_frame, from_field = trigger_latencies(frames, er.orders.sequence, rr.order_times,
                                               rr.input_times)
    c = rr.counters

    def stats(v):
        a = np.array(v, np.int64)
        if not a.size:
            return None
        q = {"min": int(a.min()), "p50": float(np.percentile(a, 50)),
             "p99": float(np.percentile(a, 99)), "max": int(a.max())}
        return {"cycles": q, "ns": {k: round(x * 1000 / CLOCK_MHZ, 1) for k, x in q.items()}}

    got = len(rr.orders.frames)
    # the gateware's per-order records: how long each order waited behind another order
    # frame at the egress (the queueing, reported apart from the path)
    queue = {}
    parts = [x for x in lat if x is not None]
    if got and parts:
        from .latency.records import order_records
        latency = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        inputs = np.asarray(rr.input_times, np.int64)
        recs = order_records(frames, (inputs - inputs[0]).astype(np.float64), inputs,
                             rr.order_times, latency, er.orders.sequence)
        waited = recs["egress"] > 0
        field = np.asarray(from_field, np.int64)
        queue = {"egress_wait": stats(recs["egress"]),
                 "orders_that_waited": int(waited.sum()),
                 "from_trigger_field_not_queued": stats(field[~waited]),
                 "from_trigger_field_cut_through": stats(field[recs["fast"]])}
    return {"backend": "rtl", "capture": str(capture), "orders": got,
            "strategy": cfg.strategy.kind, "trigger_source": cfg.strategy.source,
            "clock_mhz": CLOCK_MHZ,
            "from_frame_first_byte": stats(from_frame) if got else None,
            "from_trigger_field": stats(from_field) if got else None,
            "book_event_to_order": {"min": c.get("lat_min"), "max": c.get("lat_max"),
                                    "mean": c.get("lat_sum", 0) / max(1, c.get("lat_count", 0))},
            "cut_through": {k: c.get(k) for k in ("fast_taken", "fast_orders",
                                                  "fast_mismatch", "port_offered",
                                                  "port_syncs", "port_b_waits",
                                                  "wire_stops")},
            **queue,
            "book_loss": {k: c.get(k, 0) for k in BOOK_LOSS_COUNTERS},
            # feed frames with a bad FCS, the order frames aborted for them, those sent whole
            "bad_fcs": {k: c.get(k, 0) for k in ("fcs_errors", "fcs_aborts", "fcs_late")},
            "includes": "feed handler (each message handed on at its own last byte; an add "
                        "fired from the port walker or the decoder's strobe on the cut-through "
                        "path, otherwise after the book builder), book builder, trigger, risk, order egress "
                        "(egress_wait: behind another order frame); not MAC/PCS/PHY or the "
                        "wire"}


def _legacy(backend, capture, config, as_json, source=None) -> None:
    """``tickwire latency [--backend rtl] [--json]``: one capture, end-to-end figures."""
    from .cli import SAMPLE, report_book_loss
    if backend != "rtl":
        typer.echo("tickwire: latency is measured on the RTL back-end (--backend rtl)",
                   err=True)
        raise typer.Exit(2)
    try:
        r = measure(capture or SAMPLE, config or DEFAULT_CONFIG, source)
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"tickwire: {e}", err=True)
        raise typer.Exit(2)
    report_book_loss(r["book_loss"])
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
               f"taken on the fast path ({ct['port_offered']} presented from the port)")
    if r.get("egress_wait"):
        typer.echo(f"egress: {r['orders_that_waited']} orders waited behind another order "
                   f"frame (max {r['egress_wait']['cycles']['max']} cycles)")
    typer.echo(f"includes: {r['includes']}")


def register(app, hw_app, model_app) -> None:
    lat = typer.Typer(help="Latency: one capture's end-to-end figures (no sub-command), "
                      "campaigns (run), comparisons (compare), reports (report).",
                      invoke_without_command=True, no_args_is_help=False)
    app.add_typer(lat, name="latency")

    @lat.callback()
    def latency(ctx: typer.Context,
                backend: str = typer.Option("rtl", help="rtl (the Verilated gateware)"),
                capture: Optional[Path] = typer.Option(None, help="capture (default: the "
                                                       "bundled sample)"),
                config: Optional[Path] = typer.Option(None, help="TOML config with symbols "
                                                      "and static triggers"),
                source: Optional[str] = typer.Option(None, help="trigger source: book or "
                                                     "wire (default: the config's "
                                                     "strategy.source)"),
                as_json: bool = typer.Option(False, "--json")):
        """Tick-to-trade in cycles and ns: min, p50, p99, max per order (without a
        sub-command), or a sub-command."""
        if ctx.invoked_subcommand is None:
            _legacy(backend, capture, config, as_json, source)

    @lat.command("run")
    def run(campaign: Path = typer.Argument(..., help="campaign TOML (e.g. "
                                            "host/data/latency_campaign.toml)"),
            out: Path = typer.Option(..., "--out", help="directory for the runs and report"),
            address: Optional[str] = typer.Option(None, help="Ray cluster address (default: "
                                                  "a local Ray)"),
            parallel: Optional[int] = typer.Option(None, help="runs at a time on the local "
                                                   "Ray (default: the campaign's)")):
        """Run a campaign: every input x load x configuration x back-end, in parallel on
        Ray; stores each run as Parquet under OUT and renders OUT/report/index.html."""
        from rich.progress import Progress

        from .latency.campaign import load_campaign, run_campaign
        from .latency.report import render
        try:
            c = load_campaign(campaign)
        except (ValueError, OSError) as e:
            typer.echo(f"tickwire: {e}", err=True)
            raise typer.Exit(2)
        with Progress() as bar:
            task = bar.add_task("runs", total=None)

            def progress(done, total, rid):
                bar.update(task, completed=done, total=total, description=rid)
            metas = run_campaign(c, out, address=address, parallel=parallel,
                                 progress=progress)
        failed = [m for m in metas if "error" in m]
        for m in metas:
            typer.echo(f"{m['run_id']}: " + (f"FAILED {m['error']}" if "error" in m else
                                            f"{m['orders']} orders, {m['wall_seconds']} s"))
        if len(failed) < len(metas):
            typer.echo(f"report: {render(out)}")
        if failed:
            typer.echo(f"tickwire: {len(failed)} of {len(metas)} runs failed", err=True)
            raise typer.Exit(1)

    @lat.command("compare")
    def compare(a: Path = typer.Argument(..., help="baseline campaign directory"),
                b: Path = typer.Argument(..., help="candidate campaign directory"),
                percentile: str = typer.Option("p99", help="judged percentile: min p50 p90 "
                                               "p99 p99.9 p99.99 max"),
                threshold: float = typer.Option(0.05, help="allowed growth, a fraction of "
                                                "the baseline"),
                min_cycles: float = typer.Option(1.0, help="allowed growth at least this "
                                                 "(the figure's unit)"),
                as_json: bool = typer.Option(False, "--json")):
        """Per-stage percentile deltas B - A; exits 1 when the chosen percentile regressed
        past the threshold."""
        from .latency.compare import compare as do, format_table
        try:
            res = do(a, b, percentile=percentile, threshold=threshold, min_cycles=min_cycles)
        except (ValueError, OSError) as e:
            typer.echo(f"tickwire: {e}", err=True)
            raise typer.Exit(2)
        typer.echo(json.dumps(res) if as_json else format_table(res))
        if res["regressions"]:
            if not as_json:
                typer.echo(f"{len(res['regressions'])} figure(s) regressed at {percentile} "
                           f"(> {threshold:.0%}, >= {min_cycles})", err=True)
            raise typer.Exit(1)

    @lat.command("report")
    def report(d: Path = typer.Argument(..., help="campaign directory"),
               markdown: Optional[str] = typer.Option(None, help="RUN_ID: print Markdown "
                                                      "tables (its stages, every load) "
                                                      "instead")):
        """(Re)render DIR/report/index.html from the stored runs."""
        from .latency.campaign import summarize
        from .latency.report import markdown as md, render
        try:
            if markdown:
                typer.echo(md(d, markdown))
                return
            summarize(d)
            typer.echo(f"report: {render(d)}")
        except (ValueError, OSError) as e:
            typer.echo(f"tickwire: {e}", err=True)
            raise typer.Exit(2)
