"""The software pipeline: feed → book → trigger → risk → OUCH orders.

:class:`Emulator` owns the tables (:class:`~tickwire.host.emu.core.State`) and runs messages
through them; host writes of trigger rows are logged with the message index they precede.
The host loop and its strategies are host code (:mod:`tickwire.host.strategies`) that drive
this emulator, the RTL or a board the same way, through the register map
(:mod:`tickwire.backends`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..config import Config
from ...spec.capacity import ROW_DEPTH
from . import core
from .core import ASK, BID, State, pack_symbol, unpack_symbol


WRITE_COLUMNS = ("msg", "slot", "buy_price", "sell_price", "quantity", "enable_buy",
                 "enable_sell", "rearm", "ref_price")


@dataclass
class BookRows:
    """Top-N book rows: one per message that changed a tracked slot's first N levels."""
    sequence: np.ndarray   # uint64
    timestamp: np.ndarray  # uint64, ns since midnight
    slot: np.ndarray       # int32
    msg: np.ndarray        # int64, index of the message in the run
    levels: np.ndarray     # uint32 [rows, N, 4]: ask price, ask size, bid price, bid size

    def __len__(self) -> int:
        return len(self.slot)


@dataclass
class Orders:
    msg: np.ndarray
    slot: np.ndarray
    side: np.ndarray       # 0 buy, 1 sell
    price: np.ndarray
    quantity: np.ndarray
    user_ref: np.ndarray
    sequence: np.ndarray   # sequence number of the triggering message
    ouch: list[bytes] = field(default_factory=list)  # SoupBinTCP-framed Enter Orders
    frames: list[bytes] = field(default_factory=list)  # the Ethernet frames on the wire

    def __len__(self) -> int:
        return len(self.slot)


@dataclass
class _PollRows:
    slot: np.ndarray
    levels: np.ndarray


@dataclass
class RunResult:
    backend: str
    symbols: list[str]
    counters: dict[str, int]
    rows: BookRows | None
    orders: Orders
    writes: np.ndarray                 # host-write log, columns WRITE_COLUMNS
    timings: dict[str, float]
    depth: int
    signal: dict | None = None   # model strategy: slow-path statistics
    #: device time of each order frame's first byte, and of each input frame's first beat
    #: (a device run: cycles on the RTL, message index on the emulator)
    order_times: list | None = None
    input_times: list | None = None

    def summary(self) -> dict:
        c = self.counters
        rejects = {k[len("reject_"):]: v for k, v in c.items() if k.startswith("reject_")}
        return {
            "backend": self.backend,
            "messages": c.get("messages", 0),
            "packets": c.get("packets", 0),
            "gaps": c.get("gaps", 0),
            "gap_messages": c.get("gap_messages", 0),
            "book_updates": c.get("book_updates", 0),
            "triggers_fired": c.get("triggers_fired", 0),
            "orders": c.get("orders_sent", 0),
            "risk_rejects": rejects,
            "trigger_writes": int(len(self.writes)),
            "symbols": len(self.symbols),
            "counters": c,
            "seconds": {k: round(v, 6) for k, v in self.timings.items()},
            **({"signal": self.signal} if self.signal is not None else {}),
        }


def _empty_rows(depth: int) -> BookRows:
    return BookRows(np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.int32),
                    np.zeros(0, np.int64), np.zeros((0, depth, 4), np.uint32))


