"""The in-memory backend: the whole log in this process's memory (like eventsourcing's POPO
recorder), for fast unit tests of the fold, the ledger and the commands.

It keeps the contract of every backend (tests/eventlog/contract): atomic batches, expected
versions, idempotent event ids, gapless positions, the hash chain (v2, keyed with a chain
key) and verify, catch-up subscriptions, the writer lease; only what needs a file does not
apply (other processes, durability across a restart).

``open_store("memory:")`` gives a store on a new private log. ``open_store("memory:NAME")``
gives a store on the process-wide log NAME, created by the first open (unless
``create=False``) and kept while any store on it exists, so several stores (threads, a
gateway and an optimizer in one test process) share it as they would share a file.
``memory:NAME?mode=ro`` opens it read-only.

Why it is gapless and atomic: one lock per log guards every append from the head read to
the last row written, and rows are built before any is stored, so a reader (which copies
rows under the same lock) sees whole batches in position order.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from bisect import bisect_right
from collections.abc import Sequence
from typing import Final

from dspyops.eventlog.batch import appended, check_expected, retried, stamp, validate_append
from dspyops.eventlog.hashchain import GENESIS, LINK_V1, LINK_V2_KEYED, ChainChecker, LinkHasher
from dspyops.eventlog.lock import WriterLease, WriterLocked
from dspyops.eventlog.rows import Row, to_events
from dspyops.eventlog.store import (
    AppendResult,
    EventStore,
    LogMissing,
    NewEvent,
    StoredEvent,
    StoreUnavailable,
    VerifyResult,
    validate_read,
)
from dspyops.eventlog.wakeup import AppendSignal

SCHEME: Final = "memory:"


class MemoryLog:
    """One log's rows and indexes. Every field is read and written under ``lock``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.rows: list[Row] = []  # position n at index n - 1
        self.streams: dict[str, list[int]] = {}  # stream -> its positions, version n at index n - 1
        self.ids: dict[str, int] = {}  # event_id -> position
        self.signal = AppendSignal()  # shared by every store on this log: an append wakes them all
        self.lease: _MemoryLease | None = None

    def row_index(self, position: int) -> int | None:
        """The index of the row at ``position``; positions are dense, so this is position - 1
        unless the rows were rewritten behind the store's back (then it looks)."""
        rows = self.rows
        if 0 < position <= len(rows) and rows[position - 1][0] == position:
            return position - 1
        return next((i for i, row in enumerate(rows) if row[0] == position), None)


_NAMED: weakref.WeakValueDictionary[str, MemoryLog] = weakref.WeakValueDictionary()
_NAMED_LOCK = threading.Lock()


def named_log(name: str, *, create: bool) -> MemoryLog:
    """The process-wide log ``name`` (created when missing and ``create``), else LogMissing."""
    with _NAMED_LOCK:
        log = _NAMED.get(name)
        if log is None:
            if not create:
                raise LogMissing(f"cannot open the log {SCHEME}{name}: no such in-memory log")
            log = _NAMED[name] = MemoryLog(name)
        return log


