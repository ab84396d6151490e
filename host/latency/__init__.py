"""Latency characterisation: per-order stage records from a device run, offered loads, HDR
histograms, campaigns (stored runs), comparisons and reports (``tickwire latency``).

Modules: :mod:`.records` (stamps and stages of each order), :mod:`.hist` (HdrHistogram
summaries), :mod:`.runs` (one run: input x load x configuration x back-end, stored as
Parquet), :mod:`.campaign` (a TOML sweep on Ray), :mod:`.compare`, :mod:`.report`.
"""

#: the target clock the cycles convert at (25G MAC user clock)
CLOCK_MHZ = 322.265625


def ns(cycles):
    """Nanoseconds at :data:`CLOCK_MHZ` of a number of cycles."""
    return cycles * 1000.0 / CLOCK_MHZ
