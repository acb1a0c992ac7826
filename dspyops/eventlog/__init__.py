"""The append-only event log: one interface, backends behind it (SQLite first).

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


def log_file(url_or_path: str) -> str:
    """The file a store URL or path names, without the scheme or options: the stem for the
    files that live beside the log (snapshots, prediction records)."""
    if url_or_path.startswith(_SQLITE_PREFIX):
        return url_or_path[len(_SQLITE_PREFIX) :].partition("?")[0]
    return url_or_path


def open_store(url_or_path: str, *, chain_key: bytes | None = None, create: bool = True) -> EventStore:
    """Open the store named by a plain file path or a ``sqlite:///`` URL.

    URLs follow SQLAlchemy's convention: ``sqlite:///events.db`` is relative to the working
    directory, ``sqlite:////var/lib/dspyops/events.db`` is absolute. ``?mode=ro`` opens the
    file read-only. ``chain_key``: new links are keyed with it and keyed links verify.
    ``create=False``: a missing log raises LogMissing (servers pass it when files of an
    earlier log exist, so a vanished log is never silently replaced by an empty one).
    """
    if not url_or_path:
        raise ValueError("open_store needs a path or a sqlite:/// URL")
    if url_or_path.startswith(_SQLITE_PREFIX):
        path, _, query = url_or_path[len(_SQLITE_PREFIX) :].partition("?")
        options = parse_qs(query, strict_parsing=bool(query))
        unknown = set(options) - {"mode"}
        if unknown:
            raise ValueError(f"unknown option(s) in {url_or_path!r}: {', '.join(sorted(unknown))}")
        mode = options.get("mode", ["rw"])[-1]
        if mode not in ("rw", "ro"):
            raise ValueError(f"mode must be 'rw' or 'ro' in {url_or_path!r}, got {mode!r}")
        return SQLiteEventStore(path, read_only=mode == "ro", chain_key=chain_key, create=create)
    if "://" in url_or_path:
        scheme = url_or_path.split("://", 1)[0]
        raise ValueError(f"no event store backend for {scheme!r} URLs (supported: sqlite:///, a file path)")
    return SQLiteEventStore(url_or_path, chain_key=chain_key, create=create)
