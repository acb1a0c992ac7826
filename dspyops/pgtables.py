"""Tables of a PostgreSQL log's database that are not the log: what a service keeps beside
the ``events`` table there (snapshots, prediction records, artifacts, the routing secret),
so that a process on that log needs nothing but its URL.

The log store (dspyops.eventlog.postgres) owns ``events`` and knows no payloads; each of
these tables is created by the module that owns it, through ``ensure_tables`` here, and
reached through a small pool of its own (``pool``) whose errors map to StoreUnavailable
as the log's do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Final

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from dspyops.eventlog.postgres.errors import log_name, mapped_errors

Conn = psycopg.Connection[TupleRow]
# Two processes creating the same table at once race in the catalog (a unique violation on
# pg_type): they take this transaction-scoped advisory lock first (the log's own is ...01).
_DDL_LOCK: Final = 0x64737079_6F707302  # "dspyops" + 2


class Tables:
    """A pool on the log's database for one owner's tables, created on first open."""

    def __init__(
        self, conninfo: str, what: str, ddl: Sequence[str], *, max_size: int = 2, timeout: float = 10.0
    ) -> None:
        self.conninfo = conninfo
        self.url = log_name(conninfo)
        self.what = what  # names the tables in messages: "the snapshots of"
        self.pool: ConnectionPool[Conn] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True},
            # a connection is checked as it is handed out: after a server restart the pool
            # replaces its dead ones instead of failing one request for each
            check=ConnectionPool.check_connection,
            timeout=timeout,
            open=False,
            name=f"{what} {self.url}",
        )
        with mapped_errors(f"open {what}", self.url):
            self.pool.open(wait=True, timeout=timeout)
            with self.pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
                for statement in ddl:
                    conn.execute(statement)

    @contextlib.contextmanager
    def connection(self, action: str) -> Iterator[Conn]:
        """A pooled connection; the server unreachable is StoreUnavailable naming the log."""
        with mapped_errors(f"{action} {self.what}", self.url), self.pool.connection() as conn:
            yield conn

    def close(self) -> None:
        self.pool.close(timeout=5.0)


def table_has_rows(conninfo: str, table: str) -> bool:
    """Whether ``table`` exists in the log's database and holds a row (evidence of an earlier
    log, dspyops.logfiles)."""
    with mapped_errors("read", log_name(conninfo)), psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
        if not (row and row[0]):
            return False
        found = conn.execute(
            psycopg.sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(psycopg.sql.Identifier(table))
        ).fetchone()
        return bool(found and found[0])
