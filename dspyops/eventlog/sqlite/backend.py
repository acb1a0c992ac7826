"""The SQLite event store: one file, WAL mode, safe for many threads and processes.

The pieces: ``connections`` (a connection per thread, the file's identity), ``schema``,
``writes`` (the append transaction: why it is gapless and durable) and ``reads``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from dspyops.eventlog.batch import validate_append
from dspyops.eventlog.hashchain import GENESIS, LINK_V1, LINK_V2_KEYED, ChainChecker, LinkHasher
from dspyops.eventlog.lock import FileWriterLock, WriterLease
from dspyops.eventlog.rows import to_events
from dspyops.eventlog.sqlite.connections import Connections
from dspyops.eventlog.sqlite.reads import SIZES, SIZES_WITH_ACTOR, page_where
from dspyops.eventlog.sqlite.schema import SELECT, create_schema, select_for
from dspyops.eventlog.sqlite.writes import append_in_transaction
from dspyops.eventlog.store import (
    AppendResult,
    EventSize,
    EventStore,
    LogMissing,
    NewEvent,
    StoredEvent,
    StoreUnavailable,
    VerifyResult,
    validate_read,
)
from dspyops.eventlog.wakeup import DataVersionProbe


class SQLiteEventStore(EventStore):
    """Event store in one SQLite file.

    ``read_only=True`` opens the file with SQLite's ``mode=ro``: reads work, appends raise
    StoreUnavailable. ``busy_timeout`` bounds how long an append waits for another process's
    write lock before giving up with StoreUnavailable.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        busy_timeout: float = 30.0,
        chain_key: bytes | None = None,
        create: bool = True,
    ) -> None:
        """``chain_key``: new links are HMAC-SHA256 under it (link version 3), and keyed
        links verify. ``create=False``: a missing file raises LogMissing instead of
        becoming a new, empty log."""
        super().__init__()
        path = os.fspath(path)
        if not path or path == ":memory:" or path.startswith("file:"):
            # Each thread has its own connection, so an in-memory database would not be shared.
            raise ValueError(f"SQLiteEventStore needs a file path, got {path!r}")
        self.path = str(Path(path).absolute())
        self.read_only = read_only
        self.chain_key = chain_key
        self._hasher = LinkHasher(chain_key)
        if (read_only or not create) and not os.path.exists(self.path):
            how = "read-only" if read_only else "without --create"
            raise LogMissing(f"cannot open the log {self.path} {how}: no such file")
        self._db = Connections(self.path, read_only=read_only, busy_timeout=busy_timeout, create=create)
        self._select = SELECT
        with self._db.connection("open") as conn:
            if read_only:
                self._select = select_for(conn)
            else:
                create_schema(conn)
            self._db.opened()

    def __repr__(self) -> str:
        return f"SQLiteEventStore({self.path!r}{', read_only=True' if self.read_only else ''})"

    def check_file(self) -> None:
        """Raise LogReplaced if the path no longer names the file this store opened."""
        self._db.check_file()

    # -- writing --------------------------------------------------------------------------------

    def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: int | None, *, actor: str = ""
    ) -> AppendResult:
        validate_append(stream, events, expected_version, actor)
        try:
            result = self._append(stream, events, expected_version, actor)
        except StoreUnavailable as exc:
            cause = exc.__cause__
            if self.read_only or not (
                isinstance(cause, sqlite3.Error) and cause.sqlite_errorcode & 0xFF == sqlite3.SQLITE_READONLY
            ):
                raise
            # A connection opened while the file was not writable stays read-only for good.
            # Nothing was written: retry once on a fresh connection, which succeeds if the
            # file has become writable since.
            self._db.discard()
            result = self._append(stream, events, expected_version, actor)
        if not result.deduplicated:
            self._appended.notify()
        return result

    def _append(
        self, stream: str, events: Sequence[NewEvent], expected_version: int | None, actor: str
    ) -> AppendResult:
        db = self._db
        with db.write_lock, db.connection(f"append to stream {stream!r} in") as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                result = append_in_transaction(
                    conn, self._hasher, self.path, stream, events, expected_version, actor
                )
                if not result.deduplicated:
                    # last, just before the commit: a log removed or replaced meanwhile gets
                    # nothing (an acknowledged write into an unlinked file would be lost)
                    db.check_file()
                conn.execute("COMMIT")
            except BaseException:
                # SQLite rolls back by itself on some errors (e.g. SQLITE_FULL); on others the
                # transaction is still open and must not leak into this thread's next call.
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        return result

    # -- reading --------------------------------------------------------------------------------

    def read(
        self, after_position: int = 0, limit: int = 1000, stream_prefix: str | None = None
    ) -> list[StoredEvent]:
        validate_read(after_position, limit)
        where, params = page_where(after_position, limit, stream_prefix)
        with self._db.connection("read") as conn:
            return to_events(conn.execute(f"SELECT {self._select} FROM events {where}", params))

    def event_sizes(
        self, after_position: int = 0, limit: int = 1000, stream_prefix: str | None = None
    ) -> list[EventSize]:
        validate_read(after_position, limit)
        where, params = page_where(after_position, limit, stream_prefix)
        sizes = SIZES_WITH_ACTOR if self._select == SELECT else SIZES  # a schema-1 log has no actor
        with self._db.connection("read") as conn:
            return [EventSize(*row) for row in conn.execute(f"{sizes} FROM events {where}", params)]

    def change_probe(self) -> DataVersionProbe | None:
        try:
            return DataVersionProbe(self.path)
        except sqlite3.Error:  # e.g. no access to the -shm file: the notifier re-reads on a timer
            return None

    def read_stream(self, stream: str, after_version: int = 0) -> list[StoredEvent]:
        with self._db.connection("read") as conn:
            rows = conn.execute(
                f"SELECT {self._select} FROM events WHERE stream = ? AND version > ? ORDER BY version",
                (stream, after_version),
            )
            return to_events(rows)

    def stream_version(self, stream: str) -> int:
        with self._db.connection("read") as conn:
            return int(
                conn.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?", (stream,)
                ).fetchone()[0]
            )

    def head(self) -> int:
        with self._db.connection("read") as conn:
            return int(conn.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()[0])

    def verify(self, after_position: int = 0) -> VerifyResult:
        if after_position < 0:
            raise ValueError(f"after_position must be >= 0, got {after_position}")
        with self._db.connection("verify") as conn:
            prev_hash, prev_link = GENESIS, LINK_V1
            if after_position:
                row = conn.execute(
                    f"SELECT {self._select} FROM events WHERE position = ?", (after_position,)
                ).fetchone()
                if row is None:
                    raise ValueError(f"verify after position {after_position}: the log has no such position")
                prev_hash, prev_link = row[7], row[9]
            checker = ChainChecker(
                key=self.chain_key, after_position=after_position, prev_hash=prev_hash, prev_link=prev_link
            )
            # One SELECT is one consistent snapshot, streamed row by row (no full load).
            return checker.walk(
                conn.execute(
                    f"SELECT {self._select} FROM events WHERE position > ? ORDER BY position",
                    (after_position,),
                )
            )

    def keyed(self) -> bool:
        with self._db.connection("read") as conn:
            row = conn.execute(f"SELECT {self._select} FROM events ORDER BY position DESC LIMIT 1").fetchone()
        return row is not None and row[-1] == LINK_V2_KEYED

    def clock_us(self) -> int:
        return time.time_ns() // 1000  # the clock stamp() reads: one machine's

    def writer_lock(self) -> WriterLease:
        return FileWriterLock(f"{self.path}.lock", self.path)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self._closed = True
        self._db.close()
        self._appended.notify()  # wake subscribers so they notice the store is closed
