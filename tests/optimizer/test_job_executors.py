"""What the executors must agree on beyond the parametrized job tests (test_optimizer_service,
test_gates_budgets, test_programs_served, test_retrieval_programs): a failing job, a job the
optimizer stops on shutdown, and, on Ray only, a task lost with its worker and the
optimizer's --executor/--ray-address flags in a real process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import ray

from dspyops.client import OptimizerClient, examples
from dspyops.eventlog import open_store
from dspyops.launch import ServiceProcess
from dspyops.lm import LMConfig
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.jobs.ray_executor import RayExecutor
from optimizer_svc.jobs.ray_task import task_job
from optimizer_svc.jobs.requests import validate_start
from optimizer_svc.jobs.runner import JobSpec
from optimizer_svc.server import OptimizerConfig, start
from optimizer_svc.wire import spec_from_proto
from tests.support.connections import AMBIENT, FAKE_KEY, PLANTED, connections_file, job, optimizer_thread
from tests.support.fake_provider import FakeProvider
from tests.support.harness import ServerThread, serve_until_exit, ticket_rows, wait_until
from tests.support.ray_cluster import EXECUTORS

ROWS = ticket_rows()
TRAIN, VAL = ROWS[:30], ROWS[30:50]
SLOW_MS = 50  # per offline LM call: a job that certainly outlasts what the test does meanwhile


@pytest.fixture()
def server(tmp_path: Path, executor: str) -> Iterator[ServerThread]:
    config = OptimizerConfig(log=str(tmp_path / "log.db"), data_dir=tmp_path / "data", executor=executor)
    thread = ServerThread(lambda: start(config))
    yield thread
    thread.stop()


def kinds(events: list[opb.OptimizationEvent]) -> list[str]:
    return [str(e.WhichOneof("kind")) for e in events]


def slow_job(server: ServerThread, candidates: int = 16, max_attempts: int = 0) -> str:
    """A long job (every LM call sleeps SLOW_MS: server-side configuration of the offline
    engine, which the proto has no field for), submitted to the real server; its id."""
    request = opb.StartOptimizationRequest(
        program="tickets",
        spec=pb.ProgramSpec(module="Predict", signature="text -> label"),
        optimizer="BootstrapFewShotWithRandomSearch",
        metric="exact_match",
        trainset=examples(TRAIN),
        valset=examples(VAL),
        max_attempts=max_attempts,
    )
    request.params.update({"num_candidate_programs": candidates, "num_threads": 1})
    job = replace(validate_start(request), lm=LMConfig(latency_ms=SLOW_MS))
    return server.running.jobs.submit(job).job_id


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_a_failing_job_is_failed_on_the_record_with_the_same_error(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the allowlist is the optimizer's, read when the job is handed over: the Ray worker
    # (started before this variable was set) gets it with the job
    monkeypatch.setenv("DSPYOPS_METRIC_MODULES", "tests.support.metric_plugins")
    with OptimizerClient(server.address) as opt:
        events = list(
            opt.start_optimization(
                "tickets",
                "text -> label",
                trainset=TRAIN,
                valset=VAL,
                optimizer="LabeledFewShot",
                metric="tests.support.metric_plugins:explode",
            )
        )
        assert kinds(events)[:3] == ["accepted", "claimed", "started"] and kinds(events)[-1] == "failed"
        error = events[-1].failed.error
        # DSPy's Evaluate gives up after too many metric errors: its error, word for word, on
        # either executor (nothing of Ray's wrapping)
        assert error == "Exception: Execution cancelled due to errors or interruption."
        assert events[-1].failed.usage.lm_calls > 0  # what the failed job spent is on the record
        job = opt.get_job(events[0].job_id)
        assert job.state == opb.FAILED and job.error == error
        logged = opt.read_log(0, 100, f"job-{events[0].job_id}").events
        assert logged[-1].type == "dspyops.v1.JobFailed"
        assert opt.list_programs().programs == []


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_a_job_running_at_shutdown_is_released_and_the_next_start_runs_it(
    tmp_path: Path, executor: str
) -> None:
    config = OptimizerConfig(log=str(tmp_path / "log.db"), data_dir=tmp_path / "data", executor=executor)
    thread = ServerThread(lambda: start(config))
    job_id = slow_job(thread)
    handle = thread.running.jobs.get(job_id)
    assert wait_until(lambda: "baseline" in kinds(handle.events), timeout=120)
    thread.stop()  # the optimizer's drain: the job is stopped (ray.cancel on Ray), and given back
    ended = {"completed", "failed", "cancelled", "interrupted"}
    assert handle.done and not ended & set(kinds(handle.events))  # no end: the job is not over
    store = open_store(str(tmp_path / "log.db"))
    try:
        assert store.read_stream(f"job-{job_id}")[-1].type == "dspyops.v1.JobLeaseReleased"
    finally:
        store.close()
    again = ServerThread(lambda: start(config))  # the next start claims it again (attempt 1 still)
    try:
        with OptimizerClient(again.address) as opt:
            assert kinds(list(opt.watch_job(job_id)))[-1] == "completed"
            job = opt.get_job(job_id)
            assert job.state == opb.SUCCEEDED and (job.attempt, job.max_attempts) == (1, 1)
    finally:
        again.stop()


@pytest.mark.parametrize("executor", ["ray"], indirect=True)
def test_a_task_lost_with_its_worker_fails_the_job_naming_why(server: ServerThread) -> None:
    executor = server.running.jobs.executor
    assert isinstance(executor, RayExecutor)
    job_id = slow_job(server)
    assert wait_until(lambda: job_id in executor.placed, timeout=120)
    placed = executor.placed[job_id]
    assert placed.pid != os.getpid()
    handle = server.running.jobs.get(job_id)
    assert wait_until(lambda: "baseline" in kinds(handle.events), timeout=120)
    os.kill(placed.pid, signal.SIGKILL)  # the worker dies mid-job, as with its node

    with OptimizerClient(server.address) as opt:
        events = list(opt.watch_job(job_id))
        assert kinds(events)[-1] == "failed"
        error = events[-1].failed.error
        assert "the Ray task running the job was lost" in error and f"pid {placed.pid}" in error
        assert "WorkerCrashedError" in error and "(attempt 1 of 1)" in error  # nothing left to retry
        assert "retried" not in kinds(events)
        assert opt.get_job(job_id).state == opb.FAILED
        assert opt.read_log(0, 1000, f"job-{job_id}").events[-1].type == "dspyops.v1.JobFailed"
        # Ray starts another worker: the next job runs
        after = list(
            opt.start_optimization("tickets", "text -> label", trainset=TRAIN, optimizer="LabeledFewShot")
        )
        assert kinds(after)[-1] == "completed" and executor.placed[after[0].job_id].pid != placed.pid
        assert opt.verify_log().ok


@pytest.mark.parametrize("executor", ["ray"], indirect=True)
def test_a_task_lost_with_its_worker_is_retried_like_a_crashed_replicas_job(server: ServerThread) -> None:
    """With attempts left, the owner takes the job again itself ([JobRetried, JobClaimed],
    fenced): the next attempt runs on a new worker and replays from the job's LM cache the
    calls the lost one paid for."""
    executor = server.running.jobs.executor
    assert isinstance(executor, RayExecutor)
    job_id = slow_job(server, candidates=2, max_attempts=2)
    assert wait_until(lambda: job_id in executor.placed, timeout=120)
    placed = executor.placed[job_id]
    handle = server.running.jobs.get(job_id)
    assert wait_until(lambda: "baseline" in kinds(handle.events), timeout=120)
    os.kill(placed.pid, signal.SIGKILL)

    with OptimizerClient(server.address) as opt:
        events = list(opt.watch_job(job_id))  # one stream, across the retry
        seen = kinds(events)
        assert seen[-1] == "completed", events[-1]
        retry = seen.index("retried")
        assert seen[retry + 1] == "claimed" and "baseline" in seen[:retry] and "baseline" in seen[retry:]
        retried = events[retry].retried
        assert retried.attempt == 2 and retried.lost_owner == server.running.jobs.owner
        assert (
            "the Ray task running the job was lost" in retried.reason
            and f"pid {placed.pid}" in retried.reason
        )
        assert events[retry + 1].claimed.attempt == 2
        assert executor.placed[job_id].pid != placed.pid  # a new worker ran attempt 2
        usage = events[-1].completed.usage
        assert usage.replayed_lm_calls > 0  # what attempt 1 paid for, answered from the cache
        job = opt.get_job(job_id)
        assert job.state == opb.SUCCEEDED and (job.attempt, job.max_attempts) == (2, 2)
        logged = [e.type.removeprefix("dspyops.v1.") for e in opt.read_log(0, 1000, f"job-{job_id}").events]
        assert logged.count("JobRetried") == 1 and logged.count("JobClaimed") == 2
        assert logged[-1] == "JobCompleted"
        assert opt.verify_log().ok


def test_the_optimizer_process_runs_jobs_on_a_ray_cluster_by_its_flags(
    tmp_path: Path, ray_cluster: str
) -> None:
    """`python -m optimizer_svc --executor ray --ray-address <the session's cluster>`: a
    second Ray driver, whose jobs run on the cluster's workers."""
    args = ["optimizer", "--log", str(tmp_path / "log.db"), "--data-dir", str(tmp_path / "data")]
    args += ["--executor", "ray", "--ray-address", ray_cluster, "--ray-job-cpus", "0.5"]
    env = dict(os.environ, DSPYOPS_LOG_LEVEL="info")  # its log names where each job ran
    service = ServiceProcess("optimizer", args, tmp_path, env)
    try:
        with OptimizerClient(service.address, timeout=120) as opt:
            events = list(
                opt.start_optimization(
                    "tickets", "text -> label", trainset=TRAIN, valset=VAL, optimizer="LabeledFewShot"
                )
            )
            assert kinds(events)[-1] == "completed", events[-1]
            assert opt.get_version("tickets", events[-1].completed.version).lineage.job_id == events[0].job_id
    finally:
        service.stop()
    lines = [
        json.loads(line)
        for line in (tmp_path / "optimizer.log").read_text().splitlines()
        if '"job_on_ray"' in line
    ]
    assert [line["job_id"] for line in lines] == [events[0].job_id]
    assert lines[0]["pid"] != service.process.pid  # on a worker of the cluster, not in the optimizer


