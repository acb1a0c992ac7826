"""A job attempt's view of its LM cache (dspyops.lmcache.attempt): the store's answers, fewer
reads and writes. Against the real SQLite cache file beside a log; ``Reads`` counts what
reaches the store by subclassing it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dspyops.lmcache.attempt import BATCH, RECENT, AttemptCache
from dspyops.lmcache.sqlite import SQLiteLMCache
from tests.support.harness import wait_until


class Reads(SQLiteLMCache):
    """The real SQLite cache, counting the reads and batch writes that reach it."""

    def __init__(self, log_file: Path) -> None:
        super().__init__(log_file)
        self.gets = 0
        self.batches: list[int] = []

    def get(self, job_id: str, key: str) -> bytes | None:
        self.gets += 1
        return super().get(job_id, key)

    def put_many(self, job_id: str, rows: list[tuple[str, bytes]]) -> None:
        self.batches.append(len(rows))
        super().put_many(job_id, rows)


@pytest.fixture
def store(tmp_path: Path) -> Reads:
    return Reads(tmp_path / "log.db")


def test_a_first_attempt_asks_the_store_nothing_it_cannot_have(store: Reads) -> None:
    attempt = AttemptCache(store, "job-1")
    assert not attempt.resumed
    assert [attempt.get("job-1", f"k{i}") for i in range(100)] == [None] * 100
    assert store.gets == 0


def test_a_response_waiting_for_its_batch_answers_a_replay(store: Reads) -> None:
    attempt = AttemptCache(store, "job-1")
    attempt.put("job-1", "k1", b"first")
    attempt.put("job-1", "k1", b"second")  # the first response of a key is the one kept
    assert attempt.get("job-1", "k1") == b"first"
    assert store.gets == 0 and store.count("job-1") == 0  # not written yet


def test_responses_reach_the_store_a_batch_at_a_time_and_at_the_end(store: Reads) -> None:
    attempt = AttemptCache(store, "job-1")
    for i in range(BATCH + 10):
        attempt.put("job-1", f"k{i}", f"r{i}".encode())
    assert store.batches == [BATCH] and store.count("job-1") == BATCH
    attempt.flush_quietly()
    assert store.batches == [BATCH, 10] and store.count("job-1") == BATCH + 10
    assert attempt.get("job-1", "k3") == b"r3"  # a recent one: from memory
    assert store.gets == 0


def test_a_retry_reads_what_the_first_attempt_paid_for(store: Reads) -> None:
    first = AttemptCache(store, "job-1")
    first.put("job-1", "k1", b"paid")
    first.flush_quietly()
    retry = AttemptCache(store, "job-1")  # e.g. after a takeover: the store has rows
    assert retry.resumed
    assert retry.get("job-1", "k1") == b"paid" and retry.get("job-1", "k2") is None
    assert store.gets == 2
    assert not AttemptCache(store, "job-2").resumed  # another job's attempt


def test_a_response_waits_at_most_max_delay_with_no_call_after_it(store: Reads) -> None:
    """A job held up (a slow metric, a slow LM call) still writes what it paid for: a
    takeover after a kill -9 replays it (tests/e2e/test_job_takeover.py)."""
    attempt = AttemptCache(store, "job-1")
    attempt.put("job-1", "k1", b"paid")
    assert wait_until(lambda: store.count("job-1") == 1, timeout=30)
    assert store.batches == [1]


def test_a_crash_loses_only_what_was_waiting(store: Reads) -> None:
    attempt = AttemptCache(store, "job-1")
    for i in range(BATCH + 3):
        attempt.put("job-1", f"k{i}", b"r")
    del attempt  # no flush: the process died
    retry = AttemptCache(store, "job-1")
    assert sum(retry.get("job-1", f"k{i}") is not None for i in range(BATCH + 3)) == BATCH


def test_other_jobs_go_straight_to_the_store(store: Reads) -> None:
    attempt = AttemptCache(store, "job-1")
    attempt.put("job-2", "k1", b"theirs")
    assert store.count("job-2") == 1 and attempt.get("job-2", "k1") == b"theirs"
    assert attempt.delete_job("job-2") == 1


def test_an_older_response_of_this_attempt_is_read_from_the_store(store: Reads) -> None:
    attempt = AttemptCache(store, "job-1")
    for i in range(RECENT + 1):
        attempt.put("job-1", f"k{i}", f"r{i}".encode())
    attempt.flush_quietly()
    assert attempt.get("job-1", "k0") == b"r0" and store.gets == 1  # out of memory, in the store
    assert attempt.get("job-1", f"k{RECENT}") == f"r{RECENT}".encode() and store.gets == 1
