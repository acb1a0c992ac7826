"""Tailing the log's store directly: the SQLite file (a gateway on the log's machine), or a
PostgreSQL log (any machine that reaches the server; woken by LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog

from dspyops.eventlog import EventStore, PostgresEventStore, SQLiteEventStore, StoredEvent, StoreUnavailable
from dspyops.eventlog.store import contiguous_prefix
from dspyops.eventlog.wakeup import ChangeProbe, DataVersionProbe
from gateway_svc.source import CATCH_UP_PAGE, TailObserver

try:  # Linux only; elsewhere the file tail probes on a timer
    from inotify_simple import INotify, flags
except ImportError:  # pragma: no cover - not on Linux
    INotify = None

_log = structlog.get_logger()

PROBE_INTERVAL = 0.001  # seconds between change probes while a write is under way
POLL_INTERVAL = 0.005  # seconds between reads for a store without a change probe
# A server log: how often to read while its LISTEN connection is down, and the longest wait
# for a notification otherwise (a net under LISTEN/NOTIFY)
NOTIFY_POLL = 0.01
NOTIFY_NET = 1.0
# With a file watch: how long to keep probing after the log's files were written (a commit
# is visible only after its fsync, which the write notification precedes) ...
SETTLE = 0.25
# ... and the longest wait without any notification (a net under the watch; also the
# probe interval where there is no watch is PROBE_INTERVAL throughout)
WATCH_TIMEOUT = 0.02


class FileWatch:
    """Linux inotify (through `inotify_simple`) on the log's directory, filtered to the
    log's own files: tells the tail that some process is writing the log, so an idle
    gateway need not wake up every millisecond to probe (a 1 ms asyncio sleep loop alone
    costs ~8% of a core here). `open` returns None where inotify is unavailable; the tail
    then probes on a timer."""

    def __init__(self, inotify: INotify, names: frozenset[str], loop: asyncio.AbstractEventLoop) -> None:
        self._inotify = inotify
        self._names = names
        self._loop = loop
        self._written = asyncio.Event()
        loop.add_reader(inotify.fileno(), self._on_readable)

    @classmethod
    def open(cls, path: str, loop: asyncio.AbstractEventLoop) -> FileWatch | None:
        if INotify is None:
            return None
        try:
            inotify = INotify(nonblocking=True)
        except OSError:
            return None
        try:
            # DELETE / MOVED_FROM too: a log removed or renamed away must wake the tail, which
            # then notices that its file is gone (FileLogSource._check_file)
            inotify.add_watch(
                os.path.dirname(path),
                flags.MODIFY | flags.MOVED_TO | flags.CREATE | flags.DELETE | flags.MOVED_FROM,
            )
        except OSError:
            inotify.close()
            return None
        base = os.path.basename(path)
        # WAL mode commits write <log>-wal; checkpoints and rollback-journal commits the log
        return cls(inotify, frozenset({base, f"{base}-wal", f"{base}-journal"}), loop)

    def _on_readable(self) -> None:
        try:
            events = self._inotify.read(timeout=0)
        except (BlockingIOError, InterruptedError):
            return
        if any(e.mask & flags.Q_OVERFLOW or e.name in self._names for e in events):
            self._written.set()

    async def wait(self, timeout: float) -> bool:
        """True once the log's files were written since the last call, False on timeout."""
        if not self._written.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._written.wait()
        written = self._written.is_set()
        self._written.clear()  # before the caller's probe, so a later write sets it anew
        return written

    def close(self) -> None:
        if not self._inotify.closed:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._inotify.fileno())
            self._inotify.close()


