"""The ``tickwire`` command."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="tickwire: tick-to-trade pipeline — emulator, gateware, signal path.")
hw_app = typer.Typer(no_args_is_help=True, help="Gateware: reports and builds.")
model_app = typer.Typer(no_args_is_help=True, help="Signal models: train, export, bench.")
app.add_typer(hw_app, name="hw")
app.add_typer(model_app, name="model")

SAMPLE = Path(__file__).resolve().parent / "data" / "sample.pcap"


def _fail(msg: str, code: int = 2):
    typer.echo(f"tickwire: {msg}", err=True)
    raise typer.Exit(code)


@contextmanager
def _errors():
    """Turn expected errors (bad input, bad config) into one clear line and exit 2."""
    from .config import ConfigError
    try:
        yield
    except (ConfigError, FileNotFoundError, ValueError) as e:
        _fail(str(e))


@contextmanager
def _progress(total: int | None, label: str, enabled: bool):
    """A rich progress bar on stderr for long work (hidden for --json or non-terminals;
    ``total`` None: a stream of unknown length)."""
    if not enabled or (total is not None and total < 200_000) or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress
    with Progress(transient=True) as p:
        task = p.add_task(label, total=total)
        yield lambda n: p.advance(task, n)


def report_book_loss(counters: dict) -> dict:
    """The book-loss counters (:data:`tickwire.spec.counters.BOOK_LOSS_COUNTERS`) of a run,
    with a warning on stderr naming each that is non-zero: a book that lost state is never
    reported silently."""
    from ..spec.counters import BOOK_LOSS_COUNTERS
    loss = {k: int(counters.get(k, 0)) for k in BOOK_LOSS_COUNTERS}
    moved = [f"{k} {v:,}" for k, v in loss.items() if v]
    if moved:
        typer.echo("tickwire: warning: the book lost state, its levels may differ from the "
                   "market's: " + ", ".join(moved), err=True)
    return loss


def _resolve_backend(backend: str) -> str:
    from ..backends import KINDS
    if backend != "auto" and backend not in KINDS:
        _fail(f"--backend {backend!r}: one of auto, {', '.join(KINDS)}")
    if backend == "auto":
        from .devices import detect
        return detect()
    return backend


@app.command()
def run(capture: Optional[Path] = typer.Option(None, "--capture", help="pcap/pcapng/BinaryFILE "
                                               "(default: the bundled sample capture)"),
        config: Optional[Path] = typer.Option(None, "--config", help="TOML config"),
        backend: str = typer.Option("auto", help="auto | emu | rtl | pynq | xrt"),
        orders_out: Optional[Path] = typer.Option(None, "--orders-out", help="write the order "
                                                  "frames the appliance sent to this pcap"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object on stdout")):
    """Replay a capture through the whole pipeline with the configured strategy and risk.

    The host loop (configuration through the register map, the strategy polled between
    frames) is the same on every back-end; ``emu`` and ``rtl`` send the same order frames."""
    from ..backends import open_device
    from ..backends.base import BackendUnavailable
    from ..backends.wire import frames_of
    from .config import load_config
    from .hostloop import run_device
    with _errors():
        cfg = load_config(config)
        path = capture or SAMPLE
        be = _resolve_backend(backend)
        frames = frames_of(path)
        try:
            dev = open_device(be, cfg)
        except BackendUnavailable as e:
            _fail(str(e))
        with dev, _progress(len(frames), "pipeline", not as_json) as prog:
            res = run_device(dev, frames, cfg, progress=prog)
        if orders_out is not None:
            from .capture import write_pcap
            write_pcap(orders_out, res.orders.frames)
    s = res.summary()
    s["capture"] = str(path)
    s["book_loss"] = report_book_loss(res.counters)
    if orders_out is not None:
        s["orders_out"] = str(orders_out)
    if as_json:
        typer.echo(json.dumps(s))
        return
    _print_summary(s)


def _print_summary(s: dict) -> None:
    from rich.console import Console
    from rich.table import Table
    c = Console()
    t = Table(title=f"tickwire run — backend {s['backend']} — {s['capture']}", show_header=False)
    for k in ("messages", "packets", "gaps", "gap_messages", "book_updates", "symbols",
              "trigger_writes", "triggers_fired", "orders"):
        t.add_row(k, f"{s[k]:,}")
    for k, v in s["risk_rejects"].items():
        t.add_row(f"risk reject: {k}", f"{v:,}")
    drops = {k: v for k, v in s["counters"].items() if v and k in DROP_KEYS}
    for k, v in drops.items():
        t.add_row(f"dropped: {k}", f"{v:,}")
    for k, v in s["seconds"].items():
        t.add_row(f"time: {k}", f"{v * 1e3:.1f} ms")
    sig = s.get("signal")
    if sig:
        t.add_row("signal: backend", f"{sig['backend']}")
        t.add_row("signal: book updates seen", f"{sig['updates']:,}")
        t.add_row("signal: trigger writes", f"{sig['trigger_writes']:,} "
                  f"({sig['writes_per_update']:.1%} of updates)")
        lat = sig.get("update_to_write") or {}
        if lat:
            t.add_row("signal: update → trigger written",
                      ", ".join(f"{k.removesuffix('_us')} {v:.1f} µs"
                                for k, v in lat.items() if k.endswith("_us")))
    c.print(t)


DROP_KEYS = ("runt", "not_ipv4", "ip_header", "ip_checksum", "ip_length", "not_udp",
             "ip_fragment", "udp_length", "filtered", "mold_truncated", "mold_overrun",
             "dup_packets", "unknown_type", "bad_length", "unknown_ref", "duplicate_ref",
             "overfill", "order_table_full", "level_overflow", "level_miss", "symbol_overflow")


@app.command()
def gen(symbols: int = typer.Option(8, help="number of symbols"),
        messages: int = typer.Option(100_000, help="number of ITCH messages"),
        seed: int = typer.Option(1, help="random seed (same seed, same bytes)"),
        out: Path = typer.Option(..., "--out", help="output file"),
        fmt: str = typer.Option("pcap", "--format", help="pcap | binaryfile"),
        vlan: Optional[int] = typer.Option(None, help="802.1Q VLAN id"),
        profile: str = typer.Option("day", help="day: a trading day's flow | deep: a "
                                    "build-up to a big, deep book, then a session of "
                                    "executions, cancels and replaces (generate_deep_day)")):
    """Generate a deterministic synthetic trading day."""
    from . import gen as g
    if fmt not in ("pcap", "binaryfile"):
        _fail(f"--format {fmt!r}: pcap or binaryfile")
    if vlan is not None and not 0 <= vlan < 4096:
        _fail(f"--vlan {vlan}: must be 0..4095")
    if profile not in ("day", "deep"):
        _fail(f"--profile {profile!r}: day or deep")
    with _errors():
        if profile == "deep":
            day = g.generate_deep_day(symbols=symbols, messages=messages, seed=seed)
            g.write_capture(day, out, fmt=fmt, vlan=vlan)
        elif fmt == "binaryfile" and vlan is None:
            # generated and written part by part: memory does not grow with the day
            with _progress(messages, "gen", True) as prog:
                g.write_day(out, symbols, messages, seed, progress=prog)
        else:
            day = g.generate_day(symbols=symbols, messages=messages, seed=seed)
            g.write_capture(day, out, fmt=fmt, vlan=vlan)
    typer.echo(f"wrote {out} ({messages:,} messages, {symbols} symbols, seed {seed}, {fmt}"
               + (", deep" if profile == "deep" else "") + ")", err=True)


@app.command()
def decode(file: Path, fmt: str = typer.Option("jsonl", "--format", help="jsonl | table"),
           limit: int = typer.Option(0, help="stop after this many messages (0: all)"),
           strict: bool = typer.Option(False, help="apply the pipeline's feed checks: IPv4 "
                                       "checksums and MoldUDP64 sequence tracking"),
           protocol: str = typer.Option("auto", help="auto | itch | ouch (auto: ouch for a "
                                        "capture of TCP frames)")):
    """Decode every ITCH message of a capture or BinaryFILE, or every SoupBinTCP/OUCH 5.0
    packet of a TCP capture (such as the order frames `run` writes)."""
    from . import itch
    from .decode import pick_protocol, write_ouch
    from .emu.pipeline import load_source
    if fmt not in ("jsonl", "table"):
        _fail(f"--format {fmt!r}: jsonl or table")
    with _errors():
        if pick_protocol(file, protocol) == "ouch":
            drops, errs = write_ouch(file, fmt, limit, strict, sys.stdout)
            if drops:
                typer.echo(f"tickwire: {file}: dropped {drops}"
                           + (f" (first error: {errs[0]})" if errs else ""), err=True)
            return
        src = load_source(file, track_sequence=strict, check_ip_checksum=strict)
    drops = {k: v for k, v in src.counters.items() if v and k in DROP_KEYS}
    if drops:
        typer.echo(f"tickwire: {file}: dropped {drops}", err=True)
    session = src.session
    n = len(src.offsets) if not limit else min(limit, len(src.offsets))
    out = sys.stdout
    buf = src.data
    for i in range(n):
        m = itch.decode_at(buf, int(src.offsets[i]), None, f"{file}: ")
        rec = {"type": m.pop("type"), "session": session.rstrip(" "),
               "sequence": int(src.sequences[i]), **m}
        if fmt == "jsonl":
            out.write(json.dumps(rec) + "\n")
        else:
            out.write(f"{rec['sequence']:>10} {rec['type']} " + " ".join(
                f"{k}={v}" for k, v in rec.items() if k not in ("type", "sequence", "session"))
                + "\n")


@app.command()
def replay(file: Path,
           symbols: str = typer.Option("", help="comma-separated symbols (default: all)"),
           depth: int = typer.Option(5, help="levels per side in the output"),
           book_out: Optional[Path] = typer.Option(None, "--book-out", help="top-N rows: CSV, "
                                                   "or Parquet for a .parquet/.pq name"),
           book_format: Optional[str] = typer.Option(None, "--book-format", help="csv | "
                                                     "parquet (default: by --book-out's suffix)"),
           book_compression: Optional[str] = typer.Option(
               None, "--book-compression", help="Parquet codec: snappy (default), none "
               "(half the writer's CPU, three times the bytes), lz4, zstd"),
           book_order: Optional[str] = typer.Option(
               None, "--book-order", help="Parquet row order: sequence (default, as the CSV) "
               "or symbol (each row group's rows by symbol, then sequence: about 3/5 of the "
               "writer's time, a third of the bytes; ORDER BY sequence gives the CSV's order)"),
           backend: str = typer.Option("emu", help="emu | rtl"),
           config: Optional[Path] = typer.Option(None, "--config", help="TOML config for the "
                                                 "emulator: capacities, symbols, feed groups"),
           as_json: bool = typer.Option(False, "--json")):
    """Rebuild books and write one row per top-N change of a tracked symbol.

    The emulator streams the rows out as it goes (a BinaryFILE is read in chunks too), so a
    whole day replays in bounded memory."""
    import time
    from contextlib import nullcontext
    from .bookout import ORDERS, book_format as pick_format, open_book_writer
    from .config import load_config
    from .emu.pipeline import replay as do_replay
    names = [s.strip() for s in symbols.split(",") if s.strip()]
    if depth < 1:
        _fail("--depth must be >= 1")
    if backend not in ("emu", "rtl"):
        _fail(f"--backend {backend!r}: emu or rtl")
    if book_format is not None and book_out is None:
        _fail("--book-format needs --book-out")
    if config is not None and backend == "rtl":
        _fail("--config is the emulator's: the gateware's capacities are fixed")
    with _errors():
        fmt = pick_format(book_out, book_format) if book_out is not None else None
        if not file.is_file():
            raise FileNotFoundError(f"{file}: no such file")
        if book_compression not in (None, "none", "snappy", "lz4", "zstd", "gzip", "brotli"):
            raise ValueError(f"--book-compression {book_compression!r}: none, snappy, lz4, "
                             f"zstd, gzip or brotli")
        if book_order not in (None, *ORDERS):
            raise ValueError(f"--book-order {book_order!r}: {' or '.join(ORDERS)}")
        writer = (open_book_writer(book_out, depth, fmt, book_compression, book_order)
                  if book_out is not None else None)
        with writer or nullcontext():
            if backend == "rtl":
                from ..backends.rtl import replay as replay_rtl
                res = replay_rtl(file, names or None, depth)
                if writer is not None:
                    writer.write(res.rows, res.symbols)
            else:
                cfg = load_config(config)
                if config is None:
                    cfg.capacity.levels = max(cfg.capacity.levels, depth)
                with _progress(None, "replay", not as_json) as prog:
                    # rows go to the writer as they come, or are only counted
                    c0 = time.thread_time()
                    res = do_replay(file, names or None, depth, cfg, progress=prog, out=writer,
                                    keep_rows=writer is not None)
                    # this thread decodes and builds the books; the writer's CPU is its own
                    res.timings["replay_thread_cpu"] = time.thread_time() - c0
    rows = len(res.rows) if res.rows is not None else int(res.counters.get("book_updates", 0))
    s = {"backend": res.backend, "messages": int(res.counters.get("messages", 0)), "rows": rows,
         "symbols": res.symbols, "book_out": str(book_out) if book_out else None,
         "book_format": fmt, "book_loss": report_book_loss(res.counters),
         "seconds": {k: round(v, 3) for k, v in res.timings.items()}}
    # a simulated back-end's rate (RTL: cycles, wall and CPU seconds of the harness)
    sim = {k: res.counters[k] for k in ("cycles", "sim_seconds", "cycles_per_second",
                                        "sim_cpu_seconds", "cycles_per_cpu_second")
           if k in res.counters}
    # and the off-chip order table's memory traffic (RTL: the AXI model's statistics)
    sim.update({k: res.counters[k] for k in res.counters if k.startswith("mem_")})
    if sim:
        s["simulation"] = sim
    if res.counters.get("overflow"):
        # the gateware's line buffers dropped packets the book was too busy to take: their
        # messages never reached it (counted, and warned of, as a book loss is)
        s["feed_overflow"] = int(res.counters["overflow"])
        typer.echo(f"tickwire: warning: the feed dropped {s['feed_overflow']:,} packets while "
                   f"the book was busy (overflow): their messages are missing from the book",
                   err=True)
    typer.echo(json.dumps(s) if as_json else
               f"{s['rows']:,} book rows from {s['messages']:,} messages"
               + (f" -> {book_out}" if book_out else "")
               + (f"; {sim['cycles']:,} cycles simulated, {sim['cycles_per_second']:,}/s "
                  f"({sim.get('cycles_per_cpu_second', 0):,} per CPU second)" if sim else ""))


@app.command()
def bench(file: Optional[Path] = typer.Argument(None, help="capture or BinaryFILE "
                                                "(default: the bundled sample)"),
          repeat: int = typer.Option(3, help="timed runs after the warm-up (best is kept)"),
          peer: bool = typer.Option(False, help="also time itch-book on the same file"),
          as_json: bool = typer.Option(False, "--json")):
    """Decode + book-building throughput, in-process after warm-up."""
    from .bench import bench_file
    with _errors():
        r = bench_file(file or SAMPLE, repeat=repeat, peer=peer)
    if as_json:
        typer.echo(json.dumps(r))
    else:
        typer.echo(f"tickwire: {r['messages']:,} messages in {r['seconds']:.3f} s = "
                   f"{r['msgs_per_s'] / 1e6:.2f} M msg/s")
        if "peer" in r:
            p = r["peer"]
            typer.echo(f"itch-book: {p['seconds']:.3f} s = {p['msgs_per_s'] / 1e6:.2f} M msg/s "
                       f"(tickwire/itch-book speed ratio {r['ratio']:.2f})")


device_app = typer.Typer(no_args_is_help=True, help="Devices: serve one to other machines.")
app.add_typer(device_app, name="device")


@device_app.command("serve")
def device_serve(backend: str = typer.Option("emu", help="emu | rtl | pynq | xrt"),
                 host: str = typer.Option("127.0.0.1", help="address to listen on "
                                          "(default: loopback only)"),
                 port: int = typer.Option(7350, help="TCP port (0: any free one)"),
                 token: Optional[str] = typer.Option(None, envvar="TICKWIRE_TOKEN",
                                                     help="the token clients must say "
                                                     "(default: $TICKWIRE_TOKEN, else a new "
                                                     "one, printed)"),
                 config: Optional[Path] = typer.Option(None, "--config", help="TOML config: "
                                                       "the emulator's capacities")):
    """Serve a device's register bus and streams over TCP, one client at a time (a host
    drives it with tickwire.backends.remote.RemoteDevice)."""
    import secrets
    from ..backends import BackendUnavailable, open_device
    from ..backends.remote import RemoteServer
    from .config import load_config
    if backend == "remote":
        _fail("--backend remote: serve the device where it runs")
    if not token:
        token = secrets.token_urlsafe(18)
        typer.echo(f"tickwire: token {token}", err=True)
    with _errors():
        try:
            dev = open_device(backend, load_config(config) if config else None)
        except BackendUnavailable as e:
            _fail(str(e))
    try:
        with RemoteServer(dev, host, port, token=token,
                          log=lambda m: typer.echo(f"tickwire: {m}", err=True)) as srv:
            typer.echo(f"tickwire: serving {backend} on {srv.address[0]}:{srv.address[1]}",
                       err=True)
            srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        dev.close()


@app.command()
def serve(backend: str = typer.Option("emu", help="emu | rtl | pynq | xrt | remote"),
          capture: Optional[Path] = typer.Option(None, "--capture", help="pcap/pcapng/"
                                                 "BinaryFILE (default: the bundled sample)"),
          config: Optional[Path] = typer.Option(None, "--config", help="TOML config"),
          host: str = typer.Option("127.0.0.1", help="address to listen on (default: "
                                   "loopback only)"),
          port: int = typer.Option(8080, help="TCP port (0: any free one)"),
          token: Optional[str] = typer.Option(None, envvar="TICKWIRE_TOKEN", help="write "
                                              "token (default: $TICKWIRE_TOKEN; none: writes "
                                              "refused)"),
          read_token: Optional[str] = typer.Option(None, envvar="TICKWIRE_READ_TOKEN",
                                                   help="read-only token (reads then need "
                                                   "a token)"),
          speed: str = typer.Option("2000", help="max | ITCH messages per second | Nx "
                                    "(the capture's own timing times N)"),
          once: bool = typer.Option(False, "--once", help="one pass, then hold the device "
                                    "(default: loop the capture)"),
          poll_messages: Optional[int] = typer.Option(None, "--poll-messages", help="host "
                                                      "poll interval in messages (default: "
                                                      "the config's strategy.poll_messages)"),
          device: Optional[str] = typer.Option(None, "--device", help="remote back-end: "
                                               "HOST:PORT of `tickwire device serve`"),
          audit_log: Path = typer.Option(Path("tickwire-audit.jsonl"), "--audit-log",
                                         help="JSON-lines file every write is appended to")):
    """Replay a capture through a device and operate it live: dashboard, REST, WebSocket,
    Prometheus metrics (tickwire.control)."""
    from ..control.service import serve as do_serve
    from .config import load_config
    with _errors():
        cfg = load_config(config)
        if poll_messages is not None:
            cfg.strategy.poll_messages = poll_messages
            cfg.validate()
        opts = {}
        if backend == "remote":
            if not device or ":" not in device:
                _fail("--backend remote needs --device HOST:PORT")
            h, p = device.rsplit(":", 1)
            opts = {"host": h, "port": int(p)}
        do_serve(backend, capture or SAMPLE, cfg, host=host, port=port, token=token,
                 read_token=read_token, speed=speed, loop=not once, audit_log=audit_log,
                 device_options=opts)


def main() -> None:
    _register_optional()
    app()


def _register_optional() -> None:
    """Sub-commands that live with their subsystem (gateware, models) register themselves."""
    for mod in ("tickwire.hw.cli", "tickwire.models.cli", "tickwire.host.latency_cli",
                "tickwire.host.board_cli"):
        try:
            m = __import__(mod, fromlist=["register"])
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith("tickwire"):
                continue
            raise
        m.register(app, hw_app, model_app)


if __name__ == "__main__":
    main()
