"""The append-only event log: one interface (``store``), backends behind it (``sqlite``, a
file; ``memory``, this process's memory, for tests).

``open_store`` picks the backend from a URL so services and the CLI take one setting.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from dspyops.eventlog.hashchain import (
    GENESIS,
    LINK_V1,
    LINK_V2,
    LINK_V2_KEYED,
    ChainChecker,
    event_hash,
    link_v2,
)
from dspyops.eventlog.lock import WriterLease, WriterLocked
from dspyops.eventlog.memory import MemoryEventStore, named_log
from dspyops.eventlog.sqlite.backend import SQLiteEventStore
from dspyops.eventlog.store import (
    ANY,
    AppendResult,
    ChainKeyRequired,
    DuplicateEventId,
    EventStore,
    LogMissing,
    LogReplaced,
    NewEvent,
    StoredEvent,
    StoreUnavailable,
    VerifyResult,
    WrongExpectedVersion,
)

__all__ = [
    "ANY",
    "GENESIS",
    "LINK_V1",
    "LINK_V2",
    "LINK_V2_KEYED",
    "AppendResult",
    "ChainChecker",
    "ChainKeyRequired",
    "DuplicateEventId",
    "EventStore",
    "LogMissing",
    "LogReplaced",
    "MemoryEventStore",
    "NewEvent",
    "SQLiteEventStore",
    "StoreUnavailable",
    "StoredEvent",
    "VerifyResult",
    "WriterLease",
    "WriterLocked",
    "WrongExpectedVersion",
    "event_hash",
    "link_v2",
    "log_file",
    "open_store",
]

_SQLITE_PREFIX = "sqlite:///"
_MEMORY_PREFIX = "memory:"


def log_file(url_or_path: str) -> str:
    """The file a store URL or path names, without the scheme or options: the stem for the
    files that live beside the log (snapshots, prediction records). A ``memory:`` log has
    none (ValueError)."""
    if url_or_path.startswith(_SQLITE_PREFIX):
        return url_or_path[len(_SQLITE_PREFIX) :].partition("?")[0]
    if url_or_path.startswith(_MEMORY_PREFIX):
        raise ValueError(f"{url_or_path!r} is an in-memory log: there is no file beside which to keep others")
    return url_or_path


def open_store(url_or_path: str, *, chain_key: bytes | None = None, create: bool = True) -> EventStore:
    """Open the store named by a plain file path, a ``sqlite:///`` URL or a ``memory:`` URL.

    URLs follow SQLAlchemy's convention: ``sqlite:///events.db`` is relative to the working
    directory, ``sqlite:////var/lib/dspyops/events.db`` is absolute. ``memory:`` is a new
    private in-memory log, ``memory:NAME`` the process-wide in-memory log NAME (see
    eventlog.memory). ``?mode=ro`` opens either read-only. ``chain_key``: new links are
    keyed with it and keyed links verify. ``create=False``: a missing log raises LogMissing
    (servers pass it when files of an earlier log exist, so a vanished log is never
    silently replaced by an empty one).
    """
    if not url_or_path:
        raise ValueError("open_store needs a path, a sqlite:/// URL or a memory: URL")
    for prefix in (_SQLITE_PREFIX, _MEMORY_PREFIX):
        if url_or_path.startswith(prefix):
            where, _, query = url_or_path[len(prefix) :].partition("?")
            read_only = _read_only(url_or_path, query)
            if prefix == _SQLITE_PREFIX:
                return SQLiteEventStore(where, read_only=read_only, chain_key=chain_key, create=create)
            if not where:  # a new private log: nothing to read, nothing to find
                if read_only or not create:
                    raise LogMissing(f"cannot open {url_or_path!r}: a new private in-memory log is empty")
                return MemoryEventStore(chain_key=chain_key)
            log = named_log(where, create=create and not read_only)
            return MemoryEventStore(log, read_only=read_only, chain_key=chain_key)
    if "://" in url_or_path:
        scheme = url_or_path.split("://", 1)[0]
        raise ValueError(
            f"no event store backend for {scheme!r} URLs (supported: sqlite:///, memory:, a file path)"
        )
    return SQLiteEventStore(url_or_path, chain_key=chain_key, create=create)


def _read_only(url: str, query: str) -> bool:
    options = parse_qs(query, strict_parsing=bool(query))
    unknown = set(options) - {"mode"}
    if unknown:
        raise ValueError(f"unknown option(s) in {url!r}: {', '.join(sorted(unknown))}")
    mode = options.get("mode", ["rw"])[-1]
    if mode not in ("rw", "ro"):
        raise ValueError(f"mode must be 'rw' or 'ro' in {url!r}, got {mode!r}")
    return mode == "ro"
