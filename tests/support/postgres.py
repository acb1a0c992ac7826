"""A real PostgreSQL server for the test session, started from the machine's binaries.

``postgres_server`` (session scope) runs ``initdb`` into a temporary directory and starts
the server on a free port, listening on a Unix socket only; it stops it (``pg_ctl stop -m
fast``) when the session ends. ``postgres_url`` (per test) creates a database of its own,
so tests never share state, and drops it afterwards.

The binaries come from PATH or Debian's /usr/lib/postgresql/<major>/bin; `make test`
installs them (``make postgres``) when they are missing. A missing server is a failure,
never a skip: the PostgreSQL tests are part of the suite.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
``postgres`` system user (the Debian package creates it) and the data directory is its.
The test cluster trades crash safety for speed (``fsync=off``): the operating system
outlives every server crash a test provokes, so nothing committed is lost there; the
benchmark (bench/bench_append_postgres.py) runs with fsync on.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

_SERVER_SETTINGS = {
    "listen_addresses": "''",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "400",
    "shared_buffers": "32MB",
}


def find_bin_dir() -> Path | None:
    """The directory holding initdb/pg_ctl: PATH first, then Debian's versioned directories."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(candidate, "pg_ctl"), os.X_OK):
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running server: its socket directory, port, superuser and data directory."""

    bin_dir: Path
    data_dir: Path
    socket_dir: Path
    port: int
    user: str
    run_as: str | None  # the OS user the server runs as (None: this process's)

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL reaching the server over its Unix socket (the host is the socket
        directory, percent-encoded, as libpq allows)."""
        return f"postgresql://{self.user}@{quote(str(self.socket_dir), safe='')}:{self.port}/{dbname}"

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args],
            user=self.run_as,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def start(self) -> None:
        options = " ".join(f"-c {k}={v}" for k, v in _SERVER_SETTINGS.items())
        options += f" -k {self.socket_dir} -p {self.port}"
        log = self.data_dir.parent / "server.log"
        self.pg_ctl("-w", "-l", str(log), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-w", "-m", mode, "stop", check=False)

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_server(root: Path) -> PostgresServer:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.fail(
            "no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin: "
            "`make postgres` installs them (apt-get install -y postgresql, as root)",
            pytrace=False,
        )
    run_as: str | None = None
    if os.geteuid() == 0:
        run_as = "postgres"
        try:
            owner = pwd.getpwnam(run_as)
        except KeyError:
            pytest.fail("running as root and there is no 'postgres' user to run the server as", pytrace=False)
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data_dir, socket_dir = root / "data", root / "sock"
    socket_dir.mkdir()
    if run_as is not None:
        os.chown(socket_dir, owner.pw_uid, owner.pw_gid)
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
         "--locale=C.UTF-8", "--no-sync"],
        user=run_as, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    server = PostgresServer(bin_dir, data_dir, socket_dir, free_port(), "postgres", run_as)
    server.start()
    return server


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    """A server of its own in a new temporary directory, stopped and removed afterwards."""
    # short: a Unix socket path must fit in about 100 bytes
    root = Path(tempfile.mkdtemp(prefix="dspyops-pg-"))
    os.chmod(root, 0o755)
    server = start_server(root)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_server() as server:
        yield server


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A server for this test alone: for the tests that stop it (``pg_ctl stop -m immediate``)."""
    with running_server() as server:
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
