"""The files that live beside a log, and what their presence says about a missing log.

For a log ``events.db``: ``events.db-wal`` / ``-shm`` (SQLite's), ``events.db.snapshots``,
``events.db.predictions`` (a gateway's records, by default), ``events.db.secret`` (the
routing-key secret), ``events.db.lock`` (the writer lock). Artifacts live in the
optimizer's data directory.

A server never creates a new, empty log where one of these says a log was there before
(it was deleted or moved, and a fresh one would silently start history over beside the old
artifacts and records) unless told to with ``--create``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dspyops.eventlog import log_file


@dataclass(frozen=True)
class LogFiles:
    log: Path

    @classmethod
    def of(cls, url_or_path: str) -> LogFiles:
        return cls(Path(log_file(url_or_path)))

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
        for other in others:
            if other.is_dir():
                if any(entry.is_file() for entry in _walk(other)):
                    found.append(other)
            elif other.exists():
                found.append(other)
        return found

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
    return (
        f"the log {files.log} does not exist, but files of an earlier log do ({shown}): it was deleted or "
        "moved. Restore it (see `dspyops log backup`), or start with --create to begin a new, empty log"
    )
