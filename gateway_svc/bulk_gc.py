"""The garbage collector while a replica catches up: young collections every 50,000
allocations instead of every 700.

A catch-up allocates millions of objects that all stay alive (the pages read, their events,
the new state), and with CPython's default thresholds every young collection scans what was
allocated since the last one only to find it alive: ~30 % of a replay's CPU here (1M
events from PostgreSQL: 4.6-5.7 -> 3.3-3.8 us per event, bench/bench_replay_postgres.py).
The thresholds are the process's, so they are raised only while some replica is behind the
head and put back once none is (requests served meanwhile make little garbage of their own).
"""

from __future__ import annotations

import gc
import threading
from typing import Final

_BULK: Final = (50_000, 20, 10)


class BulkCollection:
    """Entered by each replica that falls behind, left once it has caught up (or stopped)."""

    _lock = threading.Lock()
    _active = 0
    _saved: tuple[int, int, int] = gc.get_threshold()

    def __init__(self) -> None:
        self.entered = False

    def enter(self) -> None:
        if self.entered:
            return
        self.entered = True
        with BulkCollection._lock:
            if BulkCollection._active == 0:
                BulkCollection._saved = gc.get_threshold()
                gc.set_threshold(*_BULK)
            BulkCollection._active += 1

    def leave(self) -> None:
        if not self.entered:
            return
        self.entered = False
        with BulkCollection._lock:
            BulkCollection._active -= 1
            if BulkCollection._active == 0:
                gc.set_threshold(*BulkCollection._saved)
