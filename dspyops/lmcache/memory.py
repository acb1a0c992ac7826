"""The in-memory LM cache: a dict, for ``memory:`` logs and jobs run without a log (tests).

``memory:NAME`` logs are process-wide (dspyops.eventlog.memory); their caches are too, so two
runs of one job in this process share one. Nothing outside this process can reach them.
"""

from __future__ import annotations

import threading

from dspyops.lmcache.cache import LMCache

_NAMED: dict[str, MemoryLMCache] = {}
_NAMED_LOCK = threading.Lock()


class MemoryLMCache(LMCache):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, bytes]] = {}

    def get(self, job_id: str, key: str) -> bytes | None:
        with self._lock:
            return self._rows.get(job_id, {}).get(key)

    def put(self, job_id: str, key: str, response: bytes) -> None:
        with self._lock:
            self._rows.setdefault(job_id, {}).setdefault(key, bytes(response))

    def delete_job(self, job_id: str) -> int:
        with self._lock:
            return len(self._rows.pop(job_id, {}))

    def count(self, job_id: str) -> int:
        with self._lock:
            return len(self._rows.get(job_id, {}))


def named_cache(name: str) -> MemoryLMCache:
    """The process-wide cache of the in-memory log ``memory:NAME``."""
    with _NAMED_LOCK:
        cache = _NAMED.get(name)
        if cache is None:
            cache = _NAMED[name] = MemoryLMCache()
        return cache


__all__ = ["MemoryLMCache", "named_cache"]
