"""WatchJob on any replica: two real optimizer processes on one PostgreSQL log. A job runs on
A (held mid-run by a metric that waits on a file: tests/support/held_metric.py); B, which
does not run it, streams its logged events as A appends them (B follows the log, woken by
LISTEN/NOTIFY), with stream versions that are the log's, and ends with the terminal event.
A watch resumed with after_stream_version, on either replica, gets only later events; the
client and the CLI with several targets go on at B when A goes away."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from dspyops.client import OptimizerClient
from dspyops.eventlog import open_store
from dspyops.events import decode
from dspyops.launch import ServiceProcess
from dspyops.names import job_stream
from optimizer_svc.jobs.follow import KIND_OF
from tests.support.collector import Collector
from tests.support.harness import ticket_rows, wait_until
from tests.support.held_metric import HOLD_ENV, NAME

pytestmark = pytest.mark.slow
ROWS = ticket_rows()
WAIT = 120.0  # bounds, not expectations: two processes and a database on a shared machine


@dataclass
class Replicas:
    a: ServiceProcess
    b: ServiceProcess
    url: str
    hold: Path  # while it exists, the job's metric waits: the job stays running
    env: dict[str, str]
    workdir: Path
    started: list[ServiceProcess] = field(default_factory=list)

    def start(self, name: str) -> ServiceProcess:
        args = ["optimizer", "--log", self.url, "--data-dir", str(self.workdir / "data")]
        process = ServiceProcess(name, args, self.workdir, self.env)
        self.started.append(process)
        return process

    def logged(self, job_id: str) -> list[tuple[int, str]]:
        """The job's streamed events as the log has them: (version, kind)."""
        store = open_store(self.url, create=False)
        try:
            records = store.read_stream(job_stream(job_id))
        finally:
            store.close()
        kinds = [(r.version, KIND_OF.get(type(decode(r)).__name__)) for r in records]
        return [(version, kind) for version, kind in kinds if kind is not None]


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str) -> Iterator[Replicas]:
    env = dict(os.environ, DSPYOPS_METRIC_MODULES="tests.support.held_metric")
    hold = tmp_path / "hold"
    env[HOLD_ENV] = str(hold)
    both = Replicas(None, None, postgres_url, hold, env, tmp_path)  # type: ignore[arg-type]
    try:
        # both started before the job: a replica's start does not touch it
        both.a, both.b = both.start("optimizer-a"), both.start("optimizer-b")
        yield both
    finally:
        hold.unlink(missing_ok=True)
        for process in both.started:
            process.stop()


def start_held_job(replicas: Replicas) -> str:
    """A job on A, held in its baseline evaluation (JobAccepted and JobStarted logged)."""
    replicas.hold.touch()
    with OptimizerClient(replicas.a.address) as opt:
        stream = opt.start_optimization(
            "tickets",
            "text -> label",
            trainset=ROWS[:20],
            valset=ROWS[20:30],
            optimizer="LabeledFewShot",
            params={"k": 4},
            metric=NAME,
        )
        job_id = next(iter(stream)).job_id
        stream.cancel()  # type: ignore[attr-defined]  # the call's iterator; the job goes on
    return job_id


def test_a_replica_that_does_not_run_the_job_streams_it_from_the_log(replicas: Replicas) -> None:
    job_id = start_held_job(replicas)
    with OptimizerClient(replicas.b.address) as b, OptimizerClient(replicas.a.address) as a:
        watch = Collector(b.watch_job(job_id))
        started = ["accepted", "claimed", "started"]
        assert wait_until(lambda: watch.kinds()[:3] == started, WAIT), watch.kinds()
        # the job is held: what B streamed so far, it streamed live, not from an ended log
        assert replicas.logged(job_id) == [(1, "accepted"), (2, "claimed"), (3, "started")]
        assert not watch.thread.is_alive() or watch.kinds() == started
        replicas.hold.unlink()
        watch.finish(WAIT)
        logged = replicas.logged(job_id)
        assert logged[-1][1] == "completed"
        assert watch.logged() == logged  # every logged event, each with the log's version
        assert [e.sequence for e in watch.seen] == list(range(1, len(watch.seen) + 1))

        # a resume after version 3, on either replica: only later events
        later = [entry for entry in logged if entry[0] > 3]
        assert [
            (e.stream_version, e.WhichOneof("kind")) for e in b.watch_job(job_id, after_stream_version=3)
        ] == later
        from_owner = Collector(a.watch_job(job_id, after_stream_version=3))
        from_owner.finish(WAIT)
        assert from_owner.logged() == later  # the owner also streamed its progress ticks
        assert all(e.stream_version > 3 for e in from_owner.seen)
        # a position no replica ever streamed
        with pytest.raises(grpc.RpcError) as refused:
            list(b.watch_job(job_id, after_stream_version=logged[-1][0] + 1))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "after_stream_version" in (refused.value.details() or "")

    # the CLI with a replica that is gone first: it goes on at the next
    gone = _unused_address()
    cli = subprocess.run(
        [sys.executable, "-m", "dspyops.cli", "--optimizer", gone, "--optimizer", replicas.b.address,
         "jobs", "watch", job_id, "--json"],
        capture_output=True, text=True, timeout=WAIT, env=replicas.env,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    printed = [json.loads(line) for line in cli.stdout.splitlines()]
    assert [int(e.get("stream_version", 0)) for e in printed] == [version for version, _ in logged]


def test_a_watch_goes_on_at_another_replica_when_its_server_goes_away(replicas: Replicas) -> None:
    job_id = start_held_job(replicas)
    with OptimizerClient(replicas.a.address) as a:
        watch = Collector(a.watch_job(job_id, targets=[replicas.b.address]))
        assert wait_until(lambda: "started" in watch.kinds(), WAIT), watch.kinds()
        # A goes away with the job running (a graceful stop would first end the job on A
        # and stream that from A: here the stream itself must break)
        replicas.a.process.kill()
        replicas.a.process.wait(WAIT)
        replicas.hold.unlink()
        # what ends the job: today a replica's start interrupts the jobs the log has running
        # (interrupt_orphans); with job claims, the lease keeper after the lease expires
        replicas.start("optimizer-c")
        watch.finish(WAIT)
    logged = replicas.logged(job_id)
    assert logged[-1][1] in ("interrupted", "completed"), logged
    # through A then B: every logged event once, in the log's order, the terminal one last
    assert watch.logged() == logged
    assert watch.kinds()[-1] == logged[-1][1]


def _unused_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"
