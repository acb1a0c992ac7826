"""The LM cache of a PostgreSQL log: table ``lm_cache`` in the log's own database.

``lm_cache (job_id text, key text, response bytea NOT NULL, PRIMARY KEY (job_id, key))``,
created when missing (two processes creating it at once take a transaction-scoped advisory
lock first, as the events table's DDL does), in the first schema of the URL's search_path:
beside the ``events`` table. Every replica and every Ray task that can reach the log can
reach the cache, which is what lets a retry elsewhere replay the calls already paid for.
A pool of its own (psycopg-pool), small: one statement per LM call.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg
from psycopg_pool import ConnectionPool

from dspyops.eventlog.postgres.errors import log_name, mapped_errors
from dspyops.lmcache.cache import LMCache

TABLE: Final = "lm_cache"
_DDL_LOCK: Final = 0x64737079_6F707302  # "dspyops" + 2 (the events table's is + 1)
_DDL: Final = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (job_id text NOT NULL, key text NOT NULL, "
    "response bytea NOT NULL, PRIMARY KEY (job_id, key))"
)

Conn = psycopg.Connection[tuple[object, ...]]


def without_password(url: str) -> str:
    """The URL with its password (``user:password@`` or ``?password=``) left out: what is handed
    to a Ray task, whose libpq takes the password from its own environment (PGPASSWORD,
    PGPASSFILE), as its LM keys come from its own environment."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}@{hostport}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k != "password"]
    query = parts.query if len(kept) == len(pairs) else urlencode(kept)
    # by hand, not urlunsplit: that drops the empty host of postgresql:///db?host=/socket
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


class PostgresLMCache(LMCache):
    """``url``: the log's libpq URL (without dspyops's own ``mode`` option)."""

    def __init__(self, url: str, *, timeout: float = 10.0, pool_size: int = 4) -> None:
        self.log_url = without_password(url)
        self.name = log_name(url)  # for messages: no password
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            timeout=timeout,
            open=False,
            name=f"LM cache {self.name}",
        )
        with mapped_errors("open the LM cache of", self.name):
            self._pool.open(wait=True, timeout=timeout)
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
                conn.execute(_DDL)

    def get(self, job_id: str, key: str) -> bytes | None:
        with mapped_errors("read the LM cache of", self.name), self._pool.connection() as conn:
            row = conn.execute(
                f"SELECT response FROM {TABLE} WHERE job_id = %s AND key = %s", (job_id, key)
            ).fetchone()
        return bytes(row[0]) if row is not None else None  # type: ignore[call-overload]

    def put(self, job_id: str, key: str, response: bytes) -> None:
        with mapped_errors("write the LM cache of", self.name), self._pool.connection() as conn:
            conn.execute(
                f"INSERT INTO {TABLE} (job_id, key, response) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (job_id, key, bytes(response)),
            )

    def put_many(self, job_id: str, rows: list[tuple[str, bytes]]) -> None:
        with (
            mapped_errors("write the LM cache of", self.name),
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor() as cursor,
        ):
            cursor.executemany(
                f"INSERT INTO {TABLE} (job_id, key, response) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                [(job_id, key, bytes(response)) for key, response in rows],
            )

    def delete_job(self, job_id: str) -> int:
        with mapped_errors("delete from the LM cache of", self.name), self._pool.connection() as conn:
            cursor = conn.execute(f"DELETE FROM {TABLE} WHERE job_id = %s", (job_id,))
        return int(cursor.rowcount)

    def count(self, job_id: str) -> int:
        with mapped_errors("read the LM cache of", self.name), self._pool.connection() as conn:
            row = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE job_id = %s", (job_id,)).fetchone()
        return int(row[0]) if row is not None else 0  # type: ignore[call-overload]

    def close(self) -> None:
        self._pool.close()


__all__ = ["TABLE", "PostgresLMCache", "without_password"]
