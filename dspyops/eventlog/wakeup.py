"""In-process "something was appended" broadcast.

A store calls ``notify()`` after each committed append so subscribers in the same process wake
at once instead of waiting out their poll interval. Appends by other processes are not seen
here; subscribers still poll for those. A sequence number (rather than a bare flag) lets a
waiter read the log and then wait without losing a notification that landed in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class AppendSignal:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq = 0
        self._async_waiters: dict[asyncio.Event, asyncio.AbstractEventLoop] = {}

    @property
    def seq(self) -> int:
        """Take this *before* reading the log, then pass it to ``wait``."""
        with self._cond:
            return self._seq

    def notify(self) -> None:
        with self._cond:
            self._seq += 1
            self._cond.notify_all()
            waiters = list(self._async_waiters.items())
        for event, loop in waiters:
            # The loop may already be closed if its owner exited without unregistering.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def wait(self, seen: int, timeout: float) -> int:
        """Block until a notify after ``seen`` or until ``timeout``; return the current seq."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq != seen, timeout)
            return self._seq

    def register_async(self) -> asyncio.Event:
        """An asyncio.Event (of the running loop) that every later ``notify`` sets."""
        event = asyncio.Event()
        with self._cond:
            self._async_waiters[event] = asyncio.get_running_loop()
        return event

    def unregister_async(self, event: asyncio.Event) -> None:
        with self._cond:
            self._async_waiters.pop(event, None)
