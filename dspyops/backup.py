"""`dspyops log backup`: a consistent copy of a live log and the files beside it.

A plain ``cp`` of a live log copies a database whose recent commits sit in the ``-wal``
file beside it, so the copy can be empty or behind. SQLite's online backup API reads one
consistent snapshot of the database (WAL included) while the services keep appending, and
the copy is written as a single self-contained file (rollback journal, no WAL), then its
hash chain is verified.

Beside the log it copies what a restore needs: the prediction records (``.predictions``),
the routing-key secret that their HMACs are keyed with (``.secret``, kept 0600) and the
snapshots (``.snapshots``, only a faster start). Records are copied before the log, so
every record refers to a position the copied log has. The chain key is never copied: it
belongs somewhere else than the log (that is its point). Artifacts are immutable,
content-addressed files inside the log's VersionRegistered events too; copy the
optimizer's ``--data-dir`` with ``cp -a`` (see the README).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from dspyops.eventlog import SQLiteEventStore, VerifyResult
from dspyops.logfiles import LogFiles


class BackupRefused(Exception):
    """Nothing was written: the message says why."""


@dataclass
class BackupReport:
    log: Path
    dest: Path
    verified: VerifyResult
    head: int
    files: list[tuple[Path, Path]] = field(default_factory=list)  # (source, copy) besides the log


def backup_log(
    log: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    force: bool = False,
    chain_key: bytes | None = None,
    predictions: str | os.PathLike[str] | None = None,
) -> BackupReport:
    """Copy ``log`` to ``dest`` (and its records, secret and snapshots to ``dest.<suffix>``),
    then verify the copy's chain. Refuses to overwrite unless ``force``."""
    source = LogFiles(Path(log).absolute())
    target = LogFiles(Path(dest).absolute())
    if not source.log.is_file():
        raise BackupRefused(f"the log {source.log} does not exist")
    if target.log == source.log:
        raise BackupRefused("the backup must not be the log itself")
    pairs = [
        (Path(predictions).absolute() if predictions else source.predictions, target.predictions),
        (source.secret, target.secret),
        (source.snapshots, target.snapshots),
    ]
    pairs = [(src, dst) for src, dst in pairs if src.is_file()]
    if not force:
        existing = [p for p in [target.log, *(dst for _, dst in pairs)] if p.exists()]
        if existing:
            raise BackupRefused(f"{existing[0]} exists: choose another destination, or pass --force")
    target.log.parent.mkdir(parents=True, exist_ok=True)
    copied = []
    for src, dst in pairs:  # records first: each refers to a log position the copy then has
        if src == source.secret:
            _copy_private(src, dst)
        else:
            _sqlite_copy(src, dst)
        copied.append((src, dst))
    _sqlite_copy(source.log, target.log)
    store = SQLiteEventStore(target.log, read_only=True, chain_key=chain_key)
    try:
        verified = store.verify()
        head = store.head()
    finally:
        store.close()
    return BackupReport(source.log, target.log, verified, head, copied)


def _sqlite_copy(src: Path, dst: Path) -> None:
    """One consistent snapshot of ``src`` into ``dst`` via sqlite3's backup API, written
    next to ``dst`` first and moved into place once complete."""
    partial = dst.with_name(f".{dst.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    reader = sqlite3.connect(f"file:{quote(str(src))}?mode=ro", uri=True, timeout=30)
    try:
        writer = sqlite3.connect(partial)
        try:
            reader.backup(writer)  # all pages in one step: one read transaction, one snapshot
            writer.execute("PRAGMA journal_mode=DELETE")  # a single file, complete by itself
            writer.commit()
        finally:
            writer.close()
    finally:
        reader.close()
    os.replace(partial, dst)


def _copy_private(src: Path, dst: Path) -> None:
    partial = dst.with_name(f".{dst.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    os.replace(partial, dst)
