"""At most one version per job: a job registers through a command that answers with the
version already registered under its job_id (Lineage.job_id), decided and appended on one
state of the program stream, so a job run twice (its first owner registered, then died)
or two registrations racing leave one VersionRegistered for the job."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dspy
import pytest

from dspyops.artifacts.files import FileArtifactStore
from dspyops.eventlog import EventStore, open_store
from dspyops.events import decode
from dspyops.ledger import Ledger
from dspyops.lm import LMConfig
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from optimizer_svc.jobs.registration import register_result, registered_version_of
from optimizer_svc.jobs.requests import ValidatedJob
from optimizer_svc.jobs.runner import JobResult
from optimizer_svc.progress.usage import Usage
from optimizer_svc.registry.commands import Registry

SPEC = ProgramSpec(module="Predict", signature="text -> label")
TRAIN = [dspy.Example(text="refund please", label="billing").with_inputs("text")]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with open_store(str(tmp_path / "log.db")) as store:
        yield store


def job(auto_promote: bool = False) -> ValidatedJob:
    return ValidatedJob(
        program="tickets",
        spec=SPEC,
        lm=LMConfig(connection="offline"),
        prompt_lm=None,
        optimizer="LabeledFewShot",
        params={"k": 1},
        metric="exact_match",
        trainset=TRAIN,
        valset=[],
        min_score=None,
        auto_promote=auto_promote,
    )


def result(score: float, demo: str = "billing") -> JobResult:
    state = {"predict": {"demos": [{"text": "refund please", "label": demo}]}}
    return JobResult(SPEC, None, state, 0.25, score, Usage(3, 30, 10), trials=1)


def register(store: EventStore, tmp_path: Path, job_id: str, res: JobResult, **kw: object) -> pb.JobCompleted:
    gates: list[pb.GateEvaluated] = []
    return register_result(
        job_id,
        replace(job(), **kw),  # type: ignore[arg-type]
        res,
        1.0,
        artifacts=FileArtifactStore(tmp_path / "artifacts"),
        registry=Registry(Ledger(store)),  # a fresh view: as another replica has
        record_gate=gates.append,
    )


def registrations(store: EventStore, job_id: str) -> list[pb.VersionRegistered]:
    found = [decode(e) for e in store.read_stream("program-tickets")]
    return [e for e in found if isinstance(e, pb.VersionRegistered) and e.lineage.job_id == job_id]


def test_registering_a_jobs_result_twice_yields_one_version(store: EventStore, tmp_path: Path) -> None:
    assert registered_version_of(Ledger(store).state, "tickets", "job-a") is None
    first = register(store, tmp_path, "job-a", result(0.75), auto_promote=True)
    # the same job run again (another replica took it over): a different result this time
    again = register(store, tmp_path, "job-a", result(0.5, demo="shipping"), auto_promote=True)
    assert again.version == first.version == "1.0.0"
    # the completion names the version as registered: the first attempt's scores and artifact
    assert (again.final_score, again.artifact_digest) == (first.final_score, first.artifact_digest)
    assert again.status == first.status == pb.PRODUCTION
    assert len(registrations(store, "job-a")) == 1
    assert registered_version_of(Ledger(store).state, "tickets", "job-a") == "1.0.0"
    # another job with another artifact registers its own version as before
    other = register(store, tmp_path, "job-b", result(0.5, demo="account"))
    assert other.version == "1.1.0" and len(registrations(store, "job-b")) == 1
    assert registered_version_of(Ledger(store).state, "tickets", "job-b") == "1.1.0"
    assert registered_version_of(Ledger(store).state, "nothing", "job-b") is None


def test_another_job_with_the_same_artifact_names_that_version_with_its_own_scores(
    store: EventStore, tmp_path: Path
) -> None:
    first = register(store, tmp_path, "job-a", result(0.75))
    same = register(store, tmp_path, "job-b", result(0.5), auto_promote=True)
    assert same.version == first.version and same.existing_version and not first.existing_version
    assert same.artifact_digest == first.artifact_digest
    assert (same.final_score, same.baseline_score) == (0.5, 0.25)  # job-b's own scores
    assert same.improvement == pytest.approx(0.25)
    assert registrations(store, "job-b") == []  # nothing appended for it
    assert registered_version_of(Ledger(store).state, "tickets", "job-b") is None
    # another demo is another artifact: a version of its own
    other = register(store, tmp_path, "job-c", result(0.5, demo="shipping"))
    assert other.version == "1.1.0" and not other.existing_version


def test_racing_registrations_of_one_job_leave_one_version(store: EventStore, tmp_path: Path) -> None:
    # the program exists (another artifact): every racer appends on it
    register(store, tmp_path, "job-0", result(0.5, demo="account"))
    racers = 6
    barrier = threading.Barrier(racers)
    versions: list[str] = []

    def race(i: int) -> None:
        barrier.wait()
        versions.append(register(store, tmp_path, "job-r", result(0.5 + i / 100)).version)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(versions) == racers and len(set(versions)) == 1
    assert len(registrations(store, "job-r")) == 1
