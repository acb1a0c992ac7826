"""Starting a service on a PostgreSQL log whose events table is missing: the database's
other tables (snapshots, artifacts, prediction records) are the evidence of an earlier log
that the files beside a file log are, so a start without --create refuses naming them,
while a first start (nothing anywhere) creates the log. The routing secret is one per log."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dspyops.artifacts.postgres import PostgresArtifactStore
from dspyops.eventlog import open_store
from dspyops.logstart import StartRefused, log_routing_secret, open_service_store
from dspyops.pgsecret import load_or_create_server_secret
from dspyops.snapshots import take_snapshot
from dspyops.snapshots.postgres import PostgresSnapshotStore
from tests.kernel.test_snapshot_stores import _append


def _drop_events(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE events")


def test_a_first_start_creates_the_log_even_beside_empty_tables(postgres_url: str) -> None:
    PostgresSnapshotStore(postgres_url).close()  # the tables exist, with nothing in them
    PostgresArtifactStore(postgres_url).close()
    store = open_service_store(postgres_url, None, create=False)
    try:
        assert store.head() == 0
    finally:
        store.close()


@pytest.mark.parametrize("leftover", ["snapshots", "artifacts"])
def test_a_missing_events_table_beside_rows_of_an_earlier_log_needs_create(
    postgres_url: str, leftover: str
) -> None:
    store = open_store(postgres_url)
    _append(store, 3)
    if leftover == "snapshots":
        snapshots = PostgresSnapshotStore(postgres_url)
        take_snapshot(store, snapshots)
        snapshots.close()
    else:
        artifacts = PostgresArtifactStore(postgres_url)
        artifacts.put(b'{"a":1}')
        artifacts.close()
    store.close()
    _drop_events(postgres_url)
    with pytest.raises(StartRefused) as refused:
        open_service_store(postgres_url, None, create=False)
    message = str(refused.value)
    assert "does not exist" in message and "--create" in message and f"table {leftover}" in message
    fresh = open_service_store(postgres_url, None, create=True)
    try:
        assert fresh.head() == 0
    finally:
        fresh.close()


def test_local_evidence_counts_too(postgres_url: str, tmp_path: Path) -> None:
    artifacts = tmp_path / "data" / "artifacts"
    (artifacts / "sha256").mkdir(parents=True)
    (artifacts / "sha256" / "x.json").write_text("{}")
    with pytest.raises(StartRefused, match="--create"):
        open_service_store(postgres_url, None, create=False, evidence=[artifacts], home=tmp_path / "data")


def test_a_postgres_log_has_one_routing_secret(postgres_url: str) -> None:
    first = log_routing_secret(postgres_url)
    assert len(first) == 32
    assert load_or_create_server_secret(postgres_url) == first == log_routing_secret(postgres_url)
