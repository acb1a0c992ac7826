"""Idempotent mutating RPCs (issue 10, finding 6), through the real servers: a request
repeated with the same request_id returns the first response and appends nothing; the same
id with another request is ALREADY_EXISTS naming request_id; concurrent duplicates (threads,
and two gateway processes) append once; a retry after a restart still answers from the log.

The requests go through the raw stubs with request_id set on the message, the way a client
in any language sends them.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dspy
import grpc
import pytest
from google.protobuf.message import Message

from dspyops.client import GatewayClient, OptimizerClient, examples
from dspyops.eventlog import open_store
from dspyops.events import decode
from dspyops.launch import ServiceProcess
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import optimizer_pb2 as opb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

SIG = "text -> label"
ROWS = ticket_rows()
EXISTS = grpc.StatusCode.ALREADY_EXISTS


def saved_state(tmp: Path, demos: int) -> bytes:
    program = dspy.Predict(SIG)
    program.demos = [dspy.Example(**row) for row in ROWS[:demos]]
    path = tmp / f"state-{demos}.json"
    program.save(str(path))
    return path.read_bytes()


@dataclass
class Stack:
    tmp: Path
    log: str
    optimizer: ServerThread
    gateway: ServerThread
    opt: OptimizerClient
    gw: GatewayClient

    def head(self) -> int:
        return self.opt.read_log(0, 1).head

    def outcomes(self) -> int:
        with sqlite3.connect(f"{self.log}.predictions") as conn:
            return conn.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0]

    def synced(self) -> None:
        """The gateway has folded everything in the log (so its commands see it)."""
        head = self.head()
        assert wait_until(lambda: self.gw.list_deployment_states().log_position >= head)

    def deployment(self, name: str, routes: dict[str, float]) -> None:
        self.opt.create_deployment(name, "p")
        self.opt.set_routes(name, routes)
        self.synced()

    def experiment(self, name: str) -> None:
        self.deployment(name, {"1.0.0": 1.0})
        self.gw.start_experiment(name, "1.0.0", ["1.1.0"], min_samples_per_arm=10)


def restart_optimizer(stack: Stack) -> None:
    stack.opt.close()
    stack.optimizer.stop()
    stack.optimizer = ServerThread(
        lambda: start_optimizer(OptimizerConfig(log=stack.log, data_dir=stack.tmp / "data"))
    )
    stack.opt = OptimizerClient(stack.optimizer.address)


def restart_gateway(stack: Stack) -> None:
    stack.gw.close()
    stack.gateway.stop()
    stack.gateway = ServerThread(lambda: start_gateway(GatewayConfig(log=stack.log, canary_interval=0)))
    stack.gw = GatewayClient(stack.gateway.address)
    stack.synced()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("idempotency")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
    opt = OptimizerClient(optimizer.address)
    for demos in (1, 2):  # p 1.0.0 and 1.1.0
        opt.import_program("p", SIG, saved_state(tmp, demos))
    gateway = ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0)))
    stack = Stack(tmp, log, optimizer, gateway, opt, GatewayClient(gateway.address))
    yield stack
    stack.gw.close()
    stack.opt.close()
    stack.gateway.stop()
    stack.optimizer.stop()


def rid() -> str:
    return uuid.uuid4().hex


def with_id(request: Message, request_id: str) -> Any:
    copy = type(request)()
    copy.CopyFrom(request)
    copy.request_id = request_id  # type: ignore[attr-defined]
    return copy


def assert_idempotent(
    call: Callable[[Any], Any], request: Message, changed: Message, count: Callable[[], int]
) -> Any:
    """The same request twice with one request_id: the same response, nothing appended by
    the second; the same id with `changed`: ALREADY_EXISTS naming request_id, nothing appended.

    The twelve tests below call the stub with request messages on purpose: what is under test
    is the wire contract (these bytes again, then one field of them changed under the same
    id), whatever client sends them."""
    request_id = rid()
    first = call(with_id(request, request_id))
    after_first = count()
    again = call(with_id(request, request_id))
    assert again == first, "a retry must return the first response"
    assert count() == after_first, "a retry must append nothing"
    with pytest.raises(grpc.RpcError) as refused:
        call(with_id(changed, request_id))
    assert refused.value.code() == EXISTS, refused.value.details()
    assert "request_id" in refused.value.details()
    assert count() == after_first
    return first


# ---------------------------------------------------------------------------- the twelve RPCs


def test_start_optimization(stack: Stack) -> None:
    request = opb.StartOptimizationRequest(
        program="jobs",
        spec=pb.ProgramSpec(module="Predict", signature=SIG),
        optimizer="LabeledFewShot",
        metric="exact_match",
        trainset=examples(ROWS[:12]),
    )
    changed = with_id(request, "")
    changed.trainset.pop()

    def run(r: opb.StartOptimizationRequest) -> list[opb.OptimizationEvent]:
        return list(stack.opt.stub.StartOptimization(r, timeout=120))

    events = assert_idempotent(run, request, changed, stack.head)
    assert events[-1].WhichOneof("kind") == "completed"
    assert len(stack.opt.list_jobs("jobs").jobs) == 1


def test_import_program(stack: Stack) -> None:
    request = opb.ImportProgramRequest(
        program="imported",
        spec=pb.ProgramSpec(module="Predict", signature=SIG),
        state_json=saved_state(stack.tmp, 3),
    )
    changed = with_id(request, "")
    changed.state_json = saved_state(stack.tmp, 4)
    version = assert_idempotent(
        lambda r: stack.opt.stub.ImportProgram(r, timeout=30), request, changed, stack.head
    )
    assert version.version == "1.0.0"
    versions = stack.opt.list_versions("imported").versions
    assert [v.version for v in versions] == ["1.0.0"], "a retried import registered a second version"


def test_set_version_status(stack: Stack) -> None:
    request = opb.SetVersionStatusRequest(program="p", version="1.1.0", status=pb.STAGING, reason="qa")
    changed = with_id(request, "")
    changed.reason = "another reason"
    assert_idempotent(lambda r: stack.opt.stub.SetVersionStatus(r, timeout=10), request, changed, stack.head)


def test_set_alias(stack: Stack) -> None:
    request = opb.SetAliasRequest(program="p", alias="champion", version="1.0.0")
    changed = with_id(request, "")
    changed.version = "1.1.0"
    assert_idempotent(lambda r: stack.opt.stub.SetAlias(r, timeout=10), request, changed, stack.head)


def test_create_deployment(stack: Stack) -> None:
    request = opb.CreateDeploymentRequest(deployment="created", program="p")
    changed = with_id(request, "")
    changed.deployment = "created-too"
    assert_idempotent(lambda r: stack.opt.stub.CreateDeployment(r, timeout=10), request, changed, stack.head)


def test_set_routes(stack: Stack) -> None:
    stack.deployment("routed", {"1.0.0": 1.0})
    request = opb.SetRoutesRequest(
        deployment="routed",
        routes=[pb.Route(version="1.0.0", weight=0.5), pb.Route(version="1.1.0", weight=0.5)],
    )
    changed = with_id(request, "")
    changed.routes[0].weight, changed.routes[1].weight = 0.9, 0.1
    assert_idempotent(lambda r: stack.opt.stub.SetRoutes(r, timeout=10), request, changed, stack.head)


def test_set_routes_with_expected_version(stack: Stack) -> None:
    """A retry of a request that carried expected_version is answered, not ABORTED: the
    stream moved past that version because of the first attempt itself."""
    stack.deployment("expected", {"1.0.0": 1.0})
    version = stack.opt.get_deployment("expected")
    request = opb.SetRoutesRequest(
        deployment="expected",
        routes=[pb.Route(version="1.1.0", weight=1.0)],
        expected_version=version.stream_version,
    )
    changed = with_id(request, "")
    changed.reason = "changed"
    assert_idempotent(lambda r: stack.opt.stub.SetRoutes(r, timeout=10), request, changed, stack.head)


def test_set_capture_policy(stack: Stack) -> None:
    stack.deployment("captured", {"1.0.0": 1.0})
    request = opb.SetCapturePolicyRequest(
        deployment="captured", policy=pb.CapturePolicy(traces=True, fields=["label"], retention_days=7)
    )
    changed = with_id(request, "")
    changed.policy.retention_days = 30
    assert_idempotent(lambda r: stack.opt.stub.SetCapturePolicy(r, timeout=10), request, changed, stack.head)


def test_start_experiment(stack: Stack) -> None:
    stack.deployment("exp-start", {"1.0.0": 1.0})
    request = gpb.StartExperimentRequest(
        deployment="exp-start",
        control="1.0.0",
        treatments=["1.1.0"],
        metric=pb.BINARY,
        min_samples_per_arm=10,
    )
    changed = with_id(request, "")
    changed.alpha = 0.1
    state = assert_idempotent(
        lambda r: stack.gw.stub.StartExperiment(r, timeout=10), request, changed, stack.head
    )
    assert state.experiment.experiment_id


def test_conclude_experiment(stack: Stack) -> None:
    stack.experiment("exp-conclude")
    request = gpb.ConcludeExperimentRequest(
        deployment="exp-conclude", promote_winner=False, reason="keep control"
    )
    changed = with_id(request, "")
    changed.reason = "other"
    state = assert_idempotent(
        lambda r: stack.gw.stub.ConcludeExperiment(r, timeout=10), request, changed, stack.head
    )
    assert not state.HasField("experiment")


def test_stop_experiment(stack: Stack) -> None:
    stack.experiment("exp-stop")
    request = gpb.StopExperimentRequest(deployment="exp-stop", reason="enough")
    changed = with_id(request, "")
    changed.reason = "other"
    assert_idempotent(lambda r: stack.gw.stub.StopExperiment(r, timeout=10), request, changed, stack.head)


def test_start_canary(stack: Stack) -> None:
    stack.deployment("canaried", {"1.0.0": 1.0})
    request = gpb.StartCanaryRequest(
        deployment="canaried", candidate="1.1.0", steps=[10, 100], metric=pb.BINARY
    )
    changed = with_id(request, "")
    changed.steps[0] = 20
    state = assert_idempotent(
        lambda r: stack.gw.stub.StartCanary(r, timeout=10), request, changed, stack.head
    )
    assert state.canary.candidate == "1.1.0"


def test_rollback(stack: Stack) -> None:
    stack.deployment("rolled", {"1.0.0": 1.0})
    before = stack.head()
    stack.opt.set_routes("rolled", {"1.1.0": 1.0})
    stack.synced()
    request = gpb.RollbackRequest(deployment="rolled", to=gpb.AsOf(position=before), reason="undo")
    changed = with_id(request, "")
    changed.to.position = before - 1
    state = assert_idempotent(lambda r: stack.gw.stub.Rollback(r, timeout=10), request, changed, stack.head)
    assert [r.version for r in state.routes] == ["1.0.0"]


def test_record_outcome(stack: Stack) -> None:
    stack.deployment("outcomes", {"1.0.0": 1.0})
    prediction = stack.gw.predict("outcomes", {"text": "refund please"}, "u1")
    request = gpb.RecordOutcomeRequest(prediction_id=prediction.prediction_id, value=1.0)
    changed = with_id(request, "")
    changed.value = 0.0
    assert_idempotent(lambda r: stack.gw.stub.RecordOutcome(r, timeout=10), request, changed, stack.outcomes)
    # without a request_id a second outcome stays refused, naming prediction_id (the stub:
    # the client always sends an id)
    with pytest.raises(grpc.RpcError) as refused:
        stack.gw.stub.RecordOutcome(request, timeout=10)
    assert refused.value.code() == EXISTS and "prediction_id" in refused.value.details()


def test_record_outcome_request_id_on_another_prediction(stack: Stack) -> None:
    stack.deployment("outcomes2", {"1.0.0": 1.0})
    first, second = (stack.gw.predict("outcomes2", {"text": f"ticket {i}"}).prediction_id for i in range(2))
    request_id = rid()
    stack.gw.record_outcome(first, 1, request_id=request_id)
    count = stack.outcomes()
    with pytest.raises(grpc.RpcError) as refused:
        stack.gw.record_outcome(second, 1, request_id=request_id)
    assert refused.value.code() == EXISTS and "request_id" in refused.value.details()
    assert stack.outcomes() == count


def test_the_origin_is_on_the_last_event_of_the_batch(stack: Stack) -> None:
    """CreateDeployment of a program with a production version appends two events; the
    second carries the origin, and its event id is derived from the request id."""
    stack.opt.set_version_status("p", "1.0.0", "production")
    before = stack.head()
    request_id = rid()
    stack.opt.create_deployment("origin", "p", request_id=request_id)
    store = open_store(stack.log)
    try:
        events = store.read(after_position=before)
    finally:
        store.close()
    assert [e.type.rsplit(".", 1)[-1] for e in events] == ["DeploymentCreated", "RoutesSet"]
    created, routes = (decode(e) for e in events)
    assert not created.HasField("origin")  # type: ignore[attr-defined]
    origin = routes.origin  # type: ignore[attr-defined]
    assert (origin.request_id, origin.method) == (request_id, "CreateDeployment")
    assert len(origin.request_sha256) == 64
    from dspyops.commands import request_event_id

    assert events[1].event_id == request_event_id(request_id)


def test_the_same_id_for_another_rpc_is_refused(stack: Stack) -> None:
    request_id = rid()
    stack.opt.set_alias("p", "other", "1.0.0", request_id=request_id)
    head = stack.head()
    with pytest.raises(grpc.RpcError) as refused:
        stack.opt.set_version_status("p", "1.1.0", "development", request_id=request_id)
    assert refused.value.code() == EXISTS
    assert "request_id" in refused.value.details() and "SetAlias" in refused.value.details()
    assert stack.head() == head


# ---------------------------------------------------------------------------- concurrent duplicates


def concurrently(n: int, call: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except grpc.RpcError as exc:
            results[i] = exc.code()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_imports_with_one_request_id_register_one_version(stack: Stack) -> None:
    state, request_id = saved_state(stack.tmp, 5), rid()
    head = stack.head()
    results = concurrently(6, lambda: stack.opt.import_program("raced", SIG, state, request_id=request_id))
    assert all(r == results[0] for r in results), results
    assert stack.head() == head + 1
    versions = stack.opt.list_versions("raced").versions
    assert len(versions) == 1


def test_concurrent_job_submissions_with_one_request_id_start_one_job(stack: Stack) -> None:
    job = {"optimizer": "LabeledFewShot", "trainset": ROWS[:12], "request_id": rid(), "timeout": 120}
    results = concurrently(4, lambda: list(stack.opt.start_optimization("raced-jobs", SIG, **job)))  # type: ignore[arg-type]
    assert all(isinstance(r, list) for r in results), results
    assert {r[0].job_id for r in results} == {results[0][0].job_id}
    assert len(stack.opt.list_jobs("raced-jobs").jobs) == 1


def test_concurrent_set_routes_with_one_request_id_append_once(stack: Stack) -> None:
    stack.deployment("raced-routes", {"1.0.0": 1.0})
    request_id = rid()
    head = stack.head()
    results = concurrently(
        8, lambda: stack.opt.set_routes("raced-routes", {"1.0.0": 0.3, "1.1.0": 0.7}, request_id=request_id)
    )
    assert all(r == results[0] for r in results), results
    assert stack.head() == head + 1


def test_concurrent_gateway_commands_with_one_request_id_append_once(stack: Stack) -> None:
    stack.deployment("raced-exp", {"1.0.0": 1.0})
    request_id = rid()
    head = stack.head()
    results = concurrently(
        8,
        lambda: stack.gw.start_experiment(
            "raced-exp", "1.0.0", ["1.1.0"], min_samples_per_arm=10, request_id=request_id
        ),
    )
    assert all(r == results[0] for r in results), results
    assert stack.head() == head + 1


def test_two_gateway_processes_append_a_duplicate_once(stack: Stack) -> None:
    stack.deployment("two-gateways", {"1.0.0": 1.0})
    env = dict(os.environ)
    args = ["gateway", "--log", stack.log, "--canary-interval", "0"]
    gateways = [ServiceProcess(f"gw{i}", args, stack.tmp, env) for i in range(2)]
    try:
        clients = [GatewayClient(g.address) for g in gateways]
        head = stack.head()
        for client in clients:
            assert wait_until(lambda c=client: c.list_deployment_states().log_position >= head)
        request_id = rid()
        barrier = threading.Barrier(2)
        results: list[Any] = [None, None]

        def send(i: int) -> None:
            barrier.wait()
            try:
                results[i] = clients[i].start_canary(
                    "two-gateways", "1.1.0", steps=[5, 100], request_id=request_id
                )
            except grpc.RpcError as exc:
                results[i] = exc.code()

        threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results[0] == results[1], results
        assert stack.head() == head + 1
        for client in clients:
            client.close()
    finally:
        for g in gateways:
            g.stop()


# ---------------------------------------------------------------------------- retries after a restart


def test_optimizer_retry_after_a_restart_answers_from_the_log(stack: Stack) -> None:
    state, import_id, routes_id = saved_state(stack.tmp, 6), rid(), rid()
    first = stack.opt.import_program("restarted", SIG, state, request_id=import_id)
    stack.deployment("after-restart", {"1.0.0": 1.0})
    first_routes = stack.opt.set_routes("after-restart", {"1.1.0": 1.0}, request_id=routes_id)
    head = stack.head()
    restart_optimizer(stack)
    assert stack.opt.import_program("restarted", SIG, state, request_id=import_id) == first
    assert stack.opt.set_routes("after-restart", {"1.1.0": 1.0}, request_id=routes_id) == first_routes
    assert stack.head() == head


def test_gateway_retry_after_a_restart_answers_from_the_log(stack: Stack) -> None:
    stack.deployment("gw-restart", {"1.0.0": 1.0})
    experiment_id, outcome_id = rid(), rid()

    def start() -> gpb.DeploymentState:
        return stack.gw.start_experiment(
            "gw-restart", "1.0.0", ["1.1.0"], min_samples_per_arm=10, request_id=experiment_id
        )

    first = start()
    prediction = stack.gw.predict("gw-restart", {"text": "where is my parcel"}, "u7")
    first_outcome = stack.gw.record_outcome(prediction.prediction_id, 1.0, request_id=outcome_id)
    head, outcomes = stack.head(), stack.outcomes()
    restart_gateway(stack)
    assert start() == first
    assert stack.gw.record_outcome(prediction.prediction_id, 1.0, request_id=outcome_id) == first_outcome
    assert (stack.head(), stack.outcomes()) == (head, outcomes)


def test_start_optimization_retry_after_a_restart_streams_the_job_from_the_log(stack: Stack) -> None:
    job = {"optimizer": "LabeledFewShot", "trainset": ROWS[:12], "request_id": rid(), "timeout": 120}
    first = list(stack.opt.start_optimization("restarted-jobs", SIG, **job))  # type: ignore[arg-type]
    head = stack.head()
    restart_optimizer(stack)
    again = list(stack.opt.start_optimization("restarted-jobs", SIG, **job))  # type: ignore[arg-type]
    # what WatchJob from 0 gives for that job: its logged events, in order
    watched = list(stack.opt.watch_job(first[0].job_id, timeout=30))
    assert again == watched
    logged = [e for e in first if e.WhichOneof("kind") != "progress"]  # progress ticks are not logged
    assert [e.WhichOneof("kind") for e in again] == [e.WhichOneof("kind") for e in logged]
    assert again[0].accepted == first[0].accepted and again[-1].completed == first[-1].completed
    assert stack.head() == head


@pytest.mark.parametrize("bad", ["x" * 5000, "bad\nid", " padded "])
def test_a_malformed_request_id_is_refused_naming_it(stack: Stack, bad: str) -> None:
    head, outcomes = stack.head(), stack.outcomes()
    calls = [
        lambda: stack.opt.set_alias("p", "bad", "1.0.0", request_id=bad),
        lambda: stack.gw.stop_experiment("x", request_id=bad),
        lambda: stack.gw.record_outcome("x", 1, request_id=bad),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith("request_id:"), refused.value.details()
        assert len(refused.value.details()) < 400  # a short prefix of the value at most
    assert (stack.head(), stack.outcomes()) == (head, outcomes)
