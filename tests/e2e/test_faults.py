"""kill -9 at random moments, with real processes: after every restart the hash chain
verifies, positions are gapless, nothing acknowledged is lost, no version is half
registered, and jobs that were running end Interrupted (one attempt each, the default);
SIGTERM gives running jobs back to the log, and the next start finishes them."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest

from dspyops.artifacts import decode_artifact
from dspyops.client import OptimizerClient
from dspyops.eventlog import open_store
from dspyops.events import decode
from dspyops.fold import fold
from dspyops.launch import ServiceProcess
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from tests.support.harness import ticket_rows, wait_until

pytestmark = pytest.mark.slow
ROWS = ticket_rows()
KILLS = 20


def start_optimizer(tmp: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    args = ["optimizer", "--log", str(tmp / "log.db"), "--data-dir", str(tmp / "data")]
    service = ServiceProcess("optimizer", args, tmp, env)
    return service.process, service.address


def start_gateway(tmp: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    args = ["gateway", "--log", str(tmp / "log.db"), "--canary-interval", "0"]
    service = ServiceProcess("gateway", args, tmp, env)
    return service.process, service.address


def check_log(path: Path) -> None:
    store = open_store(str(path))
    try:
        verified = store.verify()
        assert verified.ok, verified.reason
        events = store.read(0, 1_000_000)
        assert [e.position for e in events] == list(range(1, len(events) + 1))
        for event in events:  # every registered version carries an artifact that verifies
            if event.type == "dspyops.v1.VersionRegistered":
                registered = decode(event)
                assert isinstance(registered, pb.VersionRegistered)
                decode_artifact(registered.artifact, registered.artifact_digest)
    finally:
        store.close()


def test_kill_9_the_optimizer_repeatedly(tmp_path: Path) -> None:
    env = dict(os.environ, DSPYOPS_LOG_LEVEL="warning")
    rng = random.Random(1234)
    acknowledged: list[tuple[str, str]] = []  # (alias, version) the server confirmed
    seeded = False
    for round_ in range(KILLS):
        process, address = start_optimizer(tmp_path, env)
        stop = threading.Event()
        with OptimizerClient(address, timeout=10) as opt:
            if not seeded:
                events = list(
                    opt.start_optimization(
                        "tickets",
                        "text -> label",
                        trainset=ROWS[:20],
                        optimizer="LabeledFewShot",
                        params={"k": 4},
                    )
                )
                assert events[-1].WhichOneof("kind") == "completed"
                seeded = True

            def job() -> None:
                try:
                    for _ in opt.start_optimization(
                        "tickets",
                        "text -> label",
                        trainset=ROWS[:40],
                        valset=ROWS[40:60],
                        optimizer="BootstrapFewShotWithRandomSearch",
                        params={"num_candidate_programs": 8, "max_bootstrapped_demos": 2, "num_threads": 1},
                    ):
                        pass
                except grpc.RpcError:
                    pass

            def commands(stop: threading.Event = stop, round_: int = round_) -> None:
                i = 0
                while not stop.is_set():
                    alias = f"r{round_}-{i}"
                    try:
                        opt.set_alias("tickets", alias, "1.0.0")
                        acknowledged.append((alias, "1.0.0"))
                    except grpc.RpcError:
                        return
                    i += 1

            threads = [threading.Thread(target=job), threading.Thread(target=commands)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.3, 2.0))
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            stop.set()
            for t in threads:
                t.join(30)
        check_log(tmp_path / "log.db")

    # a last start marks the jobs that were running when a kill came as Interrupted (their
    # one attempt was spent); a job killed between its JobAccepted and its claim is run now
    process, address = start_optimizer(tmp_path, env)
    try:
        with OptimizerClient(address, timeout=10) as opt:
            jobs = opt.list_jobs().jobs
            assert jobs and any(j.state == opb.INTERRUPTED for j in jobs)
            assert wait_until(
                lambda: all(j.state not in (opb.QUEUED, opb.RUNNING) for j in opt.list_jobs().jobs),
                timeout=120,
            ), [j.state for j in opt.list_jobs().jobs]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    check_log(tmp_path / "log.db")
    store = open_store(str(tmp_path / "log.db"))
    events = store.read(0, 1_000_000)
    aliases = fold(events).programs["tickets"].aliases
    store.close()
    # the restart, not a caller, interrupted the orphans: the log says so
    restarts = [e.actor for e in events if e.type == "dspyops.v1.JobInterrupted"]
    assert restarts and set(restarts) == {"system"}, restarts
    missing = [a for a, v in acknowledged if aliases.get(a) != v]
    assert not missing, f"{len(missing)} acknowledged alias changes lost: {missing[:5]}"
    assert len(acknowledged) > KILLS


def test_kill_9_a_gateway_under_load(tmp_path: Path) -> None:
    import sqlite3

    from dspyops.client import GatewayClient
    from dspyops.fold import state_hash
    from optimizer_svc.server import OptimizerConfig
    from optimizer_svc.server import start as start_in_process
    from tests.support.harness import ServerThread

    env = dict(os.environ, DSPYOPS_LOG_LEVEL="warning")
    optimizer = ServerThread(
        lambda: start_in_process(OptimizerConfig(log=str(tmp_path / "log.db"), data_dir=tmp_path / "data"))
    )
    with OptimizerClient(optimizer.address) as opt:
        for k in (2, 8):
            list(
                opt.start_optimization(
                    "tickets",
                    "text -> label",
                    trainset=ROWS[:40],
                    optimizer="LabeledFewShot",
                    params={"k": k},
                )
            )
        opt.create_deployment("web", "tickets")
        opt.set_routes("web", {"1.0.0": 0.5, "1.1.0": 0.5})
    optimizer.stop()
    rng = random.Random(99)
    predictions: list[str] = []
    outcomes: list[str] = []
    for _ in range(10):
        process, address = start_gateway(tmp_path, env)
        stop = threading.Event()
        with GatewayClient(address, timeout=10) as gw:
            state = gw.get_deployment_state("web")
            store = open_store(str(tmp_path / "log.db"))
            replayed = fold([e for e in store.read(0, 1_000_000) if e.position <= state.log_position])
            store.close()
            assert state.state_hash == state_hash(replayed)

            def load(gw: GatewayClient = gw, stop: threading.Event = stop) -> None:
                i = 0
                while not stop.is_set():
                    try:
                        response = gw.predict(
                            "web", {"text": ROWS[i % len(ROWS)]["text"]}, routing_key=f"k{i}"
                        )
                        predictions.append(response.prediction_id)
                        gw.record_outcome(response.prediction_id, 1.0)
                        outcomes.append(response.prediction_id)
                    except grpc.RpcError:
                        return
                    i += 1

            threads = [threading.Thread(target=load) for _ in range(3)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.5, 1.5))
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            stop.set()
            for t in threads:
                t.join(30)
    db = sqlite3.connect(tmp_path / "log.db.predictions")
    stored = {row[0] for row in db.execute("SELECT prediction_id FROM predictions")}
    stored_outcomes = {row[0] for row in db.execute("SELECT prediction_id FROM outcomes")}
    db.close()
    assert len(predictions) > 50
    assert not set(predictions) - stored, "acknowledged predictions were lost"
    assert not set(outcomes) - stored_outcomes, "acknowledged outcomes were lost"


def test_sigterm_releases_running_jobs_and_the_next_start_finishes_them(tmp_path: Path) -> None:
    env = dict(os.environ, DSPYOPS_LOG_LEVEL="warning")
    process, address = start_optimizer(tmp_path, env)
    seen: list[str] = []
    job_id = ""
    with OptimizerClient(address, timeout=60) as opt:
        stream = opt.start_optimization(
            "tickets",
            "text -> label",
            trainset=ROWS[:40],
            valset=ROWS[40:60],
            optimizer="BootstrapFewShotWithRandomSearch",
            params={"num_candidate_programs": 30, "max_bootstrapped_demos": 2, "num_threads": 1},
        )
        try:
            for event in stream:
                job_id = job_id or event.job_id
                seen.append(str(event.WhichOneof("kind")))
                if seen[-1] == "trial" and seen.count("trial") == 1:
                    process.send_signal(signal.SIGTERM)
        except grpc.RpcError:
            pass  # the server went away under the stream
    assert process.wait(30) == 0
    assert "trial" in seen and not {"interrupted", "completed", "cancelled", "failed"} & set(seen)
    store = open_store(str(tmp_path / "log.db"))
    last = store.read(0, 10_000)[-1]
    store.close()
    # given back, not ended: the next replica to start (here: the same log's next start) runs it
    assert last.type == "dspyops.v1.JobLeaseReleased"
    process, address = start_optimizer(tmp_path, env)
    try:
        with OptimizerClient(address, timeout=120) as opt:
            assert list(opt.watch_job(job_id))[-1].WhichOneof("kind") == "completed"
            job = opt.get_job(job_id)
            assert (job.state, job.attempt) == (opb.SUCCEEDED, 1)  # a graceful stop costs no attempt
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    store = open_store(str(tmp_path / "log.db"))
    kinds = [e.type.removeprefix("dspyops.v1.") for e in store.read_stream(f"job-{job_id}")]
    store.close()
    assert kinds.count("JobClaimed") == 2 and "JobRetried" not in kinds
