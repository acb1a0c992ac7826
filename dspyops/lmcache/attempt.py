"""One attempt of one job over the job's LM cache: reads only what can be there, writes in batches.

Every LM call of a job used to read the cache (a miss, nearly always, on a first attempt) and
write its response in a transaction of its own: on the offline LM that was a quarter of a
MIPROv2 job's time (bench/bench_optimize.py). This view keeps the store's semantics and does
less:

* reads: the store is asked only for a key this attempt kept, or when the job had responses
  stored before this attempt began (a retry or a takeover, which is what the cache is for);
  a first attempt's new requests are misses without a query, and the ``RECENT`` responses
  stored last answer from memory (an optimizer asks the same request again soon: MIPROv2
  scores a candidate on examples it scored before);
* writes: responses wait in memory and go to the store ``BATCH`` at a time (one transaction,
  ``put_many``), or ``MAX_DELAY`` seconds after the first of them came (a timer: a job held
  up in a slow metric or LM call still writes what it paid for), and at ``flush`` when the
  attempt ends; a waiting response answers a replay of its request at once.

What it costs: a crash (kill -9) loses the responses still waiting, at most ``BATCH`` calls
or ``MAX_DELAY`` seconds' worth, which the next attempt pays for again. The cache only saves
money; it never decides what a job computes.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Final

import structlog

from dspyops.eventlog.store import StoreUnavailable
from dspyops.lmcache.cache import LMCache
from dspyops.scrub import scrub

BATCH: Final = 64
MAX_DELAY: Final = 0.5
RECENT: Final = 4096  # responses kept in memory per attempt: a few MB at most


class AttemptCache(LMCache):
    def __init__(self, store: LMCache, job_id: str) -> None:
        self.store = store
        self.job_id = job_id
        self.log_url = store.log_url
        try:
            self.resumed = store.count(job_id) > 0  # an earlier attempt paid for some calls
        except StoreUnavailable:
            self.resumed = True  # then every read asks the store, which says why it cannot
        self._lock = threading.Lock()
        self._kept: set[str] = set()  # keys this attempt stored (or is storing)
        self._waiting: dict[str, bytes] = {}  # not yet in the store: answer replays from here
        self._writing: dict[str, bytes] = {}  # taken by a flush, not yet committed
        self._recent: OrderedDict[str, bytes] = OrderedDict()  # the last RECENT stored
        self._oldest = 0.0  # when the oldest waiting response came
        self._timer: threading.Timer | None = None  # flushes MAX_DELAY after the oldest came

    def get(self, job_id: str, key: str) -> bytes | None:
        if job_id != self.job_id:
            return self.store.get(job_id, key)
        with self._lock:
            held = self._waiting.get(key) or self._writing.get(key) or self._recent.get(key)
            if held is not None:
                return held
            if not self.resumed and key not in self._kept:
                return None
        return self.store.get(job_id, key)

    def put(self, job_id: str, key: str, response: bytes) -> None:
        if job_id != self.job_id:
            self.store.put(job_id, key, response)
            return
        with self._lock:
            if key in self._kept:
                return  # the first response of a key is the one kept
            self._kept.add(key)
            if not self._waiting:
                self._oldest = time.monotonic()
                self._timer = threading.Timer(MAX_DELAY, self.flush_quietly)
                self._timer.daemon = True
                self._timer.start()
            self._waiting[key] = self._recent[key] = bytes(response)
            if len(self._recent) > RECENT:
                self._recent.popitem(last=False)
            due = len(self._waiting) >= BATCH or time.monotonic() - self._oldest >= MAX_DELAY
        if due:
            self.flush()

    def flush(self) -> None:
        """Write what is waiting (the calling thread pays the write); StoreUnavailable: the
        responses are dropped, as a failed ``put`` drops one."""
        with self._lock:  # each waiting response is taken by one flush
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            rows = list(self._waiting.items())
            self._writing.update(self._waiting)
            self._waiting.clear()
        if not rows:
            return
        try:
            self.store.put_many(self.job_id, rows)
        finally:  # written, or lost: either way no longer held here
            with self._lock:
                for key, _ in rows:
                    self._writing.pop(key, None)

    def flush_quietly(self) -> None:
        """``flush`` at the attempt's end and on the timer: a store that cannot be reached is
        only logged."""
        try:
            self.flush()
        except StoreUnavailable as exc:
            structlog.get_logger().warning("lm_cache_unavailable", job_id=self.job_id, error=scrub(str(exc)))

    def delete_job(self, job_id: str) -> int:
        if job_id == self.job_id:
            with self._lock:
                self._waiting.clear()
                self._writing.clear()
                self._recent.clear()
                self._kept.clear()
        return self.store.delete_job(job_id)

    def count(self, job_id: str) -> int:
        if job_id == self.job_id:
            self.flush()
        return self.store.count(job_id)


__all__ = ["BATCH", "MAX_DELAY", "RECENT", "AttemptCache"]
