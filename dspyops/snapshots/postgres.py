"""Snapshots in a ``snapshots`` table of a PostgreSQL log's database, shared by every
process on that log: the optimizer writes them as its fold passes every SNAPSHOT_EVERY
events, and any gateway (or restarted optimizer) starts from the newest that checks.
Two writers saving the same position write the same state; the second replaces the first.
"""

from __future__ import annotations

import time
from typing import Final

from dspyops.pgtables import Tables
from dspyops.snapshots import SnapshotStore

TABLE: Final = "snapshots"
DDL: Final = (
    f"""
    CREATE TABLE IF NOT EXISTS {TABLE} (
        position bigint PRIMARY KEY,
        event_hash bytea NOT NULL,
        state bytea NOT NULL,
        mac bytea NOT NULL DEFAULT '',
        created_at double precision NOT NULL
    )
    """,
    f"COMMENT ON TABLE {TABLE} IS 'dspyops snapshots of the fold of the events table'",
)
_UPSERT: Final = (
    f"INSERT INTO {TABLE} (position, event_hash, state, mac, created_at) VALUES (%s, %s, %s, %s, %s) "
    "ON CONFLICT (position) DO UPDATE SET event_hash = EXCLUDED.event_hash, state = EXCLUDED.state, "
    "mac = EXCLUDED.mac, created_at = EXCLUDED.created_at"
)
_NEWEST: Final = (
    f"SELECT position, event_hash, state, mac FROM {TABLE} WHERE position <= %s "
    "ORDER BY position DESC LIMIT %s"
)


class PostgresSnapshotStore(SnapshotStore):
    def __init__(self, conninfo: str, *, key: bytes | None = None, timeout: float = 10.0) -> None:
        super().__init__(key=key)
        self.conninfo = conninfo
        self._timeout = timeout
        self._tables = Tables(conninfo, "the snapshots of", DDL, timeout=timeout)

    def __repr__(self) -> str:
        return f"PostgresSnapshotStore({self._tables.url!r})"

    def _put(self, position: int, event_hash: bytes, state: bytes, mac: bytes) -> None:
        with self._tables.connection("save") as conn:
            conn.execute(_UPSERT, (position, event_hash, state, mac, time.time()))

    def _newest(self, at_most: int, limit: int) -> list[tuple[int, bytes, bytes, bytes]]:
        with self._tables.connection("read") as conn:
            rows = conn.execute(_NEWEST, (at_most, limit)).fetchall()
        return [(int(p), bytes(h), bytes(s), bytes(m)) for p, h, s, m in rows]

    def reopen(self) -> PostgresSnapshotStore:
        return PostgresSnapshotStore(self.conninfo, key=self.key, timeout=self._timeout)

    def close(self) -> None:
        self._tables.close()
