"""HdrHistogram summaries of a figure: cycles and nanoseconds at the target clock.

Values are recorded in integer cycles (ns for the host's slow path) at 3 significant digits:
below 2048 every value has its own bucket, so percentiles are exact; above, a percentile is
the highest value equivalent to the recorded ones (at most 0.1 % above).

A percentile is HdrHistogram's: the smallest recorded value whose cumulative count reaches
``round(p / 100 * count)`` (at least 1) — :func:`nearest_rank` computes the same from raw
values.

Coordinated omission: the feed port has no back-pressure, so the offered schedule is kept
open-loop and no sample is skipped because the device was slow; what a rate-driven run can
still hide is the time a frame waited for the line behind earlier frames when the offered
rate is above line rate. The ``corrected`` figure therefore measures each order from its
frame's *due* time in the schedule, not from when the port took it (the method of
wrk2-style load generators, rather than HdrHistogram's synthetic back-filling).
"""

from __future__ import annotations


import numpy as np
from hdrh.histogram import HdrHistogram

from . import ns

__all__ = ["PERCENTILES", "record", "summary", "nearest_rank", "encode", "decode"]

PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)
KEYS = ("min", "p50", "p90", "p99", "p99.9", "p99.99", "max")
HIGHEST = 1 << 40


def key(p: float) -> str:
    return f"p{p:g}"


def record(values) -> HdrHistogram:
    """An HdrHistogram of non-negative integer ``values``."""
    h = HdrHistogram(1, HIGHEST, 3)
    v = np.asarray(values, np.int64)
    if len(v) and v.min() < 0:
        raise ValueError("negative latency value")
    for x, c in zip(*np.unique(v, return_counts=True)):
        h.record_value(int(x), int(c))
    return h


def summary(h: HdrHistogram, unit: str = "cycles") -> dict:
    """count, mean, min, the :data:`PERCENTILES`, max (in ``unit``), and the same in ns for
    cycles."""
    n = h.get_total_count()
    out = {"count": n, "unit": unit}
    if not n:
        return out
    vals = {"min": h.get_min_value(), "max": h.get_max_value(), "mean": h.get_mean_value()}
    for p in PERCENTILES:
        vals[key(p)] = h.get_value_at_percentile(p)
    out.update(vals)
    if unit == "cycles":
        out.update({f"{k}_ns": round(ns(v), 2) for k, v in vals.items()})
    return out


def nearest_rank(values, p: float) -> int:
    """HdrHistogram's percentile definition on raw values (exact below 2048)."""
    v = np.sort(np.asarray(values, np.int64))
    rank = max(1, int(p * len(v) / 100 + 0.5))
    return int(v[min(rank, len(v)) - 1])


def encode(h: HdrHistogram) -> str:
    """The histogram in HdrHistogram's compressed base64 form (other HdrHistogram tools read
    it)."""
    b = h.encode()
    return b.decode() if isinstance(b, bytes) else str(b)


def decode(s: str) -> HdrHistogram:
    return HdrHistogram.decode(s.encode() if isinstance(s, str) else s)


