"""Snapshots in an SQLite file of their own, beside a file log (``<log>.snapshots``)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import sqlite_utils

from dspyops.eventlog import is_server_log, log_file
from dspyops.snapshots import SnapshotStore


class SQLiteSnapshotStore(SnapshotStore):
    def __init__(self, path: str | Path, *, key: bytes | None = None) -> None:
        super().__init__(key=key)
        self.path = str(path)
        self.db = sqlite_utils.Database(sqlite3.connect(self.path, timeout=30, check_same_thread=False))
        self.db.execute("PRAGMA journal_mode=WAL")
        table = self.db.table("snapshots")
        table.create(
            {"position": int, "hash": bytes, "state": bytes, "created_at": float, "mac": bytes},
            pk="position",
            not_null={"mac"},
            defaults={"mac": b""},
            if_not_exists=True,
        )
        if "mac" not in table.columns_dict:  # a file written before snapshots were signed
            table.add_column("mac", bytes, not_null_default=b"")

    def __repr__(self) -> str:
        return f"SQLiteSnapshotStore({self.path!r})"

    def _put(self, position: int, event_hash: bytes, state: bytes, mac: bytes) -> None:
        with self.db.conn:
            self.db.table("snapshots").upsert(
                {
                    "position": position,
                    "hash": event_hash,
                    "state": state,
                    "created_at": time.time(),
                    "mac": mac,
                },
                pk="position",
            )

    def _newest(self, at_most: int, limit: int) -> list[tuple[int, bytes, bytes, bytes]]:
        rows = self.db.execute(
            "SELECT position, hash, state, mac FROM snapshots WHERE position <= ? "
            "ORDER BY position DESC LIMIT ?",
            [at_most, limit],
        ).fetchall()
        return [(int(p), bytes(h), bytes(s), bytes(m or b"")) for p, h, s, m in rows]

    def reopen(self) -> SQLiteSnapshotStore:
        return SQLiteSnapshotStore(self.path, key=self.key)

    def close(self) -> None:
        self.db.conn.close()


def snapshot_path(log: str) -> str:
    """``<log>.snapshots``, beside a file log (a server log's are a table: open_snapshots)."""
    if is_server_log(log):
        raise ValueError("a server log's snapshots are a table of its database, not a file")
    return f"{log_file(log)}.snapshots"
