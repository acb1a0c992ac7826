"""The LM cache of a SQLite log: table ``lm_cache`` in a sibling file ``<log>.lmcache.sqlite``.

A file of its own, not a table in the log: the log's schema, its hash chain and its writer
lock stay exactly as they are, and the cache's writes (one per paid LM call, from the job's
worker threads) never queue behind appends. WAL, so readers do not wait for the writer; one
connection shared by this process's threads behind a lock (sqlite-utils opens it).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Final

import sqlite_utils

from dspyops.eventlog.store import StoreUnavailable
from dspyops.lmcache.cache import LMCache

SUFFIX: Final = ".lmcache.sqlite"
TABLE: Final = "lm_cache"


def cache_file(log_file: str | Path) -> Path:
    return Path(f"{log_file}{SUFFIX}")


class SQLiteLMCache(LMCache):
    """``log_file``: the SQLite log's path; the cache is the file beside it."""

    def __init__(self, log_file: str | Path, *, busy_timeout: float = 30.0) -> None:
        self.log_url = str(Path(log_file).resolve())
        self.path = cache_file(self.log_url)
        self._lock = threading.Lock()
        try:
            conn = sqlite3.connect(
                self.path, timeout=busy_timeout, check_same_thread=False, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"open the LM cache {self.path}: {exc}") from exc
        self._db = sqlite_utils.Database(conn, execute_plugins=False)
        with self._lock, self._errors("create"):
            # the rows are transient (deleted when their job ends): freed pages go back to
            # the file system (auto_vacuum, set before the table exists) and the WAL is
            # truncated after a job's delete, so the file stays small beside the log
            self._db.execute("PRAGMA auto_vacuum=FULL")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # a lost row costs one LM call, no more
            self._db[TABLE].create(  # type: ignore[union-attr]
                {"job_id": str, "key": str, "response": bytes},
                pk=("job_id", "key"),
                not_null={"response"},
                if_not_exists=True,
            )
        self._closed = False

    def _errors(self, action: str) -> _Errors:
        return _Errors(f"{action} the LM cache {self.path}")

    def get(self, job_id: str, key: str) -> bytes | None:
        with self._lock, self._errors("read"):
            row = self._db.execute(
                f"SELECT response FROM {TABLE} WHERE job_id = ? AND key = ?", [job_id, key]
            ).fetchone()
        return bytes(row[0]) if row is not None else None

    def put(self, job_id: str, key: str, response: bytes) -> None:
        with self._lock, self._errors("write"):
            self._db.execute(
                f"INSERT OR IGNORE INTO {TABLE} (job_id, key, response) VALUES (?, ?, ?)",
                [job_id, key, bytes(response)],
            )

    def put_many(self, job_id: str, rows: list[tuple[str, bytes]]) -> None:
        with self._lock, self._errors("write"):
            conn = self._db.conn  # autocommit (isolation_level=None): one explicit transaction
            conn.execute("BEGIN")
            try:
                conn.executemany(
                    f"INSERT OR IGNORE INTO {TABLE} (job_id, key, response) VALUES (?, ?, ?)",
                    [(job_id, key, bytes(response)) for key, response in rows],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def delete_job(self, job_id: str) -> int:
        with self._lock, self._errors("delete from"):
            cursor = self._db.execute(f"DELETE FROM {TABLE} WHERE job_id = ?", [job_id])
            deleted = int(cursor.rowcount)
            if deleted:  # a reader elsewhere may hold the WAL: then it is truncated next time
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted

    def count(self, job_id: str) -> int:
        with self._lock, self._errors("read"):
            row = self._db.execute(f"SELECT count(*) FROM {TABLE} WHERE job_id = ?", [job_id]).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()


class _Errors:
    """sqlite3 errors -> StoreUnavailable naming the cache file (a closed cache included)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, sqlite3.Error):
            raise StoreUnavailable(f"{self.what}: {exc}") from exc


__all__ = ["SUFFIX", "SQLiteLMCache", "cache_file"]
