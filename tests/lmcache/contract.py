"""The LM cache contract: what every backend (memory, SQLite, PostgreSQL) must do.

A backend's test module subclasses ``LMCacheContract`` and provides ``log_url``: the URL or
path of a log of its own for the test (what ``open_lm_cache`` is given by a service).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from dspyops.eventlog.store import StoreUnavailable
from dspyops.lmcache import open_lm_cache
from dspyops.lmcache.cache import LMCache


class LMCacheContract:
    #: whether another open_lm_cache of the same log sees this one's rows (memory: only
    #: a named log's, in this process)
    shared = True
    #: whether a closed cache refuses to serve (a dict has nothing to close)
    closes = True

    @pytest.fixture
    def log_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def cache(self, log_url: str) -> Iterator[LMCache]:
        cache = open_lm_cache(log_url)
        yield cache
        cache.close()

    def test_a_missing_key_is_none(self, cache: LMCache) -> None:
        assert cache.get("job-a", "k1") is None
        assert cache.count("job-a") == 0

    def test_put_then_get_returns_the_bytes(self, cache: LMCache) -> None:
        body = b'{"choices": [{"message": {"content": "hi \\u00e9"}}]}'
        cache.put("job-a", "k1", body)
        assert cache.get("job-a", "k1") == body
        assert isinstance(cache.get("job-a", "k1"), bytes)
        assert cache.count("job-a") == 1

    def test_the_first_response_of_a_key_stays(self, cache: LMCache) -> None:
        cache.put("job-a", "k1", b"first")
        cache.put("job-a", "k1", b"second")
        assert cache.get("job-a", "k1") == b"first"
        assert cache.count("job-a") == 1

    def test_put_many_stores_each_and_keeps_first_responses(self, cache: LMCache) -> None:
        cache.put("job-a", "k1", b"first")
        cache.put_many("job-a", [("k1", b"second"), ("k2", b"two"), ("k3", b"three")])
        assert [cache.get("job-a", k) for k in ("k1", "k2", "k3")] == [b"first", b"two", b"three"]
        assert cache.count("job-a") == 3
        cache.put_many("job-a", [])  # nothing to write: not an error

    def test_jobs_never_see_each_others_rows(self, cache: LMCache) -> None:
        cache.put("job-a", "k1", b"a")
        cache.put("job-b", "k1", b"b")
        assert cache.get("job-a", "k1") == b"a"
        assert cache.get("job-b", "k1") == b"b"
        assert cache.get("job-c", "k1") is None

    def test_delete_job_removes_that_job_only(self, cache: LMCache) -> None:
        for key in ("k1", "k2", "k3"):
            cache.put("job-a", key, key.encode())
        cache.put("job-b", "k1", b"b")
        assert cache.delete_job("job-a") == 3
        assert cache.count("job-a") == 0 and cache.get("job-a", "k1") is None
        assert cache.get("job-b", "k1") == b"b"
        assert cache.delete_job("job-a") == 0  # nothing left: not an error

    def test_many_threads_at_once(self, cache: LMCache) -> None:
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            try:
                for i in range(25):
                    cache.put("job-a", f"k{worker}-{i}", f"{worker}:{i}".encode())
                    assert cache.get("job-a", f"k{worker}-{i}") == f"{worker}:{i}".encode()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert cache.count("job-a") == 150

    def test_another_opening_of_the_log_sees_the_rows(self, cache: LMCache, log_url: str) -> None:
        cache.put("job-a", "k1", b"kept")
        other = open_lm_cache(log_url)
        try:
            assert other.get("job-a", "k1") == (b"kept" if self.shared else None)
        finally:
            other.close()

    def test_a_closed_cache_is_unavailable(self, log_url: str) -> None:
        cache = open_lm_cache(log_url)
        cache.put("job-a", "k1", b"x")
        cache.close()
        cache.close()  # idempotent
        if not self.closes:
            assert cache.get("job-a", "k1") == b"x"
            return
        with pytest.raises(StoreUnavailable, match="LM cache"):
            cache.get("job-a", "k1")
        with pytest.raises(StoreUnavailable, match="LM cache"):
            cache.put("job-a", "k2", b"y")

    def test_deepcopy_shares_the_cache(self, cache: LMCache) -> None:
        import copy

        assert copy.deepcopy(cache) is cache
