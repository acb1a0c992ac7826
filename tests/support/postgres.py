"""A real PostgreSQL server for the test session, started from the machine's binaries
(dspyops/pgserver.py).

``postgres_server`` (session scope) runs ``initdb`` into a temporary directory and starts
the server on a free port, listening on a Unix socket only; it stops it when the session
ends. ``postgres_url`` (per test) creates a database of its own, so tests never share
state, and drops it afterwards. ``private_postgres`` is a server for one test alone (for
the tests that stop it).

A missing server is a failure, never a skip: the PostgreSQL tests are part of the suite,
and `make test` installs the binaries (``make postgres``) when they are missing. The test
cluster runs with ``fsync=off`` (see pgserver.TEST_SETTINGS).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import pytest

from dspyops.pgserver import NoServer, PostgresServer, running_server

__all__ = ["PostgresServer"]


@contextlib.contextmanager
def _server() -> Iterator[PostgresServer]:
    try:
        with running_server() as server:
            yield server
    except NoServer as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with _server() as server:
        yield server


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A server for this test alone: for the tests that stop it (``pg_ctl stop -m immediate``)."""
    with _server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database of this test's own."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        with contextlib.suppress(psycopg.Error):
            postgres_server.drop_database(name)
