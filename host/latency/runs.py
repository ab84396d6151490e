"""One latency run: an input (capture or generated day) x an offered load x a configuration x
a back-end, measured and stored as Parquet.

A run directory holds ``records.parquet`` (one row per order: stamps and stages, see
:mod:`.records`; the emulator back-end: the host's slow path per poll), ``hist.parquet``
(one row per figure: count, min, percentiles, max in the run's unit and in ns, and the
HdrHistogram in its encoded form) and ``run.json`` (the spec, git commit, back-end, device
identity with MAP_HASH and build id, offered load, counters); the same metadata is in both
Parquet files' schema metadata, so ``SELECT * FROM 'DIR/runs/*/hist.parquet'`` (DuckDB) or
``pyarrow.dataset`` finds everything.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
from pathlib import Path

import numpy as np

from ..framing import sent_as
from . import CLOCK_MHZ, hist
from .records import FIGURES, order_records, slow_path_records

__all__ = ["prepare_input", "pacing_of", "config_of", "run", "load_run", "REPO"]

REPO = Path(__file__).resolve().parents[2]


def git_commit() -> str:
    """HEAD's commit, with ``-dirty`` when the tree has changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def prepare_input(spec: dict, cache: Path) -> dict:
    """The input of a spec as a capture file: ``capture`` as it is, ``generate`` (symbols,
    messages, seed) written once to ``cache``. Returns the spec with ``path`` and
    ``symbols`` (a generated day's)."""
    out = dict(spec)
    if "capture" in spec:
        out["path"] = str(spec["capture"])
        return out
    g = spec.get("generate")
    if not g:
        raise ValueError(f"input {spec.get('name')!r}: needs capture = PATH or generate = "
                         "{symbols, messages, seed}")
    from ..gen import generate_day, write_capture
    sym, msgs, seed = int(g["symbols"]), int(g["messages"]), int(g.get("seed", 1))
    path = cache / f"day-{sym}sym-{msgs}msg-seed{seed}.pcap"
    day = None
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        day = generate_day(sym, msgs, seed)
        tmp = path.with_suffix(".tmp.pcap")
        write_capture(day, tmp)
        tmp.replace(path)
    if "symbols" not in out:
        from ..gen import symbol_names
        out["symbols"] = symbol_names(sym)
    out["path"] = str(path)
    return out


def pacing_of(load: dict):
    """The :class:`~tickwire.backends.base.Pacing` of a load spec."""
    from ...backends.base import Pacing
    keys = ("mode", "gap", "frames_per_second", "speed", "burst", "max_idle")
    return Pacing(clock_hz=CLOCK_MHZ * 1e6, **{k: load[k] for k in keys if k in load})


def config_of(inp: dict, conf: dict):
    """The configuration of a run: the config file (the configuration's, else the input's),
    else a band strategy over the input's symbols; then the configuration's overrides
    (``strategy``, ``source``, ``poll_messages``, ``risk`` fields)."""
    from ...backends.rtl import rtl_config
    from ..config import Config, load_config
    path = conf.get("path") or inp.get("config")
    if path:
        cfg = load_config(path)
    else:
        cfg = Config(symbols=list(inp.get("symbols") or []))
    if "strategy" in conf:
        cfg.strategy.kind = conf["strategy"]
    if "source" in conf:
        cfg.strategy.source = conf["source"]
    if "poll_messages" in conf:
        cfg.strategy.poll_messages = int(conf["poll_messages"])
    for k, v in (conf.get("risk") or {}).items():
        if not hasattr(cfg.risk, k):
            raise ValueError(f"configuration {conf.get('name')!r}: no risk field {k!r}")
        setattr(cfg.risk, k, v)
    cfg.validate()
    return rtl_config(cfg)


def _offered(frames, starts, counts) -> dict:
    """The offered load as it went: frames, messages, span (cycles), rates at the clock."""
    n = len(frames)
    span = int(starts[-1]) + (len(frames[-1]) + 7) // 8 if n else 0
    secs = span / (CLOCK_MHZ * 1e6) if span else 0.0
    msgs = int(np.sum(counts))
    byts = int(sum(len(f) for f in frames))
    return {"frames": n, "messages": msgs, "span_cycles": span,
            "messages_per_second": msgs / secs if secs else 0.0,
            "frames_per_second": n / secs if secs else 0.0,
            "gbps": byts * 8 / secs / 1e9 if secs else 0.0}


class _TimedBus:
    """A register bus that notes the host time of every write (the slow path's stamps)."""

    def __init__(self, bus):
        self.bus, self.writes = bus, []

    def __getattr__(self, name):          # the device's own bus calls pass through
        return getattr(self.bus, name)

    def read32(self, addr):
        return self.bus.read32(addr)

    def write32(self, addr, value):
        self.bus.write32(addr, value)
        self.writes.append(time.perf_counter_ns())


