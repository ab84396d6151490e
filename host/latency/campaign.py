"""Campaigns: a TOML sweep of inputs x offered loads x configurations x back-ends, run in
parallel on Ray, stored under one directory with its report.

    [campaign]
    name = "example"
    backends = ["rtl"]          # rtl (gateware stamps, cycles) | emu (host slow path, ns)
    parallel = 2                # runs at a time on a local Ray (default: the CPUs)
    # address = "ray://head:10001"   a Ray cluster instead (tickwire installed on its nodes)

    [[input]]                   # a capture (relative paths: from this file's folder) ...
    name = "sample"
    capture = "sample.pcap"
    config = "static_triggers.toml"     # optional: the input's configuration file
    [[input]]                   # ... or a generated day
    name = "day16"
    generate = { symbols = 16, messages = 20000, seed = 7 }

    [[load]]                    # Pacing fields: mode asap | rate | timestamps, gap,
    name = "rate-1M"            # frames_per_second, burst, speed, max_idle; and line_b =
    mode = "rate"               # "copy" (line B carries the same frames, ``skew`` cycles
    frames_per_second = 1e6     # later)

    [[config]]                  # overrides: path, strategy, source (book | wire),
    name = "default"            # poll_messages, cut_through, risk = { field = value }

Layout of the output directory: ``runs/<run_id>/`` (see :mod:`.runs`), ``summary.parquet``
(every run's histogram rows with the run's input, load, config, back-end and offered load),
``campaign.json`` (the expanded spec), ``report/`` (:mod:`.report`).
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Callable

__all__ = ["load_campaign", "expand", "run_campaign", "summarize"]

_LOAD_KEYS = {"name", "mode", "gap", "frames_per_second", "speed", "burst", "max_idle",
              "line_b", "skew"}
_CONF_KEYS = {"name", "path", "strategy", "source", "poll_messages", "cut_through", "risk"}
_INPUT_KEYS = {"name", "capture", "generate", "config", "symbols"}


def load_campaign(path: str | Path) -> dict:
    """The campaign file, checked, with relative paths made absolute."""
    path = Path(path)
    with open(path, "rb") as f:
        c = tomllib.load(f)
    base = path.resolve().parent
    head = c.get("campaign", {})
    out = {"name": head.get("name", path.stem),
           "backends": list(head.get("backends", ["rtl"])),
           "parallel": int(head.get("parallel", os.cpu_count() or 1)),
           "address": head.get("address")}
    sections = {"input": c.get("input"), "load": c.get("load"),
                "config": c.get("config") or [{"name": "default"}]}
    for key, allowed in (("input", _INPUT_KEYS), ("load", _LOAD_KEYS),
                         ("config", _CONF_KEYS)):
        items = sections[key]
        if not items:
            raise ValueError(f"{path}: no [[{key}]] entries")
        out[key] = []
        for it in items:
            if "name" not in it:
                raise ValueError(f"{path}: a [[{key}]] without a name")
            if any(x["name"] == it["name"] for x in out[key]):
                raise ValueError(f"{path}: two [[{key}]] named {it['name']!r}")
            extra = set(it) - allowed
            if extra:
                raise ValueError(f"{path}: [[{key}]] {it['name']!r}: unknown keys "
                                 f"{sorted(extra)} (known: {sorted(allowed)})")
            it = dict(it)
            for k in ("capture", "config", "path"):
                if k in it and not Path(it[k]).is_absolute():
                    it[k] = str(base / it[k])
            out[key].append(it)
    for b in out["backends"]:
        if b not in ("rtl", "emu"):
            raise ValueError(f"{path}: back-end {b!r}: rtl or emu")
    return out


def expand(c: dict) -> list[dict]:
    """One spec per (input, load, config, back-end)."""
    return [{"run_id": f"{i['name']}.{ld['name']}.{cf['name']}.{b}", "input": i, "load": ld,
             "config": cf, "backend": b}
            for i in c["input"] for ld in c["load"] for cf in c["config"]
            for b in c["backends"]]


def run_campaign(c: dict, out: Path, *, address: str | None = None,
                 parallel: int | None = None, progress: Callable | None = None) -> list[dict]:
    """Run every spec of campaign ``c`` on Ray (``address``: a cluster; default a local Ray
    with ``parallel`` CPUs), store them under ``out``, write ``summary.parquet`` and
    ``campaign.json``; ``progress(done, total, run_id)`` after each run. Returns the runs'
    metadata in spec order (a failed run: ``run_id`` and ``error``)."""
    import ray

    from . import runs
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # inputs once, here (a generated day is written to the cache before any run reads it)
    prepared = {i["name"]: runs.prepare_input(i, out / "inputs") for i in c["input"]}
    specs = expand({**c, "input": list(prepared.values())})
    (out / "campaign.json").write_text(json.dumps({**c, "runs": specs}, indent=1))
    address = address or c.get("address")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=parallel or c["parallel"], include_dashboard=False,
                 log_to_driver=False, object_store_memory=128 << 20,
                 runtime_env={"env_vars": {k: v for k, v in os.environ.items()
                                           if k.startswith("TICKWIRE_")}})
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(runs.run)
        pending = {task.remote(s, out): s["run_id"] for s in specs}
        done: dict[str, dict] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            rid = pending.pop(ready[0])
            try:
                done[rid] = ray.get(ready[0])
            except Exception as e:      # a failed run is reported, the others go on
                cause = getattr(e, "cause", None) or e
                done[rid] = {"run_id": rid, "error": f"{type(cause).__name__}: {cause}"}
            if progress:
                progress(len(done), len(specs), rid)
    finally:
        ray.shutdown()
    metas = [done[s["run_id"]] for s in specs]
    summarize(out)
    return metas


def summarize(out: Path):
    """``summary.parquet``: every stored run's histogram rows, with the run's input, load,
    config, back-end and offered load (messages/s)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .runs import load_run
    tables = []
    for d in sorted((Path(out) / "runs").iterdir()):
        if not (d / "run.json").exists():
            continue
        meta, _, h = load_run(d)
        s = meta["spec"]
        n = h.num_rows
        for col, v in (("input", s["input"]["name"]), ("load", s["load"]["name"]),
                       ("config", s["config"]["name"]), ("backend", meta["backend"]),
                       ("offered_mps", float(meta["offered"]["messages_per_second"])),
                       ("offered_gbps", float(meta["offered"]["gbps"])),
                       ("git_commit", meta["git_commit"])):
            h = h.append_column(col, pa.array([v] * n))
        tables.append(h.drop_columns(["hdr"]))
    t = pa.concat_tables(tables) if tables else pa.table({})
    pq.write_table(t, Path(out) / "summary.parquet")
    return t
