"""A log deleted or replaced under running services: no write is acknowledged into the
unlinked file, the gateway stops reporting SERVING, and a restart does not quietly begin an
empty log beside the old artifacts, snapshots and prediction records (unless --create)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.eventlog import NewEvent, SQLiteEventStore
from dspyops.launch import ServiceProcess
from tests.support.harness import health_of, serve_until_exit, wait_until
from tests.support.logs import write_log

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def services(tmp: Path) -> tuple[ServiceProcess, ServiceProcess, list[str]]:
    log = tmp / "log.db"
    write_log(log)
    args = ["optimizer", "--log", str(log), "--data-dir", str(tmp / "data")]
    optimizer = ServiceProcess("optimizer", args, tmp, dict(os.environ))
    gateway = ServiceProcess(
        "gateway", ["gateway", "--log", str(log), "--canary-interval", "0"], tmp, dict(os.environ)
    )
    return optimizer, gateway, args


def test_a_deleted_log_is_noticed_and_never_silently_recreated(tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    optimizer, gateway, args = services(tmp_path)
    try:
        with OptimizerClient(optimizer.address) as opt, GatewayClient(gateway.address) as gw:
            opt.set_routes("web", {"1.0.0": 1.0})
            # the gateway tails the file: the optimizer's append reaches it a moment later
            assert wait_until(lambda: gw.get_deployment_state("web").log_position == 4, timeout=30)
            log.unlink()  # rm log.db (SQLite's -wal and -shm stay)
            with pytest.raises(grpc.RpcError) as err:
                opt.set_routes("web", {"1.0.0": 1.0}, reason="after the rm")
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert str(log) in err.value.details() and "removed" in err.value.details()
            assert not log.exists()  # and no empty log took its place
        assert wait_until(lambda: health_of(gateway.address) == NOT_SERVING, timeout=30)
    finally:
        gateway.stop()
        optimizer.stop()

    # A restart beside the snapshots, records and secret of the deleted log refuses ...
    status, stderr = serve_until_exit(args, tmp_path)
    assert status is not None, "the optimizer started an empty log beside the old one's files"
    assert status != 0 and str(log) in stderr and "--create" in stderr
    assert not log.exists()
    status, stderr = serve_until_exit(["gateway", "--log", str(log)], tmp_path)
    assert status is not None and status != 0 and "--create" in stderr
    # ... unless told to begin a new log.
    fresh = ServiceProcess("optimizer-new", [*args, "--create"], tmp_path, dict(os.environ))
    try:
        with OptimizerClient(fresh.address) as opt:
            assert opt.read_log(0, 10).head == 0
    finally:
        fresh.stop()


def test_a_replaced_log_is_refused_and_the_gateway_stops_serving(tmp_path: Path) -> None:
    log, other = tmp_path / "log.db", tmp_path / "other.db"
    write_log(other, extra=5)
    optimizer, gateway, _ = services(tmp_path)
    try:
        os.replace(other, log)  # another file now has the log's name
        with OptimizerClient(optimizer.address) as opt:
            with pytest.raises(grpc.RpcError) as err:
                opt.set_routes("web", {"1.0.0": 1.0})
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert str(log) in err.value.details() and "replaced" in err.value.details()
        assert wait_until(lambda: health_of(gateway.address) == NOT_SERVING, timeout=30)
    finally:
        gateway.stop()
        optimizer.stop()
    store = SQLiteEventStore(log, read_only=True)
    assert store.head() == 8 and store.verify().ok  # the new file got nothing of the old one's
    store.close()


def test_the_store_refuses_a_vanished_file_on_every_path(tmp_path: Path) -> None:
    """Appends and new connections (a thread's first use) both check the file; neither
    creates an empty log at the path."""
    log = tmp_path / "log.db"
    store = SQLiteEventStore(log)
    store.append("s", [NewEvent("t", b"x")], 0)
    log.unlink()
    with pytest.raises(Exception, match="removed") as err:
        store.append("s", [NewEvent("t", b"y")], 1)
    assert type(err.value).__name__ == "LogReplaced"
    errors: list[BaseException] = []

    def read_in_a_new_thread() -> None:
        try:
            store.head()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=read_in_a_new_thread)
    thread.start()
    thread.join(10)
    assert errors and "removed" in str(errors[0])
    assert not log.exists()
    assert store.read()[0].payload == b"x"  # this thread's connection still reads what it opened
    store.close()
    with pytest.raises(Exception, match="without --create"):
        SQLiteEventStore(log, create=False)
    assert not log.exists()
