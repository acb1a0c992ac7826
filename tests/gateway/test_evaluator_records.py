"""Outcome sources in both records backends (SQLite file, PostgreSQL tables): a human outcome
and each evaluator's score of one prediction are rows of their own; every statistic reads the
human ones unless asked for a source; an outcomes table from before sources gains the column
and the wider key, its outcomes kept as human ones."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from dspyops.pgsecret import load_or_create_server_secret
from gateway_svc.records import ArmCounts, PredictionRecord, PredictionStore
from gateway_svc.records.postgres import PostgresPredictionStore
from gateway_svc.records.sqlite import SQLitePredictionStore

SECRET = b"e" * 32
RECORD = PredictionRecord("", "web", "p", "1.0.0", 0, "e1", "", 0.5, 2, "", 3, 1.0, "", 10, '{"label": "x"}')
# an outcomes table as it was before sources (and before expected outputs), one outcome in it
OLD_OUTCOMES = (
    "CREATE TABLE outcomes (prediction_id text PRIMARY KEY, value double precision NOT NULL, "
    "recorded_at_us bigint NOT NULL, request_id text NOT NULL DEFAULT '')"
)
OLD_ROW = "INSERT INTO outcomes (prediction_id, value, recorded_at_us) VALUES ('old', 1.0, 5)"


def _record_all(store: PredictionStore, *ids: str) -> None:
    async def scenario() -> None:
        await asyncio.gather(*(store.record(replace(RECORD, prediction_id=i)) for i in ids))

    asyncio.run(scenario())


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], PredictionStore]]:
    if request.param == "sqlite":
        yield lambda: SQLitePredictionStore(tmp_path / "p.db", secret=SECRET)
    else:
        url: str = request.getfixturevalue("postgres_url")
        secret = load_or_create_server_secret(url)
        yield lambda: PostgresPredictionStore(url, secret=secret)


def test_scores_of_each_source_are_apart_and_statistics_read_human_outcomes(
    opener: Callable[[], PredictionStore],
) -> None:
    store = opener()
    try:
        _record_all(store, "a", "b")
        store.add_outcome("a", 1.0, expected={"label": "x"})
        store.add_outcome("b", 1.0)
        assert store.add_scored("a", "evaluator:zero", 0.0)
        assert store.add_scored("b", "evaluator:zero", 0.0)
        assert store.add_scored("a", "evaluator:other", 0.5)
        assert not store.add_scored("a", "evaluator:zero", 0.0)  # once per prediction and source
        assert store.arm_counts("web", "e1", "binary") == {"1.0.0": ArmCounts(2, 2, 2.0, 2.0)}
        assert store.arm_counts("web", "e1", "binary", "evaluator:zero") == {
            "1.0.0": ArmCounts(2, 2, 0.0, 0.0)
        }
        assert [r.outcome for r in store.drift_rows("web", "1.0.0", 0, "binary")] == [1.0, 1.0]
        zero = store.drift_rows("web", "1.0.0", 0, "binary", source="evaluator:zero")
        assert [r.outcome for r in zero] == [0.0, 0.0]
        assert [r.prediction_id for r in store.feedback("web", 0, 2**63 - 1, (0, ""), 10)] == ["a"]
        assert store.source_summary("web", "evaluator:zero") == (2, 0.0)
        assert store.source_summary("web", "evaluator:other") == (1, 0.5)
        assert store.source_summary("web", "evaluator:none") == (0, 0.0)
        assert store.scores_of("a") == {"evaluator:zero": 0.0, "evaluator:other": 0.5}  # no human one
        assert store.scores_of("nope") == {}
    finally:
        store.close()


def test_sqlite_outcomes_from_before_sources_are_human_and_take_scores_beside_them(tmp_path: Path) -> None:
    path = tmp_path / "old.predictions"
    store = SQLitePredictionStore(path, secret=SECRET)
    _record_all(store, "old")
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE outcomes")
        conn.execute(OLD_OUTCOMES)
        conn.execute(OLD_ROW)
    conn.close()
    _check_old(SQLitePredictionStore(path, secret=SECRET))


def test_postgres_outcomes_from_before_sources_are_human_and_take_scores_beside_them(
    postgres_url: str,
) -> None:
    secret = load_or_create_server_secret(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(OLD_OUTCOMES)
        conn.execute(OLD_ROW)
    store = PostgresPredictionStore(postgres_url, secret=secret)
    _record_all(store, "old")
    store.close()
    _check_old(PostgresPredictionStore(postgres_url, secret=secret))


def _check_old(store: PredictionStore) -> None:
    try:
        assert store.arm_counts("web", "e1")["1.0.0"].n == 1  # the old outcome: a human one
        assert store.add_scored("old", "evaluator:zero", 0.0)  # beside it, not refused by the old key
        assert store.arm_counts("web", "e1")["1.0.0"] == ArmCounts(1, 1, 1.0, 1.0)
        assert store.source_summary("web", "evaluator:zero") == (1, 0.0)
    finally:
        store.close()
