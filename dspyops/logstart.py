"""Opening the log when a service starts: the chain key, ``--create``, the writer lease and
the chain check from the newest trusted snapshot. Both services go through here, so they
refuse the same things with the same words.

The chain check walks only the links after the newest snapshot whose hash still matches
the log (and, with a chain key, whose MAC checks), so a large log starts in the time its
tail takes; ``dspyops log verify`` walks the whole chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from dspyops.eventlog import (
    ChainChecker,
    EventStore,
    LogMissing,
    VerifyResult,
    WriterLease,
    WriterLocked,
    is_server_log,
    log_name,
    open_store,
)
from dspyops.keyfiles import KeyFileError, load_chain_key, load_or_create_secret
from dspyops.logfiles import SERVER_LOG_STEM, LogFiles, missing_log_message
from dspyops.pgsecret import load_or_create_server_secret
from dspyops.pgtables import table_has_rows
from dspyops.snapshots import SnapshotStore
from dspyops.state import State


class StartRefused(Exception):
    """A service will not start on this log; the message says why and what to do."""


class BrokenChain(Exception):
    """A link received while tailing does not check."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(position, reason)
        self.position = position
        self.reason = reason

    def __str__(self) -> str:
        return f"the log's hash chain is broken at position {self.position}: {self.reason}"


def chain_key(path: str) -> bytes | None:
    if not path:
        return None
    try:
        return load_chain_key(path)
    except KeyFileError as exc:
        raise StartRefused(str(exc)) from None


def open_service_store(
    log: str, key: bytes | None, *, create: bool, evidence: list[Path] | None = None, home: Path | None = None
) -> EventStore:
    """The store, created only on a first start or with ``--create`` (see logfiles).
    ``evidence``: more files that show an earlier log (artifacts, a records file);
    ``home``: where a server log's local files are, if it has any (see logfiles)."""
    if is_server_log(log):
        store = _open_server_store(log, key, create=create, evidence=evidence or [], home=home)
        shown = log_name(log)
    else:
        files = LogFiles.of(log)
        shown = files.shown
        may_create = files.may_create(create, evidence or [])
        try:
            store = open_store(log, chain_key=key, create=may_create)
        except LogMissing:
            raise StartRefused(missing_log_message(files, files.leftovers(evidence or []))) from None
    try:
        if key is None and store.keyed():
            raise StartRefused(
                f"the log {shown} has keyed chain links: start with --chain-key-file (without the key "
                "no link can be appended, nor any keyed link checked)"
            )
    except BaseException:
        store.close()
        raise
    return store


# What else a service keeps in a PostgreSQL log's database (dspyops.snapshots.postgres,
# dspyops.artifact_stores, gateway_svc.records.postgres): rows in any of them show a log was there.
_SERVER_EVIDENCE: Final = ("snapshots", "artifacts", "predictions")


def _open_server_store(
    log: str, key: bytes | None, *, create: bool, evidence: list[Path], home: Path | None
) -> EventStore:
    """A PostgreSQL log: its events table is created on a first start only, i.e. when neither
    the database's other tables nor the local files given as ``evidence`` hold anything of an
    earlier log (or with ``--create``). They are looked at only when the table is missing."""
    try:
        return open_store(log, chain_key=key, create=create)
    except LogMissing as exc:
        if "database does not exist" in str(exc):
            raise StartRefused(str(exc)) from None
    files = LogFiles(home / SERVER_LOG_STEM if home else Path(SERVER_LOG_STEM), log_name(log))
    found = [Path(f"{log_name(log)} table {t}") for t in _SERVER_EVIDENCE if table_has_rows(log, t)]
    found += files.leftovers(evidence) if home else [p for p in evidence if LogFiles.holds_files(p)]
    if found:
        raise StartRefused(missing_log_message(files, found))
    return open_store(log, chain_key=key, create=True)


def writer_lease(store: EventStore) -> WriterLease:
    try:
        return store.writer_lock()
    except WriterLocked as exc:
        raise StartRefused(str(exc)) from None


def routing_secret(beside: Path) -> bytes:
    try:
        return load_or_create_secret(beside)
    except KeyFileError as exc:
        raise StartRefused(str(exc)) from None


def log_routing_secret(log: str) -> bytes:
    """The routing-key secret of the log: a file log's file beside it, a PostgreSQL log's
    row in its database (dspyops.pgsecret), created on first use."""
    if is_server_log(log):
        return load_or_create_server_secret(log)
    return routing_secret(LogFiles.of(log).secret)


@dataclass(frozen=True)
class StartCheck:
    """What the chain check at start found, and where a tail's checker continues."""

    result: VerifyResult
    checker: ChainChecker  # positioned after the last link the check reached
    # the trusted snapshot the check started after, decoded (None: none): a service starts
    # from it rather than decoding it a second time
    snapshot: State | None = None

    @property
    def last_position(self) -> int:
        return self.checker.position

    def walk(self, store: EventStore, *, allow_broken: bool, service: str) -> StartCheck:
        """Walk the links from this point to the head (see verify_at_start)."""
        after = self.checker.position
        result = store.verify(after_position=after)
        log = structlog.get_logger()
        last = result.after_position + result.checked
        if not result.ok:
            assert result.first_broken_position is not None
            if not allow_broken:
                raise broken_chain_refusal(service, result.first_broken_position, result.reason)
            log.warning(
                "log_chain_broken",
                first_broken_position=result.first_broken_position,
                reason=result.reason,
                allowed_by="--allow-broken-log",
            )
            last = result.first_broken_position  # the tail goes on from the broken link's stored hash
        else:
            log.info(
                "log_chain_verified",
                after_position=after,
                checked=result.checked,
                v1_links=result.v1_links,
                v2_links=result.v2_links,
                keyed_links=result.keyed_links,
            )
        return StartCheck(result, _checker_after(store, last), self.snapshot)


def verify_at_start(
    store: EventStore, snapshots: SnapshotStore, *, allow_broken: bool, service: str
) -> StartCheck:
    """Verify the links after the newest trusted snapshot (all of them without one).

    A broken chain refuses the start, naming the first broken position, unless
    ``allow_broken`` (``--allow-broken-log``): then a warning names it and the start goes on.
    """
    point = start_point(store, snapshots)
    return point.walk(store, allow_broken=allow_broken, service=service)


def start_point(store: EventStore, snapshots: SnapshotStore) -> StartCheck:
    """The newest trusted snapshot and a checker positioned after it, nothing walked yet: for
    a service that checks each link as its replay reads it (the gateway), instead of reading
    the log twice (bench/bench_replay.py: the walk was half of a 1M-event cold start)."""
    point = snapshots.latest_point(store)
    after = point[0].position if point else 0
    unwalked = "not walked: each link is checked as it is read"
    result = VerifyResult(True, 0, None, unwalked, after_position=after)
    return StartCheck(result, _checker_after(store, after), point[0] if point else None)


def broken_chain_refusal(service: str, position: int, reason: str) -> StartRefused:
    return StartRefused(
        f"{service}: the log's hash chain is broken at position {position}: {reason}. Run `dspyops log "
        "verify --log FILE`; restore the log from a backup, or start with --allow-broken-log to serve "
        "it anyway"
    )


def _checker_after(store: EventStore, position: int) -> ChainChecker:
    key = store.chain_key
    if position == 0:
        return ChainChecker(key=key)
    event = store.read(after_position=position - 1, limit=1)[0]
    return ChainChecker(key=key, after_position=position, prev_hash=event.hash, prev_link=event.chain)
