"""The append-only event log: one interface (``store``), backends behind it (``sqlite``, a
file; ``postgres``, a server database many machines share; ``memory``, this process's
memory, for tests).

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
from dspyops.eventlog.postgres.backend import SCHEMES as POSTGRES_SCHEMES
from dspyops.eventlog.postgres.backend import PostgresEventStore
from dspyops.eventlog.postgres.errors import log_name as postgres_log_name
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
    "PostgresEventStore",
    "SQLiteEventStore",
    "StoreUnavailable",
    "StoredEvent",
    "VerifyResult",
    "WriterLease",
    "WriterLocked",
    "WrongExpectedVersion",
    "event_hash",
    "is_server_log",
    "link_v2",
    "log_file",
    "log_name",
    "open_store",
]

_SQLITE_PREFIX = "sqlite:///"
_MEMORY_PREFIX = "memory:"


def is_server_log(url_or_path: str) -> bool:
    """Whether this names a log on a database server (``postgresql://``), not a file."""
    return url_or_path.startswith(POSTGRES_SCHEMES)


def log_name(url_or_path: str) -> str:
    """What names the log in messages: a server log's URL without its password and options,
    a file's path or URL as given."""
    if is_server_log(url_or_path):
        return postgres_log_name(_postgres_url(url_or_path)[0])
    return url_or_path


def log_file(url_or_path: str) -> str:
    """The file a store URL or path names, without the scheme or options: the stem for the
    files that live beside the log (snapshots, prediction records). A ``memory:`` or a
    ``postgresql://`` log has none (ValueError)."""
    if is_server_log(url_or_path):
        raise ValueError("a PostgreSQL log is no file: there is nothing beside which to keep others")
    if url_or_path.startswith(_SQLITE_PREFIX):
        return url_or_path[len(_SQLITE_PREFIX) :].partition("?")[0]
    if url_or_path.startswith(_MEMORY_PREFIX):
        raise ValueError(f"{url_or_path!r} is an in-memory log: there is no file beside which to keep others")
    return url_or_path


def open_store(url_or_path: str, *, chain_key: bytes | None = None, create: bool = True) -> EventStore:
    """Open the store named by a plain file path, a ``sqlite:///``, ``postgresql://`` or ``memory:`` URL.

    URLs follow SQLAlchemy's convention: ``sqlite:///events.db`` is relative to the working
    directory, ``sqlite:////var/lib/dspyops/events.db`` is absolute. ``memory:`` is a new
    private in-memory log, ``memory:NAME`` the process-wide in-memory log NAME (see
    eventlog.memory). ``?mode=ro`` opens either read-only. ``chain_key``: new links are
    keyed with it and keyed links verify. ``create=False``: a missing log raises LogMissing
    (servers pass it when files of an earlier log exist, so a vanished log is never
    silently replaced by an empty one).

    ``postgresql://user:password@host:port/dbname?...`` (or ``postgres://``) is libpq's URL:
    every query option but ``mode`` goes to libpq (``sslmode``, ``options=-csearch_path=NAME``
    for the schema holding the table, ...). The database must exist; its table is created.
    """
    if not url_or_path:
        raise ValueError("open_store needs a path, a sqlite:///, postgresql:// or memory: URL")
    if is_server_log(url_or_path):
        conninfo, read_only = _postgres_url(url_or_path)
        return PostgresEventStore(conninfo, read_only=read_only, chain_key=chain_key, create=create)
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
            f"no event store backend for {scheme!r} URLs "
            "(supported: sqlite:///, postgresql://, memory:, a file path)"
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


def _postgres_url(url: str) -> tuple[str, bool]:
    """The URL without our ``mode`` option (libpq would refuse it), and whether it asked for
    read-only."""
    base, _, query = url.partition("?")
    ours = [part for part in query.split("&") if part.startswith("mode=")]
    theirs = [part for part in query.split("&") if part and not part.startswith("mode=")]
    read_only = _read_only(url, "&".join(ours))
    return base + ("?" + "&".join(theirs) if theirs else ""), read_only
