"""The host loop: one capture through any device, with the configured strategy.

:func:`run_device` configures the device through its register map
(:meth:`~tickwire.host.driver.Driver.apply_config`), loads the capture's frames, and runs the
strategy at poll points in stream position: before the first frame, then after the first frame
at which ``strategy.poll_messages`` more messages have been announced by the MoldUDP64 headers
(:func:`tickwire.backends.wire.poll_points`), so every back-end polls at the same input and a
replay is deterministic. What the strategy writes lands before the next frame.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from .emu.pipeline import BookRows, Orders, RunResult
from .strategies import BookView, Context, StrategyManager

__all__ = ["run_device", "orders_from_frames"]


def orders_from_frames(frames: list[bytes], names: list[str], sequence=None) -> Orders:
    """The orders of OUCH Enter Order frames (slot by symbol name, -1 when unknown)."""
    from . import ouch
    from .framing import parse_tcp_frame
    segs, fields = [], []
    for f in frames:
        seg = parse_tcp_frame(f)
        body = seg.payload if not isinstance(seg, str) else b""
        segs.append(body)
        m = ouch.decode(body[3:], "client") if len(body) > 3 else {}
        fields.append((names.index(m["symbol"]) if m.get("symbol") in names else -1,
                       0 if m.get("side") == "B" else 1, m.get("price", 0),
                       m.get("quantity", 0), m.get("user_ref_num", 0)))
    a = np.array(fields, np.int64).reshape(-1, 5)
    n = len(a)
    seq = np.zeros(n, np.uint64) if sequence is None else np.asarray(sequence, np.uint64)
    return Orders(np.full(n, -1, np.int64), a[:, 0].astype(np.int32), a[:, 1].astype(np.uint8),
                  a[:, 2], a[:, 3], a[:, 4], seq, segs, list(frames))


def run_device(device, frames: Sequence[bytes], config, *, keep_rows: bool = False,
               strategy=None, progress: Callable[[int], None] | None = None,
               check_ip_checksum: bool = True, track_sequence: bool = True,
               gaps: Sequence[int] | None = None, line_b: Sequence[bytes] | None = None,
               gaps_b: Sequence[int] | None = None, skew_b: int = 0,
               on_poll: Callable[[Context, object], None] | None = None) -> RunResult:
    """Configure ``device`` from ``config``, stream ``frames`` through it with the strategy
    (``config.strategy.kind``, or ``strategy``) polled between, and read every counter back.

    ``on_poll(ctx, outputs)``: called at every poll point, after the device's outputs since
    the previous one (:class:`~tickwire.backends.base.Outputs`) reached the book and before
    the strategy runs (a control plane follows the run there; it may write through
    ``ctx.driver``, and its writes land before the next frame like the strategy's).

    Returns the emulator's :class:`RunResult` shape: the device's order frames (with the
    fields decoded back from the OUCH), its book rows (``keep_rows``), every counter the
    device has (hardware-only ones included where it has them), the strategy's statistics."""
    from ..backends.wire import poll_points
    drv = device.driver
    t0 = time.perf_counter()
    drv.apply_config(config, check_ip_checksum=check_ip_checksum,
                     track_sequence=track_sequence)
    cap = drv.capacity()
    # (skew_b only where asked: the devices without a clock do not take it)
    device.load(frames, gaps=gaps, line_b=line_b, gaps_b=gaps_b,
                **({"skew_b": skew_b} if skew_b else {}))
    book = BookView(cap["symbols"], device.depth)
    ctx = Context(drv, config, book)
    mgr = StrategyManager(config, strategy)
    mgr.start(ctx)
    order_frames: list[bytes] = []
    order_times: list[int] = []
    order_seqs: list[int] | None = []
    rows: list[tuple] = []
    done = 0
    points = poll_points(list(frames), config.strategy.poll_messages) if len(frames) else [0]
    for k, p in enumerate(points):
        device.advance(p)
        out = device.drain()
        order_frames += out.frames
        order_times += out.frame_times
        if out.sequences is None:
            order_seqs = None
        elif order_seqs is not None:
            order_seqs += out.sequences
        if out.n_rows:
            book.update(out.rows)
            if keep_rows:
                rows.append(out.rows)
        else:
            book.update(_no_rows(device.depth))
        ctx.position = p
        if on_poll is not None:
            on_poll(ctx, out)
        if progress is not None:
            progress(p - done)
        done = p
        if k + 1 < len(points):
            mgr.poll(ctx)
    counters = device.counters()
    names = ctx.symbols()
    res_rows = None
    if keep_rows:
        if rows:
            seq, ts, slot, lv = (np.concatenate([r[i] for r in rows]) for i in range(4))
        else:
            seq, ts, slot, lv = _no_rows(device.depth)
        res_rows = BookRows(seq, ts, slot, np.full(len(seq), -1, np.int64), lv)
    wlog = np.array(ctx.writes, np.int64).reshape(-1, 9)
    res = RunResult(device.kind, names, counters, res_rows,
                    orders_from_frames(order_frames, names, order_seqs), wlog,
                    {device.kind: time.perf_counter() - t0}, device.depth,
                    order_times=order_times, input_times=list(device.input_times))
    res.signal = mgr.strategy.stats()
    return res


def _no_rows(depth: int):
    from ..backends.base import empty_rows
    return empty_rows(depth)
