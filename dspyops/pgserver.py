"""A throwaway PostgreSQL server started from the machine's binaries: for the tests
(tests/support/postgres.py) and the benchmarks, not for production.

``initdb`` into a directory, then the server on a free port, listening on a Unix socket only
(``PostgresServer.url()`` reaches it). The binaries come from PATH or Debian's
/usr/lib/postgresql/<major>/bin (``make postgres`` installs them). PostgreSQL refuses to
run as root, so as root the server runs as the ``postgres`` system user (the Debian package
creates it), which owns the directory. Written here rather than taken from pytest-postgresql
because that one is a pytest plugin (a benchmark is no test) and this is short.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote

import psycopg

# fsync off: for tests, whose server crashes (pg_ctl stop -m immediate) the operating system
# outlives, so nothing committed is lost; benchmarks pass durable=True
TEST_SETTINGS: Final = {
    "listen_addresses": "''",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "400",
    "shared_buffers": "32MB",
}
DURABLE_SETTINGS: Final = TEST_SETTINGS | {
    "fsync": "on",
    "full_page_writes": "on",
    "synchronous_commit": "on",
}


class NoServer(Exception):
    """PostgreSQL's binaries (or a user to run them as) are missing."""


def find_bin_dir() -> Path | None:
    """The directory holding initdb/pg_ctl: PATH first, then Debian's versioned directories."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(candidate, "pg_ctl"), os.X_OK):
            return Path(candidate)
    return None


def _alive(pid: int) -> bool:
    """The process runs (a zombie, dead but not reaped by its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


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
    settings: dict[str, str]

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
        options = " ".join(f"-c {k}={v}" for k, v in self.settings.items())
        options += f" -k {self.socket_dir} -p {self.port}"
        log = self.data_dir.parent / "server.log"
        self.pg_ctl("-w", "-l", str(log), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server and return only once it is down: no postmaster, and no connection
        accepted. `pg_ctl stop -w` gives up after its own 60 s wait and says so only in its
        exit code, and twice in CI a stop under load took effect late (commands were still
        acknowledged after it), so this does not trust pg_ctl alone: it waits for the
        postmaster's pid to go and for a connection attempt to be refused, and kills the
        postmaster (SIGKILL) when a minute is not enough."""
        pid = self.postmaster_pid()
        self.pg_ctl("-w", "-m", mode, "stop", check=False)
        deadline = time.monotonic() + 60
        while not self._down(pid):
            if time.monotonic() > deadline:
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 60
                pid = None  # killed: from now on only the refused connection counts
            time.sleep(0.1)

    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid, from the first line of postmaster.pid (None: none)."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        return None

    def reachable(self) -> bool:
        """Whether the server accepts a connection now."""
        try:
            psycopg.connect(self.url(), connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def _down(self, pid: int | None) -> bool:
        if pid is not None and _alive(pid):
            return False
        return self.pg_ctl("status", check=False).returncode != 0 and not self.reachable()

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_server(root: Path, settings: dict[str, str] | None = None) -> PostgresServer:
    """initdb into ``root``/data and start the server (socket in ``root``/sock)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise NoServer(
            "no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin: "
            "`make postgres` installs them (apt-get install -y postgresql, as root)"
        )
    run_as: str | None = None
    if os.geteuid() == 0:
        run_as = "postgres"
        try:
            owner = pwd.getpwnam(run_as)
        except KeyError:
            raise NoServer("running as root and there is no 'postgres' user to run the server as") from None
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
    server = PostgresServer(
        bin_dir, data_dir, socket_dir, free_port(), "postgres", run_as, settings or dict(TEST_SETTINGS)
    )
    server.start()
    return server


@contextlib.contextmanager
def running_server(settings: dict[str, str] | None = None) -> Iterator[PostgresServer]:
    """A server of its own in a new temporary directory, stopped and removed afterwards."""
    # short: a Unix socket path must fit in about 100 bytes
    root = Path(tempfile.mkdtemp(prefix="dspyops-pg-"))
    os.chmod(root, 0o755)
    server = start_server(root, settings)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
