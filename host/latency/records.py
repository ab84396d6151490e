"""Per-order latency records: where each order's triggering message was, stage by stage.

Stamps (harness cycles after the first frame's first beat was taken):

===========  ==========================================================================
t_due        the offered schedule's time for the frame that carried the message
             (:meth:`~tickwire.backends.base.Pacing.schedule`)
t_port       the frame's first beat was taken by the port (harness)
t_field      the beat holding the last byte of the message's trigger field was taken
             (a frame's beats follow back to back)
t_dec        the ITCH decoder handed the message to the book builder (gateware stamp;
             a cut-through order: the cycle of the strobe, the port walker's or the
             decoder's)
t_event      the trigger engine evaluated it: the trigger decision (gateware)
t_verdict    the accepted order reached the egress, a cycle after the risk verdict
             (gateware)
t_order      the order frame's first beat (gateware; equal to the harness's record)
===========  ==========================================================================

Stages are the differences of consecutive stamps from ``t_port`` on (:data:`STAGES`), so for
every order they add up to ``end_to_end`` = ``t_order - t_port``; ``line_wait`` =
``t_port - t_due`` is the time the frame waited for the line (non-zero only when the offered
rate exceeds line rate) and ``corrected`` = ``t_order - t_due`` the end-to-end figure
measured from the schedule (coordinated-omission correction: see :mod:`.hist`).

The gateware's stamps come from its free-running 32-bit cycle counter; they are placed on
the harness's clock by the offset between a record's ``t_order`` and the harness cycle of
the same order frame's first beat, which must be one constant over a run (checked).
"""

from __future__ import annotations

import numpy as np

__all__ = ["STAMPS", "STAGES", "order_records", "slow_path_records"]

STAMPS = ("t_due", "t_port", "t_field", "t_dec", "t_event", "t_verdict", "t_order")
#: (stage, from stamp, to stamp): the end-to-end path, in order
STAGES = (("wire", "t_port", "t_field"), ("feed", "t_field", "t_dec"),
          ("book", "t_dec", "t_event"), ("trigger_risk", "t_event", "t_verdict"),
          ("egress", "t_verdict", "t_order"))
STAGE_NAMES = tuple(s for s, _, _ in STAGES)
#: every figure a run's histograms are kept for
FIGURES = STAGE_NAMES + ("end_to_end", "line_wait", "corrected")


def order_records(frames: list[bytes], due: np.ndarray, input_times, order_times,
                  latency: dict, order_seqs=None, chunks=(0,), starts=None
                  ) -> dict[str, np.ndarray]:
    """Columns of one record per order frame. ``due``: the schedule (cycles after frame 0);
    ``input_times``: harness cycle each frame of line A began to be taken; ``order_times``:
    harness cycle of each order frame's first beat; ``latency``: the gateware's records
    (:func:`tickwire.backends.wire.parse_latency`), one per order frame in order;
    ``order_seqs``: the emulator's triggering sequences, checked against the gateware's;
    ``chunks``: the first frame of each stretch the host loop offered in one go (it pauses
    at its poll points): the schedule restarts from the port's time at each, as late as
    ``starts`` (the planned start of each frame, :meth:`Pacing.starts`) had that frame."""
    from ...backends.wire import message_positions
    n = len(order_times)
    if len(latency["sequence"]) != n:
        raise RuntimeError(f"{len(latency['sequence'])} latency records for {n} order frames")
    seq = latency["sequence"].astype(np.int64)
    if order_seqs is not None and not np.array_equal(seq, np.asarray(order_seqs, np.int64)):
        raise RuntimeError("the gateware's triggering sequences differ from the emulator's")
    cyc = np.asarray(latency["cycle"], np.int64)
    if not np.array_equal(cyc, np.asarray(order_times, np.int64)):
        raise RuntimeError("latency records are not in the cycles of the order frames' "
                           "first beats")
    t_order_gw = latency["t_order"].astype(np.int64)
    offset = (cyc - t_order_gw) % (1 << 32)
    if n and np.any(offset != offset[0]):
        raise RuntimeError("gateware cycle counter and harness clock drift apart")
    inputs = np.asarray(input_times, np.int64)
    t0 = int(inputs[0]) if len(inputs) else 0
    due = np.asarray(due, np.float64).copy()
    bounds = list(chunks) + [len(due)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if lo < hi:
            planned = starts[lo] if starts is not None else np.floor(due[lo] + 0.5)
            due[lo:hi] += (inputs[lo] - t0) - planned
    where = message_positions(frames)
    cols = {k: np.zeros(n, np.int64) for k in STAMPS}
    frame = np.zeros(n, np.int64)
    for i, s in enumerate(seq.tolist()):
        if s not in where:
            raise RuntimeError(f"order {i}: its message {s} is not in the input")
        k, beat = where[s]
        frame[i] = k
        cols["t_port"][i] = inputs[k] - t0
        cols["t_field"][i] = inputs[k] - t0 + beat
        cols["t_due"][i] = int(np.floor(due[k] + 0.5))
    for name in ("t_dec", "t_event", "t_verdict"):
        back = (t_order_gw - latency[name].astype(np.int64)) % (1 << 32)
        cols[name] = cyc - t0 - back
    cols["t_order"] = cyc - t0
    out = {"order": np.arange(n, dtype=np.int64), "sequence": seq, "frame": frame,
           "fast": np.asarray(latency["fast"], bool), **cols}
    for name, a, b in STAGES:
        out[name] = cols[b] - cols[a]
    out["end_to_end"] = cols["t_order"] - cols["t_port"]
    out["line_wait"] = cols["t_port"] - cols["t_due"]
    out["corrected"] = cols["t_order"] - cols["t_due"]
    bad = [k for k in FIGURES if n and out[k].min() < 0]
    if bad:
        raise RuntimeError(f"negative stage latency in {bad}: stamps out of order")
    return out


def slow_path_records(polls: list[tuple[int, int, int, int]]) -> dict[str, np.ndarray]:
    """The host loop's slow path in host time (ns): per poll that wrote triggers, (rows in the
    book view, first register write, last register write, writes): stages ``strategy``
    (book view -> first write) and ``write`` (first -> last write), ``end_to_end``."""
    a = np.array(polls, np.int64).reshape(-1, 4)
    t0 = a[0, 0] if len(a) else 0
    return {"order": np.arange(len(a), dtype=np.int64), "t_book": a[:, 0] - t0,
            "strategy": a[:, 1] - a[:, 0], "write": a[:, 2] - a[:, 1],
            "end_to_end": a[:, 2] - a[:, 0], "writes": a[:, 3]}
