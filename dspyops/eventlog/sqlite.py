"""The embedded SQLite backend: one file, WAL mode, safe for many threads and processes.

Why it is gapless: every append runs inside ``BEGIN IMMEDIATE``, which takes SQLite's single
write lock before reading the head, so writers (threads or processes) are serialized and
commit in position order. A reader therefore never sees position n + 1 without n.

Why it is durable: ``synchronous=FULL`` makes the WAL fsync on every commit, so an
acknowledged append survives kill -9 or power loss.

Why it notices a vanished log: SQLite keeps writing to a file that was unlinked or renamed
over, and a new connection to the path would silently create an empty log. The store
remembers the device and inode of the file it opened and refuses (LogReplaced) an append,
or a new connection, once the path names another file or none; after the first open it
never creates the file again.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final
from urllib.parse import quote

import sqlite_utils

from dspyops.eventlog.hashchain import GENESIS, LINK_V1, LINK_V2, LINK_V2_KEYED, ChainChecker, LinkHasher
from dspyops.eventlog.lock import FileWriterLock, WriterLease
from dspyops.eventlog.store import (
    ANY,
    AppendResult,
    ChainKeyRequired,
    DuplicateEventId,
    EventSize,
    EventStore,
    LogMissing,
    LogReplaced,
    NewEvent,
    StoredEvent,
    StoreUnavailable,
    VerifyResult,
    WrongExpectedVersion,
    validate_append,
    validate_read,
)
from dspyops.eventlog.wakeup import DataVersionProbe

SCHEMA_VERSION: Final = 3  # 2 added the actor column, 3 the chain column (link version)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS: Final = "position, stream, version, event_id, type, payload, recorded_at, hash, actor, chain"
_ID_CHUNK: Final = 500  # stays far below SQLite's bound-parameter limit
_INSERT: Final = {
    version: f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, {version})"
    for version in (LINK_V2, LINK_V2_KEYED)
}

# Primary result codes that mean "the storage cannot serve this now", as opposed to a bug in
# our SQL or a corrupt file: busy past the timeout, out of memory, read-only, I/O error,
# disk full, cannot open, WAL lock protocol failure.
_UNAVAILABLE_CODES: Final = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)


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
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._handles_lock = threading.Lock()
        self._handles: list[_Handle] = []
        # In-process appends queue on this lock instead of spinning in SQLite's busy handler;
        # BEGIN IMMEDIATE still serializes them against other processes.
        self._write_lock = threading.Lock()
        self._pid = os.getpid()
        if (read_only or not create) and not os.path.exists(self.path):
            how = "read-only" if read_only else "without --create"
            raise LogMissing(f"cannot open the log {self.path} {how}: no such file")
        self._may_create = create and not read_only
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file opened
        self._select = _COLUMNS
        with self._connection("open") as conn:
            if read_only:
                conn.execute("SELECT 1 FROM events LIMIT 1")
                columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
                # a log that no writer of the current schema has opened since: schema 1 has no
                # actors to show, schema 2 only v1 links
                if "actor" not in columns:
                    self._select = self._select.replace("actor,", "'' AS actor,")
                if "chain" not in columns:
                    self._select = self._select.replace("chain", f"{LINK_V1} AS chain")
            else:
                self._create_schema(conn)
            self._identity = self._stat_identity()
        self._may_create = False  # from now on a missing file is a vanished log, never a new one

    def __repr__(self) -> str:
        return f"SQLiteEventStore({self.path!r}{', read_only=True' if self.read_only else ''})"

    # -- connections ----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        mode = "ro" if self.read_only else "rwc" if self._may_create else "rw"
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False only so
        # close() may close connections of other threads; each thread otherwise uses its own.
        try:
            conn = sqlite3.connect(
                f"file:{quote(self.path)}?mode={mode}",
                uri=True,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.OperationalError as exc:
            if self._identity is not None:
                self.check_file()  # the usual reason a later connection cannot open: the log is gone
            raise StoreUnavailable(f"open {self.path}: {exc}") from exc
        try:
            conn.execute("PRAGMA synchronous=FULL")
            if self._identity is not None:
                # a later thread's connection: it must reach the file the store opened
                self.check_file()
        except BaseException:
            conn.close()
            raise
        return conn

    def _stat_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def check_file(self) -> None:
        """Raise LogReplaced if the path no longer names the file this store opened (one
        stat call: cheap enough for every append and every tail wake-up)."""
        now = self._stat_identity()
        if now == self._identity:
            return
        if now is None:
            raise LogReplaced(
                f"the log {self.path} was removed while in use: refusing to write into the deleted "
                "file (restore it, or restart with --create for a new log)"
            )
        raise LogReplaced(
            f"the log {self.path} was replaced by another file while in use (device/inode changed): "
            "refusing to write; restart the service to open the new file"
        )

    def _handle(self) -> _Handle:
        """This thread's connection handle, opened on first use.

        One connection per thread because a SQLite connection carries its own transaction
        state; a thread must never see another thread's BEGIN.
        """
        if self._pid != os.getpid():
            self._after_fork()
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is not None:
            return handle
        if self._closed:
            raise StoreUnavailable(f"the event store {self.path} is closed")
        handle = _Handle(self._connect(), weakref.ref(threading.current_thread()))
        with self._handles_lock:
            if self._closed:
                handle.conn.close()
                raise StoreUnavailable(f"the event store {self.path} is closed")
            # Close the connections of threads that have ended, so a thread-per-task caller does
            # not pile up open files until close().
            kept = []
            for other in self._handles:
                thread = other.thread()
                if thread is None or not thread.is_alive():
                    with other.lock:
                        other.conn.close()
                else:
                    kept.append(other)
            kept.append(handle)
            self._handles = kept
        self._local.handle = handle
        return handle

    def _conn(self) -> sqlite3.Connection:
        """This thread's raw connection, for tests that set pragmas on it. Store code uses
        ``_connection()``, which also keeps close() from closing it mid-statement."""
        return self._handle().conn

    @contextlib.contextmanager
    def _connection(self, action: str) -> Iterator[sqlite3.Connection]:
        """This thread's connection, held for one operation, with errors mapped.

        The handle's lock is what makes close() from another thread safe: closing a SQLite
        connection while a statement runs on it crashes the interpreter, so close() takes each
        lock and thereby waits for the operation in flight to finish.
        """
        handle = self._handle()
        with handle.lock, self._io(action):
            if self._closed:
                raise StoreUnavailable(f"the event store {self.path} is closed")
            yield handle.conn

    def _after_fork(self) -> None:
        """A forked child must not touch its parent's SQLite connections (or locks that may have
        been held at fork time): drop them unclosed and start afresh."""
        self._pid = os.getpid()
        self._local = threading.local()
        self._handles_lock = threading.Lock()
        self._handles = []
        self._write_lock = threading.Lock()

    @contextlib.contextmanager
    def _io(self, action: str) -> Iterator[None]:
        """Turn storage-level failures into StoreUnavailable; let bugs surface as they are."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in _UNAVAILABLE_CODES:
                raise StoreUnavailable(f"{action} {self.path}: {exc} ({exc.sqlite_errorname})") from exc
            raise

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        db = sqlite_utils.Database(conn, execute_plugins=False)
        db.enable_wal()  # persistent in the file: readers never block the writer, nor it them
        events = db.table("events")
        events.create(
            {
                "position": int,
                "stream": str,
                "version": int,
                "event_id": str,
                "type": str,
                "payload": bytes,
                "recorded_at": int,
                "hash": bytes,
                "actor": str,
                "chain": int,
            },
            pk="position",
            not_null={
                "stream",
                "version",
                "event_id",
                "type",
                "payload",
                "recorded_at",
                "hash",
                "actor",
                "chain",
            },
            defaults={"actor": "", "chain": LINK_V1},
            if_not_exists=True,
        )
        columns = events.columns_dict
        if "actor" not in columns:  # a schema-1 log: events before it have no actor
            events.add_column("actor", str, not_null_default="")
        if "chain" not in columns:  # a schema-2 log: every link so far is v1
            events.add_column("chain", int, not_null_default=LINK_V1)
        # Unique indexes play the part of UNIQUE(stream, version) and UNIQUE(event_id).
        events.create_index(["stream", "version"], "events_stream_version", unique=True, if_not_exists=True)
        events.create_index(["event_id"], "events_event_id", unique=True, if_not_exists=True)
        # Serves read(stream_prefix=...): a range scan on stream, already in position order.
        events.create_index(["stream", "position"], "events_stream_position", if_not_exists=True)
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

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
            self._discard_handle()
            result = self._append(stream, events, expected_version, actor)
        if not result.deduplicated:
            self._appended.notify()
        return result

    def _append(
        self, stream: str, events: Sequence[NewEvent], expected_version: int | None, actor: str
    ) -> AppendResult:
        with self._write_lock, self._connection(f"append to stream {stream!r} in") as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                result = self._append_in_transaction(conn, stream, events, expected_version, actor)
                if not result.deduplicated:
                    # last, just before the commit: a log removed or replaced meanwhile gets
                    # nothing (an acknowledged write into an unlinked file would be lost)
                    self.check_file()
                conn.execute("COMMIT")
            except BaseException:
                # SQLite rolls back by itself on some errors (e.g. SQLITE_FULL); on others the
                # transaction is still open and must not leak into this thread's next call.
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        return result

    def _discard_handle(self) -> None:
        """Close this thread's connection; its next operation opens a new one."""
        handle: _Handle | None = getattr(self._local, "handle", None)
        if handle is None:
            return
        self._local.handle = None
        with self._handles_lock:
            self._handles = [h for h in self._handles if h is not handle]
        with handle.lock:
            handle.conn.close()

    def _append_in_transaction(
        self,
        conn: sqlite3.Connection,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        actor: str,
    ) -> AppendResult:
        ids = [event.event_id for event in events]
        stored = self._stored_ids(conn, ids)
        if stored:
            # A retry must hit the same stream; ids stored elsewhere mean a collision or a bug.
            if len(stored) < len(ids) or any(s != stream for s, _, _ in stored.values()):
                raise DuplicateEventId(stream, [i for i in ids if i in stored])
            last_stream, last_pos, last_ver = max(stored.values(), key=lambda row: row[1])
            return AppendResult(
                stream=last_stream,
                first_position=min(pos for _, pos, _ in stored.values()),
                last_position=last_pos,
                stream_version=last_ver,
                deduplicated=True,
            )

        current = conn.execute(
            "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?", (stream,)
        ).fetchone()[0]
        if expected_version is not ANY and expected_version != current:
            raise WrongExpectedVersion(stream, expected_version, current)

        row = conn.execute(
            "SELECT position, hash, recorded_at, chain FROM events ORDER BY position DESC LIMIT 1"
        ).fetchone()
        position, prev_hash, prev_at, prev_link = row if row else (0, GENESIS, 0, LINK_V1)
        if prev_link == LINK_V2_KEYED and self.chain_key is None:
            raise ChainKeyRequired(
                f"the log {self.path} has keyed chain links: appending needs its chain key (--chain-key-file)"
            )
        # recorded_at never goes backwards along positions (even if the wall clock does), so
        # "the state at time T" is always a prefix of the log.
        recorded_at = max(time.time_ns() // 1000, prev_at)
        hasher = self._hasher
        links = hasher.chain(prev_hash, position + 1, stream, current + 1, recorded_at, actor, events)
        rows = [
            (position + i, stream, current + i, e.event_id, e.type, e.payload, recorded_at, link, actor)
            for i, (e, link) in enumerate(zip(events, links, strict=True), start=1)
        ]
        # the link version is the same for the whole batch: a literal (one of two statements,
        # both in sqlite3's statement cache) instead of one more bound value per row
        conn.executemany(_INSERT[hasher.version], rows)
        return AppendResult(
            stream=stream,
            first_position=position + 1,
            last_position=position + len(events),
            stream_version=current + len(events),
            deduplicated=False,
        )

    @staticmethod
    def _stored_ids(conn: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[str, int, int]]:
        """event_id -> (stream, position, version) for the ids already in the log."""
        found: dict[str, tuple[str, int, int]] = {}
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for event_id, stream, position, version in conn.execute(
                f"SELECT event_id, stream, position, version FROM events WHERE event_id IN ({marks})",
                chunk,
            ):
                found[event_id] = (stream, position, version)
        return found

    # -- reading --------------------------------------------------------------------------------

    def read(
        self, after_position: int = 0, limit: int = 1000, stream_prefix: str | None = None
    ) -> list[StoredEvent]:
        validate_read(after_position, limit)
        where, params = _page_where(after_position, limit, stream_prefix)
        with self._connection("read") as conn:
            return _to_events(conn.execute(f"SELECT {self._select} FROM events {where}", params))

    def event_sizes(
        self, after_position: int = 0, limit: int = 1000, stream_prefix: str | None = None
    ) -> list[EventSize]:
        # length() of a BLOB comes from the record header: no payload page is read. Text
        # lengths are characters, close enough for the few short text columns.
        validate_read(after_position, limit)
        where, params = _page_where(after_position, limit, stream_prefix)
        sizes = (
            "SELECT position, length(payload), "
            "length(stream) + length(event_id) + length(type) + length(hash)"
            + (" + length(actor)" if self._select == _COLUMNS else "")  # a schema-1 log has no actor
        )
        with self._connection("read") as conn:
            return [EventSize(*row) for row in conn.execute(f"{sizes} FROM events {where}", params)]

    def change_probe(self) -> DataVersionProbe | None:
        try:
            return DataVersionProbe(self.path)
        except sqlite3.Error:  # e.g. no access to the -shm file: the notifier re-reads on a timer
            return None

    def read_stream(self, stream: str, after_version: int = 0) -> list[StoredEvent]:
        with self._connection("read") as conn:
            rows = conn.execute(
                f"SELECT {self._select} FROM events WHERE stream = ? AND version > ? ORDER BY version",
                (stream, after_version),
            )
            return _to_events(rows)

    def stream_version(self, stream: str) -> int:
        with self._connection("read") as conn:
            return int(
                conn.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?", (stream,)
                ).fetchone()[0]
            )

    def head(self) -> int:
        with self._connection("read") as conn:
            return int(conn.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()[0])

    def verify(self, after_position: int = 0) -> VerifyResult:
        if after_position < 0:
            raise ValueError(f"after_position must be >= 0, got {after_position}")
        with self._connection("verify") as conn:
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
            rows = conn.execute(
                f"SELECT {self._select} FROM events WHERE position > ? ORDER BY position", (after_position,)
            )
            check = checker.check
            for position, stream, version, event_id, type_, payload, recorded_at, hash_, actor, link in rows:
                reason = check(
                    position, stream, version, event_id, type_, payload, recorded_at, hash_, actor, link
                )
                if reason is not None:  # the walk stopped at the position after the last good one
                    return _result(checker, after_position, checker.position + 1, reason)
        return _result(checker, after_position, None, f"{checker.checked} events, chain intact")

    def keyed(self) -> bool:
        with self._connection("read") as conn:
            row = conn.execute(f"SELECT {self._select} FROM events ORDER BY position DESC LIMIT 1").fetchone()
        return row is not None and row[-1] == LINK_V2_KEYED

    def writer_lock(self) -> WriterLease:
        return FileWriterLock(f"{self.path}.lock", self.path)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        with self._handles_lock:
            if self._closed:
                return
            self._closed = True
            handles, self._handles = self._handles, []
        for handle in handles:
            with handle.lock:  # waits for that thread's operation in flight, if any
                with contextlib.suppress(sqlite3.Error):
                    handle.conn.close()
        self._appended.notify()  # wake subscribers so they notice the store is closed


