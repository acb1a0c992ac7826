"""Benchmark: prediction records on both backends, with the same durability (an SQLite file
with synchronous=FULL; a PostgreSQL server with fsync=on, synchronous_commit=on).

Measured per backend: records/s with 256 requests in flight on one event loop (the group
commit: one transaction per batch of whatever queued meanwhile), outcomes/s one after
another (each its own transaction, request id checked), and the time of one arm_counts
over every record (what GetExperimentResults and each canary check pay). No goal: the
numbers say what a gateway pays for keeping its records in the log's database (shared by
every gateway) instead of a local file.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import common
from dspyops.pgsecret import load_or_create_server_secret
from dspyops.pgserver import DURABLE_SETTINGS, running_server
from gateway_svc.records import PredictionRecord, PredictionStore
from gateway_svc.records.postgres import PostgresPredictionStore
from gateway_svc.records.sqlite import SQLitePredictionStore

IN_FLIGHT = 256
TEMPLATE = PredictionRecord(
    prediction_id="",
    deployment="web",
    program="p",
    version="1.0.0",
    bucket=0,
    experiment_id="e",
    routing_key_sha256="",
    hash_value=0.25,
    hash_version=2,
    seed="s",
    log_position=3,
    latency_ms=1.5,
    error="",
    recorded_at_us=1,
    outputs_json='{"label": "billing"}',
)


def measure(store: PredictionStore, records: int, outcomes: int) -> dict[str, float]:
    ids = [uuid.uuid4().hex for _ in range(records)]

    async def record_all() -> float:
        pending: set[asyncio.Future[None]] = set()
        start = time.perf_counter()
        for i, pid in enumerate(ids):
            version = "1.0.0" if i % 2 else "1.1.0"
            pending.add(
                asyncio.ensure_future(store.record(replace(TEMPLATE, prediction_id=pid, version=version)))
            )
            if len(pending) >= IN_FLIGHT:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.gather(*pending)
        return time.perf_counter() - start

    record_s = asyncio.run(record_all())
    start = time.perf_counter()
    for pid in ids[:outcomes]:
        store.add_outcome(pid, 1.0, request_id=pid)
    outcome_s = time.perf_counter() - start
    start = time.perf_counter()
    counts = store.arm_counts("web", "e", "binary")
    arm_ms = (time.perf_counter() - start) * 1000
    assert (
        sum(c.assigned for c in counts.values()) == records and sum(c.n for c in counts.values()) == outcomes
    )
    return {
        "records_per_s": records / record_s,
        "outcomes_per_s": outcomes / outcome_s,
        "arm_counts_ms": arm_ms,
    }


def main() -> None:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    common.banner("records", args.quick)
    records, outcomes = (5_000, 500) if args.quick else (50_000, 5_000)
    results: dict[str, Any] = {}
    load_start = common.loadavg()
    with common.tmpdir("records") as tmp:
        sqlite = SQLitePredictionStore(Path(tmp) / "records.db", secret=b"s" * 32)
        try:
            results["sqlite"] = measure(sqlite, records, outcomes)
        finally:
            sqlite.close()
    with running_server(dict(DURABLE_SETTINGS)) as server:
        url = server.url(server.create_database())
        postgres = PostgresPredictionStore(url, secret=load_or_create_server_secret(url))
        try:
            results["postgres"] = measure(postgres, records, outcomes)
        finally:
            postgres.close()
    for name, r in results.items():
        print(
            f"  {name:8s} {r['records_per_s']:9.0f} records/s ({IN_FLIGHT} in flight)  "
            f"{r['outcomes_per_s']:7.0f} outcomes/s  "
            f"arm_counts over {records:,} records {r['arm_counts_ms']:.1f} ms"
        )
    common.save(
        "records",
        {
            "quick": args.quick,
            "loadavg_start": load_start,
            "records": records,
            "outcomes": outcomes,
            **results,
        },
    )


if __name__ == "__main__":
    main()
