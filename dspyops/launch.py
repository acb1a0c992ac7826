"""Running the services from Python: in-process on a background event loop
(`ServerThread`, for tests and benchmarks), or as `python -m optimizer_svc|gateway_svc`
subprocesses (`ServiceProcess`, for the demo and the fault tests) that are ready once they
answer health checks. The kernel names the services' modules here; it never imports them."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Final, Generic, Protocol, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

#: what `dspyops serve NAME` and ServiceProcess run: `python -m MODULE`
SERVICE_MODULES: Final = {"optimizer": "optimizer_svc", "gateway": "gateway_svc"}


class Running(Protocol):
    """What a service's start() returns (RunningOptimizer, RunningGateway)."""

    @property
    def address(self) -> str: ...

    async def stop(self, grace: float = ...) -> None: ...


R = TypeVar("R", bound=Running)


class ServerThread(Generic[R]):
    """A server started by `start()` (optimizer_svc.server.start, gateway_svc.server.start)
    on its own event loop in a daemon thread; reached only through real channels.
    `running` is what start() returned (RunningOptimizer, RunningGateway)."""

    def __init__(self, start: Callable[[], Coroutine[Any, Any, R]], timeout: float = 120.0) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="dspyops-server", daemon=True)
        self.thread.start()
        self.running = asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout)

    @property
    def address(self) -> str:
        return self.running.address

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.running.stop(1.0), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def ignore_sigxfsz() -> None:
    """A `preexec_fn`: a write past RLIMIT_FSIZE then fails with EFBIG (which SQLite reports
    as an I/O error) instead of killing the process with SIGXFSZ. CPython ignores SIGXFSZ
    at startup too; this makes it explicit and covers the moments before."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


class ServiceProcess:
    """A service started with `python -m optimizer_svc|gateway_svc ...` (`args`: the service's
    name, then its flags, as `dspyops serve` takes them), stopped with SIGTERM.

    `preexec_fn` runs in the child before exec (fault tests use it to change signal
    dispositions or resource limits, e.g. `ignore_sigxfsz`); `cwd`: its working directory
    (default: this process's)."""

    def __init__(
        self,
        name: str,
        args: list[str],
        workdir: Path,
        env: dict[str, str],
        preexec_fn: Callable[[], None] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.port_file = workdir / f"{name}.port"
        self.port_file.unlink(missing_ok=True)  # a restart must not read the last run's port
        self.stderr = open(workdir / f"{name}.log", "a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                SERVICE_MODULES[args[0]],
                *args[1:],
                "--port",
                "0",
                "--port-file",
                str(self.port_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            env=env,
            preexec_fn=preexec_fn,
            cwd=cwd,
        )
        self.address = f"127.0.0.1:{self._wait_port()}"
        self._wait_serving()

    def _wait_port(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; see {self.stderr.name}"
                )
            if self.port_file.exists() and self.port_file.read_text().strip():
                return int(self.port_file.read_text())
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not start within {timeout}s")

    def _wait_serving(self, timeout: float = 30.0) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)  # the generated stub is untyped
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                with contextlib.suppress(grpc.RpcError):
                    if (
                        stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                        == health_pb2.HealthCheckResponse.SERVING
                    ):
                        return
                time.sleep(0.05)
        raise TimeoutError(f"{self.name} is not SERVING after {timeout}s")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stderr.close()
        return self.process.returncode
