"""Prediction records: a record is committed (readable from another connection) when
`record` returns; concurrent records share commits; a failed commit fails every request it
carried; close() commits what was queued and refuses later records."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from gateway_svc.records import PredictionRecord, PredictionStore


def _record(prediction_id: str) -> PredictionRecord:
    return PredictionRecord(
        prediction_id=prediction_id,
        deployment="web",
        program="p",
        version="1.0.0",
        bucket=0,
        experiment_id="",
        routing_key_sha256="",
        hash_value=0.25,
        hash_version=2,
        seed="s",
        log_position=3,
        latency_ms=1.5,
        error="",
        recorded_at_us=1,
        outputs_json='{"label": "x"}',
    )


def _count(path: Path) -> int:
    with sqlite3.connect(path) as conn:  # another connection: sees committed rows only
        return int(conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])


def test_an_acknowledged_record_is_committed_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    store = PredictionStore(path)

    async def scenario() -> None:
        await store.record(_record("a"))
        assert _count(path) == 1

    try:
        asyncio.run(scenario())
        assert store.get("a") == _record("a")
    finally:
        store.close()


def test_concurrent_records_all_commit(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    store = PredictionStore(path)

    async def scenario() -> None:
        await asyncio.gather(*(store.record(_record(f"r{i}")) for i in range(500)))
        assert _count(path) == 500

    try:
        asyncio.run(scenario())
    finally:
        store.close()


def test_a_failed_commit_fails_its_requests_and_the_writer_goes_on(tmp_path: Path) -> None:
    store = PredictionStore(tmp_path / "p.db")

    async def scenario() -> None:
        await store.record(_record("dup"))
        with pytest.raises(sqlite3.IntegrityError):
            await store.record(_record("dup"))
        await store.record(_record("after"))  # the writer survived the failed batch

    try:
        asyncio.run(scenario())
        assert store.get("after").prediction_id == "after"
    finally:
        store.close()


def test_close_commits_the_queue_and_refuses_later_records(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    store = PredictionStore(path)

    async def scenario() -> None:
        pending = [asyncio.ensure_future(store.record(_record(f"q{i}"))) for i in range(50)]
        await asyncio.sleep(0)  # every request has queued its record
        await asyncio.to_thread(store.close)
        await asyncio.gather(*pending)
        with pytest.raises(RuntimeError, match="closed"):
            await store.record(_record("late"))

    asyncio.run(scenario())
    assert _count(path) == 50


def test_records_from_two_event_loops(tmp_path: Path) -> None:
    """Each request is woken on its own loop (a store may serve more than one)."""
    path = tmp_path / "p.db"
    store = PredictionStore(path)

    async def some(prefix: str) -> None:
        await asyncio.gather(*(store.record(_record(f"{prefix}{i}")) for i in range(20)))

    async def scenario() -> None:
        await asyncio.gather(some("a"), asyncio.to_thread(asyncio.run, some("b")))

    try:
        asyncio.run(scenario())
        assert _count(path) == 40
    finally:
        store.close()
