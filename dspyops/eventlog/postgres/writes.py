"""The append transaction: what runs between ``BEGIN`` and ``COMMIT``.

Why positions are gapless and in commit order: the transaction first takes ``LOCK TABLE
events IN EXCLUSIVE MODE`` (the mode eventsourcing's PostgreSQL recorder takes), which
conflicts with itself but not with the ACCESS SHARE of plain SELECTs, so writers queue
while readers go on. Only then does it read the head and assign ``position = head + 1``:
no sequence, whose numbers a rolled-back insert would use up (eventsourcing's notification
ids may have gaps; ours may not). The lock is held until COMMIT, and PostgreSQL makes a
transaction visible before it releases its locks, so the next writer starts after this
batch is visible and readers never see position n + 1 without n. Why it is durable: the
COMMIT returns once the WAL is flushed (``synchronous_commit=on``, the server's default).

The NOTIFY is sent in the same transaction, so PostgreSQL delivers it at commit, and only if
the batch committed: a listener woken by it finds the batch there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import psycopg
from psycopg.rows import TupleRow

from dspyops.eventlog.batch import appended, check_expected, retried, stamp
from dspyops.eventlog.hashchain import GENESIS, LINK_V1, LinkHasher
from dspyops.eventlog.postgres.schema import SELECT, TABLE
from dspyops.eventlog.store import AppendResult, NewEvent

CHANNEL: Final = "dspyops_events"
# The server's clock in microseconds since the epoch: the log's clock (EventStore.clock_us),
# read after the table lock, so recorded_at follows commit order as closely as it can.
NOW_US: Final = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint"
# The stream's version, the log's last row and the server's clock in one statement (one
# row even on an empty log).
_HEADS: Final = (
    f"SELECT (SELECT COALESCE(MAX(version), 0) FROM {TABLE} WHERE stream = %s),"
    f" last.position, last.hash, last.recorded_at, last.chain, {NOW_US} FROM (SELECT 1) AS one"
    f" LEFT JOIN LATERAL (SELECT position, hash, recorded_at, chain FROM {TABLE}"
    " ORDER BY position DESC LIMIT 1) AS last ON true"
)
_INSERT: Final = f"INSERT INTO {TABLE} ({SELECT}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def append_in_transaction(
    conn: psycopg.Connection[TupleRow],
    hasher: LinkHasher,
    log: str,
    stream: str,
    events: Sequence[NewEvent],
    expected_version: int | None,
    actor: str,
) -> AppendResult:
    """Write the batch (or recognise its retry) inside the caller's open transaction.

    Run in pipeline mode (the caller's ``conn.pipeline()``): the lock and the two lookups
    go out together and come back in one round trip (the first fetch syncs), the inserts,
    the NOTIFY and the COMMIT in another, instead of eight.
    """
    conn.execute(f"LOCK TABLE {TABLE} IN EXCLUSIVE MODE")
    ids = [event.event_id for event in events]
    found = conn.execute(
        f"SELECT event_id, stream, position, version FROM {TABLE} WHERE event_id = ANY(%s)",
        (ids,),
        # never prepared: a generic plan for "= ANY(an array of unknown length)" scans the
        # table (4 ms per 100-event batch on a small log, growing with it)
        prepare=False,
    )
    heads = conn.execute(_HEADS, (stream,))
    stored = {
        event_id: (stream_, int(position), int(version)) for event_id, stream_, position, version in found
    }
    retry = retried(stream, ids, stored)
    if retry is not None:
        return retry
    row = heads.fetchone()
    assert row is not None  # one row always (the LEFT JOIN)
    current = int(row[0])
    check_expected(stream, expected_version, current)
    head = (
        (int(row[1]), bytes(row[2]), int(row[3]), int(row[4]))
        if row[1] is not None
        else (0, GENESIS, 0, LINK_V1)
    )
    rows = stamp(hasher, log, stream, current, actor, events, head, now_us=int(row[5]))
    version = hasher.version
    with conn.cursor() as cur:
        cur.executemany(_INSERT, [(*r, version) for r in rows])
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(rows[-1][0])))
    return appended(stream, rows)
