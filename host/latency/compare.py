"""``tickwire latency compare DIR_A DIR_B``: per-stage percentile deltas of the runs two
campaign directories have in common (same run id), and a verdict for CI: a figure regressed
when its chosen percentile in B exceeds A's by more than the threshold (a fraction of A's
value and at least ``min_cycles``)."""

from __future__ import annotations

from pathlib import Path

from .hist import KEYS
from .records import FIGURES

__all__ = ["compare", "format_table"]


def _rows(d: Path) -> dict:
    from .campaign import summarize
    p = Path(d) / "summary.parquet"
    t = __import__("pyarrow.parquet", fromlist=["x"]).read_table(p) if p.exists() \
        else summarize(d)
    return {(r["run_id"], r["figure"]): r for r in t.to_pylist()}


def compare(a: Path, b: Path, *, percentile: str = "p99", threshold: float = 0.05,
            min_cycles: float = 1.0, figures=None) -> dict:
    """Deltas (B - A) of every percentile of the common (run, figure) pairs; ``regressions``:
    those whose ``percentile`` grew past ``max(threshold * A, min_cycles)`` (in the figure's
    unit). ``figures``: the figures judged (default: the stages, end-to-end and corrected)."""
    if percentile not in KEYS:
        raise ValueError(f"percentile {percentile!r}: one of {', '.join(KEYS)}")
    ra, rb = _rows(a), _rows(b)
    judged = set(figures or FIGURES + ("strategy", "write"))
    common = sorted(set(ra) & set(rb))
    if not common:
        raise ValueError(f"{a} and {b} have no run in common")
    rows, regressions = [], []
    for k in common:
        x, y = ra[k], rb[k]
        d = {"run_id": k[0], "figure": k[1], "unit": x["unit"]}
        for q in KEYS:
            d[f"{q}_a"], d[f"{q}_b"] = x[q], y[q]
            d[f"{q}_delta"] = y[q] - x[q]
        va, vb = x[percentile], y[percentile]
        d["regressed"] = bool(k[1] in judged and vb - va > max(threshold * va, min_cycles))
        rows.append(d)
        if d["regressed"]:
            regressions.append(d)
    return {"percentile": percentile, "threshold": threshold, "min_cycles": min_cycles,
            "rows": rows, "regressions": regressions,
            "only_a": sorted({r for r, _ in set(ra) - set(rb)}),
            "only_b": sorted({r for r, _ in set(rb) - set(ra)})}


def format_table(res: dict) -> str:
    """The deltas as text: per run and figure, A -> B of p50, p99, p99.9, max."""
    qs = ("p50", "p99", "p99.9", "max")
    out = [f"{'run':<44} {'figure':<13} " + " ".join(f"{q:>17}" for q in qs)]
    for d in res["rows"]:
        cells = [f"{d[f'{q}_a']:>6g}->{d[f'{q}_b']:<6g}{d[f'{q}_delta']:>+4g}" for q in qs]
        flag = "  REGRESSED" if d["regressed"] else ""
        out.append(f"{d['run_id']:<44} {d['figure']:<13} " + " ".join(
            f"{c:>17}" for c in cells) + flag)
    for side in ("only_a", "only_b"):
        if res[side]:
            out.append(f"{side}: {', '.join(res[side])}")
    return "\n".join(out)
