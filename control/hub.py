"""Sequence-numbered broadcast of the replay's events to any number of WebSocket clients.

The replay thread publishes; every message gets the next sequence number and is serialised
once into a fixed-size ring. Each client keeps only a cursor (the last sequence number it
sent), so memory does not grow with clients or with a slow client: a client whose cursor
fell off the ring is told so and resynchronised with a fresh snapshot
(:meth:`Hub.since` reports the loss).

The published state (what a snapshot holds) is updated under the same lock as the ring, so a
snapshot taken with sequence number ``s`` is exactly the state after message ``s``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Callable

__all__ = ["Hub", "RING", "FLUSH"]

#: messages the ring keeps: a client further behind than this resynchronises
RING = 4096
#: seconds the clients wait after a publish before they are woken: what was published
#: meanwhile goes out in the same frames, and the replay thread gives the event loop the
#: interpreter less often
FLUSH = 0.02


class Hub:
    def __init__(self, capacity: int = RING):
        self.capacity = capacity
        self.lock = threading.Lock()
        self.seq = 0                          # sequence number of the newest message
        self._ring: list[str | None] = [None] * capacity
        self.state: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._wake_pending = False
        self.published = 0

    # ---------------------------------------------------------------- replay side
    def publish(self, kind: str, data: dict, update: Callable[[dict], None] | None = None
                ) -> int:
        """Append a ``kind`` message (``data`` plus ``seq`` and ``type``); ``update`` changes
        the snapshot state under the same lock. Returns the message's sequence number."""
        with self.lock:
            if update is not None:
                update(self.state)
            self.seq += 1
            self._ring[self.seq % self.capacity] = json.dumps(
                {"seq": self.seq, "type": kind, **data}, separators=(",", ":"))
            self.published += 1
            seq = self.seq
            wake = self._loop is not None and not self._wake_pending
            self._wake_pending = self._wake_pending or wake
        if wake:
            try:
                self._loop.call_soon_threadsafe(self._loop.call_later, FLUSH, self._wake)
            except RuntimeError:          # the event loop has closed: nobody is listening
                pass
        return seq

    def update(self, update: Callable[[dict], None]) -> None:
        """Change the snapshot state without a message."""
        with self.lock:
            update(self.state)

    # ---------------------------------------------------------------- client side
    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach the event loop the clients wait in (called from inside it)."""
        self._loop = loop
        self._event = asyncio.Event()

    def _wake(self) -> None:
        with self.lock:
            self._wake_pending = False
        ev, self._event = self._event, asyncio.Event()
        ev.set()

    def snapshot(self, build: Callable[[dict], Any]) -> tuple[int, Any]:
        """``(seq, build(state))`` taken atomically: ``build`` must copy what it keeps."""
        with self.lock:
            return self.seq, build(self.state)

    def since(self, cursor: int, limit: int = 512) -> tuple[list[str], int, bool]:
        """Messages after ``cursor`` (at most ``limit``): ``(texts, new cursor, lost)``;
        ``lost``: messages after ``cursor`` already left the ring (the client must
        resynchronise)."""
        with self.lock:
            if cursor < self.seq - self.capacity:
                return [], cursor, True
            last = min(self.seq, cursor + limit)
            ring, cap = self._ring, self.capacity
            return [ring[s % cap] for s in range(cursor + 1, last + 1)], last, False

    async def wait(self, cursor: int) -> None:
        """Return once a message after ``cursor`` exists."""
        while True:
            ev = self._event
            with self.lock:
                if self.seq > cursor:
                    return
            await ev.wait()
