"""Artifacts in an ``artifacts`` table of a PostgreSQL log's database, keyed by digest.

Why a table and not a directory every process can reach: a version's bytes are in the log
already (its VersionRegistered event), so this store is a cache of what the log's database
holds anyway; keeping it there means an optimizer replica, or a Ray task on another
machine, needs the URL it has and nothing else mounted, backed up or kept consistent.
Artifacts are small (a compiled program's JSON), written once and read by digest.
"""

from __future__ import annotations

import time
from typing import Final

from dspyops.artifacts import ArtifactStore, check_digest
from dspyops.eventlog.postgres.errors import log_name
from dspyops.pgtables import Tables

TABLE: Final = "artifacts"
DDL: Final = (
    f"""
    CREATE TABLE IF NOT EXISTS {TABLE} (
        digest text PRIMARY KEY CHECK (digest ~ '^[0-9a-f]{{64}}$'),
        data bytea NOT NULL,
        created_at double precision NOT NULL
    )
    """,
    f"COMMENT ON TABLE {TABLE} IS 'dspyops artifacts by sha256 (cache of the bytes in VersionRegistered)'",
)


class PostgresArtifactStore(ArtifactStore):
    def __init__(self, conninfo: str, *, timeout: float = 10.0) -> None:
        self.location = conninfo  # a Ray task reopens it from here (dspyops.artifacts.backends)
        self.name = f"the {TABLE} table of {log_name(conninfo)}"
        self._tables = Tables(conninfo, "the artifacts of", DDL, timeout=timeout)

    def __repr__(self) -> str:
        return f"PostgresArtifactStore({log_name(self.location)!r})"

    def has(self, digest: str) -> bool:
        check_digest(digest)
        with self._tables.connection("read") as conn:
            return conn.execute(f"SELECT 1 FROM {TABLE} WHERE digest = %s", (digest,)).fetchone() is not None

    def _write(self, digest: str, data: bytes) -> None:
        with self._tables.connection("write") as conn:
            conn.execute(
                f"INSERT INTO {TABLE} (digest, data, created_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (digest) DO NOTHING",
                (digest, data, time.time()),
            )

    def _read(self, digest: str) -> bytes | None:
        with self._tables.connection("read") as conn:
            row = conn.execute(f"SELECT data FROM {TABLE} WHERE digest = %s", (digest,)).fetchone()
        return bytes(row[0]) if row else None

    def close(self) -> None:
        self._tables.close()
