"""The files that live beside a log, and what their presence says about a missing log.

For a log ``events.db``: ``events.db-wal`` / ``-shm`` (SQLite's), ``events.db.snapshots``,
``events.db.predictions`` (a gateway's records, by default), ``events.db.secret`` (the
routing-key secret), ``events.db.lock`` (the writer lock). Artifacts live in the
optimizer's data directory.

A server never creates a new, empty log where one of these says a log was there before
(it was deleted or moved, and a fresh one would silently start history over beside the old
artifacts and records) unless told to with ``--create``.

A log on a PostgreSQL server has no file to keep them beside: they are tables of its
database instead (snapshots, artifacts, prediction records, the routing secret; see
dspyops.pgtables), so a process on it needs nothing but the URL. A local directory given
explicitly (``--data-dir``, ``--predictions``) still holds what it is given for. The same
evidence rule holds: a missing events table beside rows in those tables, or beside local
artifacts or records of an earlier log, needs ``--create``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dspyops.eventlog import is_server_log, log_file, log_name

SERVER_LOG_STEM = "log"  # <home>/log.snapshots, ... for a log on a database server


@dataclass(frozen=True)
class LogFiles:
    log: Path  # the log file, or (a server log) the stem of the local files in its home
    name: str = ""  # what names the log in messages ("": the file's path)

    @classmethod
    def of(cls, url_or_path: str, home: Path | None = None) -> LogFiles:
        """The files of the log ``url_or_path``; ``home``: where a server log keeps them."""
        if is_server_log(url_or_path):
            if home is None:
                raise ValueError(
                    f"{log_name(url_or_path)} is a server log: its local files need a directory (home)"
                )
            return cls(home / SERVER_LOG_STEM, log_name(url_or_path))
        return cls(Path(log_file(url_or_path)))

    @property
    def shown(self) -> str:
        return self.name or str(self.log)

    def beside(self, suffix: str) -> Path:
        return Path(f"{self.log}{suffix}")

    @property
    def snapshots(self) -> Path:
        return self.beside(".snapshots")

    @property
    def predictions(self) -> Path:
        return self.beside(".predictions")

    @property
    def secret(self) -> Path:
        return self.beside(".secret")

    @property
    def lock(self) -> Path:
        return self.beside(".lock")

    def leftovers(self, others: Iterable[Path] = ()) -> list[Path]:
        """Files that show a log existed here: SQLite's WAL, snapshots, prediction records,
        and any of ``others`` (an artifacts directory counts when it holds a file).

        The secret and the lock are not evidence: a gateway creates a secret before the
        optimizer's first start, and a lock file holds no history.
        """
        found = [p for p in (self.beside("-wal"), self.snapshots, self.predictions) if p.exists()]
        return found + [other for other in others if self.holds_files(other)]

    @staticmethod
    def holds_files(path: Path) -> bool:
        """A file, or a directory with a file somewhere in it."""
        if path.is_dir():
            return any(entry.is_file() for entry in _walk(path))
        return path.exists()

    def may_create(self, create: bool, others: Iterable[Path] = ()) -> bool:
        """Whether a server may create the log: always with ``--create``, otherwise only
        on a first start (nothing of an earlier log around)."""
        return create or self.log.exists() or not self.leftovers(others)


def _walk(directory: Path) -> Iterable[Path]:
    for root, _, files in os.walk(directory):
        for name in files:
            yield Path(root) / name


def missing_log_message(files: LogFiles, leftovers: list[Path]) -> str:
    shown = ", ".join(str(p) for p in leftovers[:4])
    restore = (
        "from the server's backup (pg_dump, a base backup)" if files.name else "(see `dspyops log backup`)"
    )
    return (
        f"the log {files.shown} does not exist, but files of an earlier log do ({shown}): it was deleted or "
        f"moved. Restore it {restore}, or start with --create to begin a new, empty log"
    )
