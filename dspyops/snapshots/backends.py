"""Which snapshot store a log's snapshots are in, from the log's URL (as open_store picks
the log's backend): a PostgreSQL log's are in its database, a file log's beside the file."""

from __future__ import annotations

from dspyops.eventlog import is_server_log
from dspyops.snapshots import SnapshotStore
from dspyops.snapshots.postgres import PostgresSnapshotStore
from dspyops.snapshots.sqlite import SQLiteSnapshotStore, snapshot_path


def open_snapshots(log: str, key: bytes | None = None) -> SnapshotStore:
    """The snapshots of the log ``log`` (a path, ``sqlite:///`` or ``postgresql://`` URL)."""
    if is_server_log(log):
        return PostgresSnapshotStore(log, key=key)
    return SQLiteSnapshotStore(snapshot_path(log), key=key)
