"""A job's inputs on the record: JobAccepted carries what another replica needs to run the
job again (JobInputs), and ``ValidatedJob.from_accepted`` turns it back into the job.

Round trips go through a real server: the request is submitted, the job runs, and the
JobAccepted read from the log gives back a job equal to the one submitted (same digests,
same examples with the same input keys, same settings).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import dspy
import pytest
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct

from dspyops.client import examples
from dspyops.errors import InvalidArgument
from dspyops.events import decode
from dspyops.limits import MAX_EVENT_PAYLOAD_BYTES
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.jobs.manager import JobManager
from optimizer_svc.jobs.requests import ValidatedJob, check_accepted_size, job_inputs, validate_start
from optimizer_svc.server import OptimizerConfig, RunningOptimizer, start
from tests.programs_pkg.specs import PIPELINE
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()
TRAIN, VAL = ROWS[:30], ROWS[30:50]
PREDICT = pb.ProgramSpec(module="Predict", signature="text -> label")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread[RunningOptimizer]]:
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    (datasets / "tickets.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS[:40]))
    config = OptimizerConfig(log=str(tmp_path / "log.db"), data_dir=tmp_path / "d", datasets_dir=datasets)
    thread = ServerThread(lambda: start(config))
    yield thread
    thread.stop()


def request(spec: pb.ProgramSpec = PREDICT, **kw: object) -> opb.StartOptimizationRequest:
    params = Struct()
    params.update({"k": 4})
    req = opb.StartOptimizationRequest(
        program="tickets", spec=spec, optimizer="LabeledFewShot", params=params, metric="exact_match"
    )
    if "trainset_ref" not in kw:
        req.trainset.extend(examples(TRAIN))
        if "val_fraction" not in kw:
            req.valset.extend(examples(VAL))
    for key, value in kw.items():
        if isinstance(value, Message):
            getattr(req, key).CopyFrom(value)
        else:
            setattr(req, key, value)
    return req


def submitted(jobs: JobManager, req: opb.StartOptimizationRequest) -> tuple[ValidatedJob, pb.JobAccepted]:
    """The job as submitted (prepared) and the JobAccepted its run left in the log."""
    job = jobs.prepare(validate_start(req, jobs.connections, jobs.programs))
    handle = jobs.submit(job)
    assert wait_until(lambda: handle.done, timeout=60)
    first = jobs.ledger.store.read_stream(f"job-{handle.job_id}")[0]
    accepted = decode(first)
    assert isinstance(accepted, pb.JobAccepted)
    assert jobs.summary(handle).state == "succeeded"
    return job, accepted


def restored(jobs: JobManager, accepted: pb.JobAccepted) -> ValidatedJob:
    return jobs.prepare(ValidatedJob.from_accepted(accepted, jobs.connections, jobs.programs))


def input_keys(sets: list[dspy.Example]) -> list[set[str]]:
    return [set(e.inputs().keys()) for e in sets]


def assert_same_job(original: ValidatedJob, back: ValidatedJob) -> None:
    assert back.trainset_digest == original.trainset_digest
    assert back.valset_digest == original.valset_digest
    assert [e.toDict() for e in back.trainset] == [e.toDict() for e in original.trainset]
    assert [e.toDict() for e in back.valset] == [e.toDict() for e in original.valset]
    assert input_keys(back.trainset) == input_keys(original.trainset)
    assert input_keys(back.valset) == input_keys(original.valset)
    beat = original.must_beat_program
    assert (back.must_beat_program.version if back.must_beat_program else "") == (
        beat.version if beat else ""
    )
    # must_beat: the version resolved at acceptance (the request may have named an alias)
    assert back.must_beat == (beat.version if beat else "")

    def settings(job: ValidatedJob) -> ValidatedJob:
        return replace(job, must_beat="", must_beat_program=None, trainset=[], valset=[])

    assert settings(back) == settings(original)


def test_one_predictor_job_round_trips_and_its_sets_are_their_digests(
    server: ServerThread[RunningOptimizer],
) -> None:
    jobs = server.running.jobs
    job, accepted = submitted(jobs, request())
    inputs = accepted.inputs
    assert accepted.max_attempts == 1  # the server's --job-max-attempts: the job is claimed
    assert hashlib.sha256(inputs.trainset).hexdigest() == accepted.trainset_digest
    assert hashlib.sha256(inputs.valset).hexdigest() == accepted.valset_digest
    assert list(inputs.input_keys) == ["text"]
    first = json.loads(inputs.trainset.split(b"\n")[0])
    assert first == TRAIN[0] and list(first) == sorted(first)  # canonical: sorted keys
    assert_same_job(job, restored(jobs, accepted))


def test_pipeline_from_a_referenced_file_split_at_acceptance_round_trips(
    server: ServerThread[RunningOptimizer],
) -> None:
    jobs = server.running.jobs
    ref = opb.DatasetRef(path="tickets.jsonl")
    job, accepted = submitted(jobs, request(PIPELINE, trainset_ref=ref, val_fraction=0.25, split_seed=7))
    back = restored(jobs, accepted)
    assert len(back.trainset) == 30 and len(back.valset) == 10  # the split made at acceptance
    assert back.spec.pipeline is not None and back.spec == job.spec
    assert_same_job(job, back)


def test_budget_prompt_lm_and_min_improvement_round_trip(server: ServerThread[RunningOptimizer]) -> None:
    jobs = server.running.jobs
    req = request(
        prompt_lm=pb.LMConfig(connection="offline", temperature=0.7, max_tokens=300),
        budget=pb.Budget(timeout_seconds=120, max_lm_calls=5000, max_tokens=10**7, max_cost_usd=2.5),
        min_improvement=-0.25,
        min_score=0.05,
    )
    job, accepted = submitted(jobs, req)
    assert accepted.inputs.HasField("prompt_lm") and accepted.inputs.min_improvement == -0.25
    back = restored(jobs, accepted)
    assert back.prompt_lm is not None and back.prompt_lm.temperature == 0.7
    assert back.budget.max_cost_usd == 2.5 and back.min_score == 0.05
    assert_same_job(job, back)


def test_must_beat_is_recorded_as_the_version_the_alias_named(server: ServerThread[RunningOptimizer]) -> None:
    jobs = server.running.jobs
    submitted(jobs, request())
    (champion,) = jobs.registry.program("tickets").versions
    jobs.registry.set_alias("tickets", "champion", champion)
    job, accepted = submitted(jobs, request(must_beat="@champion", min_improvement=-1.0))
    assert accepted.inputs.must_beat_version == champion
    # the alias moves on (to another artifact's version: k=8): the job's record still names
    # the version it was accepted against
    other = Struct()
    other.update({"k": 8})
    submitted(jobs, request(params=other))
    newest = list(jobs.registry.program("tickets").versions)[-1]
    jobs.registry.set_alias("tickets", "champion", newest)
    assert newest not in (champion, "")
    back = restored(jobs, accepted)
    assert back.must_beat_program is not None and back.must_beat_program.version == champion
    assert_same_job(job, back)


# ---------------------------------------------------------------- a log is input too


def accepted_of(job: ValidatedJob) -> pb.JobAccepted:
    """A JobAccepted as submit builds it (without a server)."""
    from optimizer_svc.jobs.registration import accepted_event

    return accepted_event(job, "j", job_inputs(job), max_attempts=1, lease_ms=15_000)


def refusal(accepted: pb.JobAccepted) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        ValidatedJob.from_accepted(accepted)
    return info.value


def test_a_tampered_set_is_refused_naming_the_field_and_the_digest() -> None:
    accepted = accepted_of(validate_start(request()))
    assert_same_job(validate_start(request()), ValidatedJob.from_accepted(accepted))
    dropped = pb.JobAccepted()
    dropped.CopyFrom(accepted)
    dropped.inputs.trainset = b"".join(accepted.inputs.trainset.splitlines(keepends=True)[1:])
    error = refusal(dropped)
    assert error.field == "inputs.trainset" and accepted.trainset_digest in error.problem
    swapped = pb.JobAccepted()
    swapped.CopyFrom(accepted)
    swapped.inputs.valset = accepted.inputs.valset.replace(b'"billing"', b'"shipping"', 1)
    assert refusal(swapped).field == "inputs.valset"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda a: setattr(a.inputs, "trainset", b'{"text":"x"}\n'), "inputs.trainset[0]"),
        (lambda a: setattr(a.inputs, "trainset", b'{"text":"x","label":1}\n'), "inputs.trainset[0].label"),
        (lambda a: setattr(a.inputs, "trainset", b"[1]\n"), "inputs.trainset[0]"),
        (lambda a: setattr(a.inputs, "trainset", b'{"text":"x","label":"y"}'), "inputs.trainset"),
        (lambda a: setattr(a.inputs, "trainset", b""), "inputs.trainset"),
        (lambda a: a.ClearField("inputs"), "inputs"),  # a job accepted before inputs were logged
        (lambda a: a.inputs.ClearField("input_keys"), "inputs.input_keys"),
        (lambda a: a.inputs.input_keys.append("nope"), "inputs.input_keys"),
        (lambda a: setattr(a.spec, "signature", "text -> "), "spec.signature"),
        (lambda a: setattr(a, "metric", "os:system"), "metric"),
        (lambda a: setattr(a.inputs.budget, "max_lm_calls", -1), "inputs.budget.max_lm_calls"),
        (lambda a: setattr(a.inputs.prompt_lm, "connection", "nowhere"), "inputs.prompt_lm.connection"),
        (lambda a: setattr(a.inputs, "must_beat_version", "x" * 201), "inputs.must_beat_version"),
        (lambda a: setattr(a.inputs, "min_improvement", 3.0), "inputs.min_improvement"),
    ],
)
def test_a_bad_job_on_the_record_is_refused_naming_its_field(
    change: Callable[[pb.JobAccepted], object], field: str
) -> None:
    accepted = accepted_of(validate_start(request()))
    change(accepted)
    with pytest.raises(Exception) as info:
        ValidatedJob.from_accepted(accepted)
    assert getattr(info.value, "field", None) == field, info.value


def test_examples_that_disagree_on_their_inputs_are_refused_at_submission() -> None:
    req = request()
    req.valset[0].input_keys[:] = ["text", "label"]
    with pytest.raises(InvalidArgument) as info:
        job_inputs(validate_start(req))
    assert info.value.field == "valset[0].input_keys"


# ---------------------------------------------------------------- size


def big_request(n: int, chars: int) -> opb.StartOptimizationRequest:
    req = request()
    del req.trainset[:], req.valset[:]
    req.trainset.extend(
        pb.Example(fields={"text": f"{i} " + "x" * chars, "label": "billing"}, input_keys=["text"])
        for i in range(n)
    )
    return req


def test_a_2000_example_trainset_fits_the_event_limit_and_a_too_large_one_is_refused() -> None:
    # 2000 examples of 5,000 characters: 10 MB of JSON, under the 12 MiB limit of one event
    accepted = accepted_of(validate_start(big_request(2000, 5_000)))
    check_accepted_size(accepted)
    assert 10_000_000 < accepted.ByteSize() < MAX_EVENT_PAYLOAD_BYTES
    # 2000 examples at the request's per-field maximum (20,000 characters): refused naming trainset
    huge = accepted_of(validate_start(big_request(2000, 19_990)))
    with pytest.raises(InvalidArgument) as info:
        check_accepted_size(huge)
    assert info.value.field == "trainset" and "over the log's limit" in info.value.problem


def test_a_job_too_large_for_the_log_is_refused_by_submit_and_takes_no_slot(
    server: ServerThread[RunningOptimizer],
) -> None:
    jobs = server.running.jobs
    head = jobs.ledger.store.head()
    with pytest.raises(InvalidArgument) as info:
        jobs.submit(validate_start(big_request(2000, 19_990)))
    assert info.value.field == "trainset"
    assert jobs.ledger.store.head() == head and not jobs.running()
