"""The in-memory backend: the shared contract (everything but what needs other processes),
plus what only it has (private and named logs, its URLs).

Its storage is this process's memory, so the hooks that rewrite stored columns behind the
store's back reach into the log's rows, as the SQLite hooks open the file with sqlite3.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from dspyops.eventlog import (
    ANY,
    LogMissing,
    MemoryEventStore,
    NewEvent,
    StoreUnavailable,
    log_file,
    open_store,
)
from dspyops.eventlog.hashchain import GENESIS, event_hash
from dspyops.eventlog.memory import MemoryLog, named_log
from dspyops.eventlog.rows import COLUMNS
from tests.eventlog.contract import EventStoreContract
from tests.eventlog.contract.base import RewriteAsV1, StoreFactory, Tamper, WriterPool, closing_all, fill


class TestMemoryEventStore(EventStoreContract):
    @pytest.fixture
    def store_url(self) -> str:
        return f"memory:contract-{uuid.uuid4().hex}"

    @pytest.fixture
    def log(self, store_url: str, make_store: StoreFactory) -> MemoryLog:
        make_store()  # the log lives while a store on it exists: this one lasts the test
        return named_log(store_url.removeprefix("memory:"), create=False)

    @pytest.fixture
    def new_empty_store(self) -> Iterator[StoreFactory]:
        counter = itertools.count()
        with closing_all(lambda: open_store("memory:") if next(counter) % 2 else MemoryEventStore()) as make:
            yield make

    @pytest.fixture
    def make_readonly_store(self, store_url: str, log: MemoryLog) -> Iterator[StoreFactory]:
        with closing_all(lambda: open_store(store_url + "?mode=ro")) as make:
            yield make

    @pytest.fixture
    def tamper(self, log: MemoryLog) -> Tamper:
        def tamper(position: int, column: str, value: object) -> None:
            with log.lock:
                index = log.row_index(position)
                assert index is not None
                row = list(log.rows[index])
                row[COLUMNS.index(column)] = value
                log.rows[index] = tuple(row)  # type: ignore[assignment]  # any value, as an attacker writes it
                log.rows.sort(key=lambda r: r[0])  # a changed position moves the row, as in SQLite

        return tamper

    @pytest.fixture
    def rewrite_as_v1(self, log: MemoryLog) -> RewriteAsV1:
        def rewrite() -> None:
            with log.lock:
                prev = GENESIS
                for i, row in enumerate(log.rows):
                    prev = event_hash(prev, row[0], row[4], row[5])
                    log.rows[i] = (*row[:7], prev, row[8], 1)

        return rewrite

    @pytest.fixture
    def writer_pool(self) -> Iterator[WriterPool]:
        """The foreign writer is a thread with a store of its own on the same named log."""
        with ThreadPoolExecutor(1) as pool:
            yield pool, threading.Barrier

    # -- memory only ----------------------------------------------------------------------------

    def test_private_logs_are_apart_and_named_logs_shared(self, store_url: str) -> None:
        one, two = open_store("memory:"), open_store("memory:")
        one.append("s", [NewEvent("t", b"1")], 0)
        assert (one.head(), two.head()) == (1, 0)
        writer, reader = open_store(store_url), open_store(store_url)
        writer.append("s", [NewEvent("t", b"x")], 0)
        assert [e.payload for e in reader.read()] == [b"x"]
        assert reader.verify().ok

    def test_memory_urls(self, store_url: str) -> None:
        with pytest.raises(LogMissing, match="no such in-memory log"):
            open_store(store_url, create=False)
        with pytest.raises(LogMissing):
            open_store(store_url + "?mode=ro")
        with pytest.raises(LogMissing):
            open_store("memory:", create=False)
        with pytest.raises(ValueError, match="unknown option"):
            open_store(store_url + "?cache=shared")
        with pytest.raises(ValueError, match="mode must be"):
            open_store(store_url + "?mode=rwc")
        store = open_store(store_url)
        fill(store, 2)
        assert open_store(store_url, create=False).head() == 2
        readonly = open_store(store_url + "?mode=ro")
        assert isinstance(readonly, MemoryEventStore) and readonly.read_only
        with pytest.raises(StoreUnavailable, match="read-only"):
            readonly.append("s", [NewEvent("t", b"")], ANY)
        with pytest.raises(ValueError, match="in-memory"):
            log_file(store_url)  # no file beside which snapshots or records could live

    def test_a_named_log_lives_while_a_store_on_it_exists(self) -> None:
        url = f"memory:gone-{uuid.uuid4().hex}"
        store = open_store(url)
        fill(store, 1)
        del store
        with pytest.raises(LogMissing):
            open_store(url, create=False)
