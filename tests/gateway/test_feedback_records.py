"""Expected outputs in both records backends: stored with the outcome as canonical JSON, read
back by `feedback` in (outcome time, prediction id) order after a cursor, and added as an
empty column to an outcomes table from before them (SQLite file, PostgreSQL table)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import psycopg

from dspyops.pgsecret import load_or_create_server_secret
from gateway_svc.records import PredictionRecord, PredictionStore
from gateway_svc.records.postgres import PostgresPredictionStore
from gateway_svc.records.sqlite import SQLitePredictionStore

SECRET = b"k" * 32
RECORD = PredictionRecord("", "web", "p", "1.0.0", 0, "", "", 0.5, 2, "", 3, 1.0, "", 10, '{"label": "x"}')
OLD_OUTCOMES = "CREATE TABLE outcomes (prediction_id text PRIMARY KEY, value double precision NOT NULL, "
OLD_OUTCOMES += "recorded_at_us bigint NOT NULL, request_id text NOT NULL DEFAULT '')"


def _filled(store: PredictionStore) -> None:
    records = [
        replace(RECORD, prediction_id="a", inputs_json='{"text": "one"}'),
        replace(RECORD, prediction_id="b"),  # nothing captured
        replace(RECORD, prediction_id="c", inputs_json='{"text": "three"}'),
        replace(RECORD, prediction_id="d", deployment="other", inputs_json='{"text": "four"}'),
    ]

    async def scenario() -> None:
        await asyncio.gather(*(store.record(r) for r in records))

    asyncio.run(scenario())
    store.add_outcome("a", 1.0, expected={"label": "refund", "a": "é"})
    store.add_outcome("b", 0.0, expected={"label": "billing"})
    store.add_outcome("c", 1.0)  # a score, no label
    store.add_outcome("d", 1.0, expected={"label": "other"})


def _check(store: PredictionStore) -> None:
    rows = store.feedback("web", 0, 2**63 - 1, (0, ""), 10)
    assert [(r.prediction_id, r.inputs_json != "") for r in rows] == [("a", True), ("b", False)]
    assert json.loads(rows[0].expected_json) == {"a": "é", "label": "refund"}
    assert rows[0].expected_json == '{"a": "é", "label": "refund"}'  # canonical: sorted keys
    assert rows[0].version == "1.0.0" and rows[0].value == 1.0
    first = rows[0]
    assert [
        r.prediction_id for r in store.feedback("web", 0, 2**63 - 1, (first.recorded_at_us, "a"), 10)
    ] == ["b"]
    assert store.feedback("web", rows[1].recorded_at_us + 1, 2**63 - 1, (0, ""), 10) == []
    assert [r.prediction_id for r in store.feedback("web", 0, 2**63 - 1, (0, ""), 1)] == ["a"]


def test_sqlite_expected_outputs_and_an_outcomes_table_from_before_them(tmp_path: Path) -> None:
    path = tmp_path / "old.predictions"
    SQLitePredictionStore(path, secret=SECRET).close()  # the predictions table as it is
    with sqlite3.connect(path) as conn:  # an outcomes table as it was before expected outputs
        conn.execute("DROP TABLE outcomes")
        conn.execute(OLD_OUTCOMES)
    conn.close()
    store = SQLitePredictionStore(path, secret=SECRET)
    try:
        _filled(store)
        _check(store)
    finally:
        store.close()


def test_postgres_expected_outputs_and_an_outcomes_table_from_before_them(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(OLD_OUTCOMES)
    store = PostgresPredictionStore(postgres_url, secret=load_or_create_server_secret(postgres_url))
    try:
        _filled(store)
        _check(store)
    finally:
        store.close()


def _deletions_recorded(store: PredictionStore) -> None:
    records = [
        replace(RECORD, prediction_id="x1", inputs_json='{"text": "a"}', capture_expires_at_us=100),
        replace(RECORD, prediction_id="x2", inputs_json='{"text": "b"}', capture_expires_at_us=150),
        replace(RECORD, prediction_id="y1", deployment="other", trace_json="[]", capture_expires_at_us=120),
        replace(RECORD, prediction_id="z1", inputs_json='{"text": "c"}', capture_expires_at_us=900),
    ]

    async def scenario() -> None:
        await asyncio.gather(*(store.record(r) for r in records))

    asyncio.run(scenario())
    assert store.purge_expired(200) == 3
    assert store.purge_expired(300) == 0  # nothing left to delete: nothing recorded
    deletions = store.capture_deletions()
    assert [(d.deployment, d.records, d.cutoff_us) for d in deletions] == [("other", 1, 200), ("web", 2, 200)]
    assert all(d.swept_at_us > 0 for d in deletions)
    assert store.get("z1").inputs_json  # not expired: kept


def test_sqlite_records_each_deletion_of_captured_data(tmp_path: Path) -> None:
    store = SQLitePredictionStore(tmp_path / "p.db", secret=SECRET)
    try:
        _deletions_recorded(store)
    finally:
        store.close()


def test_postgres_records_each_deletion_of_captured_data(postgres_url: str) -> None:
    store = PostgresPredictionStore(postgres_url, secret=load_or_create_server_secret(postgres_url))
    try:
        _deletions_recorded(store)
    finally:
        store.close()