class MemoryEventStore(EventStore):
    """A store on an in-memory log (a new private one unless ``log`` is given)."""

    def __init__(
        self, log: MemoryLog | None = None, *, read_only: bool = False, chain_key: bytes | None = None
    ) -> None:
        super().__init__()
        self._log = log if log is not None else MemoryLog("")
        self._appended = self._log.signal
        self.read_only = read_only
        self.chain_key = chain_key
        self._hasher = LinkHasher(chain_key)
        self.url = f"{SCHEME}{self._log.name}"

    def __repr__(self) -> str:
        return f"MemoryEventStore({self.url!r}{', read_only=True' if self.read_only else ''})"

    def _open(self) -> MemoryLog:
        if self._closed:
            raise StoreUnavailable(f"the event store {self.url} is closed")
        return self._log

    # -- writing --------------------------------------------------------------------------------

    def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: int | None, *, actor: str = ""
    ) -> AppendResult:
        validate_append(stream, events, expected_version, actor)
        log = self._open()
        if self.read_only:
            raise StoreUnavailable(f"append to stream {stream!r} in {self.url}: the store is read-only")
        with log.lock:
            ids = [event.event_id for event in events]
            stored = {i: log.ids[i] for i in ids if i in log.ids}
            retry = retried(
                stream, ids, {i: (log.rows[p - 1][1], p, log.rows[p - 1][2]) for i, p in stored.items()}
            )
            if retry is not None:
                return retry
            positions = log.streams.get(stream)
            current = len(positions) if positions else 0
            check_expected(stream, expected_version, current)
            last = log.rows[-1] if log.rows else None
            head = (last[0], last[7], last[6], last[9]) if last else (0, GENESIS, 0, LINK_V1)
            stamped = stamp(self._hasher, self.url, stream, current, actor, events, head)
            version = self._hasher.version
            rows: list[Row] = [(*row, version) for row in stamped]
            # everything is built: now store it (nothing below can fail half way)
            log.rows.extend(rows)
            log.streams.setdefault(stream, []).extend(row[0] for row in rows)
            log.ids.update((row[3], row[0]) for row in rows)
        self._appended.notify()
        return appended(stream, stamped)

    # -- reading --------------------------------------------------------------------------------

    def read(
        self, after_position: int = 0, limit: int = 1000, stream_prefix: str | None = None
    ) -> list[StoredEvent]:
        validate_read(after_position, limit)
        log = self._open()
        with log.lock:
            if not stream_prefix:
                rows = log.rows[after_position : after_position + limit]
            else:
                rows = []
                for row in log.rows[after_position:]:
                    if row[1].startswith(stream_prefix):
                        rows.append(row)
                        if len(rows) == limit:
                            break
        return to_events(rows)

    def read_stream(self, stream: str, after_version: int = 0) -> list[StoredEvent]:
        log = self._open()
        with log.lock:
            rows = [log.rows[p - 1] for p in log.streams.get(stream, ())[after_version:]]
        return to_events(rows)

    def stream_version(self, stream: str) -> int:
        log = self._open()
        with log.lock:
            return len(log.streams.get(stream, ()))

    def head(self) -> int:
        log = self._open()
        with log.lock:
            return len(log.rows)

    def verify(self, after_position: int = 0) -> VerifyResult:
        if after_position < 0:
            raise ValueError(f"after_position must be >= 0, got {after_position}")
        log = self._open()
        with log.lock:  # a copy of the rows is one consistent snapshot
            rows = list(log.rows)
            start = 0
            prev_hash, prev_link = GENESIS, LINK_V1
            if after_position:
                index = log.row_index(after_position)
                if index is None:
                    raise ValueError(f"verify after position {after_position}: the log has no such position")
                prev_hash, prev_link = rows[index][7], rows[index][9]
                start = bisect_right(rows, after_position, key=lambda row: row[0])
        checker = ChainChecker(
            key=self.chain_key, after_position=after_position, prev_hash=prev_hash, prev_link=prev_link
        )
        return checker.walk(rows[start:])

    def keyed(self) -> bool:
        log = self._open()
        with log.lock:
            return bool(log.rows) and log.rows[-1][9] == LINK_V2_KEYED

    def clock_us(self) -> int:
        return time.time_ns() // 1000  # the clock stamp() reads: one machine's

    def writer_lock(self) -> WriterLease:
        log = self._open()
        with log.lock:
            if log.lease is not None:
                raise WriterLocked(self.url, os.getpid())
            lease = log.lease = _MemoryLease(log)
        return lease

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self._closed = True
        self._appended.notify()  # wake subscribers so they notice the store is closed


class _MemoryLease(WriterLease):
    """The writer lease of an in-memory log: one holder in the process at a time."""

    def __init__(self, log: MemoryLog) -> None:
        self._log: MemoryLog | None = log

    def release(self) -> None:
        log, self._log = self._log, None
        if log is not None:
            with log.lock:
                if log.lease is self:
                    log.lease = None
