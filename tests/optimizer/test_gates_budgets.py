"""Quality gates and budgets of optimization jobs, through a real server and client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct

from dspyops.client import OptimizerClient, examples
from dspyops.lm import LMConfig
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.jobs.requests import validate_start
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, ticket_rows
from tests.support.ray_cluster import EXECUTORS

ROWS = ticket_rows()
TRAIN, VAL = ROWS[:30], ROWS[30:50]


def config(tmp_path: Path, executor: str) -> OptimizerConfig:
    return OptimizerConfig(log=str(tmp_path / "log.db"), data_dir=tmp_path / "d", executor=executor)


@pytest.fixture()
def opt(tmp_path: Path, executor: str) -> Iterator[OptimizerClient]:
    thread = ServerThread(lambda: start(config(tmp_path, executor)))
    with OptimizerClient(thread.address) as client:
        yield client
    thread.stop()


def request(
    optimizer: str = "LabeledFewShot", params: dict | None = None, **kw: object
) -> opb.StartOptimizationRequest:
    struct = Struct()
    struct.update(params or {})
    req = opb.StartOptimizationRequest(
        program="tickets",
        spec=pb.ProgramSpec(module="Predict", signature="text -> label"),
        optimizer=optimizer,
        params=struct,
        metric="exact_match",
        trainset=examples(TRAIN),
        valset=examples(VAL),
    )
    for key, value in kw.items():
        if isinstance(value, pb.Budget):
            req.budget.CopyFrom(value)
        else:
            setattr(req, key, value)
    return req


def run(opt: OptimizerClient, req: opb.StartOptimizationRequest) -> list[opb.OptimizationEvent]:
    # the stub: these tests build each job as a request message, which one of them also
    # hands to the server's own validate_start (to submit it with a server-only LM latency)
    return list(opt.stub.StartOptimization(req))


def kinds(events: list) -> list[str]:
    return [e.WhichOneof("kind") for e in events]


def logged_types(opt: OptimizerClient, job_id: str) -> list[str]:
    return [e.type.rsplit(".", 1)[-1] for e in opt.read_log(0, 1000, f"job-{job_id}").events]


# ---------------------------------------------------------------- gates


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_must_beat_passes_when_the_job_beats_the_version(opt: OptimizerClient) -> None:
    weak = run(opt, request(params={"k": 1}))[-1].completed  # 1 demo: 0.2 on VAL offline
    opt.set_alias("tickets", "champion", weak.version)
    events = run(opt, request(params={"k": 16}, must_beat="@champion", auto_promote=True))
    names = kinds(events)
    assert names[-2:] == ["gate", "completed"]
    gate, done = events[-2].gate, events[-1].completed
    assert gate.passed and gate.must_beat == weak.version
    assert gate.must_beat_score == pytest.approx(weak.final_score)  # same set, metric and LM
    assert gate.final_score == pytest.approx(done.final_score)
    assert gate.final_score > gate.must_beat_score
    assert done.gate_passed and done.gate_reason == gate.reason
    assert done.status == pb.PRODUCTION
    assert opt.get_version("tickets", done.version).status == pb.PRODUCTION
    # the verdict is on the record, before the completion
    types = logged_types(opt, events[0].job_id)
    assert types[-2:] == ["GateEvaluated", "JobCompleted"]
    # every completion carries usage and wall time; must_beat's scoring counts in the usage
    assert done.usage.lm_calls > weak.usage.lm_calls > 0
    assert done.usage.input_tokens > 0 and done.usage.output_tokens > 0
    assert done.usage.cost_usd == 0.0  # the offline engine reports no cost
    assert done.wall_seconds > 0


def test_failing_must_beat_registers_development_and_never_promotes(opt: OptimizerClient) -> None:
    strong = run(opt, request(params={"k": 16}))[-1].completed  # 0.75 on VAL offline
    events = run(opt, request(params={"k": 1}, must_beat=strong.version, auto_promote=True))
    gate, done = events[-2].gate, events[-1].completed
    assert not gate.passed and gate.must_beat == strong.version
    assert gate.must_beat_score == pytest.approx(strong.final_score)
    assert "<=" in gate.reason and strong.version in gate.reason
    assert not done.gate_passed and done.status == pb.DEVELOPMENT
    assert opt.get_version("tickets", done.version).status == pb.DEVELOPMENT
    assert opt.get_job(events[0].job_id).state == opb.SUCCEEDED


def test_min_improvement_over_the_baseline_and_over_must_beat(opt: OptimizerClient) -> None:
    events = run(opt, request(params={"k": 16}, min_improvement=0.5, auto_promote=True))
    gate, done = events[-2].gate, events[-1].completed
    # 0.1 -> 0.75: +0.65 over the baseline
    assert gate.passed and gate.min_improvement == 0.5 and "baseline" in gate.reason
    assert done.improvement == pytest.approx(0.65) and done.status == pb.PRODUCTION

    # another artifact (k=8), so a version of its own, registered in development
    events = run(opt, request(params={"k": 8}, min_improvement=0.9, auto_promote=True))
    assert not events[-2].gate.passed and events[-1].completed.status == pb.DEVELOPMENT

    # over must_beat: equal scores (+0.0) pass a 0 margin, where a plain must_beat needs more
    events = run(opt, request(params={"k": 16}, must_beat="1.0.0", min_improvement=0.0))
    gate = events[-2].gate
    assert gate.passed and gate.must_beat_score == pytest.approx(gate.final_score)
    assert "must_beat 1.0.0" in gate.reason
    assert not run(opt, request(params={"k": 16}, must_beat="1.0.0"))[-2].gate.passed
    # min_score and must_beat together: both must hold
    events = run(opt, request(params={"k": 16}, must_beat="1.0.0", min_improvement=-0.1, min_score=0.9))
    gate = events[-2].gate
    assert not gate.passed and gate.min_score == 0.9 and "min_score" in gate.reason


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"must_beat": "9.9.9"}, grpc.StatusCode.NOT_FOUND, "must_beat"),
        ({"must_beat": "@nobody"}, grpc.StatusCode.NOT_FOUND, "must_beat"),
        ({"min_improvement": 1.5}, grpc.StatusCode.INVALID_ARGUMENT, "min_improvement"),
        ({"min_improvement": -2.0}, grpc.StatusCode.INVALID_ARGUMENT, "min_improvement"),
        ({"budget": pb.Budget(max_lm_calls=-1)}, grpc.StatusCode.INVALID_ARGUMENT, "budget.max_lm_calls"),
        ({"budget": pb.Budget(max_tokens=-5)}, grpc.StatusCode.INVALID_ARGUMENT, "budget.max_tokens"),
        (
            {"budget": pb.Budget(timeout_seconds=float("nan"))},
            grpc.StatusCode.INVALID_ARGUMENT,
            "budget.timeout_seconds",
        ),
        ({"budget": pb.Budget(max_cost_usd=-1)}, grpc.StatusCode.INVALID_ARGUMENT, "budget.max_cost_usd"),
        ({"val_fraction": 0.3}, grpc.StatusCode.INVALID_ARGUMENT, "val_fraction"),  # a valset is given
    ],
)
def test_bad_gates_and_budgets_are_refused_before_anything_runs(
    opt: OptimizerClient, changes: dict, code: grpc.StatusCode, field: str
) -> None:
    run(opt, request(params={"k": 1}))  # the program exists: must_beat is resolved against it
    head = opt.read_log(0, 1).head
    with pytest.raises(grpc.RpcError) as err:
        run(opt, request(**changes))
    assert err.value.code() == code, err.value.details()
    assert err.value.details().startswith(field), err.value.details()
    assert opt.read_log(0, 1).head == head
    assert len(opt.list_jobs().jobs) == 1


def test_must_beat_of_an_unknown_program_is_not_found(opt: OptimizerClient) -> None:
    with pytest.raises(grpc.RpcError) as err:
        run(opt, request(must_beat="1.0.0"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details().startswith("must_beat")


# ---------------------------------------------------------------- budgets


def _cancelled(events: list, budget: str) -> opb.OptimizationEvent:
    assert kinds(events)[-1] == "cancelled", kinds(events)
    cancelled = events[-1].cancelled
    assert cancelled.budget == budget and budget in cancelled.reason
    return cancelled


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_max_lm_calls_stops_a_threaded_compile_at_the_budget(opt: OptimizerClient) -> None:
    params = {"num_candidate_programs": 16, "num_threads": 8}
    events = run(opt, request("BootstrapFewShotWithRandomSearch", params, budget=pb.Budget(max_lm_calls=60)))
    cancelled = _cancelled(events, "max_lm_calls")
    # Calls are reserved as they start, on whichever of the 8 worker threads: the call that
    # would be the 61st is refused, so no margin is needed here.
    assert 0 < cancelled.usage.lm_calls <= 60
    assert cancelled.usage.input_tokens > 0
    assert logged_types(opt, events[0].job_id)[-1] == "JobCancelled"
    assert opt.get_job(events[0].job_id).state == opb.CANCELLED
    assert opt.list_programs().programs == []  # nothing registered


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_max_tokens_stops_the_compile_with_a_small_in_flight_margin(opt: OptimizerClient) -> None:
    budget = 20_000
    params = {"num_candidate_programs": 16, "num_threads": 8}
    events = run(
        opt, request("BootstrapFewShotWithRandomSearch", params, budget=pb.Budget(max_tokens=budget))
    )
    cancelled = _cancelled(events, "max_tokens")
    spent = cancelled.usage.input_tokens + cancelled.usage.output_tokens
    # Tokens are known only when a call returns: calls already running on the other 7
    # threads when the budget trips still finish. One call here is < 1000 tokens (a prompt
    # with up to 16 demos), so 8 calls' worth is the margin.
    assert budget < spent <= budget + 8 * 1000, spent


LATENCY_MS = 50  # per offline LM call (LMConfig.latency_ms), so the compile certainly outlasts 1 s


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_timeout_stops_a_long_compile_promptly(tmp_path: Path, executor: str) -> None:
    """A 1 s budget on a compile that needs far longer: it ends Cancelled by the timeout, at
    the next LM call rather than at the end. One thread, and every LM call sleeps
    LATENCY_MS first, so at most 1000 / LATENCY_MS calls can complete within the budget
    (plus the one under way): a busy machine only makes fewer, while the whole compile
    (16 candidate programs, each scored on 20 examples) needs over 300."""
    thread = ServerThread(lambda: start(config(tmp_path, executor)))
    try:
        params = {"num_candidate_programs": 16, "num_threads": 1}
        req = request("BootstrapFewShotWithRandomSearch", params, budget=pb.Budget(timeout_seconds=1))
        # The latency is server-side configuration of the offline engine (the proto has no
        # such field): the validated job gets it before it is submitted to the real server.
        job = replace(validate_start(req), lm=LMConfig(latency_ms=LATENCY_MS))
        handle = thread.running.jobs.submit(job)
        with OptimizerClient(thread.address) as opt:
            events = list(opt.watch_job(handle.job_id))
            cancelled = _cancelled(events, "timeout_seconds")
            assert 0 < cancelled.usage.lm_calls <= 1000 // LATENCY_MS + 1, cancelled.usage.lm_calls
            assert logged_types(opt, handle.job_id)[-1] == "JobCancelled"
            assert opt.get_job(handle.job_id).state == opb.CANCELLED
            assert opt.list_programs().programs == []  # nothing registered
    finally:
        thread.stop()


def test_max_cost_is_accepted_and_recorded_but_cannot_trip_offline(opt: OptimizerClient) -> None:
    # The offline engine reports no cost (usage.cost_usd stays 0), so even a tiny cost budget
    # never trips offline; with a provider that reports cost it would stop the job like the others.
    events = run(opt, request(params={"k": 4}, budget=pb.Budget(max_cost_usd=1e-9, max_lm_calls=10_000)))
    done = events[-1].completed
    assert kinds(events)[-1] == "completed"
    assert done.usage.cost_usd == 0.0 and done.usage.lm_calls > 0 and done.wall_seconds > 0


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_a_user_cancel_also_reports_usage_and_no_budget(opt: OptimizerClient) -> None:
    stream = opt.stub.StartOptimization(  # a request message, as run()'s
        request("BootstrapFewShotWithRandomSearch", {"num_candidate_programs": 16})
    )
    events = []
    for event in stream:
        events.append(event)
        if event.WhichOneof("kind") == "baseline":
            opt.cancel_job(event.job_id, "enough")
    cancelled = events[-1].cancelled
    assert cancelled.reason == "enough" and cancelled.budget == ""
    assert cancelled.usage.lm_calls > 0