class FileLogSource:
    """Tails the SQLite log directly (same machine).

    Behind the head it reads pages of CATCH_UP_PAGE back to back. Caught up, it reads only
    when the file's data version (DataVersionProbe) changed: it probes every PROBE_INTERVAL
    while the log's files are being written (FileWatch) and otherwise sleeps until they
    are, so another process's append is seen about a millisecond after its commit while an
    idle gateway costs next to nothing (formerly: a worker-thread read every 5 ms).

    Each read and each wake-up first checks (one stat) that the path still names the file
    the store opened: a log removed or replaced under the gateway ends the tail with
    LogReplaced instead of serving the deleted file's state forever.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        page_size: int = CATCH_UP_PAGE,
        probe_interval: float = PROBE_INTERVAL,
    ) -> None:
        self.store = store
        self.page_size = page_size
        self.probe_interval = probe_interval
        self._probe: DataVersionProbe | None = None
        self._watch: FileWatch | None = None
        self._path = store.path if isinstance(store, SQLiteEventStore) else ""  # what inotify watches
        self._check_file = store.check_file if isinstance(store, SQLiteEventStore) else _no_check
        self._notified = isinstance(store, PostgresEventStore)
        self._listening: ChangeProbe | None = None  # a server log's listener, once waited on
        self._wake: asyncio.Event | None = None
        if isinstance(store, SQLiteEventStore):
            try:
                self._probe = DataVersionProbe(store.path)
            except sqlite3.Error as exc:  # e.g. no -shm access: fall back to polling reads
                _log.warning("log_probe_unavailable", path=store.path, error=str(exc))

    async def pages(
        self, after_position: int, observer: TailObserver | None = None
    ) -> AsyncIterator[list[StoredEvent]]:
        last = after_position
        probe = self._probe
        watch = FileWatch.open(self._path, asyncio.get_running_loop()) if probe else None
        self._watch = watch
        ahead: _Read | None = None  # the next page, read while the consumer folds this one
        try:
            if observer is not None:
                await observer.connected(await asyncio.to_thread(self.store.head))
            while not self.store.closed:
                read, ahead = ahead or self._read(last), None
                try:
                    page = await read.page
                except StoreUnavailable:
                    if self.store.closed:
                        return
                    raise
                fresh = contiguous_prefix(page, last)
                behind = len(fresh) == self.page_size
                if behind:
                    # behind the head: the next read runs (the database's work, and SQLite's
                    # or libpq's without the GIL) while the replica folds this page
                    ahead = self._read(fresh[-1].position)
                if fresh:
                    last = fresh[-1].position
                    yield fresh
                if behind:
                    continue
                if self._notified:
                    await self._notification(read.appended)
                elif probe is None or read.seen is None:
                    await asyncio.sleep(POLL_INTERVAL)
                else:
                    await self._changed(probe, read.seen, watch)
        finally:
            if ahead is not None:
                ahead.page.add_done_callback(_discard)
            if watch is not None:
                watch.close()

    def _read(self, after: int) -> _Read:
        """Start reading the page after `after` in a worker thread."""
        # taken before the read: a commit racing with the read changes it, so the wait for a
        # change returns at once and nothing committed is ever waited out
        seen = self._probe.version() if self._probe else None
        appended = self.store.appended.seq
        self._check_file()
        page = asyncio.ensure_future(asyncio.to_thread(self.store.read, after, self.page_size))
        return _Read(seen, appended, page)

    async def _notification(self, seen: int) -> None:
        """A server log: return once an append signal came after `seen` (the listener fires
        one per NOTIFY, and once more after it reconnects), or after NOTIFY_POLL while the
        listener is down. Straight to the next read: no head read in between (the
        HeadNotifier's), one worker-thread hop and round trip less per route change."""
        signal = self.store.appended
        if self._listening is None:
            self._listening = self.store.change_probe()  # starts the store's listener
            self._wake = signal.register_async()
        assert self._wake is not None
        while signal.seq == seen and not self.store.closed:
            self._wake.clear()
            if signal.seq != seen:
                return
            down = self._listening is None or self._listening.version() is None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(NOTIFY_POLL if down else NOTIFY_NET):
                    await self._wake.wait()
            if down:
                return

    async def _changed(self, probe: DataVersionProbe, seen: int, watch: FileWatch | None) -> None:
        """Return once the data version differs from `seen` (or the store closed)."""
        loop = asyncio.get_running_loop()
        probing_until = 0.0
        while not self.store.closed:
            if watch is not None and loop.time() >= probing_until:
                if await watch.wait(WATCH_TIMEOUT):
                    probing_until = loop.time() + SETTLE
            else:
                await asyncio.sleep(self.probe_interval)
            if probe.version() != seen:
                return
            self._check_file()

    async def close(self) -> None:
        if self._wake is not None:
            self.store.appended.unregister_async(self._wake)
        self.store.close()
        if self._watch is not None:
            self._watch.close()
        if self._probe is not None:
            self._probe.close()


@dataclass(frozen=True)
class _Read:
    seen: int | None  # the data version before the read began
    appended: int  # the store's append signal before the read began
    page: asyncio.Future[list[StoredEvent]]


def _discard(future: asyncio.Future[list[StoredEvent]]) -> None:
    """A read ahead nobody takes any more (the tail ended): its failure is nobody's news."""
    if not future.cancelled():
        future.exception()


def _no_check() -> None:
    pass
