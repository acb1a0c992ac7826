"""Benchmark: durable appends to the PostgreSQL log vs the `eventsourcing` library's
PostgreSQL recorder.

One throwaway server (dspyops/pgserver.py: fsync=on, full_page_writes=on,
synchronous_commit=on, so a COMMIT returns once the WAL is on disk), reached over its Unix
socket by both sides, each in a database of its own; one transaction per call. Measured:
single-event appends/s and 100-event batches/s, rounds interleaved so load changes hit
both. Goal: >= 1.0 x on both.

What each side does per call (not the same work, which is the point of the comparison):
- dspyops `PostgresEventStore.append`: BEGIN, LOCK TABLE events IN EXCLUSIVE MODE, event-id
  dedup lookup, stream version check (expected_version), head lookup, sha256 hash chain,
  INSERT (psycopg's pipelined executemany), pg_notify, COMMIT; positions gapless.
- eventsourcing `PostgresApplicationRecorder.insert_events`: BEGIN, LOCK TABLE
  stored_events IN EXCLUSIVE MODE, INSERT per event (the (originator_id, version) primary
  key is its optimistic concurrency; notification ids from a sequence, gaps allowed),
  COMMIT.
"""

from __future__ import annotations

import uuid
from typing import Any

from bench import common
from bench.bench_append import STREAMS, TYPE, compare, payload
from dspyops.eventlog import NewEvent, PostgresEventStore
from dspyops.pgserver import DURABLE_SETTINGS, PostgresServer, running_server


class Ours:
    name = "dspyops"

    def __init__(self, server: PostgresServer) -> None:
        self.store = PostgresEventStore(server.url(server.create_database()))
        self.versions = [0] * STREAMS
        self.i = 0
        self.data = payload()

    def append(self, batch: int) -> None:
        s = self.i % STREAMS
        self.i += 1
        events = [NewEvent(type=TYPE, payload=self.data) for _ in range(batch)]
        self.store.append(f"deployment-d{s}", events, self.versions[s])
        self.versions[s] += batch

    def close(self) -> None:
        self.store.close()


class Theirs:
    name = "eventsourcing"

    def __init__(self, server: PostgresServer) -> None:
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

        self.datastore = PostgresDatastore(
            dbname=server.create_database(),
            host=str(server.socket_dir),
            port=server.port,
            user=server.user,
            password="",
        )
        self.recorder = PostgresApplicationRecorder(self.datastore)
        self.recorder.create_table()
        self.ids = [uuid.uuid4() for _ in range(STREAMS)]
        self.versions = [0] * STREAMS
        self.i = 0
        self.data = payload()

    def append(self, batch: int) -> None:
        from eventsourcing.persistence import StoredEvent

        s = self.i % STREAMS
        self.i += 1
        v = self.versions[s]
        events = [StoredEvent(self.ids[s], v + k + 1, TYPE, self.data) for k in range(batch)]
        self.recorder.insert_events(events)
        self.versions[s] += batch

    def close(self) -> None:
        self.datastore.close()


def settings(server: PostgresServer) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(server.url()) as conn:
        return {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
        }


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.banner("append_postgres", args.quick)
    rounds, seconds = (2, 0.5) if args.quick else (4, 4.0)
    load_start = common.loadavg()
    results: dict[str, dict[str, Any]] = {}
    with running_server(dict(DURABLE_SETTINGS)) as server:
        durability = settings(server)
        print(f"  durability (both sides, one server): {durability}")
        ours, theirs = Ours(server), Theirs(server)
        try:
            results.update(compare(ours, theirs, rounds, seconds))
            ours_check = ours.store.verify()
            print(f"  dspyops log after the run: {ours_check.checked} links checked, ok={ours_check.ok}")
        finally:
            ours.close()
            theirs.close()
    common.save(
        "append_postgres",
        {
            "quick": args.quick,
            "loadavg_start": load_start,
            "settings": durability,
            "results": results,
            "goal": 1.0,
        },
    )


if __name__ == "__main__":
    main()
