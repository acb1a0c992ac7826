"""The events table and its migrations.

Schema 1 had no actor column, schema 2 no chain column (every link was v1); a writer adds
what is missing on open, a read-only store selects stand-ins for it.
"""

from __future__ import annotations

import sqlite3
from typing import Final

import sqlite_utils

from dspyops.eventlog.hashchain import LINK_V1
from dspyops.eventlog.rows import COLUMNS

SCHEMA_VERSION: Final = 3  # 2 added the actor column, 3 the chain column (link version)
SELECT: Final = ", ".join(COLUMNS)


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the table and its indexes, or bring an older log's up to this schema."""
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
        not_null=set(COLUMNS) - {"position"},
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


def select_for(conn: sqlite3.Connection) -> str:
    """The column list that reads this file's rows in ``COLUMNS`` order, for a read-only
    store on a log that no writer of the current schema has opened since: schema 1 has no
    actors to show, schema 2 only v1 links."""
    conn.execute("SELECT 1 FROM events LIMIT 1")  # no table: not a log
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    select = SELECT
    if "actor" not in columns:
        select = select.replace("actor,", "'' AS actor,")
    if "chain" not in columns:
        select = select.replace("chain", f"{LINK_V1} AS chain")
    return select
