"""The events table: the same columns as SQLite's (``rows.COLUMNS``), schema 3 from the start.

``stream`` is collated "C" (byte order of UTF-8, which is code point order), so the stream
prefix range of ``reads`` means what it means on SQLite, whatever the database's locale.
The table lives in the first schema of the connection's ``search_path``: a URL chooses
another with libpq's ``options=-csearch_path=NAME``.
"""

from __future__ import annotations

from typing import Final

import psycopg

from dspyops.eventlog.hashchain import LINK_V1
from dspyops.eventlog.rows import COLUMNS

SCHEMA_VERSION: Final = 3
SELECT: Final = ", ".join(COLUMNS)
TABLE: Final = "events"
# Two processes creating the table at once would race in the catalog (a unique violation on
# pg_type): they take this transaction-scoped advisory lock first.
_DDL_LOCK: Final = 0x64737079_6F707301  # "dspyops" + 1

_DDL: Final = (
    f"""
    CREATE TABLE IF NOT EXISTS {TABLE} (
        position bigint PRIMARY KEY,
        stream text COLLATE "C" NOT NULL,
        version bigint NOT NULL,
        event_id text NOT NULL,
        type text NOT NULL,
        payload bytea NOT NULL,
        recorded_at bigint NOT NULL,
        hash bytea NOT NULL,
        actor text NOT NULL DEFAULT '',
        chain smallint NOT NULL DEFAULT {LINK_V1},
        CONSTRAINT events_stream_version UNIQUE (stream, version),
        CONSTRAINT events_event_id UNIQUE (event_id)
    )
    """,
    # Serves read(stream_prefix=...): a range scan on stream, already in position order.
    f"CREATE INDEX IF NOT EXISTS events_stream_position ON {TABLE} (stream, position)",
    f"COMMENT ON TABLE {TABLE} IS 'dspyops event log, schema {SCHEMA_VERSION}'",
)


def table_exists(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()
    return bool(row and row[0])


def create_schema(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Create the table and its indexes unless they exist (in one transaction)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        if table_exists(conn):
            return
        for statement in _DDL:
            conn.execute(statement)
