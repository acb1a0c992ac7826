"""A gateway tailing a remote optimizer (--from-optimizer): its upstream credentials
(--upstream-*), its message limits, and honest health. It is NOT_SERVING until its first
catch-up is done and whenever it cannot make progress on its source, and then answers
Predict with UNAVAILABLE naming the reason (not "no routes"); back to SERVING once the
tail catches up again. Real optimizer and gateway servers, real TLS, a real SQLite log."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from dspyops.auth import hash_token
from dspyops.client import GatewayClient
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.launch import ServiceProcess
from dspyops.proto import events_pb2 as pb
from dspyops.rpc import MAX_MESSAGE_BYTES, Security
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, health_of, wait_until
from tests.support.logs import write_log
from tests.support.pki import make_pki

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
READER = "reader-token-1"


def predict_error(address: str) -> grpc.RpcError | None:
    with GatewayClient(address, timeout=10) as gw:
        try:
            gw.predict("web", {"text": "refund please"}, routing_key="user-1")
        except grpc.RpcError as exc:
            return exc
    return None


def remote_gateway(optimizer: str, tmp: Path, **upstream: str) -> ServerThread:
    config = GatewayConfig(optimizer=optimizer, predictions=str(tmp / "p.db"), canary_interval=0, **upstream)
    return ServerThread(lambda: start_gateway(config))


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, int]]:
    """An optimizer that requires client certificates and a reader token."""
    tmp = tmp_path_factory.mktemp("mtls")
    (tmp / "pki").mkdir()
    pki = make_pki(tmp / "pki")
    (pki / "tokens").write_text(f"{hash_token(READER)} reader gateway-reader\n")
    head = write_log(tmp / "log.db")
    security = Security(
        tokens_file=str(pki / "tokens"),
        tls_cert=str(pki / "server.crt"),
        tls_key=str(pki / "server.key"),
        tls_client_ca=str(pki / "ca.crt"),
    )
    optimizer = ServerThread(
        lambda: start_optimizer(
            OptimizerConfig(log=str(tmp / "log.db"), data_dir=tmp / "data", security=security)
        )
    )
    yield optimizer.address, pki, head
    optimizer.stop()


def serve_gateway(tmp: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    """`dspyops serve gateway ARGS` (real CLI parsing), and its address once it listens: not
    once it is SERVING, which a gateway that cannot reach its optimizer never is."""
    port_file = tmp / "gateway.port"
    env = dict(os.environ, DSPYOPS_LOG_LEVEL="info")
    env.pop("DSPYOPS_TOKEN", None)
    command = [sys.executable, "-m", "dspyops.cli", "serve", "gateway", *args]
    command += ["--predictions", str(tmp / "p.db"), "--canary-interval", "0"]
    command += ["--port", "0", "--port-file", str(port_file)]
    with open(tmp / "gateway.log", "wb") as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=env)
    assert wait_until(lambda: port_file.exists() and bool(port_file.read_text()), timeout=60)
    return process, f"127.0.0.1:{port_file.read_text()}"


def test_without_a_client_certificate_the_gateway_is_not_serving_and_says_why(
    mtls: tuple[str, Path, int], tmp_path: Path
) -> None:
    address, pki, _ = mtls
    process, gateway = serve_gateway(
        tmp_path,
        "--from-optimizer",
        address,
        "--upstream-tls-ca",
        str(pki / "ca.crt"),
        "--upstream-token",
        READER,
    )
    try:
        assert wait_until(lambda: "cannot follow" in str(predict_error(gateway)), timeout=30)
        error = predict_error(gateway)
        assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE, error
        assert address in error.details() and "UNAVAILABLE" in error.details(), error.details()
        assert "client certificate" in error.details(), error.details()  # the likely cause, named
        assert "no routes" not in error.details() and "no deployment" not in error.details()
        assert health_of(gateway) == NOT_SERVING
        time.sleep(2.0)  # several more failed attempts, all with the same reason
    finally:
        process.terminate()
        assert process.wait(60) == 0
    log = (tmp_path / "gateway.log").read_text()
    lines = [json.loads(line) for line in log.splitlines() if '"gateway_not_serving"' in line]
    assert len(lines) == 1, lines  # one line per change of reason, not one per retry
    assert "UNAVAILABLE" in lines[0]["reason"] and address in lines[0]["reason"]
    assert READER not in log


def test_without_a_token_the_reason_is_unauthenticated(mtls: tuple[str, Path, int], tmp_path: Path) -> None:
    address, pki, _ = mtls
    gateway = remote_gateway(
        address,
        tmp_path,
        upstream_tls_ca=str(pki / "ca.crt"),
        upstream_tls_cert=str(pki / "client.crt"),
        upstream_tls_key=str(pki / "client.key"),
    )
    try:
        assert wait_until(lambda: "UNAUTHENTICATED" in str(predict_error(gateway.address)), timeout=30)
        assert predict_error(gateway.address).code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[union-attr]
        assert health_of(gateway.address) == NOT_SERVING
    finally:
        gateway.stop()


def test_with_the_upstream_flags_the_cli_gateway_serves(mtls: tuple[str, Path, int], tmp_path: Path) -> None:
    address, pki, head = mtls
    args = ["gateway", "--from-optimizer", address, "--predictions", str(tmp_path / "p.db")]
    args += ["--canary-interval", "0", "--upstream-tls-ca", str(pki / "ca.crt")]
    args += ["--upstream-tls-cert", str(pki / "client.crt"), "--upstream-tls-key", str(pki / "client.key")]
    env = dict(os.environ, DSPYOPS_UPSTREAM_TOKEN=READER, DSPYOPS_LOG_LEVEL="info")
    env.pop("DSPYOPS_TOKEN", None)
    gateway = ServiceProcess("gateway", args, tmp_path, env)  # returns once health says SERVING
    try:
        with GatewayClient(gateway.address, timeout=10) as gw:
            assert gw.list_deployment_states().log_position == head  # SERVING means caught up
            response = gw.predict("web", {"text": "refund please"}, routing_key="user-1")
            assert response.version == "1.0.0" and response.outputs["label"]
    finally:
        assert gateway.stop() == 0
    log = (tmp_path / "gateway.log").read_text()
    assert READER not in log
    serving = [json.loads(line) for line in log.splitlines() if '"gateway_serving"' in line]
    assert serving and serving[0]["position"] == head, log[-2000:]


def test_the_cli_refuses_upstream_flags_without_a_remote_optimizer(tmp_path: Path) -> None:
    for before, extra, problem in [
        ([], ["--log", str(tmp_path / "log.db"), "--upstream-tls-ca", "ca.crt"], "--from-optimizer"),
        ([], ["--from-optimizer", "127.0.0.1:1", "--upstream-tls-cert", "c.crt"], "--upstream-tls-key"),
        (
            ["--tls-ca", "ca.crt"],
            ["--from-optimizer", "127.0.0.1:1"],
            "--upstream-tls-ca",
        ),  # no longer upstream's
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "dspyops.cli", *before, "serve", "gateway", *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0 and problem in done.stderr, (extra, done.stderr)


# ------------------------------------------------------------------ message sizes


def plain_optimizer(tmp: Path, port: int = 0) -> ServerThread:
    config = OptimizerConfig(log=str(tmp / "log.db"), data_dir=tmp / "data", port=port)
    return ServerThread(lambda: start_optimizer(config))


def test_an_event_over_grpcs_default_4_mb_is_caught_up(tmp_path: Path) -> None:
    head = write_log(tmp_path / "log.db", padding=5 * 1024 * 1024)
    store = open_store(str(tmp_path / "log.db"))
    sizes = [len(e.payload) for e in store.read(0, 100)]
    store.close()
    assert max(sizes) > 5 * 1024 * 1024  # one event past gRPC's default receive limit
    optimizer = plain_optimizer(tmp_path)
    gateway = remote_gateway(optimizer.address, tmp_path)
    try:
        with GatewayClient(gateway.address, timeout=10) as gw:
            assert wait_until(lambda: gw.list_deployment_states().log_position == head, timeout=60)
            assert health_of(gateway.address) == SERVING
            assert gw.predict("web", {"text": "refund please"}).version == "1.0.0"
    finally:
        gateway.stop()
        optimizer.stop()


def test_an_event_over_the_servers_limit_is_reported_not_served(tmp_path: Path) -> None:
    head = write_log(tmp_path / "log.db", padding=MAX_MESSAGE_BYTES + 1024)
    optimizer = plain_optimizer(tmp_path)
    gateway = remote_gateway(optimizer.address, tmp_path)
    try:
        # the optimizer refuses to stream an event no message can carry, naming its position
        assert wait_until(lambda: "position 2" in str(predict_error(gateway.address)), timeout=60)
        error = predict_error(gateway.address)
        assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
        details = error.details()
        assert "cannot follow" in details and "FAILED_PRECONDITION" in details, details
        assert health_of(gateway.address) == NOT_SERVING
        with GatewayClient(gateway.address, timeout=10) as gw:
            assert gw.list_deployment_states().log_position == 1 < head  # stopped before the big one
    finally:
        gateway.stop()
        optimizer.stop()


# ------------------------------------------------------------------ losing and regaining the source


def test_not_serving_while_the_optimizer_is_down_then_serving_once_caught_up(tmp_path: Path) -> None:
    head = write_log(tmp_path / "log.db")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    optimizer = plain_optimizer(tmp_path, port)
    gateway = remote_gateway(optimizer.address, tmp_path)
    try:
        with GatewayClient(gateway.address, timeout=10) as gw:
            assert wait_until(lambda: health_of(gateway.address) == SERVING, timeout=30)
            assert gw.list_deployment_states().log_position == head
            optimizer.stop()
            assert wait_until(lambda: health_of(gateway.address) == NOT_SERVING, timeout=30)
            error = predict_error(gateway.address)
            assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
            assert f"127.0.0.1:{port}" in error.details(), error.details()
            # more events while it is down: SERVING again only once it has them
            writer = open_store(str(tmp_path / "log.db"))
            routes = pb.RoutesSet(
                deployment="web", routes=[pb.Route(version="1.0.0", weight=1.0, role=pb.PRIMARY)]
            )
            writer.append("deployment-web", [new_event(routes) for _ in range(3)], None)
            new_head = writer.head()
            writer.close()
            optimizer = plain_optimizer(tmp_path, port)
            assert wait_until(lambda: health_of(gateway.address) == SERVING, timeout=30)
            assert gw.list_deployment_states().log_position == new_head
            assert gw.predict("web", {"text": "refund please"}).version == "1.0.0"
    finally:
        gateway.stop()
        optimizer.stop()


def test_an_optimizer_whose_log_ends_before_the_gateway_is_reported(tmp_path: Path) -> None:
    """The optimizer comes back with a shorter log (a restore, another file): the gateway
    does not serve its old state as if it were following; it says what it found."""
    head = write_log(tmp_path / "log.db")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    optimizer = plain_optimizer(tmp_path, port)
    gateway = remote_gateway(optimizer.address, tmp_path)
    try:
        assert wait_until(lambda: health_of(gateway.address) == SERVING, timeout=30)
        optimizer.stop()
        (tmp_path / "other").mkdir()
        writer = open_store(str(tmp_path / "other" / "log.db"))
        writer.append(
            "deployment-other", [new_event(pb.DeploymentCreated(deployment="other", program="p"))], 0
        )
        writer.close()
        optimizer = plain_optimizer(tmp_path / "other", port)
        assert wait_until(lambda: "before this gateway's" in str(predict_error(gateway.address)), timeout=30)
        error = predict_error(gateway.address)
        assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
        assert f"position 1, before this gateway's {head}" in error.details(), error.details()
        assert health_of(gateway.address) == NOT_SERVING
    finally:
        gateway.stop()
        optimizer.stop()
