"""The SQLite backend: the shared contract plus what only SQLite has (files, pragmas, URLs).

Read-only storage is simulated with SQLite's own read-only modes (``mode=ro`` for a new
store, ``PRAGMA query_only`` for a live one), because the tests run as root and chmod 0o444
does not stop root from writing.
"""

from __future__ import annotations

import itertools
import multiprocessing
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dspyops.eventlog import (
    ANY,
    NewEvent,
    SQLiteEventStore,
    StoreUnavailable,
    open_store,
)
from dspyops.eventlog.hashchain import GENESIS, event_hash
from dspyops.eventlog.sqlite.reads import prefix_upper_bound
from dspyops.eventlog.sqlite.schema import SCHEMA_VERSION
from dspyops.eventlog.store import new_event_id
from tests.eventlog.contract import EventStoreContract, ProcessContract
from tests.eventlog.contract.base import RewriteAsV1, StoreFactory, Tamper, closing_all, fill


class TestSQLiteEventStore(EventStoreContract, ProcessContract):
    @pytest.fixture
    def db_path(self, tmp_path: Path) -> Path:
        return tmp_path / "events.db"

    @pytest.fixture
    def store_url(self, db_path: Path) -> str:
        return f"sqlite:///{db_path}"  # db_path is absolute, so this is sqlite:////...

    @pytest.fixture
    def new_empty_store(self, tmp_path: Path) -> Iterator[StoreFactory]:
        counter = itertools.count()
        with closing_all(lambda: SQLiteEventStore(tmp_path / f"fresh-{next(counter)}.db")) as make:
            yield make

    @pytest.fixture
    def make_readonly_store(self, store_url: str) -> Iterator[StoreFactory]:
        with closing_all(lambda: open_store(store_url + "?mode=ro")) as make:
            yield make

    @pytest.fixture
    def tamper(self, db_path: Path) -> Tamper:
        def tamper(position: int, column: str, value: object) -> None:
            assert column in {
                "payload", "type", "hash", "version", "position", "stream", "event_id", "recorded_at",
                "actor", "chain",
            }  # fmt: skip
            with sqlite3.connect(db_path) as conn:
                changed = conn.execute(
                    f"UPDATE events SET {column} = ? WHERE position = ?", (value, position)
                ).rowcount
            conn.close()
            assert changed == 1

        return tamper

    @pytest.fixture
    def rewrite_as_v1(self, db_path: Path) -> RewriteAsV1:
        def rewrite() -> None:
            with sqlite3.connect(db_path) as conn:
                prev = GENESIS
                rows = conn.execute("SELECT position, type, payload FROM events ORDER BY position").fetchall()
                for position, type_, payload in rows:
                    prev = event_hash(prev, position, type_, payload)
                    conn.execute("UPDATE events SET hash = ?, chain = 1 WHERE position = ?", (prev, position))
            conn.close()

        return rewrite

    # -- SQLite only --------------------------------------------------------------------------

    def test_file_settings(self, store: SQLiteEventStore, db_path: Path) -> None:
        conn = store._db.conn()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        indexes = {row[1]: row[2] for row in conn.execute("PRAGMA index_list(events)")}
        assert indexes["events_stream_version"] == 1 and indexes["events_event_id"] == 1
        assert "events_stream_position" in indexes
        # The prefix read uses the stream index rather than scanning every row.
        plan = " ".join(
            row[-1]
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM events WHERE position > 0 AND stream >= ? "
                "AND stream < ? ORDER BY position LIMIT 10",
                ("job-", "job."),
            )
        )
        assert "events_stream" in plan, plan
        # Reopening an existing file keeps its contents.
        store.append("s", [NewEvent("t", b"x")], 0)
        again = SQLiteEventStore(db_path)
        try:
            assert again.head() == 1 and again.verify().ok
        finally:
            again.close()

    def test_disk_full_appends_nothing_and_stays_usable(self, store: SQLiteEventStore) -> None:
        fill(store, 3)
        conn = store._db.conn()  # this thread's connection, which the next append uses
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={pages}")  # the "disk" cannot grow any more
        with pytest.raises(StoreUnavailable, match="full"):
            store.append("s", [NewEvent("t", b"x" * 200_000)], ANY)
        assert not conn.in_transaction
        assert store.head() == 3 and len(store.read()) == 3
        conn.execute("PRAGMA max_page_count=1073741823")
        assert store.append("s", [NewEvent("t", b"x" * 200_000)], ANY).last_position == 4
        assert store.verify().ok

    def test_a_read_only_connection_is_replaced_by_the_next_append(self, store: SQLiteEventStore) -> None:
        """SQLite keeps a connection opened on an unwritable file read-only; an append that
        meets SQLITE_READONLY retries once on a fresh connection (tests/e2e/test_disk_full.py
        does this with a really unwritable file, through the servers)."""
        fill(store, 2)
        stale = store._db.conn()
        stale.execute("PRAGMA query_only=ON")  # this connection now refuses writes
        assert store.append("s", [NewEvent("t", b"x")], 0).last_position == 3
        assert store._db.conn() is not stale
        assert store.verify().ok and store.head() == 3

    def test_a_read_only_store_refuses_appends_without_reconnecting(
        self, store: SQLiteEventStore, db_path: Path
    ) -> None:
        fill(store, 2)
        readonly = SQLiteEventStore(db_path, read_only=True)
        try:
            with pytest.raises(StoreUnavailable, match="readonly"):
                readonly.append("s", [NewEvent("t", b"x")], ANY)
        finally:
            readonly.close()
        assert store.head() == 2

    def test_read_only_open_of_a_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(StoreUnavailable, match="no such file"):
            SQLiteEventStore(tmp_path / "absent.db", read_only=True)
        assert not (tmp_path / "absent.db").exists()

    def test_open_store_urls(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        relative = open_store("sqlite:///rel.db")
        plain = open_store(str(tmp_path / "plain.db"))
        absolute = open_store(f"sqlite:///{tmp_path / 'abs.db'}")
        try:
            assert isinstance(relative, SQLiteEventStore)
            assert relative.path == str(tmp_path / "rel.db")
            assert plain.path == str(tmp_path / "plain.db")  # type: ignore[attr-defined]
            assert absolute.path == str(tmp_path / "abs.db")  # type: ignore[attr-defined]
        finally:
            for s in (relative, plain, absolute):
                s.close()
        readonly = open_store("sqlite:///rel.db?mode=ro")
        assert isinstance(readonly, SQLiteEventStore) and readonly.read_only
        readonly.close()
        for bad in ("", "mysql://localhost/db", "sqlite:///x.db?mode=wx", "sqlite:///x.db?cache=1"):
            with pytest.raises(ValueError):
                open_store(bad)
        with pytest.raises(ValueError, match="file path"):
            SQLiteEventStore(":memory:")

    def test_forked_child_gets_its_own_connection(self, store: SQLiteEventStore) -> None:
        fill(store, 2)  # the parent's connection exists before the fork
        ctx = multiprocessing.get_context("fork")
        child = ctx.Process(target=_append_one, args=(store,))
        child.start()
        child.join(30)
        assert child.exitcode == 0
        assert store.head() == 3 and store.read_stream("forked")[0].payload == b"from child"
        assert store.append("s", [NewEvent("t", b"x")], 0).last_position == 4
        assert store.verify().ok

    def test_connections_of_finished_threads_are_released(self, store: SQLiteEventStore) -> None:
        for _ in range(5):
            t = threading.Thread(target=store.head)
            t.start()
            t.join()
        store.head()  # opening this thread's connection prunes those of dead threads
        assert store._db.open_handles <= 2


def _append_one(store: SQLiteEventStore) -> None:
    store.append("forked", [NewEvent("t", b"from child")], 0)
    store.close()


@pytest.mark.parametrize(
    ("prefix", "upper"),
    [("job-", "job."), ("a", "b"), ("a\U0010ffff", "b"), ("\U0010ffff", None), ("x\ud7ff", "x\ue000")],
)
def test_prefix_upper_bound(prefix: str, upper: str | None) -> None:
    assert prefix_upper_bound(prefix) == upper


def test_a_schema_1_log_gains_the_actor_column_on_open(tmp_path: Path) -> None:
    """Logs written before the actor column keep their events (actor "") and their chain."""
    path = tmp_path / "old.db"
    store = SQLiteEventStore(path)
    store.append("s", [NewEvent("t", b"old")], 0)
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE events DROP COLUMN actor")  # what a schema-1 file looks like
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    readonly = SQLiteEventStore(path, read_only=True)  # reads it as it is
    assert [(e.payload, e.actor) for e in readonly.read()] == [(b"old", "")]
    readonly.close()
    store = SQLiteEventStore(path)
    store.append("s", [NewEvent("t", b"new")], 1, actor="bob")
    assert [(e.payload, e.actor) for e in store.read()] == [(b"old", ""), (b"new", "bob")]
    assert store.verify().ok
    assert store._db.conn().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    store.close()


def test_default_event_ids_are_uuid7_unique_and_time_ordered() -> None:
    ids = [new_event_id() for _ in range(20_000)]
    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert all(str(u) == i for u, i in zip(parsed, ids, strict=True))  # canonical lowercase form
    assert len(set(ids)) == len(ids)
    stamps = [u.int >> 80 for u in parsed]  # the 48-bit millisecond prefix never goes back
    assert stamps == sorted(stamps)
    # a forked child draws different bits than its parent (the random module reseeds it)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        children = pool.map(_ids, [1000, 1000])
    assert len(set(children[0]) | set(children[1]) | set(ids)) == 22_000


def _ids(n: int) -> list[str]:
    return [new_event_id() for _ in range(n)]


def test_a_schema_2_log_gains_the_chain_column_on_open(tmp_path: Path) -> None:
    """A log written before chain v2: read-only readers see link version 1, a writer adds the
    column (1 for the old rows) and appends v2 links after them."""
    path = tmp_path / "old.db"
    store = SQLiteEventStore(path)
    store.append("s", [NewEvent("t", b"old-1"), NewEvent("t", b"old-2")], 0, actor="ann")
    store.close()
    conn = sqlite3.connect(path)
    prev = GENESIS
    for position, type_, payload in conn.execute("SELECT position, type, payload FROM events").fetchall():
        prev = event_hash(prev, position, type_, payload)  # what the schema-2 code stored
        conn.execute("UPDATE events SET hash = ? WHERE position = ?", (prev, position))
    conn.execute("ALTER TABLE events DROP COLUMN chain")
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    readonly = SQLiteEventStore(path, read_only=True)
    assert [e.chain for e in readonly.read()] == [1, 1]
    assert readonly.verify().ok and readonly.verify().v1_links == 2
    readonly.close()
    store = SQLiteEventStore(path)
    store.append("s", [NewEvent("t", b"new")], 2, actor="bob")
    assert [e.chain for e in store.read()] == [1, 1, 2]
    result = store.verify()
    assert result.ok and (result.v1_links, result.v2_links) == (2, 1)
    assert store._db.conn().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    store.close()
