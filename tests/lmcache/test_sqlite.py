"""The LM cache contract on SQLite: a file beside the log, the log's own file untouched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dspyops.eventlog import NewEvent, open_store
from dspyops.lmcache import open_lm_cache
from dspyops.lmcache.sqlite import SQLiteLMCache, cache_file
from tests.lmcache.contract import LMCacheContract


class TestSQLiteFile(LMCacheContract):
    @pytest.fixture
    def log_url(self, tmp_path: Path) -> str:
        return str(tmp_path / "events.db")


class TestSQLiteURL(LMCacheContract):
    @pytest.fixture
    def log_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'events.db'}"


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_the_cache_is_a_wal_file_beside_the_log_which_it_leaves_alone(tmp_path: Path) -> None:
    log = tmp_path / "events.db"
    store = open_store(str(log))
    store.append("s-1", [NewEvent("X", b"1")], None)
    before = tables(log)
    cache = open_lm_cache(str(log))
    try:
        assert isinstance(cache, SQLiteLMCache)
        assert cache.path == cache_file(log.resolve()) == tmp_path / "events.db.lmcache.sqlite"
        assert cache.log_url == str(log.resolve())  # what a Ray task on this machine reopens
        cache.put("job-a", "k1", b"{}")
        assert tables(log) == before and "lm_cache" not in before
        assert tables(cache.path) == {"lm_cache"}
        with sqlite3.connect(cache.path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        # the log's writer lock and appends are unaffected while the cache is open
        store.append("s-1", [NewEvent("X", b"2")], 1)
        assert store.head() == 2
    finally:
        cache.close()
        store.close()


def test_an_unwritable_place_is_unavailable(tmp_path: Path) -> None:
    from dspyops.eventlog.store import StoreUnavailable

    with pytest.raises(StoreUnavailable, match="LM cache"):
        open_lm_cache(str(tmp_path / "no" / "such" / "dir" / "events.db"))


def test_the_file_shrinks_back_when_a_job_is_deleted(tmp_path: Path) -> None:
    """The cache must not grow beside the log job after job (a disk-full log would then be
    the cache's fault): an ended job's pages and WAL frames go back to the file system."""
    cache = open_lm_cache(str(tmp_path / "events.db"))
    assert isinstance(cache, SQLiteLMCache)
    try:
        empty = cache.path.stat().st_size
        for i in range(200):
            cache.put("job-a", f"k{i}", b"x" * 2000)
        wal = Path(f"{cache.path}-wal")
        assert wal.stat().st_size + cache.path.stat().st_size > 200 * 2000
        cache.delete_job("job-a")
        assert wal.stat().st_size == 0
        assert cache.path.stat().st_size <= empty + 8 * 4096
    finally:
        cache.close()
