"""The append transaction: what runs between ``BEGIN IMMEDIATE`` and ``COMMIT``.

Why it is gapless: ``BEGIN IMMEDIATE`` takes SQLite's single write lock before the head is
read, so writers (threads or processes) are serialized and commit in position order; a
reader never sees position n + 1 without n. Why it is durable: ``synchronous=FULL`` (set on
every connection) makes the WAL fsync on every commit, so an acknowledged append survives
kill -9 or power loss.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

from dspyops.eventlog.batch import appended, check_expected, retried, stamp
from dspyops.eventlog.hashchain import GENESIS, LINK_V1, LINK_V2, LINK_V2_KEYED, LinkHasher
from dspyops.eventlog.sqlite.schema import SELECT
from dspyops.eventlog.store import AppendResult, NewEvent

_ID_CHUNK: Final = 500  # stays far below SQLite's bound-parameter limit
# The link version is the same for the whole batch: a literal (one of two statements, both in
# sqlite3's statement cache) instead of one more bound value per row.
_INSERT: Final = {
    version: f"INSERT INTO events ({SELECT}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, {version})"
    for version in (LINK_V2, LINK_V2_KEYED)
}

_HEAD: Final = (
    "SELECT (SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?),"
    " position, hash, recorded_at, chain FROM events ORDER BY position DESC LIMIT 1"
)


def append_in_transaction(
    conn: sqlite3.Connection,
    hasher: LinkHasher,
    log: str,
    stream: str,
    events: Sequence[NewEvent],
    expected_version: int | None,
    actor: str,
) -> AppendResult:
    """Write the batch (or recognise its retry) inside the caller's open transaction."""
    ids = [event.event_id for event in events]
    retry = retried(stream, ids, _stored_ids(conn, ids))
    if retry is not None:
        return retry
    # the stream's version and the log's head in one statement (one step less per append)
    row = conn.execute(_HEAD, (stream,)).fetchone()
    current, head = (row[0], row[1:]) if row else (0, (0, GENESIS, 0, LINK_V1))
    check_expected(stream, expected_version, current)
    rows = stamp(hasher, log, stream, current, actor, events, head)
    conn.executemany(_INSERT[hasher.version], rows)
    return appended(stream, rows)


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
