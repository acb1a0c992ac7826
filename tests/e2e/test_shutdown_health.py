"""At SIGTERM both services tell health watchers NOT_SERVING and end their Watch streams,
so an open Watch neither shows SERVING until the port closes nor holds the drain for the
whole grace. Real `dspyops serve` subprocesses, a real Watch stream opened before SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dspyops.launch import ServiceProcess
from tests.support.harness import wait_until

pytestmark = pytest.mark.slow
GRACE = 600.0  # far longer than any wait below: exiting at all means the Watch did not hold the drain
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Watcher:
    """A Watch stream read on its own thread: every status it sent, and how it ended."""

    def __init__(self, address: str, service: str) -> None:
        self.channel = grpc.insecure_channel(address)
        stub = health_pb2_grpc.HealthStub(self.channel)
        self.call = stub.Watch(health_pb2.HealthCheckRequest(service=service))
        self.statuses: list[int] = []
        self.code: grpc.StatusCode | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for response in self.call:
                self.statuses.append(response.status)
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            self.code = exc.code()

    def close(self) -> None:
        self.call.cancel()
        self.channel.close()


def _serve(kind: str, tmp: Path) -> ServiceProcess:
    args = [kind, "--log", str(tmp / "log.db"), "--grace", str(GRACE)]
    if kind == "optimizer":
        args += ["--data-dir", str(tmp / "data")]
    else:
        args += ["--canary-interval", "0"]
    return ServiceProcess(kind, args, tmp, dict(os.environ, DSPYOPS_LOG_LEVEL="info"))


@pytest.mark.parametrize(
    ("kind", "service"),
    [("optimizer", "dspyops.v1.Optimizer"), ("gateway", "dspyops.v1.Gateway"), ("gateway", "")],
)
def test_sigterm_sends_not_serving_to_watchers_and_ends_their_streams(
    tmp_path: Path, kind: str, service: str
) -> None:
    if kind == "gateway":  # a gateway on --log needs the log to exist
        _serve("optimizer", tmp_path).stop()
    process = _serve(kind, tmp_path)
    watcher = Watcher(process.address, service)
    try:
        assert wait_until(lambda: watcher.statuses == [SERVING], timeout=30), watcher.statuses
        process.process.send_signal(signal.SIGTERM)
        try:
            code = process.process.wait(120)
        except subprocess.TimeoutExpired:
            code = None
        watcher.thread.join(30)
        assert watcher.statuses == [SERVING, NOT_SERVING], watcher.statuses
        # the server ended the stream itself (OK), not stop() cutting it at the end of the grace
        assert watcher.code == grpc.StatusCode.OK, watcher.code
        assert code == 0, f"{kind} exit code {code} (None: still draining); see {tmp_path / (kind + '.log')}"
    finally:
        watcher.close()
        process.stop()
    assert f"{kind}_draining" in (tmp_path / f"{kind}.log").read_text()
