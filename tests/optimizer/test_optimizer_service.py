"""optimizer_svc end to end: a real server on loopback, a real client, a real SQLite log."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dspyops.client import OptimizerClient
from dspyops.eventlog import open_store
from dspyops.proto import events_pb2 as pb
from optimizer_svc.jobs.ray_executor import RayExecutor
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, ticket_rows
from tests.support.ray_cluster import EXECUTORS

ROWS = ticket_rows()
TRAIN, VAL = ROWS[:30], ROWS[30:50]


@pytest.fixture()
def server(tmp_path: Path, executor: str) -> Iterator[ServerThread]:
    # `executor`: "thread", or each of EXECUTORS for the tests parametrized over it
    config = OptimizerConfig(log=str(tmp_path / "log.db"), data_dir=tmp_path / "data", executor=executor)
    thread = ServerThread(lambda: start(config))
    yield thread
    thread.stop()


@pytest.fixture()
def opt(server: ServerThread) -> Iterator[OptimizerClient]:
    with OptimizerClient(server.address) as client:
        yield client


def kinds(events: list) -> list[str]:
    return [e.WhichOneof("kind") for e in events]


def run(
    opt: OptimizerClient, optimizer: str = "LabeledFewShot", params: dict | None = None, **kw: object
) -> list:
    return list(
        opt.start_optimization(
            "tickets",
            "text -> label",
            trainset=TRAIN,
            valset=VAL,
            optimizer=optimizer,
            params=params or {},
            **kw,
        )
    )


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_bootstrap_job_streams_events_and_registers_a_version(
    opt: OptimizerClient, server: ServerThread, executor: str
) -> None:
    events = run(opt, "BootstrapFewShot", {"max_bootstrapped_demos": 4, "max_labeled_demos": 8})
    assert server.running.jobs.executor.name == executor
    if executor == "ray":  # the job ran in a Ray worker process, and streamed back from there
        ray_executor = server.running.jobs.executor
        assert isinstance(ray_executor, RayExecutor)
        placed = ray_executor.placed[events[0].job_id]
        assert placed.pid != os.getpid()
    names = kinds(events)
    assert names[:4] == ["accepted", "claimed", "started", "baseline"]
    assert names[-1] == "completed"
    assert "trial" in names and "progress" in names
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    done = events[-1].completed
    assert done.version == "1.0.0"
    assert done.final_score > done.baseline_score
    assert done.improvement == pytest.approx(done.final_score - done.baseline_score)
    assert done.usage.lm_calls > 0

    version = opt.get_version("tickets", "1.0.0")
    assert version.status == pb.DEVELOPMENT
    assert version.lineage.job_id == events[0].job_id
    assert version.lineage.optimizer == "BootstrapFewShot"
    assert version.lineage.trainset_size == len(TRAIN) and len(version.lineage.trainset_digest) == 64
    assert version.lineage.final_score == pytest.approx(done.final_score)
    assert version.lineage.dspy_version
    assert len(version.artifact_digest) == 64

    job = opt.get_job(events[0].job_id)
    assert job.version == "1.0.0" and job.trials >= 1

    log = opt.read_log(0, 1000).events
    types = [e.type.rsplit(".", 1)[1] for e in log]
    assert types[0] == "JobAccepted" and "VersionRegistered" in types and types[-1] == "JobCompleted"
    assert all(
        e.stream == f"job-{events[0].job_id}"
        for e in log
        if e.type.endswith(("JobAccepted", "TrialCompleted"))
    )
    assert [e.position for e in log] == list(range(1, len(log) + 1))
    assert opt.verify_log().ok


def test_second_optimization_bumps_minor_and_a_new_signature_bumps_major(opt: OptimizerClient) -> None:
    run(opt)
    run(opt, params={"k": 8})  # another artifact (the same job again would name 1.0.0)
    other = list(
        opt.start_optimization(
            "tickets",
            "text, channel -> label",
            trainset=[dict(r, channel="email") for r in TRAIN],
            optimizer="LabeledFewShot",
        )
    )
    assert other[-1].completed.version == "2.0.0"
    assert [v.version for v in opt.list_versions("tickets").versions] == ["1.0.0", "1.1.0", "2.0.0"]


def test_watch_job_replays_what_was_missed(opt: OptimizerClient) -> None:
    events = run(opt)
    replay = list(opt.watch_job(events[0].job_id, after_sequence=2))
    assert [e.sequence for e in replay] == [e.sequence for e in events[2:]]
    assert kinds(replay) == kinds(events[2:])


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_watch_job_attaches_to_a_running_job(opt: OptimizerClient) -> None:
    params = {"num_candidate_programs": 6, "max_bootstrapped_demos": 2, "max_labeled_demos": 4}
    stream = opt.start_optimization(
        "tickets",
        "text -> label",
        trainset=TRAIN,
        valset=VAL,
        optimizer="BootstrapFewShotWithRandomSearch",
        params=params,
    )
    first = next(stream)
    watched = list(opt.watch_job(first.job_id, after_sequence=0))  # attaches while the job runs
    original = [first, *stream]
    assert [e.sequence for e in watched] == [e.sequence for e in original]
    assert kinds(watched) == kinds(original) and kinds(watched)[-1] == "completed"


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_cancel_stops_a_running_job_and_registers_nothing(opt: OptimizerClient, server: ServerThread) -> None:
    params = {"num_candidate_programs": 16, "max_bootstrapped_demos": 2, "max_labeled_demos": 4}
    stream = opt.start_optimization(
        "tickets",
        "text -> label",
        trainset=TRAIN,
        valset=VAL,
        optimizer="BootstrapFewShotWithRandomSearch",
        params=params,
    )
    seen = []
    for event in stream:
        seen.append(event)
        if (
            event.WhichOneof("kind") == "trial"
            and len([e for e in seen if e.WhichOneof("kind") == "trial"]) == 1
        ):
            opt.cancel_job(event.job_id, "test cancels after the first trial")
    assert kinds(seen)[-1] == "cancelled"
    assert "test cancels" in seen[-1].cancelled.reason
    assert opt.get_job(seen[0].job_id).state == 5  # CANCELLED
    with pytest.raises(grpc.RpcError) as err:
        opt.cancel_job(seen[0].job_id)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "ended already" in err.value.details()
    assert opt.list_programs().programs == []
    types = [e.type for e in opt.read_log(0, 1000).events]
    assert types[-1] == "dspyops.v1.JobCancelled" and "dspyops.v1.VersionRegistered" not in types


def test_jobs_run_concurrently_without_blocking_other_rpcs(opt: OptimizerClient) -> None:
    results: dict[int, list] = {}

    def job(i: int) -> None:
        with OptimizerClient(opt.address) as own:
            results[i] = list(
                own.start_optimization(
                    "tickets",
                    "text -> label",
                    trainset=TRAIN,
                    valset=VAL,
                    optimizer="BootstrapFewShot",
                    # a labeled demo more each: three artifacts, three versions
                    params={"max_bootstrapped_demos": 2, "max_labeled_demos": 4 + i},
                )
            )

    threads = [threading.Thread(target=job, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    answered = 0
    while any(t.is_alive() for t in threads):
        opt.list_programs()
        opt.read_log(0, 10)
        answered += 1
    for t in threads:
        t.join()
    assert answered > 0
    assert sorted(r[-1].completed.version for r in results.values()) == ["1.0.0", "1.1.0", "1.2.0"]


def test_registry_status_alias_and_deployment_commands(opt: OptimizerClient) -> None:
    run(opt)
    run(opt, params={"k": 8})
    assert opt.set_version_status("tickets", "1.0.0", "production").status == pb.PRODUCTION
    promoted = opt.set_version_status("tickets", "1.1.0", "production", reason="better")
    assert promoted.status == pb.PRODUCTION
    assert opt.get_version("tickets", "1.0.0").status == pb.DEPRECATED
    info = opt.set_alias("tickets", "@champion", "1.1.0")
    assert info.aliases["champion"] == "1.1.0" and info.production_version == "1.1.0"
    assert opt.get_version("tickets", "@champion").version == "1.1.0"

    deployment = opt.create_deployment("web", "tickets")
    assert [(r.version, r.weight) for r in deployment.routes] == [("1.1.0", 1.0)]
    updated = opt.set_routes(
        "web", {"1.0.0": 0.1, "@champion": 0.9}, expected_version=deployment.stream_version
    )
    assert [(r.version, r.weight) for r in updated.routes] == [("1.0.0", 0.1), ("1.1.0", 0.9)]

    head = opt.read_log(0, 1).head
    with pytest.raises(grpc.RpcError) as err:
        opt.set_routes("web", {"1.0.0": 1.0}, expected_version=deployment.stream_version)
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert f"is at version {updated.stream_version}, not {deployment.stream_version}" in err.value.details()
    assert opt.read_log(0, 1).head == head


def test_interrupted_jobs_are_recorded_on_restart(tmp_path: Path) -> None:
    from dspyops.events import new_event

    store = open_store(str(tmp_path / "log.db"))
    store.append(
        "job-deadbeef",
        [new_event(pb.JobAccepted(job_id="deadbeef", program="tickets", optimizer="MIPROv2"))],
        0,
    )
    store.close()
    config = OptimizerConfig(log=str(tmp_path / "log.db"), data_dir=tmp_path / "data")
    thread = ServerThread(lambda: start(config))
    try:
        with OptimizerClient(thread.address) as client:
            job = client.get_job("deadbeef")
            assert job.state == 6  # INTERRUPTED
            assert kinds(list(client.watch_job("deadbeef")))[-1] == "interrupted"
    finally:
        thread.stop()


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_jobs_take_allowlisted_custom_metrics_only(
    opt: OptimizerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setenv("DSPYOPS_METRIC_MODULES", "tests.support.metric_plugins")
    events = run(opt, metric="tests.support.metric_plugins:half")
    assert events[-1].completed.final_score == pytest.approx(0.5)
    assert (
        opt.get_version("tickets", events[-1].completed.version).lineage.metric
        == "tests.support.metric_plugins:half"
    )
    head = opt.read_log(0, 1).head
    with pytest.raises(grpc.RpcError) as err:
        run(opt, metric="tests.support.metric_not_allowed:anything")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "metric" in err.value.details()
    assert "tests.support.metric_not_allowed" not in sys.modules
    assert opt.read_log(0, 1).head == head
