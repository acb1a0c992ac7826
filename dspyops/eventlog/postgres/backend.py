"""The PostgreSQL event store: the log in one table, shared by any number of processes.

The pieces: ``schema`` (the table), ``writes`` (the append transaction: why positions are
gapless, in commit order and durable), ``reads``, ``notify`` (LISTEN/NOTIFY wake-ups),
``errors`` (what maps to StoreUnavailable) and ``lease``. Connections come from a
``psycopg_pool.ConnectionPool`` (autocommit; an append opens its own transaction).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Final, TypeVar, cast

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from dspyops.eventlog.batch import validate_append
from dspyops.eventlog.hashchain import GENESIS, LINK_V1, LINK_V2_KEYED, ChainChecker, LinkHasher
from dspyops.eventlog.lock import WriterLease
from dspyops.eventlog.postgres.errors import log_name, mapped_errors
from dspyops.eventlog.postgres.lease import SharedWriterLease
from dspyops.eventlog.postgres.notify import Listener, ListenerProbe
from dspyops.eventlog.postgres.reads import SIZES, page_where
from dspyops.eventlog.postgres.schema import SELECT, TABLE, create_schema, table_exists
from dspyops.eventlog.postgres.writes import NOW_US, append_in_transaction
from dspyops.eventlog.rows import Row, to_events
from dspyops.eventlog.store import (
    DEFAULT_PAGE_SIZE,
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

Conn = psycopg.Connection[TupleRow]
T = TypeVar("T")
SCHEMES: Final = ("postgresql://", "postgres://")
_READ_AT_CHUNK: Final = 10_000  # positions per query of read_at
_VERIFY_FETCH: Final = 5000  # rows per round trip of verify's server-side cursor
# A pooled connection found dead (the server restarted) is dropped and the operation runs
# again on another; an append may, because a batch that did commit is recognised by its ids.
_ATTEMPTS: Final = 3
# libpq reports a missing database only in the message (no SQLSTATE before the session starts)
_NO_DATABASE: Final = re.compile(r'FATAL:\s+database ".*" does not exist')


class PostgresEventStore(EventStore):
    """Event store in the ``events`` table of a PostgreSQL database.

    ``conninfo``: a libpq URL or key=value string (the table is created in the first schema
    of its search_path). ``read_only=True``: appends raise StoreUnavailable, and the
    connections are read-only too. ``timeout`` bounds how long an operation waits for a
    connection (the server down: StoreUnavailable naming the log after that long).
    """

    server = True

    def __init__(
        self,
        conninfo: str,
        *,
        read_only: bool = False,
        chain_key: bytes | None = None,
        create: bool = True,
        timeout: float = 10.0,
        pool_size: int = 8,
    ) -> None:
        super().__init__()
        self.url = log_name(conninfo)  # for messages: no password, no options
        self.read_only = read_only
        self.chain_key = chain_key
        self._hasher = LinkHasher(chain_key)
        if read_only:
            options = conninfo_to_dict(conninfo).get("options") or ""
            conninfo = make_conninfo(
                conninfo, options=f"{options} -c default_transaction_read_only=on".strip()
            )
        self.conninfo = conninfo
        self._timeout = timeout
        self._down = False  # the last operation found the server unreachable
        self._check_log(create and not read_only)
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            timeout=timeout,
            open=False,
            name=f"log {self.url}",
        )
        with mapped_errors("open", self.url):
            self._pool.open(wait=True, timeout=timeout)
        self._listener = Listener(conninfo, self._appended, timeout)

    def __repr__(self) -> str:
        return f"PostgresEventStore({self.url!r}{', read_only=True' if self.read_only else ''})"

    def _check_log(self, create: bool) -> None:
        """The database must exist (a store never creates one); the table is created when
        missing unless ``create`` is False (then LogMissing)."""
        try:
            with psycopg.connect(
                self.conninfo, autocommit=True, connect_timeout=_seconds(self._timeout)
            ) as conn:
                if table_exists(conn):
                    return
                if not create:
                    how = "read-only" if self.read_only else "without --create"
                    raise LogMissing(f"cannot open the log {self.url} {how}: it has no {TABLE} table")
                create_schema(conn)
        except psycopg.OperationalError as exc:
            if _NO_DATABASE.search(str(exc)):
                raise LogMissing(
                    f"cannot open the log {self.url}: the database does not exist (createdb it first)"
                ) from exc
            raise StoreUnavailable(f"open {self.url}: {str(exc).strip().splitlines()[0]}") from exc

    # -- connections ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self, action: str) -> Iterator[Conn]:
        if self._closed:
            raise StoreUnavailable(f"the event store {self.url} is closed")
        if self._down:
            self._probe_server(action)
        with mapped_errors(action, self.url), self._pool.connection() as conn:
            yield conn

    def _probe_server(self, action: str) -> None:
        """While the server was last seen down, one direct connection attempt first: a
        refused one fails the operation at once, instead of after the pool's ``timeout``
        (a client retrying UNAVAILABLE would otherwise run out of its deadline waiting)."""
        with mapped_errors(action, self.url):
            psycopg.connect(self.conninfo, connect_timeout=_seconds(self._timeout)).close()
        self._down = False

    def _run(self, action: str, work: Callable[[Conn], T]) -> T:
        """``work`` on a pooled connection; again on another when this one was dead."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self._connection(action) as conn:
                    try:
                        return work(conn)
                    except psycopg.OperationalError:
                        if conn.broken and attempt < _ATTEMPTS and not self._closed:
                            raise _Retry from None
                        raise
            except _Retry:
                continue
            except StoreUnavailable as exc:
                if isinstance(exc.__cause__, psycopg.OperationalError):
                    self._down = True  # the server (or the way to it) is gone
                raise
        raise AssertionError("unreachable")

    # -- writing --------------------------------------------------------------------------------

    def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: int | None, *, actor: str = ""
    ) -> AppendResult:
        validate_append(stream, events, expected_version, actor)
        if self.read_only:
            raise StoreUnavailable(f"append to stream {stream!r} in {self.url}: the store is read-only")

        def write(conn: Conn) -> AppendResult:
            with conn.pipeline(), conn.transaction():
                return append_in_transaction(
                    conn, self._hasher, self.url, stream, events, expected_version, actor
                )

        result = self._run(f"append to stream {stream!r} in", write)
        if not result.deduplicated:
            self._appended.notify()
        return result

    # -- reading --------------------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[object], *, binary: bool = False) -> list[TupleRow]:
        return self._run("read", lambda conn: conn.execute(sql, params, binary=binary).fetchall())

    def read(
        self, after_position: int = 0, limit: int = 1000, stream_prefix: str | None = None
    ) -> list[StoredEvent]:
        validate_read(after_position, limit)
        where, params = page_where(after_position, limit, stream_prefix)
        return to_rows(self._rows(f"SELECT {SELECT} FROM {TABLE} {where}", params, binary=True))

    def read_at(self, positions: Sequence[int]) -> list[StoredEvent]:
        wanted = sorted({p for p in positions if p > 0})
        sql = f"SELECT {SELECT} FROM {TABLE} WHERE position = ANY(%s) ORDER BY position"

        def chunk_rows(chunk: list[int]) -> list[TupleRow]:
            # never prepared: a generic plan for "= ANY(an array)" may scan the table (see writes)
            return self._run(
                "read", lambda conn: conn.execute(sql, (chunk,), binary=True, prepare=False).fetchall()
            )

        found: list[StoredEvent] = []
        for i in range(0, len(wanted), _READ_AT_CHUNK):
            found.extend(to_rows(chunk_rows(wanted[i : i + _READ_AT_CHUNK])))
        return found

    def event_sizes(
        self, after_position: int = 0, limit: int = 1000, stream_prefix: str | None = None
    ) -> list[EventSize]:
        validate_read(after_position, limit)
        where, params = page_where(after_position, limit, stream_prefix)
        return [EventSize(int(p), int(b), int(o)) for p, b, o in self._rows(f"{SIZES} {where}", params)]

    def read_stream(self, stream: str, after_version: int = 0) -> list[StoredEvent]:
        sql = f"SELECT {SELECT} FROM {TABLE} WHERE stream = %s AND version > %s ORDER BY version"
        return to_rows(self._rows(sql, (stream, after_version), binary=True))

    def stream_version(self, stream: str) -> int:
        rows = self._rows(f"SELECT COALESCE(MAX(version), 0) FROM {TABLE} WHERE stream = %s", (stream,))
        return int(rows[0][0])

    def head(self) -> int:
        return int(self._rows(f"SELECT COALESCE(MAX(position), 0) FROM {TABLE}", ())[0][0])

    def verify(self, after_position: int = 0) -> VerifyResult:
        if after_position < 0:
            raise ValueError(f"after_position must be >= 0, got {after_position}")

        def walk(conn: Conn) -> VerifyResult:
            prev_hash, prev_link = GENESIS, LINK_V1
            if after_position:
                row = conn.execute(
                    f"SELECT hash, chain FROM {TABLE} WHERE position = %s", (after_position,)
                ).fetchone()
                if row is None:
                    raise ValueError(f"verify after position {after_position}: the log has no such position")
                prev_hash, prev_link = bytes(row[0]), int(row[1])
            checker = ChainChecker(
                key=self.chain_key, after_position=after_position, prev_hash=prev_hash, prev_link=prev_link
            )
            # A server-side cursor: one consistent snapshot, streamed in chunks (no full load).
            with conn.transaction(), conn.cursor(name="verify", binary=True) as cur:
                cur.itersize = _VERIFY_FETCH
                cur.execute(
                    f"SELECT {SELECT} FROM {TABLE} WHERE position > %s ORDER BY position", (after_position,)
                )
                return checker.walk(cur)

        return self._run("verify", walk)

    def keyed(self) -> bool:
        rows = self._rows(f"SELECT chain FROM {TABLE} ORDER BY position DESC LIMIT 1", ())
        return bool(rows) and int(rows[0][0]) == LINK_V2_KEYED

    def clock_us(self) -> int:
        return int(self._rows(f"SELECT {NOW_US}", ())[0][0])

    def writer_lock(self) -> WriterLease:
        return SharedWriterLease(self.url)

    # -- waking subscribers ---------------------------------------------------------------------

    def change_probe(self) -> ListenerProbe:
        self._listener.start()
        return ListenerProbe(self._listener)

    def subscribe(
        self,
        after_position: int = 0,
        *,
        stop: threading.Event | None = None,
        poll_interval: float = 0.01,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[StoredEvent]:
        self._listener.start()  # other processes' appends wake it at once, not at its next poll
        return super().subscribe(after_position, stop=stop, poll_interval=poll_interval, page_size=page_size)

    def wait_for(self, position: int, timeout: float, *, poll_interval: float = 0.01) -> bool:
        self._listener.start()
        return super().wait_for(position, timeout, poll_interval=poll_interval)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._listener.close()
        self._pool.close(timeout=5.0)  # waits for the operations in flight to give theirs back
        self._appended.notify()  # wake subscribers so they notice the store is closed


class _Retry(Exception):
    """The connection died under the operation: run it again on another."""


def to_rows(rows: list[TupleRow]) -> list[StoredEvent]:
    return to_events(cast(list[Row], rows))


def _seconds(timeout: float) -> int:
    return max(1, round(timeout))
