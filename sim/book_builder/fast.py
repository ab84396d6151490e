"""The book builder alone on the fast Verilator harness (:mod:`tickwire.sim.fastsim`), for
days too long for the cocotb bench: decoded messages in, top-N rows out, the book counters
read at the end and, with the order table off chip, the AXI memory model serving ``mem``.

:func:`decoded_records` turns ITCH messages into ``DecodedMessage`` payloads column-wise (the
layout's fields are whole bytes, so a packed little-endian numpy record is the payload);
:func:`run_book` runs them in auto mode (slots learned from the feed, as the emulator's
``Config(symbols=[])``) and returns the rows as numpy columns, comparable with the emulator's
``rows``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tickwire.host import itch
from tickwire.spec.capacity import ROW_DEPTH

from .. import fastsim
from .gen import _MAP, BOOK_COUNTERS

__all__ = ["DECODED", "decoded_records", "book_harness", "run_book"]

#: ``DecodedMessage`` (hw/layouts.py) as a packed record: field, numpy type, bytes
_FIELDS = (("type", "u1", 1), ("locate", "<u2", 2), ("timestamp", "<u8", 6),
           ("sequence", "<u8", 8), ("ref", "<u8", 8), ("new_ref", "<u8", 8), ("side", "u1", 1),
           ("shares", "<u4", 4), ("price", "<u4", 4), ("stock", "<u8", 8), ("state", "u1", 1))
DECODED = sum(n for _, _, n in _FIELDS)


def _column(block: np.ndarray, offset: int, size: int) -> np.ndarray:
    """Big-endian integers of ``size`` bytes at ``offset`` of each row of ``block``."""
    v = np.zeros(len(block), np.uint64)
    for k in range(size):
        v = (v << np.uint64(8)) | block[:, offset + k].astype(np.uint64)
    return v


def decoded_records(msgs: list[bytes]) -> np.ndarray:
    """(n, DECODED) uint8: the payload of each message (sequence = 1-based position)."""
    n = len(msgs)
    cols = {name: np.zeros(n, np.uint64) for name, _, _ in _FIELDS}
    cols["sequence"] = np.arange(1, n + 1, dtype=np.uint64)
    types = np.frombuffer(b"".join(m[:1] for m in msgs), np.uint8)
    cols["type"] = types.astype(np.uint64)
    for t in np.unique(types):
        spec = itch.MESSAGES[chr(t)]
        idx = np.flatnonzero(types == t)
        block = np.frombuffer(b"".join(msgs[i] for i in idx), np.uint8).reshape(len(idx), -1)
        cols["locate"][idx] = _column(block, 1, 2)
        cols["timestamp"][idx] = _column(block, 5, 6)
        fmap = dict(_MAP.get(chr(t), {}))
        if "stock" not in fmap and any(f.name == "stock" for f in spec.fields):
            fmap["stock"] = "stock"
        for f in spec.fields:
            dst = fmap.get(f.name)
            if dst is not None:
                v = _column(block, f.offset, f.size)
                cols[dst][idx] = v & np.uint64(0xFFFF_FFFF) if dst == "shares" else v
    out = np.zeros((n, DECODED), np.uint8)
    at = 0
    for name, _, size in _FIELDS:
        v = cols[name]
        for k in range(size):
            out[:, at + k] = ((v >> np.uint64(8 * k)) & np.uint64(0xFF)).astype(np.uint8)
        at += size
    return out


@lru_cache(maxsize=4)
def book_harness(**params) -> fastsim.Harness:
    """The harness of ``BookBuilder(**params)`` (auto mode; with ``order_memory="offchip"``
    the AXI memory model on ``mem``, sized for the table)."""
    from amaranth.back import verilog

    from tickwire.hw.book import BookBuilder
    from tickwire.hw.book.layouts import book_update_layout
    from tickwire.hw.report import component_ports

    probe = BookBuilder(**params)
    probe._MustUse__silence = True     # asked for its ports only
    depth = probe.depth
    axi = []
    if probe.order_memory == "offchip":
        sig = probe.mem.signature
        axi = [fastsim.AxiPort("mem", sig.addr_width, sig.data_width, 1,
                               probe.order_memory_bytes)]
    statics = {"auto": 1}
    if axi:
        statics["mem_base"] = sig.addr_width

    def to_verilog():
        top = BookBuilder(**params)
        return verilog.convert(top, name="book_builder", emit_src=False,
                               ports=component_ports(top))

    key = fastsim.source_key("book_builder", sorted(params.items()))
    return fastsim.Harness(
        "book_builder", to_verilog,
        inputs=[fastsim.StreamPort("i", DECODED * 8)],
        outputs=[fastsim.StreamPort("o", book_update_layout(depth).size)],
        statics=statics, observe=list(BOOK_COUNTERS), axi=axi, key=key)


def run_book(msgs: list[bytes], *, timing: fastsim.AxiTiming | None = None, **params):
    """Run the messages through the builder: (rows, counters, cycles, axi stats or None).
    ``rows``: dict of numpy columns sequence, timestamp, slot, levels (n, depth, 4: ask price,
    ask size, bid price, bid size), as the emulator's ``rows``."""
    h = book_harness(**params)
    depth = params.get("depth", ROW_DEPTH)
    recs = decoded_records(msgs)
    outs, cycles = fastsim.run(h, [fastsim.pack_records(recs, DECODED)], {"auto": 1},
                               axi_timing=timing, idle_cycles=4096)
    counters = outs[0]
    raw = outs[1]["payload"]
    rows = dict(
        sequence=raw[:, 0:8].copy().view("<u8")[:, 0],
        timestamp=_le(raw[:, 8:14]),
        slot=raw[:, 14].astype(np.int64),
        levels=raw[:, 15:15 + 16 * depth].copy().view("<u4").reshape(-1, depth, 4))
    return rows, counters, cycles, (outs[2]["mem"] if h.axi else None)


def _le(block: np.ndarray) -> np.ndarray:
    v = np.zeros(len(block), np.uint64)
    for k in range(block.shape[1]):
        v |= block[:, k].astype(np.uint64) << np.uint64(8 * k)
    return v