class _Handle:
    """A thread's connection and the lock held while it is in use."""

    __slots__ = ("conn", "lock", "thread")

    def __init__(self, conn: sqlite3.Connection, thread: weakref.ref[threading.Thread]) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.thread = thread


def _to_events(
    rows: Iterable[tuple[int, str, int, str, str, bytes, int, bytes, str, int]],
) -> list[StoredEvent]:
    """Rows -> StoredEvents. Replay reads millions of rows, so this is kept lean: positional
    construction, and one datetime per distinct recorded_at (a batch shares its timestamp)."""
    events = []
    add = events.append
    last_us: int | None = None
    last_at = _EPOCH
    for position, stream, version, event_id, type_, payload, recorded_at, hash_, actor, link in rows:
        if recorded_at != last_us:
            last_us, last_at = recorded_at, _EPOCH + timedelta(microseconds=recorded_at)
        add(StoredEvent(position, stream, version, event_id, type_, payload, last_at, hash_, actor, link))
    return events


def _result(checker: ChainChecker, after: int, broken: int | None, reason: str) -> VerifyResult:
    return VerifyResult(
        ok=broken is None,
        checked=checker.checked,
        first_broken_position=broken,
        reason=reason,
        v1_links=checker.v1_links,
        v2_links=checker.v2_links,
        keyed_links=checker.keyed_links,
        after_position=after,
    )


def _page_where(after_position: int, limit: int, stream_prefix: str | None) -> tuple[str, list[object]]:
    """The WHERE/ORDER/LIMIT of a page read after a position, optionally within a stream prefix."""
    sql = "WHERE position > ?"
    params: list[object] = [after_position]
    if stream_prefix:
        # A range on the raw (UTF-8, memcmp) ordering instead of LIKE: uses the index and has
        # no wildcard or case-folding surprises.
        sql += " AND stream >= ?"
        params.append(stream_prefix)
        upper = _prefix_upper_bound(stream_prefix)
        if upper is not None:
            sql += " AND stream < ?"
            params.append(upper)
    params.append(limit)
    return sql + " ORDER BY position LIMIT ?", params


def _prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``.

    None when there is none (the prefix is all U+10FFFF). Surrogates are skipped because they
    cannot be encoded in UTF-8.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None
