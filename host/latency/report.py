"""The report of a campaign directory: ``report/index.html`` with PNG plots (matplotlib, Agg)
and ``report/report.json``, the numbers the page shows.

* ``spectrum.png``: the percentile spectrum of each stage and end to end (x: 1/(1-q), log),
  per input, of its first run;
* ``waterfall.png``: per stage, the median and p99 laid end to end (a stage's bar starts
  where the previous stage's ends; sums of percentiles, not the percentile of the sum);
* ``load.png``: end-to-end p50 and p99 (and the corrected figure) against the offered load
  (messages per second at the target clock), per input and configuration;
* ``spacing.png``: the histogram of order-to-order spacing (first beat to first beat).

Every number comes from the stored HdrHistograms (``hist.parquet``).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from . import CLOCK_MHZ, hist, ns
from .records import STAGE_NAMES

__all__ = ["render"]


def _runs(d: Path) -> list[tuple[dict, object, object]]:
    """The stored runs, in the campaign's order where ``campaign.json`` gives it."""
    from .runs import load_run
    out = [load_run(r) for r in sorted((Path(d) / "runs").iterdir())
           if (r / "run.json").exists()]
    spec = Path(d) / "campaign.json"
    if spec.exists():
        order = {s["run_id"]: i for i, s in
                 enumerate(json.loads(spec.read_text()).get("runs", []))}
        out.sort(key=lambda r: order.get(r[0]["run_id"], len(order)))
    return out


def _first_per_input(runs):
    seen, out = set(), []
    for meta, recs, h in runs:
        k = meta["spec"]["input"]["name"]
        if meta["unit"] == "cycles" and k not in seen and recs.num_rows:
            seen.add(k)
            out.append((meta, recs, h))
    return out


