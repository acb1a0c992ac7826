"""The PostgreSQL backend: the shared contract (processes too) on a real server, plus what
only PostgreSQL has (URLs, a server that goes away and comes back, LISTEN/NOTIFY, a writer
lease that excludes nobody).

Each test has a database of its own (tests/support/postgres.py); ``new_empty_store`` hands
out fresh schemas inside it (``options=-csearch_path=...``), which is much cheaper than a
database per hypothesis example.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest

from dspyops.eventlog import EventStore, PostgresEventStore, open_store
from dspyops.eventlog.hashchain import GENESIS, event_hash
from dspyops.eventlog.rows import COLUMNS
from tests.eventlog.contract import EventStoreContract, ProcessContract
from tests.eventlog.contract.base import RewriteAsV1, StoreFactory, Tamper, closing_all, ev
from tests.support.postgres import PostgresServer


def in_schema(url: str, schema: str) -> str:
    return f"{url}?options={quote(f'-csearch_path={schema}')}"


class TestPostgresEventStore(EventStoreContract, ProcessContract):
    @pytest.fixture
    def store_url(self, postgres_url: str) -> str:
        return postgres_url

    @pytest.fixture
    def new_empty_store(self, postgres_url: str) -> Iterator[StoreFactory]:
        counter = itertools.count()

        def fresh() -> EventStore:
            schema = f"fresh_{next(counter)}"
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            return open_store(in_schema(postgres_url, schema))

        with closing_all(fresh) as make:
            yield make

    @pytest.fixture
    def make_readonly_store(self, store_url: str) -> Iterator[StoreFactory]:
        with closing_all(lambda: open_store(store_url + "?mode=ro")) as make:
            yield make

    @pytest.fixture
    def tamper(self, store_url: str) -> Tamper:
        def tamper(position: int, column: str, value: object) -> None:
            assert column in COLUMNS
            with psycopg.connect(store_url, autocommit=True) as conn:
                changed = conn.execute(
                    f"UPDATE events SET {column} = %s WHERE position = %s", (value, position)
                ).rowcount
            assert changed == 1

        return tamper

    @pytest.fixture
    def rewrite_as_v1(self, store_url: str) -> RewriteAsV1:
        def rewrite() -> None:
            with psycopg.connect(store_url) as conn:
                prev = GENESIS
                rows = conn.execute("SELECT position, type, payload FROM events ORDER BY position").fetchall()
                for position, type_, payload in rows:
                    prev = event_hash(prev, position, type_, payload)
                    conn.execute(
                        "UPDATE events SET hash = %s, chain = 1 WHERE position = %s", (prev, position)
                    )

        return rewrite

    # -- where PostgreSQL differs from the contract ---------------------------------------------

    def test_one_writer_lease_at_a_time(self, make_store: StoreFactory) -> None:
        """Overrides the contract's exclusive lease: on PostgreSQL several optimizer replicas
        share the log, so the writer lease excludes nobody (eventlog/postgres/lease.py: what
        stays exclusive is each job, the job-lease layer's business)."""
        first, second = make_store(), make_store()
        with first.writer_lock(), second.writer_lock():
            assert first.append("s", [ev()], 0).last_position == 1
            assert second.append("s", [ev()], 1).last_position == 2

    # -- PostgreSQL only ------------------------------------------------------------------------

    def test_open_store_urls(self, store_url: str, postgres_server: PostgresServer) -> None:
        store = open_store(store_url)
        assert isinstance(store, PostgresEventStore) and not store.read_only
        store.close()
        readonly = open_store(store_url + "?mode=ro")
        assert isinstance(readonly, PostgresEventStore) and readonly.read_only
        readonly.close()
        with pytest.raises(ValueError, match="mode must be"):
            open_store(store_url + "?mode=rwc")
