"""LISTEN/NOTIFY: other processes' appends wake this process's subscribers at once.

Each append sends ``NOTIFY dspyops_events`` in its own transaction (see ``writes``), which
PostgreSQL delivers at commit. One ``Listener`` per store holds a dedicated connection
(LISTEN is a session's, so it cannot come from the pool) in a daemon thread; every
notification fires the store's ``AppendSignal``, which wakes the thread subscribers and the
async ``HeadNotifier`` alike. A notification only wakes: subscribers then read by position,
so a lost, merged or foreign one (another log in the same database) costs a read at most.

A lost connection is reopened (with a growing pause) and, once it listens again, fires the
signal once more: whatever was committed while nobody listened is then read by position,
from where each subscriber was. While it is down its probe says "unknown", so the
HeadNotifier re-reads the head on its timer meanwhile.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Final

import psycopg

from dspyops.eventlog.postgres.writes import CHANNEL
from dspyops.eventlog.wakeup import AppendSignal

_IDLE_WAKE: Final = 0.2  # seconds: how often the idle listener looks whether the store closed
_RETRY_FIRST, _RETRY_MAX = 0.05, 2.0  # reconnect pauses (seconds), doubling


class Listener:
    """The store's LISTEN connection and its thread, started by the first ``start()``."""

    def __init__(self, conninfo: str, signal: AppendSignal, connect_timeout: float) -> None:
        self._conninfo = conninfo
        self._signal = signal
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._count = 0  # notifications (and reconnects) seen: the probe's version
        self._listening = False
        self.reconnects = 0  # connections reopened after a loss (for tests)

    def start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="log-listener", daemon=True)
            self._thread.start()

    def version(self) -> int | None:
        """Changes with every notification; None while the connection is down (unknown)."""
        return self._count if self._listening else None

    def close(self) -> None:
        """Stop listening; the thread closes its connection within ``_IDLE_WAKE``."""
        self._stop.set()

    def _run(self) -> None:
        pause = _RETRY_FIRST
        lost = False
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._conninfo, autocommit=True, connect_timeout=max(1, round(self._connect_timeout))
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening = True
                    pause = _RETRY_FIRST
                    if lost:  # appends may have committed while nobody listened: look again
                        self.reconnects += 1
                        self._fire()
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=_IDLE_WAKE):
                            self._fire()
            except psycopg.Error:
                pass
            self._listening = False
            lost = True
            if self._stop.wait(pause):
                return
            pause = min(pause * 2, _RETRY_MAX)

    def _fire(self) -> None:
        self._count += 1
        with contextlib.suppress(RuntimeError):
            self._signal.notify()


class ListenerProbe:
    """The ChangeProbe view of the store's listener; closing it leaves the listener running
    (the store closes it)."""

    def __init__(self, listener: Listener) -> None:
        self._listener = listener

    def version(self) -> int | None:
        return self._listener.version()

    def close(self) -> None:
        pass