def render(d: str | Path) -> Path:
    """Render the report of the campaign directory ``d``; returns the HTML path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = Path(d)
    out = d / "report"
    out.mkdir(parents=True, exist_ok=True)
    runs = _runs(d)
    if not runs:
        raise ValueError(f"{d}: no stored runs")
    numbers = {}
    for meta, _, h in runs:
        numbers[meta["run_id"]] = {r["figure"]: {k: r[k] for k in ("count",) + hist.KEYS}
                                   | {"unit": r["unit"]} for r in h.to_pylist()}
    firsts = _first_per_input(runs)
    plots = []

    # percentile spectrum
    if firsts:
        fig, axes = plt.subplots(1, len(firsts), figsize=(6 * len(firsts), 4.2), squeeze=False)
        for ax, (meta, _, h) in zip(axes[0], firsts):
            rows = {r["figure"]: r for r in h.to_pylist()}
            for f in STAGE_NAMES + ("end_to_end",):
                if not rows.get(f) or not rows[f]["hdr"]:
                    continue
                hh = hist.decode(rows[f]["hdr"])
                qs = np.array([0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99])
                qs = qs[qs <= 100 * (1 - 1 / max(2, hh.get_total_count()))]
                ys = [ns(hh.get_value_at_percentile(q)) for q in qs]
                # the maximum at the last rank's position
                xs = list(1 / (1 - qs / 100)) + [hh.get_total_count()]
                ys.append(ns(hh.get_max_value()))
                ax.plot(xs, ys, marker="o", ms=3, label=f,
                        lw=2.5 if f == "end_to_end" else 1.2)
            ax.set_xscale("log")
            ax.set_xticks([1, 2, 10, 100, 1000, 10000])
            ax.set_xticklabels(["0", "50", "90", "99", "99.9", "99.99"])
            ax.set_xlabel("percentile")
            ax.set_ylabel("ns")
            ax.set_title(f"{meta['spec']['input']['name']}: {meta['spec']['load']['name']}, "
                         f"{meta['spec']['config']['name']}")
            ax.grid(alpha=.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "spectrum.png", dpi=90)
        plt.close(fig)
        plots.append(("spectrum.png", "Percentile spectrum per stage"))

        # waterfall of median and p99
        fig, axes = plt.subplots(1, len(firsts), figsize=(6 * len(firsts), 3.6), squeeze=False)
        for ax, (meta, _, h) in zip(axes[0], firsts):
            rows = {r["figure"]: r for r in h.to_pylist()}
            for y, q in ((1, "p50"), (0, "p99")):
                left = 0.0
                for k, f in enumerate(STAGE_NAMES):
                    w = ns(rows[f][q])
                    ax.barh(y, w, left=left, color=f"C{k}", edgecolor="k", lw=.5,
                            label=f if q == "p50" else None)
                    left += w
                ax.text(left, y, f" {left:.0f} ns", va="center", fontsize=8)
            ax.set_yticks([0, 1])
            ax.set_yticklabels(["p99", "median"])
            ax.set_xlabel("ns (stage percentiles laid end to end)")
            ax.set_title(meta["spec"]["input"]["name"])
            ax.legend(fontsize=7, ncol=3, loc="lower right")
        fig.tight_layout()
        fig.savefig(out / "waterfall.png", dpi=90)
        plt.close(fig)
        plots.append(("waterfall.png", "Stage waterfall: median and p99"))

        # order-to-order spacing
        fig, ax = plt.subplots(figsize=(7, 3.6))
        for meta, recs, _ in firsts:
            t = np.asarray(recs.column("t_order"))
            sp = ns(np.diff(t))
            if len(sp):
                ax.hist(sp, bins=np.logspace(np.log10(max(1, sp.min())),
                                             np.log10(sp.max() + 1), 40),
                        histtype="step", lw=1.5, label=meta["spec"]["input"]["name"])
        ax.set_xscale("log")
        ax.set_xlabel("order-to-order spacing (ns)")
        ax.set_ylabel("orders")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "spacing.png", dpi=90)
        plt.close(fig)
        plots.append(("spacing.png", "Order-to-order spacing"))

    # latency vs offered load
    groups: dict = {}
    for meta, _, h in runs:
        if meta["unit"] != "cycles":
            continue
        s = meta["spec"]
        rows = {r["figure"]: r for r in h.to_pylist()}
        if not rows["end_to_end"]["count"]:
            continue
        groups.setdefault((s["input"]["name"], s["config"]["name"]), []).append(
            (meta["offered"]["messages_per_second"], rows["end_to_end"], rows["corrected"]))
    if groups:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for k, (g, pts) in enumerate(sorted(groups.items())):
            pts.sort(key=lambda p: p[0])
            x = [p[0] for p in pts]
            ax.plot(x, [ns(p[1]["p50"]) for p in pts], "o-", color=f"C{k}",
                    label=f"{g[0]}/{g[1]} p50")
            ax.plot(x, [ns(p[1]["p99"]) for p in pts], "s--", color=f"C{k}",
                    label=f"{g[0]}/{g[1]} p99")
            ax.plot(x, [ns(p[2]["p99"]) for p in pts], ":", color=f"C{k}", alpha=.6,
                    label=f"{g[0]}/{g[1]} p99 corrected")
        ax.set_xscale("log")
        ax.set_xlabel("offered load (messages/s)")
        ax.set_ylabel("end-to-end ns")
        ax.grid(alpha=.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "load.png", dpi=90)
        plt.close(fig)
        plots.append(("load.png", "Latency vs offered load"))

    (out / "report.json").write_text(json.dumps({"clock_mhz": CLOCK_MHZ, "runs": numbers},
                                                indent=1))
    page = _html(runs, numbers, plots)
    (out / "index.html").write_text(page)
    return out / "index.html"


def _html(runs, numbers, plots) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>tickwire latency"
             "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:"
             "collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:"
             "right}th{background:#eee}td.l{text-align:left}</style></head><body>",
             f"<h1>tickwire latency</h1><p>{len(runs)} runs; cycles at {CLOCK_MHZ} MHz. "
             "Percentiles from HdrHistograms (3 significant digits, exact below 2048).</p>"]
    for f, title in plots:
        parts.append(f"<h2>{e(title)}</h2><img src='{e(f)}' alt='{e(title)}'>")
    parts.append("<h2>Runs</h2>")
    for meta, _, _ in runs:
        rid = meta["run_id"]
        o = meta["offered"]
        parts.append(f"<h3 id='{e(rid)}'>{e(rid)}</h3><p>{meta['orders']} orders; offered "
                     f"{o['messages_per_second']:.4g} messages/s ({o['gbps']:.3g} Gb/s); "
                     f"commit {e(meta['git_commit'])}; MAP_HASH "
                     f"{e(str(meta.get('identity', {}).get('hash', '')))}</p>")
        unit = meta["unit"]
        head = "".join(f"<th>{k}</th>" for k in hist.KEYS)
        parts.append(f"<table><tr><th>figure</th><th>count</th>{head}</tr>")
        for fig, r in numbers[rid].items():
            cells = "".join(f"<td>{_cell(r[k], unit)}</td>" for k in hist.KEYS)
            parts.append(f"<tr><td class='l'>{e(fig)}</td><td>{int(r['count'])}</td>"
                         f"{cells}</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _cell(v, unit) -> str:
    if v is None or v != v:
        return "-"
    if unit == "cycles":
        return f"{int(v)} ({ns(v):.1f} ns)"
    return f"{int(v)} ns"


def markdown(d: str | Path, run_id: str) -> str:
    """Markdown tables from a stored campaign: the stages of run ``run_id`` (the README's
    latency section), then end to end at every offered load of each input/configuration."""
    runs = _runs(Path(d))
    by_id = {m["run_id"]: (m, h) for m, _, h in runs}
    if run_id not in by_id:
        raise ValueError(f"{d}: no run {run_id!r} (runs: {', '.join(sorted(by_id))})")
    meta, h = by_id[run_id]
    rows = {r["figure"]: r for r in h.to_pylist()}
    qs = ("min", "p50", "p90", "p99", "p99.9", "max")
    out = [f"Run `{run_id}`: {meta['orders']} orders, commit `{meta['git_commit'][:12]}`; "
           f"cycles (ns at {CLOCK_MHZ:.2f} MHz).", "",
           "| stage | " + " | ".join(qs) + " |", "|---" * (len(qs) + 1) + "|"]
    for f in STAGE_NAMES + ("end_to_end",):
        r = rows[f]
        name = f"**{f}**" if f == "end_to_end" else f
        out.append(f"| {name} | " + " | ".join(f"{int(r[q])} ({ns(r[q]):.0f})" for q in qs)
                   + " |")
    out += ["", "| input | configuration | load | offered msg/s | orders | p50 | p99 | max | "
            "p99 corrected |", "|---|---|---|---|---|---|---|---|---|"]
    for m, hh in sorted(by_id.values(), key=lambda x: (x[0]["spec"]["input"]["name"],
                                                       x[0]["spec"]["config"]["name"],
                                                       x[0]["offered"]["messages_per_second"])):
        if m["unit"] != "cycles":
            continue
        rr = {r["figure"]: r for r in hh.to_pylist()}
        e, c = rr["end_to_end"], rr["corrected"]
        if not e["count"]:
            continue
        s = m["spec"]
        out.append(f"| {s['input']['name']} | {s['config']['name']} | {s['load']['name']} | "
                   f"{m['offered']['messages_per_second']:.3g} | {m['orders']} | "
                   f"{int(e['p50'])} ({ns(e['p50']):.0f}) | {int(e['p99'])} "
                   f"({ns(e['p99']):.0f}) | {int(e['max'])} ({ns(e['max']):.0f}) | "
                   f"{int(c['p99'])} ({ns(c['p99']):.0f}) |")
    return "\n".join(out)
