"""PostgreSQL stopped under load (``pg_ctl stop -m immediate``) with both servers on the log:
commands fail UNAVAILABLE naming the log, reads keep serving from the servers' folded state
(a cache: nobody can append while the log's server is down), and once the server is back
both servers resume by themselves, with everything acknowledged before the stop still in the
log and the chain intact."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.eventlog import open_store
from dspyops.fold import fold
from dspyops.launch import ServiceProcess
from tests.support.harness import health_of, ticket_rows, wait_until
from tests.support.postgres import PostgresServer

ROWS = ticket_rows()
SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("local", ["local-files", "url-only"])
def test_commands_unavailable_while_postgres_is_down_then_resume(
    tmp_path: Path, private_postgres: PostgresServer, local: str
) -> None:
    """`local-files`: artifacts and records in local files; `url-only`: nothing but the URL,
    so the records, artifacts, snapshots and secret in the database come back too."""
    url = private_postgres.url()
    env = dict(os.environ)
    files = local == "local-files"
    data = ["--data-dir", str(tmp_path / "data")] if files else []
    records = ["--predictions", str(tmp_path / "records.db")] if files else []
    optimizer = ServiceProcess("optimizer", ["optimizer", "--log", url, *data], tmp_path, env)
    gateway = ServiceProcess(
        "gateway", ["gateway", "--log", url, *records, "--canary-interval", "0"], tmp_path, env
    )
    acknowledged: list[str] = []
    try:
        with OptimizerClient(optimizer.address, timeout=30) as opt, GatewayClient(gateway.address) as gw:
            list(
                opt.start_optimization(
                    "tickets", "text -> label", trainset=ROWS[:20], optimizer="LabeledFewShot"
                )
            )
            opt.create_deployment("web", "tickets")
            opt.set_routes("web", {"1.0.0": 1.0})
            assert wait_until(lambda: _routed(gw), timeout=60)

            stop = threading.Event()

            def commands() -> None:  # acknowledged alias changes, until the outage stops them
                i = 0
                while not stop.is_set():
                    try:
                        opt.set_alias("tickets", f"a{i}", "1.0.0")
                    except grpc.RpcError:
                        return
                    acknowledged.append(f"a{i}")
                    i += 1

            load = threading.Thread(target=commands)
            load.start()
            assert wait_until(lambda: len(acknowledged) >= 5, timeout=60)
            private_postgres.stop("immediate")  # returns once no connection is accepted
            stop.set()
            load.join(120)
            assert not load.is_alive(), "a command hung through the outage"

            try:
                opt.set_alias("tickets", "during", "1.0.0")
                raise AssertionError(_acknowledged_while_down(private_postgres, tmp_path, len(acknowledged)))
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
                assert "postgresql://" in (exc.details() or ""), exc.details()
            # reads keep serving from what each server has folded (nobody can append while
            # the log's server is down, so that is the newest state there is): the optimizer's
            # registry reads, and the gateway's Predict, whose records are kept locally here;
            # with the records in the database too (url-only) a Predict cannot be recorded
            gateway_log = tmp_path / "gateway.log"
            assert wait_until(lambda: "gateway_serving_through_outage" in gateway_log.read_text(), timeout=60)
            assert [v.version for v in opt.list_versions("tickets").versions] == ["1.0.0"]
            assert opt.get_deployment("web").routes[0].version == "1.0.0"
            assert health_of(gateway.address) == SERVING
            if files:
                assert _predict(gw) == "1.0.0"
            else:
                try:
                    _predict(gw)
                    raise AssertionError("a prediction was answered that could not be recorded")
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
            # what needs the log itself still says so
            try:
                opt.read_log(0, 10)
                raise AssertionError("ReadLog was answered without reaching the log")
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc

            private_postgres.start()
            assert wait_until(lambda: _alias_ok(opt), timeout=120, interval=0.5)
            assert wait_until(lambda: _serving(gw), timeout=120, interval=0.5)  # and serves again
            served = gw.predict("web", {"text": ROWS[1]["text"]})  # recorded (url-only: in the database)
            assert gw.record_outcome(served.prediction_id, 1.0).version == "1.0.0"
            assert gw.explain_prediction(served.prediction_id).recorded_version == "1.0.0"
        assert gateway.stop() == 0
    finally:
        gateway.stop()  # a failed test leaves no gateway behind (stopped already: its exit code again)
        assert optimizer.stop() == 0

    store = open_store(url)
    try:
        assert store.verify().ok
        aliases = fold(store.read(limit=100_000)).programs["tickets"].aliases
    finally:
        store.close()
    missing = [a for a in acknowledged if aliases.get(a) != "1.0.0"]
    assert acknowledged and not missing, missing
    assert aliases.get("after") == "1.0.0"


def _acknowledged_while_down(server: PostgresServer, tmp_path: Path, acknowledged: int) -> str:
    """What to look at when a command is acknowledged during the outage (seen twice in CI,
    never here): is the server back, and what did it and the optimizer log."""
    status = server.pg_ctl("status", check=False)
    server_log = (server.data_dir.parent / "server.log").read_text(errors="replace")[-2000:]
    optimizer_log = (tmp_path / "optimizer.log").read_text(errors="replace")[-3000:]
    return (
        f"a command was acknowledged while PostgreSQL was down ({acknowledged} before the stop); "
        f"reachable now: {server.reachable()}; pg_ctl status {status.returncode}: {status.stdout.strip()}\n"
        f"--- server.log\n{server_log}\n--- optimizer.log\n{optimizer_log}"
    )


def _routed(gw: GatewayClient) -> bool:
    """The gateway has folded the routes (NOT_FOUND until its tail reaches the deployment)."""
    try:
        return bool(gw.get_deployment_state("web").routes)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND, exc
        return False


def _predict(gw: GatewayClient) -> str:
    return gw.predict("web", {"text": ROWS[0]["text"]}).version


def _serving(gw: GatewayClient) -> bool:
    try:
        return _predict(gw) == "1.0.0"
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
        return False


def _alias_ok(opt: OptimizerClient) -> bool:
    try:
        opt.set_alias("tickets", "after", "1.0.0")
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
        return False
    return True