def run(spec: dict, out_dir: Path) -> dict:
    """Measure one run (``spec``: run_id, input, load, config, backend) and store it under
    ``out_dir/runs/<run_id>``. Returns the run's metadata."""
    from ...backends.wire import frames_of, mold_counts
    from ..capture import read_capture
    inp, load, conf, backend = spec["input"], spec["load"], spec["config"], spec["backend"]
    frames = frames_of(inp["path"])
    ts = read_capture(inp["path"]).timestamps_ns
    pacing = pacing_of(load)
    lengths = [len(f) for f in frames]
    due = pacing.schedule(lengths, ts)
    gaps = pacing.gaps(lengths, ts)
    starts = pacing.starts(lengths, gaps)
    cfg = config_of(inp, conf)
    ab = load.get("line_b", "none")
    if ab not in ("none", "copy"):
        raise ValueError(f"load {load.get('name')!r}: line_b = none | copy")
    skew = int(load.get("skew", 0))
    t0 = time.perf_counter()
    if backend == "rtl":
        recs, meta = _run_rtl(frames, gaps, due, starts, cfg, conf,
                              frames if ab == "copy" else None, skew)
        unit = "cycles"
    elif backend == "emu":
        recs, meta = _run_emu(frames, cfg)
        unit = "ns"
    else:
        raise ValueError(f"back-end {backend!r}: rtl or emu")
    meta.update({"run_id": spec["run_id"], "spec": spec, "backend": backend, "unit": unit,
                 "git_commit": git_commit(), "clock_mhz": CLOCK_MHZ,
                 "offered": _offered(frames, starts, mold_counts(frames)),
                 "wall_seconds": round(time.perf_counter() - t0, 2)})
    store(out_dir / "runs" / spec["run_id"], recs, meta, unit)
    return meta


def _run_rtl(frames, gaps, due, starts, cfg, conf, line_b, skew):
    from ...backends.emu import EmuDevice
    from ...backends.rtl import RtlDevice
    from ...backends.wire import poll_points
    from ...spec.capacity import ROW_DEPTH
    from ..hostloop import run_device
    cut = bool(conf.get("cut_through", True))

    class Device(RtlDevice):
        def load(self, *a, **kw):
            super().load(*a, **kw)
            # after apply_config, before the first frame
            self.driver.write("CONTROL", cut_through=int(cut))

    er = run_device(EmuDevice(copy.deepcopy(cfg), ROW_DEPTH), frames, copy.deepcopy(cfg))
    lat = []
    with Device() as dev:
        rr = run_device(dev, frames, copy.deepcopy(cfg), gaps=gaps, line_b=line_b,
                        skew_b=skew, on_poll=lambda ctx, out: lat.append(out.latency))
        ident = dev.identity()
    if not sent_as(rr.orders.frames, er.orders.frames):   # aborted ones: bad feed FCS
        c = rr.counters
        raise RuntimeError("RTL and emulator order frames differ: no latency to report "
                           f"({len(rr.orders.frames)} vs {len(er.orders.frames)} orders; "
                           f"line-buffer overflow {c.get('overflow')}, gaps {c.get('gaps')})")
    parts = [x for x in lat if x is not None]
    latency = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else \
        {k: np.zeros(0, np.int64) for k in ("cycle", "sequence", "t_dec", "t_event",
                                            "t_verdict", "t_order", "fast")}
    points = poll_points(frames, cfg.strategy.poll_messages) if frames else [0]
    recs = order_records(frames, due, rr.input_times, rr.order_times, latency,
                         er.orders.sequence, chunks=[0] + points[:-1], starts=starts)
    c = rr.counters
    keep = ("fast_taken", "fast_orders", "frames_sent", "drops", "messages", "packets",
            "dup_packets")
    return recs, {"orders": len(rr.orders.frames), "identity": _plain(ident),
                  "counters": {k: int(c[k]) for k in keep if k in c}}


def _run_emu(frames, cfg):
    from ...backends.emu import EmuDevice
    from ...spec.capacity import ROW_DEPTH
    from ..hostloop import run_device
    dev = EmuDevice(copy.deepcopy(cfg), ROW_DEPTH)
    dev.bus = tb = _TimedBus(dev.bus)
    polls, state = [], {}

    def on_poll(ctx, out):
        flush()
        state.update(t=time.perf_counter_ns(), n=len(tb.writes))

    def flush():
        if state and len(tb.writes) > state["n"]:
            w = tb.writes[state["n"]:]
            polls.append((state["t"], w[0], w[-1], len(w)))
        state.clear()

    rr = run_device(dev, frames, copy.deepcopy(cfg), on_poll=on_poll)
    flush()
    return slow_path_records(polls), {"orders": len(rr.orders.frames),
                                      "identity": _plain(dev.identity())}


def _plain(d: dict) -> dict:
    return {k: (v if isinstance(v, (int, float, str, type(None))) else str(v))
            for k, v in d.items()}


def store(d: Path, recs: dict, meta: dict, unit: str) -> None:
    """Write a run's records, histograms and metadata under ``d``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    d.mkdir(parents=True, exist_ok=True)
    md = {b"tickwire": json.dumps(meta).encode()}
    t = pa.table({k: np.asarray(v) for k, v in recs.items()})
    pq.write_table(t.replace_schema_metadata(md), d / "records.parquet")
    rows = []
    figures = FIGURES if unit == "cycles" else ("strategy", "write", "end_to_end")
    series = {f: recs[f] for f in figures}
    if unit == "cycles":
        series["spacing"] = np.diff(recs["t_order"])
    for name, v in series.items():
        h = hist.record(v)
        s = hist.summary(h, unit)
        rows.append({"run_id": meta["run_id"], "figure": name, "unit": unit,
                     **{k: float(s.get(k, np.nan)) for k in ("count",) + hist.KEYS},
                     **{f"{k}_ns": float(s.get(f"{k}_ns" if unit == "cycles" else k, np.nan))
                        for k in hist.KEYS},
                     "hdr": hist.encode(h) if h.get_total_count() else ""})
    ht = pa.Table.from_pylist(rows)
    pq.write_table(ht.replace_schema_metadata(md), d / "hist.parquet")
    (d / "run.json").write_text(json.dumps(meta, indent=1))


def load_run(d: Path) -> tuple[dict, "object", "object"]:
    """(metadata, records table, histogram table) of a stored run."""
    import pyarrow.parquet as pq
    return (json.loads((Path(d) / "run.json").read_text()),
            pq.read_table(Path(d) / "records.parquet"), pq.read_table(Path(d) / "hist.parquet"))
