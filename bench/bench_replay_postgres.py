"""Benchmark: replay from a PostgreSQL log. The gateway's catch-up rate (events/s) over 1M
events of a busy deployment's mix, and a gateway process's cold start from a snapshot
near the head, each next to the same on a SQLite file holding the same events.

The events: bench_replay's generator (20 programs, 50 deployments, ~0.5 % VersionRegistered
carrying a ~1.5 KB artifact, the rest status changes, aliases and routes) writes the SQLite
log through the store; its rows are then copied verbatim (binary COPY) into the PostgreSQL
table, so both logs hold the same positions, payloads and chain links (the PostgreSQL one
verifies). Server: dspyops/pgserver.py with its test settings (fsync off: reads do not
care, and the fill is faster), reached over its Unix socket.

Measured, rounds alternating between the two backends:
- the gateway's replay path: a ``Replica`` tailing the store through ``FileLogSource``
  (pages of 10k, the artifact pick-up, the fold, in a worker thread as in the gateway)
  from position 0 to the head; events/s. Goal: >= 200k events/s from PostgreSQL.
- its parts: ``store.read`` alone (pages of 10k) and ``fold`` alone.
- cold start: seconds from spawning ``dspyops serve gateway --log URL`` to its first
  Predict, with a snapshot at the head minus 100 events (what a service's Ledger leaves:
  one every 10k events), against a 3-event log's start (process start and imports).
  Goal: <= 2 s.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

from bench import common
from bench.bench_replay import first_predict, generate
from dspyops.eventlog import EventStore, PostgresEventStore, open_store
from dspyops.eventlog.postgres.schema import SELECT, TABLE
from dspyops.fold import fold
from dspyops.pgserver import TEST_SETTINGS, PostgresServer, running_server
from dspyops.snapshots.backends import open_snapshots
from dspyops.state import EMPTY
from gateway_svc.file_source import FileLogSource
from gateway_svc.replica import Replica

PAGE = 10_000
_TYPES = ["int8", "text", "int8", "text", "text", "bytea", "int8", "bytea", "text", "int2"]


def copy_to_postgres(sqlite_log: Path, url: str) -> float:
    """The SQLite log's rows into the (new) PostgreSQL log's table, as they are; seconds."""
    import psycopg

    PostgresEventStore(url).close()  # creates the table
    t0 = time.perf_counter()
    source = sqlite3.connect(sqlite_log)
    try:
        with psycopg.connect(url) as conn:
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY {TABLE} ({SELECT}) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(_TYPES)
                for row in source.execute(f"SELECT {SELECT} FROM events ORDER BY position"):
                    copy.write_row(row)
            conn.commit()
            conn.autocommit = True
            conn.execute(f"VACUUM ANALYZE {TABLE}")
    finally:
        source.close()
    return time.perf_counter() - t0


def read_only(store: EventStore) -> tuple[int, float]:
    t0 = time.perf_counter()
    last, n = 0, 0
    while events := store.read(last, PAGE):
        last = events[-1].position
        n += len(events)
    return n, time.perf_counter() - t0


def fold_only(store: EventStore) -> tuple[int, float]:
    pages, last = [], 0
    while events := store.read(last, PAGE):
        last = events[-1].position
        pages.append(events)
    t0 = time.perf_counter()
    state = EMPTY
    for page in pages:
        state = fold(page, state)
    return state.position, time.perf_counter() - t0


def server_cpu(server: PostgresServer | None) -> dict[int, float]:
    """CPU seconds used so far by each of the server's processes (the postmaster and its
    children), by pid."""
    if server is None:
        return {}
    postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if pid == postmaster or int(fields[1]) == postmaster:
            used[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return used


def cpu_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two server_cpu readings (a process gone by the second is not
    counted: an undercount, never negative)."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())


def replica_catch_up(log: str, server: PostgresServer | None) -> dict[str, float]:
    """A gateway's Replica from nothing to the head of `log`, as the gateway tails it: wall
    seconds, and CPU seconds of this process and of the database server (what the load of
    the other users of the machine does not change much)."""

    async def run() -> dict[str, float]:
        store = open_store(log, create=False)
        head = store.head()
        replica = Replica(FileLogSource(store))
        cpu0, server0, t0 = time.process_time(), server_cpu(server), time.perf_counter()
        try:
            await replica.start()
            await replica.wait_for(head)
            wall = time.perf_counter() - t0
            n = replica.state.position
            return {
                "events": n,
                "per_s": rate(n, wall),
                "client_cpu_us": (time.process_time() - cpu0) / n * 1e6,
                "server_cpu_us": cpu_since(server0, server_cpu(server)) / n * 1e6,
            }
        finally:
            await replica.stop()

    return asyncio.run(run())


def snapshot_near_head(log: str, behind: int = 100) -> float:
    """Save the fold at head - `behind` as the log's snapshot (what a service's Ledger writes:
    a table in a PostgreSQL log's database, a file beside a SQLite log)."""
    t0 = time.perf_counter()
    store = open_store(log, create=False)
    snapshots = open_snapshots(log)
    try:
        target = store.head() - behind
        state, last = EMPTY, 0
        while last < target and (events := store.read(last, min(PAGE, target - last))):
            state = fold(events, state)
            last = events[-1].position
        snapshots.save(state, store.read(last - 1, 1)[0].hash)
    finally:
        snapshots.close()
        store.close()
    return time.perf_counter() - t0


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds else float("nan")


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=0, help="log size (default 1M; --quick 20k)")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    common.banner("replay_postgres", args.quick)
    total = args.events or (20_000 if args.quick else 1_000_000)
    load_start = common.loadavg()
    results: dict[str, Any] = {}
    settings = dict(TEST_SETTINGS) | {"shared_buffers": "256MB"}
    with common.tmpdir("replay-pg") as tmp, running_server(settings) as server:
        work = Path(tmp)
        sqlite_log = work / "big.db"
        gen_s = generate(sqlite_log, total)
        url = server.url(server.create_database())
        copy_s = copy_to_postgres(sqlite_log, url)
        print(f"  generated {total:,} events in {gen_s:.1f} s, copied to PostgreSQL in {copy_s:.1f} s")
        logs = {"postgres": url, "sqlite": str(sqlite_log)}
        check = open_store(url, create=False)
        try:
            verified = check.verify()
        finally:
            check.close()
        print(f"  PostgreSQL log verifies: {verified.ok} ({verified.checked:,} links)")
        parts = ("replica", "client_cpu_us", "server_cpu_us", "read", "fold")
        runs: dict[str, dict[str, list[float]]] = {b: {k: [] for k in parts} for b in logs}
        for r in range(args.rounds):
            order = list(logs) if r % 2 == 0 else list(reversed(logs))
            for backend in order:
                caught = replica_catch_up(logs[backend], server if backend == "postgres" else None)
                runs[backend]["replica"].append(caught["per_s"])
                runs[backend]["client_cpu_us"].append(caught["client_cpu_us"])
                runs[backend]["server_cpu_us"].append(caught["server_cpu_us"])
                store = open_store(logs[backend], create=False)
                try:
                    n, s = read_only(store)
                    runs[backend]["read"].append(rate(n, s))
                    n, s = fold_only(store)
                    runs[backend]["fold"].append(rate(n, s))
                finally:
                    store.close()
                print(
                    f"  round {r + 1} {backend:8s} replica {runs[backend]['replica'][-1]:10,.0f} events/s"
                    f" (CPU per event: {caught['client_cpu_us']:.1f} us here,"
                    f" {caught['server_cpu_us']:.1f} us in the server)"
                    f"   read {runs[backend]['read'][-1]:10,.0f}   fold {runs[backend]['fold'][-1]:10,.0f}",
                    flush=True,
                )
        rates = {b: {k: statistics.median(v) for k, v in parts.items()} for b, parts in runs.items()}
        ratio = rates["postgres"]["replica"] / rates["sqlite"]["replica"]
        print(
            f"  replay (median): PostgreSQL {rates['postgres']['replica']:,.0f} events/s, SQLite "
            f"{rates['sqlite']['replica']:,.0f} events/s, ratio {ratio:.2f}; CPU per event "
            f"{rates['postgres']['client_cpu_us']:.1f} + {rates['postgres']['server_cpu_us']:.1f} us "
            "(PostgreSQL), "
            f"{rates['sqlite']['client_cpu_us']:.1f} us (SQLite)   "
            f"{common.verdict(rates['postgres']['replica'] / 200_000, 1.0, True)} (200k/s)"
        )
        results["replay"] = {"per_round": runs, "median": rates, "ratio_pg_over_sqlite": ratio}

        # cold start: a gateway process on each log with a snapshot 100 events behind its head
        small = work / "small.db"
        common.build_log(small)
        cold_small = first_predict(small, work, common.DEPLOYMENT)
        pg_home = work / "pg-gateway"
        pg_home.mkdir()
        snap_s = {
            "postgres": snapshot_near_head(url),
            "sqlite": snapshot_near_head(str(sqlite_log)),
        }
        starts: dict[str, list[float]] = {b: [] for b in logs}
        for r in range(args.rounds):
            order = list(logs) if r % 2 == 0 else list(reversed(logs))
            for backend in order:
                if backend == "postgres":
                    found = pg_first_predict(url, pg_home)
                else:
                    found = first_predict(sqlite_log, work, "dep0")
                starts[backend].append(found["first_predict_s"])
        cold = {b: statistics.median(v) for b, v in starts.items()}
        print(
            f"  first Predict from a snapshot at head-100: PostgreSQL {cold['postgres']:.2f} s, SQLite "
            f"{cold['sqlite']:.2f} s, 3-event SQLite log {cold_small['first_predict_s']:.2f} s "
            f"(snapshots took {snap_s['postgres']:.1f} / {snap_s['sqlite']:.1f} s)   "
            f"{common.verdict(cold['postgres'], 2.0, False)}"
        )
        results["cold_start"] = {
            "per_round_s": starts,
            "median_s": cold,
            "small_sqlite_log": cold_small,
            "snapshot_s": snap_s,
        }
    common.save(
        "replay_postgres",
        {
            "quick": args.quick,
            "loadavg_start": load_start,
            "events": total,
            "generate_s": gen_s,
            "copy_s": copy_s,
            "server_settings": settings,
            "results": results,
            "goals": {"replay_per_s": 200_000, "first_predict_s": 2.0},
        },
    )


def pg_first_predict(url: str, home: Path) -> dict[str, float]:
    """`dspyops serve gateway --log URL`, its records in `home`."""
    return first_predict(url, home, "dep0", extra=("--predictions", str(home / "gw.predictions")))


if __name__ == "__main__":
    main()
