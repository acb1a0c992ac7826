"""The routing-key secret of a PostgreSQL log, in a one-row table of its database.

Every gateway on that log must key its records' routing-key HMACs with the same secret (an
explain --key on any gateway checks any gateway's record), and a gateway on that log needs
nothing but the URL: so the secret lives beside the log, as a file log's ``<log>.secret``
lives beside its file. The first process to ask creates it (32 random bytes; concurrent
first starts agree, the insert is ON CONFLICT DO NOTHING and everyone reads the row back).
It never enters the events or the records; who may read this table (GRANTs) decides who
can test guesses of a user id against the records, as the file's mode 0600 does for a file log.
"""

from __future__ import annotations

import secrets
from typing import Final

from dspyops.pgtables import Tables

TABLE: Final = "routing_secret"
DDL: Final = (
    f"""
    CREATE TABLE IF NOT EXISTS {TABLE} (
        id smallint PRIMARY KEY CHECK (id = 1),
        secret bytea NOT NULL CHECK (length(secret) >= 32)
    )
    """,
    f"COMMENT ON TABLE {TABLE} IS 'dspyops: the key of the routing-key HMACs in the prediction records'",
)


def load_or_create_server_secret(conninfo: str) -> bytes:
    """The log's secret, created when it has none yet."""
    tables = Tables(conninfo, "the routing secret of", DDL, max_size=1)
    try:
        with tables.connection("read") as conn:
            conn.execute(
                f"INSERT INTO {TABLE} (id, secret) VALUES (1, %s) ON CONFLICT (id) DO NOTHING",
                (secrets.token_bytes(32),),
            )
            row = conn.execute(f"SELECT secret FROM {TABLE} WHERE id = 1").fetchone()
    finally:
        tables.close()
    assert row is not None  # the row was there or was just inserted
    return bytes(row[0])
