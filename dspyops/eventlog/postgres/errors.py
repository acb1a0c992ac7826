"""psycopg's errors -> the store's: what means "the log cannot be reached or written now"
(StoreUnavailable, as SQLite's busy, I/O and read-only errors), and the log's name for
messages, never with its password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import PoolClosed, PoolTimeout

from dspyops.eventlog.store import StoreUnavailable


def log_name(conninfo: str) -> str:
    """``postgresql://user@host:port/dbname``: what names the log in messages. The password
    (in the URL or its query) and every other option are left out."""
    params = conninfo_to_dict(conninfo)
    user = params.get("user")
    host = params.get("host") or "localhost"
    port = params.get("port")
    dbname = params.get("dbname") or user or ""
    return f"postgresql://{f'{user}@' if user else ''}{host}{f':{port}' if port else ''}/{dbname}"


# SQLSTATE classes that mean the server (not our SQL) cannot serve now: connection exceptions
# (08), insufficient resources (53: disk full, out of memory, too many connections), operator
# intervention (57: shutdown, cancel, crash recovery) and system errors (58: I/O).
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")


def is_unavailable(exc: BaseException) -> bool:
    # (PoolTimeout is an OperationalError; PoolClosed is not)
    if isinstance(exc, PoolTimeout | PoolClosed | pg_errors.ReadOnlySqlTransaction):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate
        return state is None or state[:2] in _UNAVAILABLE_CLASSES
    return False


@contextlib.contextmanager
def mapped_errors(action: str, log: str) -> Iterator[None]:
    """Turn unavailable-server errors into StoreUnavailable naming the log; let bugs surface."""
    try:
        yield
    except psycopg.Error as exc:
        if is_unavailable(exc):
            raise StoreUnavailable(f"{action} {log}: {_first_line(exc)}") from exc
        raise


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