def test_an_address_where_no_cluster_answers_refuses_the_start(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["optimizer", "--log", str(tmp_path / "log.db"), "--data-dir", str(tmp_path / "data")]
    status, stderr = serve_until_exit(
        [*args, "--executor", "ray", "--ray-address", f"127.0.0.1:{port}"], tmp_path
    )
    assert status == 1, stderr
    assert f"--ray-address '127.0.0.1:{port}': no Ray cluster answers there" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("executor", ["ray"], indirect=True)
def test_connections_travel_as_configuration_and_keys_stay_behind(
    tmp_path: Path, executor: str, provider: FakeProvider, server_env: None
) -> None:
    """The task is handed the connections file's entries, never a key value: a job on the
    "fake" connection (no key) reaches the provider from the Ray worker; the hand-over of a
    job holds no key the optimizer's environment has."""
    optimizer = optimizer_thread(
        tmp_path, lm_connections=str(connections_file(tmp_path, provider)), executor=executor
    )
    try:
        with OptimizerClient(optimizer.address, timeout=120) as opt:
            events = job(opt, pb.LMConfig(connection="fake", model="m1"), "remote")
            assert kinds(events)[-1] == "completed", events[-1]
            assert provider.authorizations  # the worker called the provider itself
        connections = optimizer.running.jobs.connections
        assert connections.secret_values() == [FAKE_KEY]  # the optimizer has the keyed one's key
        spec = JobSpec(
            "j1",
            spec_from_proto(pb.ProgramSpec(module="Predict", signature="text -> label")),
            LMConfig(),
            "LabeledFewShot",
            {},
            "exact_match",
            [],
            [],
            connections=connections,
        )
        handed = ray.cloudpickle.dumps(task_job(spec, str(tmp_path / "data" / "artifacts"), {}))
        for secret in (FAKE_KEY, PLANTED, AMBIENT):
            assert secret.encode() not in handed
        assert ray.cloudpickle.loads(handed).connections.load().names() == ["fake", "keyed", "offline"]
    finally:
        optimizer.stop()


def test_ray_address_local_starts_a_cluster_with_the_optimizer_and_stops_it(tmp_path: Path) -> None:
    """`--ray-address local`: the optimizer starts its own small cluster (its files under
    RAY_TMPDIR, here the test's), runs the job on its worker, and takes it down on SIGTERM."""
    ray_tmp = Path(tempfile.mkdtemp(prefix="dspyops-ray-local-"))  # short: Ray's socket paths
    try:
        args = ["optimizer", "--log", str(tmp_path / "log.db"), "--data-dir", str(tmp_path / "data")]
        env = dict(os.environ, DSPYOPS_LOG_LEVEL="info", RAY_TMPDIR=str(ray_tmp))
        service = ServiceProcess(
            "optimizer", [*args, "--executor", "ray", "--ray-address", "local"], tmp_path, env
        )
        try:
            with OptimizerClient(service.address, timeout=120) as opt:
                events = list(
                    opt.start_optimization(
                        "tickets", "text -> label", trainset=TRAIN, optimizer="LabeledFewShot"
                    )
                )
                assert kinds(events)[-1] == "completed", events[-1]
            sessions = [p.name for p in (ray_tmp / "ray").iterdir() if p.name.startswith("session_2")]
            assert len(sessions) == 1  # its own cluster, not the test session's
            raylets = [
                p for p in Path("/proc").iterdir() if p.name.isdigit() and _runs_raylet_under(p, ray_tmp)
            ]
            assert raylets
        finally:
            assert service.stop(60) == 0
        assert wait_until(lambda: not any(p.exists() for p in raylets), timeout=30)  # the cluster went too
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    log = (tmp_path / "optimizer.log").read_text()
    placed = [json.loads(line) for line in log.splitlines() if '"job_on_ray"' in line]
    assert [p["job_id"] for p in placed] == [events[0].job_id] and placed[0]["pid"] != service.pid


def _runs_raylet_under(proc: Path, ray_tmp: Path) -> bool:
    try:
        command = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(command) and command[0].endswith(b"raylet") and str(ray_tmp).encode() in b" ".join(command)
