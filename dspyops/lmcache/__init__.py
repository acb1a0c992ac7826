"""The per-job LM cache: every LM call a job pays for is kept, keyed by the job id and the
request, so a retry of the job (same id, this replica or another, a Ray task) replays the
calls already paid for instead of buying them again (issue 14).

``cache`` is the interface, one module per backend (``memory``, ``sqlite``: a file beside a
SQLite log, ``postgres``: a table in the log's database), ``lm`` the job's LM that reads and
writes it. ``open_lm_cache`` picks the backend from the log's URL or path, as
``dspyops.eventlog.open_store`` picks the log's. It sits beside the log store, not inside:
the store knows no payloads, and the cache is not part of the hash-chained record (it is
deleted when the job ends).
"""

from __future__ import annotations

from dspyops.eventlog import is_server_log, log_file
from dspyops.lmcache.cache import LMCache
from dspyops.lmcache.memory import MemoryLMCache, named_cache
from dspyops.lmcache.postgres import PostgresLMCache
from dspyops.lmcache.sqlite import SQLiteLMCache

_MEMORY_PREFIX = "memory:"


def open_lm_cache(log_url_or_path: str) -> LMCache:
    """The LM cache of the log ``log_url_or_path`` (anything ``open_store`` takes): a table in a
    PostgreSQL log's database, the file ``<log>.lmcache.sqlite`` beside a SQLite log, a dict
    for a ``memory:`` log (the named log's own, process-wide, for ``memory:NAME``)."""
    if is_server_log(log_url_or_path):
        base, _, query = log_url_or_path.partition("?")
        theirs = [part for part in query.split("&") if part and not part.startswith("mode=")]
        return PostgresLMCache(base + ("?" + "&".join(theirs) if theirs else ""))
    if log_url_or_path.startswith(_MEMORY_PREFIX):
        name = log_url_or_path[len(_MEMORY_PREFIX) :].partition("?")[0]
        return named_cache(name) if name else MemoryLMCache()
    return SQLiteLMCache(log_file(log_url_or_path))


__all__ = ["open_lm_cache"]
