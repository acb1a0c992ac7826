"""The parts of a dspyops cluster on one machine, for `make demo-cluster` and the replica
benchmark: a throwaway PostgreSQL (dspyops.pgserver), a Ray head node (`ray start --head
--block` as a subprocess), optimizer replicas and gateways (dspyops.launch.ServiceProcess),
all on one log URL.

Everything lives under one temporary directory: the server's data and socket, Ray's
session files (`--temp-dir`, RAY_TMPDIR), DSPy's cache, each service's port file and
stderr. `LocalCluster.close()` stops what it started, in reverse order, by process id, then
looks for any process still naming the directory (a Ray worker, a raylet) and kills it, and
removes the directory; it runs on failure too (a context manager). Nothing is written to
the home directory: HOME points into the directory for every child.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import psycopg

from dspyops.launch import ServiceProcess
from dspyops.pgserver import PostgresServer, free_port, start_server

RAY_CPUS: Final = 2
DATABASE: Final = "dspyops"


def ray_command() -> str:
    """The `ray` script of this interpreter's environment (PATH's otherwise)."""
    beside = Path(sys.executable).parent / "ray"
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


class RayHead:
    """`ray start --head --block` in a session of its own: a GCS, a raylet and Ray's agents
    with their files under `temp_dir`. Every port it would take by default (the client
    server's 10001, the dashboard's 8265, the agent's 52365) is a free one instead, so two
    clusters on one machine do not collide. SIGTERM to the `ray start` process drains the
    node and stops its processes."""

    def __init__(self, temp_dir: Path, env: dict[str, str], cpus: int = RAY_CPUS, timeout: float = 120.0):
        self.temp_dir = temp_dir
        self.port = free_port()
        self.output = open(temp_dir.parent / "ray-head.log", "w")  # closed in stop()
        ports = {
            "--ray-client-server-port": free_port(),
            "--dashboard-port": free_port(),
            "--dashboard-agent-listen-port": free_port(),
        }
        self.process = subprocess.Popen(
            [
                ray_command(),
                "start",
                "--head",
                "--block",
                f"--port={self.port}",
                f"--num-cpus={cpus}",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={temp_dir}",
                *(f"{flag}={port}" for flag, port in ports.items()),
            ],
            stdout=self.output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: a Ctrl-C of the demo is ours to relay
        )
        self.address = self._wait_started(timeout)

    def _wait_started(self, timeout: float) -> str:
        """The GCS address (HOST:PORT) once `ray start` says the runtime started."""
        marker = self.temp_dir / "ray_current_cluster"
        log = Path(self.output.name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.process.returncode}; see {log}")
            if "Ray runtime started" in log.read_text(errors="replace") and marker.exists():
                address = marker.read_text().strip()
                if address:
                    return address
            time.sleep(0.1)
        raise TimeoutError(f"the Ray head did not start within {timeout:.0f} s; see {log}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 45.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.output.close()


def processes_under(root: Path) -> list[int]:
    """Processes (other than this one) whose command line names a path under `root`, or
    whose environment does (every child of a LocalCluster has RAY_TMPDIR=root: Ray's
    workers retitle themselves `ray::...`, so their command line names nothing)."""
    needle = str(root).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes() or needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


class LocalCluster:
    """PostgreSQL, a Ray head and any number of optimizers and gateways on one machine.

    with LocalCluster.create() as cluster:
        cluster.start_optimizer("optimizer-1")
        cluster.start_gateway("gateway-1")
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = dict(os.environ)
        self.env.update(
            HOME=str(root / "home"),  # nothing of Ray's or DSPy's lands in the real home
            DSPY_CACHEDIR=str(root / "dspy_cache"),
            RAY_TMPDIR=str(root),
            RAY_USAGE_STATS_ENABLED="0",
            LITELLM_LOCAL_MODEL_COST_MAP="True",
        )
        self.env.setdefault("DSPYOPS_LOG_LEVEL", "warning")
        (root / "home").mkdir()
        self.postgres: PostgresServer | None = None
        self.ray: RayHead | None = None
        self.services: dict[str, ServiceProcess] = {}
        self.url = ""
        self.leftovers: list[int] = []  # processes close() found still running, and killed

    @classmethod
    @contextlib.contextmanager
    def create(cls, prefix: str = "dspyops-cl-") -> Iterator[LocalCluster]:
        # short: Ray's and PostgreSQL's Unix socket paths under it must fit in about 100 bytes
        root = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(root, 0o755)  # the PostgreSQL server runs as its own user when we are root
        cluster = cls(root)
        try:
            yield cluster
        finally:
            cluster.close()

    # ------------------------------------------------------------------ the parts

    def start_postgres(self) -> str:
        """initdb, start, create the database; its URL (a Unix socket under the root)."""
        pg_root = self.root / "pg"
        pg_root.mkdir()
        os.chmod(pg_root, 0o755)
        self.postgres = start_server(pg_root)
        with psycopg.connect(self.postgres.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        self.url = self.postgres.url(DATABASE)
        return self.url

    def start_ray(self, cpus: int = RAY_CPUS) -> RayHead:
        self.ray = RayHead(self.root / "ray", self.env, cpus)
        return self.ray

    def start_optimizer(self, name: str, *flags: str, executor: str = "ray") -> ServiceProcess:
        args = ["optimizer", "--log", self.url]  # artifacts, snapshots: tables beside the log
        if executor == "ray":
            assert self.ray is not None, "start_ray() first"
            args += ["--executor", "ray", "--ray-address", self.ray.address]
        return self._start(name, [*args, *flags])

    def start_gateway(self, name: str, *flags: str) -> ServiceProcess:
        # nothing but the URL: the records, snapshots and routing secret are tables beside the log
        return self._start(name, ["gateway", "--log", self.url, *flags])

    def _start(self, name: str, args: list[str]) -> ServiceProcess:
        service = ServiceProcess(name, args, self.root, self.env)
        self.services[name] = service
        return service

    def kill(self, name: str) -> int:
        """kill -9 a service (no drain, no goodbye); its pid."""
        service = self.services[name]
        service.process.send_signal(signal.SIGKILL)
        service.process.wait(30)
        return service.pid

    def service_log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    # ------------------------------------------------------------------ stopping

    def stop_services(self, names: Sequence[str] | None = None) -> None:
        for name in reversed(list(names if names is not None else self.services)):
            self.services.pop(name).stop()

    def close(self) -> None:
        """Stop everything (services, Ray, PostgreSQL), kill what still names the root,
        remove the root. Safe to call on a half-started cluster."""
        try:
            with contextlib.suppress(Exception):
                self.stop_services()
            if self.ray is not None:
                with contextlib.suppress(Exception):
                    self.ray.stop()
            if self.postgres is not None:
                with contextlib.suppress(Exception):
                    self.postgres.stop()
        finally:
            self.leftovers = self._kill_leftovers()
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill_leftovers(self, grace: float = 10.0) -> list[int]:
        deadline = time.monotonic() + grace
        while (pids := processes_under(self.root)) and time.monotonic() < deadline:
            time.sleep(0.2)  # Ray's workers exit a moment after their raylet
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return pids


def reachable(address: str, timeout: float = 1.0) -> bool:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError:
        return False
    return True


__all__ = ["DATABASE", "LocalCluster", "RayHead", "processes_under", "ray_command", "reachable"]
