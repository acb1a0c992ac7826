"""A log that cannot be written, through the real servers (subprocesses).

Disk full: each service's file-size limit (RLIMIT_FSIZE, set on the running process with
prlimit) is lowered to the current size of the log's WAL, so the next frame an append
writes fails with EFBIG, which SQLite reports as SQLITE_IOERR_WRITE, exactly what a full
disk does to the write that needs a new block. Smaller files (the gateway's prediction
records) still fit under the limit, so serving goes on while the log is stuck. Raising the
limit again is "space is back".

Read-only: the log file is made immutable (chattr +i, which also stops root; plain chmod
when the tests do not run as root) before the services start.

In both cases: every append RPC answers UNAVAILABLE naming the log and the cause (and no
secret), nothing is half-written (the chain verifies, positions are gapless, the head does
not move), reads go on, and the servers exit cleanly on SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.eventlog import StoredEvent, open_store
from dspyops.launch import ServiceProcess, ignore_sigxfsz
from dspyops.proto import events_pb2 as pb
from tests.support.harness import ticket_rows, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs Linux prlimit"),
]
ROWS = ticket_rows()[:12]
SECRET = "sk-test-must-never-leak-0123456789"
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


def service_env() -> dict[str, str]:
    # a key in the services' environment: it must not show up in any answer or log line
    return dict(os.environ, DSPYOPS_LOG_LEVEL="warning", OPENAI_API_KEY=SECRET)


def start(name: str, tmp: Path, log: Path, *extra: str) -> ServiceProcess:
    args = [name, "--log", str(log)]
    args += ["--data-dir", str(tmp / "data")] if name == "optimizer" else ["--canary-interval", "0"]
    return ServiceProcess(name, args + list(extra), tmp, service_env(), preexec_fn=ignore_sigxfsz)


def set_file_limit(pid: int, limit: int | None) -> None:
    """Lower (or, with None, lift) the soft RLIMIT_FSIZE of a running process; the hard
    limit stays, so no privilege is needed to lift it again."""
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard if limit is None else limit, hard))


def all_events(log: Path) -> list[StoredEvent]:
    store = open_store(str(log))
    try:
        verified = store.verify()
        assert verified.ok, verified.reason
        events = store.read(0, 100_000)
        assert [e.position for e in events] == list(range(1, len(events) + 1)), "positions have a gap"
        return events
    finally:
        store.close()


def populate(opt: OptimizerClient) -> tuple[int, int]:
    """Program `tickets` 1.0.0 and deployment `web` with routes set twice. Returns the
    positions of the two RoutesSet events (the first is a point to roll back to)."""
    events = list(
        opt.start_optimization("tickets", "text -> label", trainset=ROWS, optimizer="LabeledFewShot")
    )
    assert events[-1].WhichOneof("kind") == "completed"
    opt.create_deployment("web", "tickets")
    first = opt.set_routes("web", {"1.0.0": 1.0}, reason="first").log_position
    second = opt.set_routes("web", {"1.0.0": 1.0}, reason="second").log_position
    return first, second


def refused(call: object, log: Path, cause: str) -> str:
    with pytest.raises(grpc.RpcError) as err:
        call()  # type: ignore[operator]
    details = err.value.details() or ""
    assert err.value.code() == UNAVAILABLE, f"{err.value.code()}: {details}"
    assert str(log) in details and "cannot be written" in details, details
    assert re.search(cause, details, re.IGNORECASE), details
    assert SECRET not in details
    return details


def test_full_disk_refuses_appends_and_keeps_serving(tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    optimizer = start("optimizer", tmp_path, log)
    gateway: ServiceProcess | None = None
    try:
        with OptimizerClient(optimizer.address) as opt:
            first_routes, head = populate(opt)
            gateway = start("gateway", tmp_path, log)
            with GatewayClient(gateway.address) as gw:
                assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
                served = gw.predict("web", {"text": "my invoice is wrong"}, "user-1")
                jobs_before = len(opt.list_jobs().jobs)

                # the disk is "full" for the log: its WAL cannot grow by a single frame
                limit = (tmp_path / "log.db-wal").stat().st_size
                # what must still fit: records, service logs (not the jobs' LM cache beside the
                # log: it is best-effort, a write it cannot make only means a call is paid again)
                for path in tmp_path.iterdir():
                    log_files = ("log.db", "log.db-wal", "log.db-shm")
                    if path.is_file() and path.name not in log_files and ".lmcache." not in path.name:
                        assert path.stat().st_size < limit - 64 * 1024, (
                            f"{path.name} is too close to the limit"
                        )
                set_file_limit(optimizer.pid, limit)
                set_file_limit(gateway.pid, limit)

                cause = r"disk I/O error|disk is full|SQLITE_IOERR|SQLITE_FULL"
                message = refused(lambda: opt.create_deployment("web2", "tickets"), log, cause)
                refused(lambda: opt.set_routes("web", {"1.0.0": 1.0}, reason="while full"), log, cause)
                refused(lambda: opt.set_version_status("tickets", "1.0.0", pb.STAGING), log, cause)
                refused(lambda: opt.set_alias("tickets", "champion", "1.0.0"), log, cause)
                refused(
                    lambda: list(
                        opt.start_optimization(
                            "tickets", "text -> label", trainset=ROWS, optimizer="LabeledFewShot"
                        )
                    ),
                    log,
                    cause,
                )
                refused(lambda: gw.rollback("web", first_routes, reason="while full"), log, cause)

                # nothing moved, and reads go on
                assert opt.read_log(0, 1).head == head
                assert [e.position for e in opt.read_log(0, 1000).events] == list(range(1, head + 1))
                verified = opt.verify_log()
                assert verified.ok and verified.checked == head, verified
                assert [p.program for p in opt.list_programs().programs] == ["tickets"]
                assert opt.get_deployment("web").stream_version == 3
                assert len(opt.list_jobs().jobs) == jobs_before, "a refused job left a ghost behind"
                again = gw.predict("web", {"text": "my invoice is wrong"}, "user-1")
                assert again.version == served.version and again.log_position == head
                assert gw.explain_prediction(again.prediction_id).reproduced
                assert gw.get_deployment_state("web").log_position == head

                # space is back: the same processes append again
                set_file_limit(optimizer.pid, None)
                set_file_limit(gateway.pid, None)
                created = opt.create_deployment("web2", "tickets")
                assert created.log_position == head + 1
                rolled = gw.rollback("web", first_routes, reason="space is back")
                assert rolled.log_position == head + 2
                assert opt.read_log(0, 1).head == head + 2
        assert gateway.stop() == 0
        assert optimizer.stop() == 0
    finally:
        for service in (gateway, optimizer):
            if service is not None:
                service.stop()

    events = all_events(log)
    assert len(events) == head + 2
    assert [e.type.rsplit(".", 1)[-1] for e in events[head:]] == ["DeploymentCreated", "RolledBack"]
    assert len({e.stream for e in events if e.stream.startswith("job-")}) == 1, "the refused job was logged"
    for name in ("optimizer.log", "gateway.log"):
        assert SECRET not in (tmp_path / name).read_text()
    print(f"\nfull-disk refusal: {message}")


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """The file cannot be opened for writing, not even by root: chattr +i as root, a
    plain chmod otherwise. Skips the test where neither is possible."""
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode:
            pytest.skip("running as root and cannot make the log immutable (chattr +i)")
        try:
            yield
        finally:
            subprocess.run([chattr, "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(mode)


def test_read_only_log_serves_reads_and_refuses_appends(tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    optimizer = start("optimizer", tmp_path, log)
    with OptimizerClient(optimizer.address) as opt:
        first_routes, head = populate(opt)
    assert optimizer.stop() == 0

    protection = read_only(log)
    protection.__enter__()
    try:
        optimizer = start("optimizer", tmp_path, log)  # a read-only log still starts both
        gateway = start("gateway", tmp_path, log)
        with OptimizerClient(optimizer.address) as opt, GatewayClient(gateway.address) as gw:
            cause = r"read-?only"
            message = refused(lambda: opt.create_deployment("web2", "tickets"), log, cause)
            refused(lambda: opt.set_routes("web", {"1.0.0": 1.0}), log, cause)
            refused(lambda: gw.rollback("web", first_routes), log, cause)
            assert opt.read_log(0, 1).head == head
            assert opt.verify_log().ok
            assert opt.get_deployment("web").log_position == head
            assert [p.program for p in opt.list_programs().programs] == ["tickets"]
            assert wait_until(lambda: gw.list_deployment_states().log_position == head)
            prediction = gw.predict("web", {"text": "where is my parcel"}, "user-2")
            assert prediction.version == "1.0.0" and prediction.log_position == head
            assert gw.explain_prediction(prediction.prediction_id).reproduced
            assert len(all_events(log)) == head

            # writable again: the same processes append where the log left off, no restart
            protection.__exit__(None, None, None)
            protection = None
            assert opt.create_deployment("web2", "tickets").log_position == head + 1
            assert gw.rollback("web", first_routes).log_position == head + 2
        assert gateway.stop() == 0
        assert optimizer.stop() == 0
    finally:
        if protection is not None:
            protection.__exit__(None, None, None)
        gateway.stop()
        optimizer.stop()
    assert len(all_events(log)) == head + 2
    print(f"\nread-only refusal: {message}")
