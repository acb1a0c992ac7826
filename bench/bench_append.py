"""Benchmark 3: durable appends to the log vs the `eventsourcing` library's SQLite recorder.

Both write to a SQLite file in the same temp directory with the same durability: WAL
journal, synchronous=FULL (eventsourcing's SQLiteDatastore sets journal_mode=WAL and leaves
synchronous at SQLite's default; we set FULL on its connections explicitly and check it),
one transaction per call. Measured: single-event appends/s and 100-event batches/s, rounds
interleaved so load changes hit both. Goal: >= 1.0 x on both.

What each side does per call (not the same work, which is the point of the comparison):
- dspyops `SQLiteEventStore.append`: BEGIN IMMEDIATE, event-id dedup lookup, stream
  version check (expected_version), head lookup, sha256 hash chain, INSERT, COMMIT.
- eventsourcing `SQLiteApplicationRecorder.insert_events`: BEGIN, INSERT per event
  (the (originator_id, version) primary key is its optimistic concurrency), COMMIT.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from bench import common
from dspyops.eventlog import NewEvent, open_store
from dspyops.events import new_event
from dspyops.proto import events_pb2 as pb

STREAMS = 100


def payload() -> bytes:
    return new_event(
        pb.RoutesSet(
            deployment="web",
            routes=[pb.Route(version="1.4.0", weight=0.9), pb.Route(version="1.5.0", weight=0.1)],
            reason="canary",
        )
    ).payload


TYPE = "dspyops.v1.RoutesSet"


class Ours:
    name = "dspyops"

    def __init__(self, path: Path) -> None:
        self.store = open_store(str(path))
        self.versions = [0] * STREAMS
        self.i = 0
        self.data = payload()

    def append(self, batch: int) -> None:
        s = self.i % STREAMS
        self.i += 1
        events = [NewEvent(type=TYPE, payload=self.data) for _ in range(batch)]
        self.store.append(f"deployment-d{s}", events, self.versions[s])
        self.versions[s] += batch

    def synchronous(self) -> int:
        with self.store._db.connection("bench") as conn:
            return conn.execute("PRAGMA synchronous").fetchone()[0]

    def close(self) -> None:
        self.store.close()


class Theirs:
    name = "eventsourcing"

    def __init__(self, path: Path) -> None:
        from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

        self.datastore = SQLiteDatastore(db_name=str(path))
        pool = self.datastore.pool
        original = pool._create_connection

        def create_connection():
            conn = original()
            conn._sqlite_conn.execute("PRAGMA synchronous=FULL")
            return conn

        pool._create_connection = create_connection
        self.recorder = SQLiteApplicationRecorder(self.datastore)
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

    def synchronous(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute("PRAGMA synchronous")
            return c.fetchone()[0]

    def journal_mode(self) -> str:
        with self.datastore.transaction(commit=False) as c:
            c.execute("PRAGMA journal_mode")
            return c.fetchone()[0]

    def close(self) -> None:
        self.datastore.close()


def run_for(side, batch: int, seconds: float) -> tuple[int, float]:
    calls = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline:
        side.append(batch)
        calls += 1
    return calls, time.perf_counter() - t0


def compare(ours, theirs, rounds: int, seconds: float) -> dict[str, dict]:
    """Single appends and 100-event batches, `rounds` interleaved rounds of `seconds` each
    (the order alternates), printed and returned as rates and their ratio."""
    results: dict[str, dict] = {}
    for batch in (1, 100):
        for side in (ours, theirs):
            side.append(batch)  # warm-up
        totals: dict[str, list[float]] = {side.name: [0, 0.0] for side in (ours, theirs)}
        per_round: dict[str, list[float]] = {side.name: [] for side in (ours, theirs)}
        for r in range(rounds):
            order = (ours, theirs) if r % 2 == 0 else (theirs, ours)
            for side in order:
                calls, elapsed = run_for(side, batch, seconds)
                totals[side.name][0] += calls
                totals[side.name][1] += elapsed
                per_round[side.name].append(calls / elapsed)
        key = "single" if batch == 1 else "batch100"
        rate = {name: c / t for name, (c, t) in totals.items()}
        ratio = rate["dspyops"] / rate["eventsourcing"]
        results[key] = {
            "dspyops_per_s": rate["dspyops"],
            "eventsourcing_per_s": rate["eventsourcing"],
            "ratio": ratio,
            "per_round": per_round,
        }
        unit = "appends/s" if batch == 1 else "batches/s (x100 events)"
        print(
            f"  {key:9s} dspyops {rate['dspyops']:8.1f}  eventsourcing {rate['eventsourcing']:8.1f} "
            f"{unit}  ratio {ratio:.2f}  {common.verdict(ratio, 1.0, True)}"
        )
    return results


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.banner("append", args.quick)
    rounds, seconds = (2, 0.5) if args.quick else (4, 4.0)
    load_start = common.loadavg()
    results: dict[str, dict[str, float]] = {}
    with common.tmpdir("append") as tmp:
        ours, theirs = Ours(Path(tmp) / "ours.db"), Theirs(Path(tmp) / "theirs.db")
        settings = {
            "dspyops": {"synchronous": ours.synchronous(), "journal_mode": "wal"},
            "eventsourcing": {"synchronous": theirs.synchronous(), "journal_mode": theirs.journal_mode()},
        }
        print(f"  durability: {settings} (synchronous 2 = FULL)")
        try:
            results.update(compare(ours, theirs, rounds, seconds))
        finally:
            ours.close()
            theirs.close()
    common.save(
        "append",
        {
            "quick": args.quick,
            "loadavg_start": load_start,
            "settings": settings,
            "results": results,
            "goal": 1.0,
        },
    )


if __name__ == "__main__":
    main()