class _RowSink:
    """Row arrays :func:`core.replay` writes in place, grown (doubling) before each call;
    ``rows()`` hands out views of them, so kept rows are written once and never copied.

    With ``out`` (a :class:`~tickwire.host.bookout.BookWriter`) the rows are streamed instead:
    ``capacity`` is then the most rows one call emits, and :meth:`flush` lends them to ``out``
    after each call while the next call fills a second set of arrays; so two calls' rows at
    most are ever held, and none is copied. A ``columnar`` writer gets the levels laid out
    column by column (``[4N, capacity]``, seen as ``[rows, N, 4]``), which it takes as they
    are."""

    def __init__(self, depth: int, capacity: int, out=None):
        self.depth, self.n, self.out = depth, 0, out
        # the column length of column-laid levels (0: row by row); the arrays never grow then
        self.lv_cols = capacity if out is not None and getattr(out, "columnar", False) else 0
        self._alloc(capacity if depth > 0 else 0)
        self._lent = self.arrays()   # streamed: the set ``out`` may still be writing
        if out is not None:
            self._alloc(capacity if depth > 0 else 0)

    def _alloc(self, cap: int) -> None:
        self.msg, self.seq, self.ts = (np.empty(cap, np.int64), np.empty(cap, np.uint64),
                                       np.empty(cap, np.uint64))
        self.slot = np.empty(cap, np.int32)
        self.levels = np.empty(cap * self.depth * 4, np.uint32)

    def reserve(self, more: int) -> None:
        """Room for ``more`` rows after the ``n`` written."""
        cap = len(self.msg)
        if self.depth == 0 or self.n + more <= cap:
            return
        if self.lv_cols:
            raise ValueError(f"{more} rows for a streamed sink of {cap}")
        old, n, w = (self.msg, self.seq, self.ts, self.slot, self.levels), self.n, self.depth * 4
        self._alloc(max(2 * cap, n + more))
        for dst, src, per in zip((self.msg, self.seq, self.ts, self.slot, self.levels), old,
                                 (1, 1, 1, 1, w)):
            dst[:n * per] = src[:n * per]

    def arrays(self) -> tuple:
        return self.msg, self.seq, self.ts, self.slot, self.levels

    def rows(self) -> BookRows:
        n, w = self.n, self.depth * 4
        if self.lv_cols:
            lv = self.levels.reshape(w, self.lv_cols)[:, :n].T.reshape(n, self.depth, 4)
        else:
            lv = self.levels[:n * w].reshape(n, self.depth, 4)
        return BookRows(self.seq[:n], self.ts[:n], self.slot[:n], self.msg[:n], lv)

    def flush(self, symbols: list[str]) -> None:
        """Streamed: hand the rows written so far to ``out`` and start again from none."""
        if self.out is not None and self.n:
            # the writer is done with the set lent last time once this call returns
            self.out.write(self.rows(), symbols, lend=True)
            (self.msg, self.seq, self.ts, self.slot, self.levels), self._lent = \
                self._lent, self.arrays()
            self.n = 0


