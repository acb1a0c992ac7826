"""Helpers shared by the tests. Real servers come from dspyops.launch (ServerThread: its
own event loop in a background thread, a free loopback port, real gRPC channels)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dspyops.launch import ServerThread

__all__ = ["DATA", "ServerThread", "serve_until_exit", "ticket_rows", "wait_until"]

DATA = Path(__file__).resolve().parents[2] / "dspyops" / "data"


def ticket_rows() -> list[dict[str, str]]:
    path = DATA / "support_tickets.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def health_of(address: str) -> int:
    """The server's overall health status (grpc.health.v1), asked over a channel of its own."""
    with grpc.insecure_channel(address) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # the generated stub is untyped
        return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def serve_until_exit(args: list[str], workdir: Path, timeout: float = 60.0) -> tuple[int | None, str]:
    """Run `python -m dspyops.cli serve ARGS` for a start that should be refused: returns
    (exit status, stderr). If the service starts instead (it writes its port file), it is
    stopped and the status is None."""
    port_file = workdir / f"refused-{time.monotonic_ns()}.port"
    process = subprocess.Popen(
        [sys.executable, "-m", "dspyops.cli", "serve", *args, "--port", "0", "--port-file", str(port_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    deadline = time.monotonic() + timeout
    status: int | None = None
    while time.monotonic() < deadline:
        status = process.poll()
        if status is not None or (port_file.exists() and port_file.read_text().strip()):
            break
        time.sleep(0.05)
    if status is None:
        process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return status, stderr
