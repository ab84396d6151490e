"""An AXI4 memory for the Amaranth simulator: a slave with configurable latency and
back-pressure, serving a design's :class:`tickwire.hw.axi.AXI4Signature` master port.

Bursts are INCR of whole bus words. A read is answered ``latency`` cycles after its address
was taken, in order, one beat per cycle while the master is ready; a write is applied once
its address and all its beats are in, and acknowledged ``latency`` cycles later, so a read
taken after a write's B sees that write. ``backpressure`` is the fraction of cycles (seeded)
in which the model holds AR/AW/W ready low and withholds R/B.
"""

from __future__ import annotations

import random
from collections import deque

__all__ = ["AxiMemory"]


class AxiMemory:
    """``port``: the design's AXI4 master (``dut.mem``); ``size``: bytes (accesses beyond
    raise, naming the address)."""

    def __init__(self, port, *, size: int, latency: int = 20, backpressure: float = 0.0,
                 seed: int = 0):
        self.port = port
        self.size = size
        self.latency = latency
        self.backpressure = backpressure
        self.rng = random.Random(seed)
        sig = port.signature
        self.word_bytes = sig.data_width // 8
        self.words: dict[int, int] = {}       # word index -> value
        self.stats = dict(reads=0, writes=0, read_beats=0, write_beats=0, max_outstanding=0)

    def _check(self, addr: int, beats: int, what: str) -> int:
        if addr % self.word_bytes or addr + beats * self.word_bytes > self.size:
            raise ValueError(f"AXI {what} of {beats} beats at {addr:#x}: outside the "
                             f"{self.size:#x}-byte memory or not word-aligned")
        return addr // self.word_bytes

    def read_word(self, addr: int) -> int:
        return self.words.get(addr // self.word_bytes, 0)

    async def serve(self, ctx):
        """Background testbench: serve the port forever."""
        p = self.port
        reads: deque = deque()     # [due cycle, first word, beats left]
        awq: deque = deque()       # [first word, beats]
        wbuf: list[int] = []
        bq: deque = deque()        # due cycles of acknowledgements
        t = 0
        mask = (1 << (self.word_bytes * 8)) - 1
        while True:
            stall = self.rng.random() < self.backpressure
            r_due = bool(reads) and reads[0][0] <= t and not stall
            b_due = bool(bq) and bq[0] <= t and not stall
            ctx.set(p.ar.ready, not stall)
            ctx.set(p.aw.ready, not stall)
            ctx.set(p.w.ready, not stall)
            ctx.set(p.r.valid, r_due)
            ctx.set(p.b.valid, b_due)
            if r_due:
                _, word, left = reads[0]
                ctx.set(p.r.data, self.words.get(word, 0))
                ctx.set(p.r.last, left == 1)
            if ctx.get(p.ar.valid) and not stall:
                beats = ctx.get(p.ar.len) + 1
                reads.append([t + self.latency,
                              self._check(ctx.get(p.ar.addr), beats, "read"), beats])
                self.stats["reads"] += 1
                self.stats["max_outstanding"] = max(self.stats["max_outstanding"], len(reads))
            if ctx.get(p.aw.valid) and not stall:
                beats = ctx.get(p.aw.len) + 1
                awq.append([self._check(ctx.get(p.aw.addr), beats, "write"), beats])
            if ctx.get(p.w.valid) and not stall:
                strb = ctx.get(p.w.strb)
                wmask = 0
                for k in range(self.word_bytes):
                    if strb >> k & 1:
                        wmask |= 0xFF << (8 * k)
                wbuf.append((ctx.get(p.w.data), wmask))
                self.stats["write_beats"] += 1
            if r_due and ctx.get(p.r.ready):
                self.stats["read_beats"] += 1
                reads[0][1] += 1
                reads[0][2] -= 1
                if reads[0][2] == 0:
                    reads.popleft()
            if b_due and ctx.get(p.b.ready):
                bq.popleft()
            while awq and len(wbuf) >= awq[0][1]:
                word, beats = awq.popleft()
                for k in range(beats):
                    data, wmask = wbuf.pop(0)
                    old = self.words.get(word + k, 0)
                    self.words[word + k] = ((old & ~wmask) | (data & wmask)) & mask
                bq.append(t + self.latency)
                self.stats["writes"] += 1
            await ctx.tick()
            t += 1
