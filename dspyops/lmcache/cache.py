"""The interface of a per-job LM cache: responses by (job id, request key), as JSON bytes.

A job's LM calls are stored as they are paid for and answered from here when the same job
(same job id: a retry, on this replica or another, or in a Ray task) asks the same request
again. The cache knows nothing of DSPy: keys and values are computed by
``dspyops.lmcache.lm``. Every backend is safe to use from many threads at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class LMCache(ABC):
    """``get``/``put``/``delete_job``; ``close`` releases connections (idempotent).

    ``log_url``: the log this cache belongs to, as another process can open it again with
    ``open_lm_cache`` (a Ray task); "" when no other process can reach it (memory)."""

    log_url: str = ""

    @abstractmethod
    def get(self, job_id: str, key: str) -> bytes | None:
        """The response stored for ``key`` in job ``job_id``, or None."""

    @abstractmethod
    def put(self, job_id: str, key: str, response: bytes) -> None:
        """Store ``response``; a key stored already keeps its first response (a retry that
        raced the first attempt must not change what a later replay answers)."""

    def put_many(self, job_id: str, rows: list[tuple[str, bytes]]) -> None:
        """``put`` each (key, response), in one write where the backend can."""
        for key, response in rows:
            self.put(job_id, key, response)

    @abstractmethod
    def delete_job(self, job_id: str) -> int:
        """Forget every response of ``job_id``; how many there were."""

    @abstractmethod
    def count(self, job_id: str) -> int:
        """How many responses ``job_id`` has stored (inspection, tests)."""

    def close(self) -> None:  # noqa: B027 - a dict holds nothing open: only some backends close
        """Release what the cache holds open."""

    def __deepcopy__(self, memo: dict[int, Any]) -> LMCache:
        # DSPy deep-copies programs and, with them, the LMs set on predictors: the copies must
        # share this cache (and its connections), never clone them.
        return self


__all__ = ["LMCache"]
