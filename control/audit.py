"""The audit log: every write an operator made, with who, what, the old and the new value.

Each entry is appended to a JSON-lines file as it happens (flushed, so a crash loses none)
and kept in memory, newest last, for the REST API and the dashboard.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from pathlib import Path

__all__ = ["AuditLog"]


class AuditLog:
    def __init__(self, path: str | Path | None, keep: int = 1000):
        self.path = Path(path) if path else None
        self._mem: deque[dict] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._n = 0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        else:
            self._file = None

    def record(self, who: str, what: str, old, new, **where) -> dict:
        """Log one change; ``where``: the stream position and pass it landed at."""
        with self._lock:
            self._n += 1
            entry = {"id": self._n, "time": time.strftime("%Y-%m-%dT%H:%M:%S",
                                                          time.gmtime()) + "Z",
                     "who": who, "what": what, "old": old, "new": new, **where}
            self._mem.append(entry)
            if self._file is not None:
                self._file.write(json.dumps(entry) + "\n")
                self._file.flush()
            return entry

    def entries(self, limit: int | None = None) -> list[dict]:
        with self._lock:
            out = list(self._mem)
        return out[-limit:] if limit else out

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