def messages_buffer(msgs: list[bytes]):
    """Concatenate bare messages: (data uint8 array, offsets int64, sequences uint64 from 1)."""
    lens = np.array([len(m) for m in msgs], np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    data = np.frombuffer(b"".join(msgs), np.uint8).copy()
    return data, offs, np.arange(1, len(msgs) + 1, dtype=np.uint64)


def timestamps_at(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """ITCH timestamps (6 bytes at offset 5) of the messages at ``offsets``."""
    ts = np.zeros(len(offsets), np.uint64)
    for b in range(6):
        ts = (ts << np.uint64(8)) | data[offsets + 5 + b].astype(np.uint64)
    return ts


class Emulator:
    """Bit-exact software model of the FPGA pipeline.

    Host writes are scheduled with :meth:`write_trigger` (before a message index) or, between
    chunks, by ``host(emu, msg, rows)``: called at every poll point (message 0 and every
    ``strategy.poll_messages``) with the top-N rows since the previous poll. The strategies
    themselves are host code (:mod:`tickwire.host.strategies`) that drive any back-end through
    the register map; :class:`tickwire.backends.emu.EmuDevice` puts this class behind it."""

    def __init__(self, config: Config | None = None, depth: int = 0,
                 host: Callable | None = None):
        self.config = cfg = (config or Config()).validate()
        if not 0 <= depth <= cfg.capacity.levels:
            raise ValueError(f"depth={depth}: must be 0..capacity.levels={cfg.capacity.levels}")
        self.depth = depth
        self.host = host
        c = cfg.capacity
        self.state = st = State(c.symbols, c.order_buckets, c.order_ways, c.levels)
        self.bits = int(c.order_buckets).bit_length() - 1
        self.way_bits = int(c.order_ways).bit_length() - 1
        if cfg.symbols:
            for i, name in enumerate(cfg.symbols):
                st.names[i] = pack_symbol(name)
            st.n_names[0] = len(cfg.symbols)
        else:
            st.auto[0] = 1
        st.wire[0] = int(cfg.strategy.source == "wire")
        r = cfg.risk
        st.risk_params[:] = [int(getattr(r, p)) for p in core.RISK_PARAMS]
        st.risk_slot[:, 0] = 1
        st.risk_slot[:, 2] = r.max_long
        st.risk_slot[:, 3] = r.max_short
        st.sym_bucket[:, 0] = r.symbol_burst
        st.risk_global[core.G_TOKENS] = r.global_burst
        st.risk_global[core.G_USER_REF] = cfg.orders.first_user_ref
        self._disabled = {pack_symbol(s) for s in r.disabled}
        self._risk_names_seen = 0
        self.writes: list[list[int]] = []
        self._tcp_seq = cfg.session.seq & 0xFFFFFFFF
        self._ip_id = cfg.session.ip_id & 0xFFFF

    # -------------------------------------------------------------- host writes
    def symbols(self) -> list[str]:
        st = self.state
        return [unpack_symbol(v) for v in st.names[:st.n_names[0]]]

    def bbo(self) -> np.ndarray:
        """Best (bid price, bid size, ask price, ask size) per slot, 0 where empty."""
        t = self.state.top(1)[:, 0]
        return t[:, [2, 3, 0, 1]]

    def write_trigger(self, msg: int, slot: int, buy_price: int, sell_price: int, quantity: int,
                      enable_buy: bool = True, enable_sell: bool = True, rearm: int | None = None,
                      ref_price: int = -1) -> None:
        """Schedule a host write of a slot's trigger row before message ``msg``."""
        if rearm is None:
            rearm = self.config.strategy.rearm
        self.writes.append([msg, slot, buy_price, sell_price, quantity, int(enable_buy),
                            int(enable_sell), rearm, ref_price])

    def _poll(self, msg: int, rows=None) -> None:
        """The host's work between chunks: the risk enable of ``risk.disabled`` names as the
        book learns them, then the ``host`` hook. ``rows``: the top-N rows emitted since the
        previous poll."""
        st = self.state
        n = int(st.n_names[0])
        if n > self._risk_names_seen and self._disabled:
            for i in range(self._risk_names_seen, n):
                if int(st.names[i]) in self._disabled:
                    st.risk_slot[i, 0] = 0
        self._risk_names_seen = n
        if self.host is not None and n:
            self.host(self, msg, rows)

    # -------------------------------------------------------------- running
    def _buffers(self, chunk: int, keep_rows: bool):
        depth = self.depth
        cap = chunk if (depth > 0 and keep_rows) else 0
        return (np.zeros(cap, np.int64), np.zeros(cap, np.uint64), np.zeros(cap, np.uint64),
                np.zeros(cap, np.int32), np.zeros((cap, max(depth, 1), 4), np.uint32),
                np.zeros((2 * chunk, 8), np.int64))

    def _chunk(self, data, offsets, sequences, first, bufs, parts_rows, parts_orders):
        """Process one chunk; message ``first + k`` is ``offsets[k]``."""
        st = self.state
        w = np.array(self.writes[self._w_done:], np.int64).reshape(-1, 9)
        self._w_done = len(self.writes)
        row_msg, row_seq, row_ts, row_slot, row_levels, order_out = bufs
        nr, no = core.process(
            data, offsets, sequences, first, w, self.depth, 0, 0,
            st.names, st.n_names, st.auto, st.locate_slot,
            st.orders, self.bits, self.way_bits,
            st.lv, st.lv_n, st.trading_state,
            st.last_trade, st.trig, st.armed, st.risk_params, st.risk_slot, st.position,
            st.sym_bucket, st.dup, st.risk_global, st.counters,
            row_msg, row_seq, row_ts, row_slot, row_levels, order_out, st.wire)
        if nr:
            parts_rows.append((row_msg[:nr] + first, row_seq[:nr].copy(), row_ts[:nr].copy(),
                               row_slot[:nr].copy(), row_levels[:nr, :self.depth].copy()))
        if no:
            o = order_out[:no].copy()
            o[:, 0] += first
            parts_orders.append(o)

    def _result(self, parts_rows, parts_orders, keep_rows, n, feed_counters, backend, t_book,
                sink: _RowSink | None = None, out=None):
        """The run's result; streamed (``out``, or ``sink.out``): ``rows`` is None and the
        time spent writing rows is reported apart from the book's."""
        t0 = time.perf_counter()
        depth = self.depth
        rows = None
        if out is None and sink is not None:
            out = sink.out
        if out is not None:
            t_book -= out.waited   # the book's time: the run's, less its waits on the writer
            self._drain(parts_rows, out)
            out.sync()
        elif depth > 0 and keep_rows:
            if sink is not None:
                rows = sink.rows()
            elif parts_rows:
                rows = BookRows(*(np.concatenate([p[i] for p in parts_rows]) for i in (1, 2, 3)),
                                np.concatenate([p[0] for p in parts_rows]),
                                np.concatenate([p[4] for p in parts_rows]))
            else:
                rows = _empty_rows(depth)
        orders = self._orders(np.concatenate(parts_orders) if parts_orders
                              else np.zeros((0, 8), np.int64))
        counters = dict(feed_counters or {})
        counters.setdefault("messages", n)
        counters.update(self.state.counter_dict())
        timings = {"book_trigger_risk": t_book, "output": time.perf_counter() - t0}
        if out is not None:   # the writer's own time (it overlaps the book's) and the waits
            timings.update(write_rows=out.seconds, write_rows_cpu=out.cpu_seconds,
                           write_wait=out.waited)
        return RunResult(backend, self.symbols(), counters, rows, orders,
                         np.array(self.writes, np.int64).reshape(-1, 9), timings, depth)

    def _drain(self, parts_rows, out) -> None:
        """Streamed: hand the rows of ``parts_rows`` (as :meth:`_chunk` appends them) to
        ``out`` and forget them."""
        names = self.symbols() if parts_rows else []
        for msg, seq, ts, slot, levels in parts_rows:   # fresh copies: lent, not copied again
            out.write(BookRows(seq, ts, slot, msg, levels), names, lend=True)
        del parts_rows[:]

    def _chunk_size(self, chunk):
        cfg = self.config
        if chunk is None:
            chunk = cfg.strategy.poll_messages if cfg.strategy.kind != "none" else 1 << 16
        return max(1, min(chunk, 1 << 18))

    def pure_replay(self) -> bool:
        """True when a run is the book stage alone: strategy "none", no host write logged and
        no trigger enabled. Such a run goes through :func:`core.replay`, the book-only kernel,
        which then gives exactly :func:`core.process`'s result."""
        st = self.state
        return (self.config.strategy.kind == "none" and not self.writes
                and not st.trig[:, 3:5].any())

    def _replay(self, data, offsets, sequences, count, first, sink: _RowSink) -> None:
        """The book-only kernel on ``offsets[:count]`` (messages ``first``...)."""
        st = self.state
        sink.reserve(count)
        sink.n = core.replay(
            data, offsets, sequences, count, first, self.depth,
            st.names, st.n_names, st.auto, st.locate_slot,
            st.orders.reshape(-1), self.bits, self.way_bits,
            st.lv.reshape(-1), st.levels, st.lv_n.reshape(-1), st.trading_state,
            st.last_trade, st.counters, *sink.arrays(), sink.n,
            np.zeros((max(self.depth, 1), 2), np.int64), sink.lv_cols)
        if sink.out is not None and sink.n:
            sink.flush(self.symbols())

    def run(self, data: np.ndarray, offsets: np.ndarray, sequences: np.ndarray,
            feed_counters: dict | None = None, *, keep_rows: bool = True,
            progress: Callable[[int], None] | None = None, backend: str = "emu",
            chunk: int | None = None, replay_kernel: bool = True, out=None) -> RunResult:
        """Process the messages at ``offsets`` (type bytes into ``data``).

        ``out``: a :class:`~tickwire.host.bookout.BookWriter` the rows are streamed to, chunk
        by chunk, instead of being kept (``rows`` is then None).

        A pure replay (:meth:`pure_replay`) runs the book-only kernel unless
        ``replay_kernel=False`` (the general kernel: same result, for tests)."""
        offsets = np.ascontiguousarray(offsets, np.int64)
        sequences = np.ascontiguousarray(sequences, np.uint64)
        n = len(offsets)
        chunk = self._chunk_size(chunk)
        if replay_kernel and self.pure_replay():
            data = np.ascontiguousarray(data, np.uint8)
            sink = _RowSink(self.depth if keep_rows else 0, n if out is None else chunk, out)
            t0 = time.perf_counter()
            self._poll(0)
            for start in range(0, n, chunk):
                stop = min(n, start + chunk)
                self._replay(data, offsets[start:stop], sequences[start:stop], stop - start,
                             start, sink)
                if stop < n:
                    self._poll(stop)
                if progress is not None:
                    progress(stop - start)
            return self._result([], [], keep_rows, n, feed_counters, backend,
                                time.perf_counter() - t0, sink)
        model = self.host is not None and self.depth > 0   # the hook gets each poll's rows
        bufs = self._buffers(chunk, keep_rows or model)
        parts_rows, parts_orders = [], []
        t0 = time.perf_counter()
        self._w_done = 0
        self._poll(0)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            had = len(parts_rows)
            self._chunk(data, offsets[start:stop], sequences[start:stop], start, bufs,
                        parts_rows, parts_orders)
            if stop < n:
                new = parts_rows[had:]
                self._poll(stop, _PollRows(new[0][3], new[0][4]) if new else None)
            if model and not keep_rows:
                del parts_rows[:]
            if out is not None:
                self._drain(parts_rows, out)
            if progress is not None:
                progress(stop - start)
        res = self._result(parts_rows, parts_orders, keep_rows, n, feed_counters, backend,
                           time.perf_counter() - t0, out=out)
        return res

    def _parallel_setup(self, threads: int, chunk: int, keep_rows: bool):
        """Per-thread copies of what threads may not share: symbol table, order table,
        counters and output buffers. Slots are split by ``slot & (threads - 1)``."""
        st = self.state
        self._par = [dict(names=st.names.copy(), n_names=st.n_names.copy(),
                          locate_slot=st.locate_slot.copy(),
                          orders=st.orders if p == 0 else np.zeros_like(st.orders),
                          counters=np.zeros_like(st.counters),
                          bufs=self._buffers(chunk, keep_rows), rows=[], orders_out=[])
                     for p in range(threads)]
        from concurrent.futures import ThreadPoolExecutor
        self._pool = ThreadPoolExecutor(threads)

    def _chunk_parallel(self, data, offsets, sequences, first):
        st = self.state
        w = np.zeros((0, 9), np.int64)
        mask = len(self._par) - 1

        def work(p):
            t = self._par[p]
            row_msg, row_seq, row_ts, row_slot, row_levels, order_out = t["bufs"]
            nr, _ = core.process(
                data, offsets, sequences, first, w, self.depth, p, mask,
                t["names"], t["n_names"], st.auto, t["locate_slot"],
                t["orders"], self.bits, self.way_bits,
                st.lv, st.lv_n, st.trading_state,
                st.last_trade, st.trig, st.armed, st.risk_params, st.risk_slot, st.position,
                st.sym_bucket, st.dup, st.risk_global, t["counters"],
                row_msg, row_seq, row_ts, row_slot, row_levels, order_out, st.wire)
            if nr:
                t["rows"].append((row_msg[:nr] + first, row_seq[:nr].copy(), row_ts[:nr].copy(),
                                  row_slot[:nr].copy(), row_levels[:nr, :self.depth].copy()))
        list(self._pool.map(work, range(len(self._par))))

    def _parallel_finish(self, parts_rows) -> bool:
        """Fold the threads' state back; False when an order table filled up (the split
        tables would then differ from the single one) or when two threads hold orders in the
        same entry (one table cannot take both as they are): the caller reruns sequentially."""
        st = self.state
        self._pool.shutdown()
        par, self._par = self._par, None
        full = core.COUNTER_NAMES.index("order_table_full")
        if any(t["counters"][full] for t in par):
            return False
        taken = np.zeros(len(st.orders), bool)
        used = []
        for t in par:
            u = (t["orders"][:, core.OT_META] & np.uint64(1)).astype(bool)
            if np.any(taken & u):
                return False
            taken |= u
            used.append(np.nonzero(u)[0])
        t0 = par[0]
        st.names[:], st.n_names[:], st.locate_slot[:] = t0["names"], t0["n_names"], \
            t0["locate_slot"]
        over = core.COUNTER_NAMES.index("symbol_overflow")
        total = sum(t["counters"] for t in par)
        total[over] = t0["counters"][over]   # every thread learns the same symbols
        st.counters += total
        for t, u in zip(par[1:], used[1:]):  # one order table again (no entry collides)
            st.orders[u] = t["orders"][u]
        rows = [r for t in par for r in t["rows"]]
        if rows:
            msg = np.concatenate([r[0] for r in rows])
            order = np.argsort(msg, kind="stable")
            parts_rows.append(tuple(np.concatenate([r[i] for r in rows])[order]
                                    for i in range(5)))
        return True

    def run_binaryfile(self, path: str | Path, *, keep_rows: bool = True,
                       progress: Callable[[int], None] | None = None,
                       chunk_bytes: int = 4 << 20, threads: int = 1,
                       replay_kernel: bool = True, read_ahead: bool = True,
                       out=None) -> RunResult:
        """Stream a BinaryFILE (optionally gzip) through the pipeline in ``chunk_bytes`` reads.

        Same result as indexing the whole file first, in a small, cache-resident working set:
        a whole-day file is never held in memory. A pure replay (:meth:`pure_replay`) runs the
        book-only kernel on each read (``replay_kernel=False``: the general kernel) while, with
        ``read_ahead``, a second thread reads the next; or with ``threads`` > 1 it splits the
        slots over that many threads running the general kernel. The result is the same every
        way. ``out``: stream the rows to this :class:`~tickwire.host.bookout.BookWriter` as
        the run goes (``rows`` is then None; one thread, since a split run may have to start
        again and written rows cannot be taken back).
        """
        if threads not in (1, 2, 4, 8):
            raise ValueError(f"threads={threads}: 1, 2, 4 or 8")
        pure = self.pure_replay()
        if not pure or self.state.counters.any() or out is not None:
            threads = 1  # host writes and risk state are global: one thread
        if threads > 1:
            res = self._run_binaryfile(path, keep_rows, progress, chunk_bytes, threads)
            if res is not None:
                return res
            # an order table filled up: start again from fresh tables, on one thread
            self.__init__(self.config, self.depth, self.host)
        if pure and replay_kernel:
            return self._replay_binaryfile(path, keep_rows, progress, chunk_bytes, read_ahead,
                                           out)
        return self._run_binaryfile(path, keep_rows, progress, chunk_bytes, 1, out)

    def _replay_binaryfile(self, path, keep_rows, progress, chunk_bytes, read_ahead,
                           out=None):
        """Pure replay of a BinaryFILE: each read is walked into a message index, then run
        through the book-only kernel, which writes the kept rows straight into their final
        arrays. With ``read_ahead`` a second thread reads and walks the next read (into the
        other of two buffers) while the kernel runs on this one; the walk and the kernel
        release the GIL."""
        from concurrent.futures import ThreadPoolExecutor
        from .feed import walk_binaryfile_chunk
        from ..capture import open_binaryfile
        kmax = chunk_bytes // 14 + 1  # the shortest record is 2 + 12 bytes
        sink = _RowSink(self.depth if keep_rows else 0, 4 * kmax if out is None else kmax, out)
        bufs = [(np.empty(chunk_bytes + 65538, np.uint8), np.empty(kmax, np.int64),
                 np.empty(kmax, np.uint64)) for _ in range(2 if read_ahead else 1)]
        skipped = np.zeros(2, np.int64)  # unknown type, bad length
        rec = pos = 0  # records walked, bytes walked

        def fill(i, carry):
            """Read into buffer ``i`` after ``carry`` (the unwalked tail of the previous read:
            (buffer, start, end)) and walk it: (bytes read, bytes held, messages, bytes
            walked)."""
            nonlocal rec, pos
            buf, offs, seqs = bufs[i]
            c = 0
            if carry is not None:
                src, lo, hi = carry
                c = hi - lo
                buf[:c] = src[lo:hi]
            got = f.readinto(memoryview(buf)[c:c + chunk_bytes])
            end = c + got
            if end == 0:
                return 0, 0, 0, 0
            k, used, rec = walk_binaryfile_chunk(buf[:end], offs, seqs, rec, skipped)
            if got == 0 and used < end:
                raise ValueError(f"{path}: offset {pos + used}: truncated BinaryFILE record "
                                 f"(after {rec} records)")
            pos += used
            return got, end, k, used

        n, i, carry = 0, 0, None
        t0 = time.perf_counter()
        self._poll(0)
        with open_binaryfile(path) as f, ThreadPoolExecutor(1) as pool:
            nxt = pool.submit(fill, 0, None) if read_ahead else None
            while True:
                got, end, k, used = nxt.result() if read_ahead else fill(0, carry)
                if end == 0:
                    break
                buf, offs, seqs = bufs[i]
                carry = (buf, used, end)
                if read_ahead and got:
                    # the other buffer's kernel run has finished: read into it meanwhile
                    i ^= 1
                    nxt = pool.submit(fill, i, carry)
                self._replay(buf, offs, seqs, k, n, sink)
                n += k
                if progress is not None:
                    progress(k)
                if got == 0:
                    break
        fc = {"messages": n, "unknown_type": int(skipped[0]), "bad_length": int(skipped[1])}
        return self._result([], [], keep_rows, n, fc, "emu", time.perf_counter() - t0, sink)

    def _run_binaryfile(self, path, keep_rows, progress, chunk_bytes, threads, out=None):
        from .feed import walk_binaryfile_chunk
        from ..capture import open_binaryfile
        chunk = self._chunk_size(None)
        bufs = self._buffers(chunk, keep_rows)
        parts_rows, parts_orders = [], []
        buf = np.empty(chunk_bytes + 65538, np.uint8)
        offs = np.empty(chunk_bytes // 14 + 1, np.int64)
        seqs = np.empty(chunk_bytes // 14 + 1, np.uint64)
        carry, rec, n, pos = 0, 0, 0, 0
        skipped = np.zeros(2, np.int64)  # unknown type, bad length
        t0 = time.perf_counter()
        self._w_done = 0
        self._poll(0)
        if threads > 1:
            self._parallel_setup(threads, chunk, keep_rows)
        with open_binaryfile(path) as f:
            while True:
                got = f.readinto(memoryview(buf)[carry:carry + chunk_bytes])
                end = carry + got
                if end == 0:
                    break
                k, used, rec = walk_binaryfile_chunk(buf[:end], offs, seqs, rec, skipped)
                if got == 0 and used < end:
                    raise ValueError(f"{path}: offset {pos + used}: truncated BinaryFILE "
                                     f"record (after {rec} records)")
                for a in range(0, k, chunk):
                    b = min(k, a + chunk)
                    if threads > 1:
                        self._chunk_parallel(buf, offs[a:b], seqs[a:b], n + a)
                        continue
                    self._chunk(buf, offs[a:b], seqs[a:b], n + a, bufs, parts_rows,
                                parts_orders)
                    if self.config.strategy.kind != "none":
                        self._poll(n + b)
                    if out is not None:
                        self._drain(parts_rows, out)
                n += k
                if progress is not None:
                    progress(k)
                buf[:end - used] = buf[used:end]
                carry = end - used
                pos += used
                if got == 0:
                    break
        if threads > 1 and not self._parallel_finish(parts_rows):
            return None
        fc = {"messages": n, "unknown_type": int(skipped[0]), "bad_length": int(skipped[1])}
        return self._result(parts_rows, parts_orders, keep_rows, n, fc, "emu",
                            time.perf_counter() - t0, out=out)

    def _orders(self, o: np.ndarray) -> Orders:
        names = self.symbols()
        out = Orders(o[:, 0], o[:, 1].astype(np.int32), o[:, 2].astype(np.uint8), o[:, 3],
                     o[:, 4], o[:, 5], o[:, 6].astype(np.uint64))
        if not len(o):
            return out
        from .. import ouch, soupbintcp
        from ..framing import build_tcp_frame
        cap = self.config.orders.capacity
        t = self.config.session
        for i in range(len(o)):
            payload = ouch.enter_order(int(o[i, 5]), "B" if o[i, 2] == BID else "S",
                                       int(o[i, 4]), names[o[i, 1]], int(o[i, 3]),
                                       capacity=cap)
            seg = soupbintcp.frame("U", payload)
            out.ouch.append(seg)
            out.frames.append(build_tcp_frame(
                seg, src_mac=t.src_mac, dst_mac=t.dst_mac, src_ip=t.src_ip, dst_ip=t.dst_ip,
                src_port=t.src_port, dst_port=t.dst_port, seq=self._tcp_seq, ack=t.ack,
                window=t.window, flags="PA", vlan=None if t.vlan < 0 else t.vlan, ttl=t.ttl,
                ip_id=self._ip_id))
            self._tcp_seq = (self._tcp_seq + len(seg)) & 0xFFFFFFFF
            self._ip_id = (self._ip_id + 1) & 0xFFFF
        return out


# ------------------------------------------------------------------ sources
@dataclass
class Source:
    """Messages of a capture or BinaryFILE, indexed and ready for the pipeline."""
    path: str
    format: str
    data: np.ndarray
    offsets: np.ndarray
    sequences: np.ndarray
    counters: dict
    seconds: float
    session: str = ""


def load_source(path: str | Path, groups: list[str] | None = None, *,
                track_sequence: bool = True, check_ip_checksum: bool = True) -> Source:
    """Read and index a pcap/pcapng capture or a NASDAQ BinaryFILE (optionally gzip).

    ``groups``: "a.b.c.d:port" strings of the feed filter (empty: every group);
    ``track_sequence=False`` delivers every packet's messages (no gap/duplicate handling) and
    ``check_ip_checksum=False`` accepts anonymised captures whose addresses were zeroed.
    """
    from .. import capture
    from . import feed
    t0 = time.perf_counter()
    fmt = capture.sniff_format(path)
    if fmt == "binaryfile":
        idx = feed.index_binaryfile_bytes(capture.load_bytes(path), str(path))
    else:
        frames = capture.read_capture(path)
        pairs = [(g.rsplit(":", 1)[0], int(g.rsplit(":", 1)[1])) for g in groups or []]
        idx = feed.index_frames(frames, pairs or None, track_sequence=track_sequence,
                                 check_ip_checksum=check_ip_checksum)
    return Source(str(path), fmt, idx.data, idx.offsets, idx.sequences, dict(idx.counters),
                  time.perf_counter() - t0, idx.session)


def run_source(src: Source, config: Config | None = None, depth: int = 0, **kw) -> RunResult:
    emu = Emulator(config, depth, host=kw.pop("host", None))
    res = emu.run(src.data, src.offsets, src.sequences, src.counters, **kw)
    res.timings = {"feed": src.seconds, **res.timings}
    return res


def replay(path_or_source, symbols: list[str] | None = None, depth: int = ROW_DEPTH,
           config: Config | None = None, **kw) -> RunResult:
    """Rebuild books (no strategy) and return the top-``depth`` rows of every change.

    A BinaryFILE path is streamed (:meth:`Emulator.run_binaryfile`: ``kw`` are its options),
    so a whole day is never held; with ``out=`` a :class:`~tickwire.host.bookout.BookWriter`
    the rows are not held either. Other inputs are indexed first (``kw``: :meth:`Emulator.run`).
    """
    cfg = config or Config()
    cfg.strategy.kind = "none"
    if symbols is not None:
        cfg.symbols = list(symbols)
        cfg.capacity.symbols = max(cfg.capacity.symbols, len(symbols))
    if not isinstance(path_or_source, Source):
        from ..capture import sniff_format
        if sniff_format(path_or_source) == "binaryfile":
            return Emulator(cfg, depth).run_binaryfile(path_or_source, **kw)
    src = path_or_source if isinstance(path_or_source, Source) else load_source(
        path_or_source, cfg.feed.groups)
    return run_source(src, cfg, depth, **kw)
