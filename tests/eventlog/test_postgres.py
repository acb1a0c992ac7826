"""The PostgreSQL backend: the shared contract (processes too) on a real server, plus what
only PostgreSQL has (URLs, a server that goes away and comes back, LISTEN/NOTIFY, a writer
lease that excludes nobody).

Each test has a database of its own (tests/support/postgres.py); ``new_empty_store`` hands
out fresh schemas inside it (``options=-csearch_path=...``), which is much cheaper than a
database per hypothesis example.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from urllib.parse import quote

import psycopg
import pytest

from dspyops.eventlog import (
    ANY,
    EventStore,
    LogMissing,
    PostgresEventStore,
    StoreUnavailable,
    batch,
    log_file,
    log_name,
    open_store,
)
from dspyops.eventlog.hashchain import GENESIS, event_hash, micros
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

    def test_recorded_at_is_the_servers_clock_not_this_machines(
        self, store: EventStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Lease expiry compares recorded_at with clock_us(): both must be the server's. With
        this process's clock in 1970 for stamping, the append still lands between two
        readings of the server's clock."""
        monkeypatch.setattr(batch, "time", SimpleNamespace(time_ns=lambda: 1_000))
        before = store.clock_us()
        store.append("s", [ev()], 0)
        assert before <= micros(store.read_stream("s")[0].recorded_at) <= store.clock_us()


def test_server_down_appends_unavailable_naming_the_log_then_resume(private_postgres: PostgresServer) -> None:
    url = private_postgres.url()
    store = PostgresEventStore(url, timeout=1.0)
    try:
        acked = [store.append("s", [ev(b"before")], 0).last_position]
        private_postgres.stop("immediate")
        with pytest.raises(StoreUnavailable) as info:
            store.append("s", [ev(b"while down")], 1)
        assert store.url in str(info.value) and "postgres@" in store.url
        with pytest.raises(StoreUnavailable):
            store.read()
        private_postgres.start()
        # the pool reconnects in the background: appends resume once it has
        for _ in range(60):
            try:
                acked.append(store.append("s", [ev(b"after")], ANY).last_position)
                break
            except StoreUnavailable:
                time.sleep(0.5)
        assert acked == [1, 2]
        assert [e.payload for e in store.read()] == [b"before", b"after"]
        assert store.verify().ok
    finally:
        store.close()


def test_a_sync_subscriber_is_woken_by_notify_from_another_store(postgres_url: str) -> None:
    """The poll interval is an hour: only the LISTEN connection can deliver another store's
    append (stores in one process share no in-process signal)."""
    reader, writer = open_store(postgres_url), open_store(postgres_url)
    stop = threading.Event()
    got: list[int] = []

    def consume() -> None:
        for event in reader.subscribe(0, stop=stop, poll_interval=3600.0):
            got.append(event.position)
            if len(got) == 2:
                return

    consumer = threading.Thread(target=consume)
    consumer.start()
    try:
        assert _eventually(lambda: _listening(postgres_url) == 1)
        writer.append("s", [ev()], 0)
        assert _eventually(lambda: got == [1])
        # the listening connection is lost: it reconnects, then looks again (the append below
        # may land before it listens again, when no notification reaches it)
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
            )
        writer.append("s", [ev()], 1)
        consumer.join(60)
        assert got == [1, 2]
        assert isinstance(reader, PostgresEventStore) and reader._listener.reconnects == 1
    finally:
        stop.set()
        reader.close()
        writer.close()


def _listening(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def _eventually(check: Callable[[], bool], attempts: int = 600) -> bool:
    for _ in range(attempts):
        if check():
            return True
        time.sleep(0.05)
    return False


def test_messages_name_the_log_without_its_password(postgres_server: PostgresServer) -> None:
    url = "postgresql://ann:s3cret-pw@db.example:6543/events?sslmode=require&connect_timeout=1"
    assert log_name(url) == "postgresql://ann@db.example:6543/events"
    with pytest.raises(ValueError, match="no file"):
        log_file(url)
    unreachable = postgres_server.url("x").replace(f":{postgres_server.port}/", ":1/")
    unreachable = unreachable.replace("postgres@", "postgres:s3cret-pw@")
    with pytest.raises(StoreUnavailable) as info:
        open_store(unreachable)
    assert "s3cret" not in str(info.value) and "postgres@" in str(info.value)


def test_a_missing_database_or_table_is_log_missing(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    with pytest.raises(LogMissing, match="database does not exist"):
        open_store(postgres_server.url("no_such_database"))
    with pytest.raises(LogMissing, match="no events table"):
        open_store(postgres_url, create=False)
    with pytest.raises(LogMissing):
        open_store(postgres_url + "?mode=ro")
    open_store(postgres_url).close()  # creates the table
    store = open_store(postgres_url, create=False)
    assert store.head() == 0
    store.close()
