"""The client against the contract: one method per RPC, named for it; every request field a
parameter (or filled by the friendly parameters its method declares); and, sent through a
real channel to a peer that records what arrives, every parameter reaching its field.

The peer is a generic gRPC server built from the descriptors, not a dspyops service: what
is under test is what the client puts on the wire (the services' handling of each field has
its own tests through the real servers)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from concurrent import futures
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2, optimizer_pb2
from dspyops.proto import optimizer_pb2 as opb

SERVICES: dict[type, ServiceDescriptor] = {
    OptimizerClient: optimizer_pb2.DESCRIPTOR.services_by_name["Optimizer"],
    GatewayClient: gateway_pb2.DESCRIPTOR.services_by_name["Gateway"],
}
# parameters that are not a field of their own: the deadline, the input keys rows and path
# refs are sent with (they land inside Example / DatasetRef messages), and the other replicas
# a watch goes on at (dspyops/client/failover.py; tests/e2e/test_watch_across_replicas.py)
EXTRAS = {"timeout", "input_keys", "targets"}
T0 = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
LM = pb.LMConfig(connection="c", model="m")

# one call per method, every parameter given a value that is not its default
CALLS: dict[str, dict[str, Any]] = {
    "start_optimization": dict(
        program="p",
        signature="a -> b",
        module="ChainOfThought",
        instructions="be brief",
        spec=pb.ProgramSpec(module="ChainOfThought", signature="a -> b", instructions="be brief"),
        lm=LM,
        optimizer="MIPROv2",
        params={"k": 4},
        metric="f1",
        trainset=[{"a": "1", "b": "2"}],
        valset=[{"a": "3", "b": "4"}],
        min_score=0.5,
        auto_promote=True,
        prompt_lm=LM,
        preset="quick",
        must_beat="@champion",
        min_improvement=0.01,
        budget=pb.Budget(max_lm_calls=10),
        trainset_ref="train.jsonl",
        valset_ref=opb.DatasetRef(path="val.jsonl"),
        val_fraction=0.25,
        split_seed=7,
        input_keys=["a"],
        request_id="rid",
        timeout=10,
        max_attempts=3,
        base_trainset_job="job1",
        learning=pb.JobLearning(deployment="d", run_id="run-1"),
    ),
    "watch_job": dict(
        job_id="j", after_sequence=3, after_stream_version=5, targets=["127.0.0.1:9"], timeout=10
    ),
    "cancel_job": dict(job_id="j", reason="why"),
    "get_job": dict(job_id="j"),
    "list_jobs": dict(program="p"),
    "list_optimizers": {},
    "list_connections": {},
    "list_programs": {},
    "list_versions": dict(program="p"),
    "get_version": dict(program="p", version="@champion"),
    "set_version_status": dict(program="p", version="1.0.0", status="staging", reason="r", request_id="rid"),
    "set_alias": dict(program="p", alias="champion", version="1.0.0", request_id="rid"),
    "import_program": dict(
        program="p",
        signature="a -> b",
        state_json=b"{}",
        module="ChainOfThought",
        instructions="i",
        lm=LM,
        request_id="rid",
        spec=pb.ProgramSpec(module="pkg.mod:Cls", init_args="{}"),  # replaces module/signature/instructions
    ),
    "export_version": dict(program="p", version="1.0.0"),
    "register_corpus": dict(
        corpus="c",
        documents=[{"id": "1", "text": "t"}],
        source="docs.jsonl",
        text_field="body",
        id_field="slug",
        request_id="rid",
    ),
    "list_corpora": {},
    "create_deployment": dict(deployment="d", program="p", request_id="rid"),
    "set_routes": dict(
        deployment="d", routes={"1.0.0": 1.0}, expected_version=2, reason="r", request_id="rid"
    ),
    "set_capture_policy": dict(
        deployment="d",
        traces=True,
        inputs_outputs=True,
        fields=["label"],
        retention_days=30,
        expected_version=2,
        reason="r",
        request_id="rid",
    ),
    "get_deployment": dict(deployment="d"),
    "list_deployments": {},
    "evaluate": dict(
        program="p",
        version="1.0.0",
        spec=pb.ProgramSpec(signature="a -> b"),
        state_json=b"{}",
        lm=LM,
        dataset=[{"a": "1", "b": "2"}],
        dataset_ref="d.jsonl",
        metric="f1",
        num_threads=2,
        include_results=True,
        input_keys=["a"],
        timeout=10,
    ),
    "compare_versions": dict(
        program="p",
        a="1.0.0",
        b="1.1.0",
        dataset=[{"a": "1", "b": "2"}],
        dataset_ref="d.jsonl",
        metric="f1",
        input_keys=["a"],
        timeout=10,
    ),
    "read_log": dict(
        after=1, limit=5, stream_prefix="deployment-", types=["RoutesSet"], actor="alice", since=T0, until=T0
    ),
    "subscribe_log": dict(
        after=1,
        stream_prefix="deployment-",
        types=["RoutesSet"],
        actor="alice",
        since=T0,
        until=T0,
        timeout=10,
    ),
    "verify_log": {},
    "predict": dict(deployment="d", inputs={"a": "1"}, routing_key="u1", as_of=T0, include_trace=True),
    "record_outcome": dict(prediction_id="x", value=1.0, expected={"b": "2"}, request_id="rid"),
    "export_feedback": dict(
        deployment="d", since=T0, until=datetime(2026, 11, 23, tzinfo=UTC), limit=10, page_token="t"
    ),
    "explain_prediction": dict(prediction_id="x", routing_key="u1"),
    "get_deployment_state": dict(deployment="d", as_of=7),
    "list_deployment_states": {},
    "get_shadow_results": dict(deployment="d"),
    "rollback": dict(deployment="d", to=7, reason="r", expected_version=3, request_id="rid"),
    "start_experiment": dict(
        deployment="d",
        control="1.0.0",
        treatments=["1.1.0"],
        weights=[0.5, 0.5],
        metric="continuous",
        alpha=0.01,
        min_samples_per_arm=5,
        sequential=True,
        hash_version=1,
        seed="s",
        coverage=0.5,
        expected_version=3,
        reason="r",
        request_id="rid",
    ),
    "get_experiment_results": dict(deployment="d", source="evaluator:e", include_history=True),
    "conclude_experiment": dict(deployment="d", promote_winner=True, reason="r", request_id="rid"),
    "stop_experiment": dict(deployment="d", reason="r", request_id="rid"),
    "start_canary": dict(
        deployment="d",
        candidate="1.1.0",
        steps=[10.0, 100.0],
        min_samples_per_step=5,
        metric="continuous",
        alpha=0.01,
        max_error_rate=0.02,
        max_latency_p95_ms=800.0,
        max_cost_per_prediction=0.003,
        step_seconds=3600,
        expected_version=3,
        reason="r",
        request_id="rid",
    ),
    "evaluate_canary": dict(deployment="d"),
    "set_drift_monitor": dict(
        deployment="d",
        enabled=True,
        metric="continuous",
        alpha=0.01,
        reference="window",
        reference_window=300,
        min_outcomes=50,
        max_error_rate=0.05,
        max_latency_p95_ms=800.0,
        max_cost_per_prediction=0.002,
        expected_version=3,
        reason="r",
        request_id="rid",
    ),
    "get_drift_status": dict(deployment="d"),
    "set_evaluator": dict(
        deployment="d",
        name="judge",
        share=0.25,
        metric="exact_match",
        judge_program="j",
        judge_version="1.0.0",
        max_calls_per_hour=60,
        max_cost_per_hour=0.5,
        enabled=True,
        expected_version=3,
        reason="r",
        request_id="rid",
    ),
    "list_evaluators": dict(deployment="d"),
    "set_learning_policy": dict(
        deployment="d",
        enabled=True,
        optimizer="LabeledFewShot",
        preset="quick",
        params={"k": 4},
        min_new_examples=50,
        on_drift=True,
        holdout_fraction=0.25,
        min_improvement=0.02,
        canary_steps=[10.0, 50.0, 100.0],
        step_seconds=600,
        max_error_rate=0.05,
        max_latency_p95_ms=900.0,
        max_cost_per_prediction=0.004,
        min_samples_per_step=30,
        min_interval_seconds=3600,
        budget=pb.Budget(max_lm_calls=500, max_cost_usd=2.0),
        expected_version=3,
        reason="r",
        request_id="rid",
    ),
    "pause_learning": dict(deployment="d", paused=True, reason="r", request_id="rid"),
    "get_learning_status": dict(deployment="d"),
}


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def rpc_methods(client: type) -> dict[str, Callable[..., Any]]:
    return {
        getattr(method, "__rpc__"): method  # noqa: B009
        for _, method in inspect.getmembers(client, inspect.isfunction)
        if hasattr(method, "__rpc__")
    }


@pytest.mark.parametrize("client", list(SERVICES), ids=lambda c: c.__name__)
def test_one_method_per_rpc_named_for_it(client: type) -> None:
    methods = rpc_methods(client)
    assert sorted(methods) == sorted(SERVICES[client].methods_by_name)
    for rpc, method in methods.items():
        assert method.__name__ == snake(rpc)
        doc = inspect.getdoc(method) or ""
        assert doc.startswith(f"{rpc}: "), f"{method.__name__}'s docstring does not start with its RPC"
        assert f".{method.__name__}(" in doc, f"{method.__name__}'s docstring has no example call"


@pytest.mark.parametrize("client", list(SERVICES), ids=lambda c: c.__name__)
def test_every_request_field_is_a_parameter(client: type) -> None:
    for rpc, method in rpc_methods(client).items():
        fields = set(SERVICES[client].methods_by_name[rpc].input_type.fields_by_name)
        params = set(inspect.signature(method).parameters) - {"self"}
        covered_by: dict[str, tuple[str, ...]] = getattr(method, "__covered_by__")  # noqa: B009
        for field in fields:
            reach = covered_by.get(field, (field,))
            assert set(reach) <= params, f"{rpc}.{field} has no parameter in {method.__name__}"
        friendly = {p for names in covered_by.values() for p in names}
        stray = params - fields - friendly - EXTRAS
        assert not stray, f"{method.__name__} takes {stray}, which fill no field of {rpc}'s request"


class Recorder:
    """A gRPC server answering every RPC of both services with an empty reply (a stream: one
    empty message), keeping each request as it arrived."""

    def __init__(self) -> None:
        self.requests: dict[str, Any] = {}  # the last request of each RPC, as its own message type
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        for service in SERVICES.values():
            handlers = {m.name: self._handler(m) for m in service.methods}
            self.server.add_generic_rpc_handlers(
                [grpc.method_handlers_generic_handler(service.full_name, handlers)]
            )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _handler(self, method: MethodDescriptor) -> grpc.RpcMethodHandler:
        request_class = message_factory.GetMessageClass(method.input_type)
        reply_class = message_factory.GetMessageClass(method.output_type)

        def unary(request: Message, context: grpc.ServicerContext) -> Message:
            self.requests[method.name] = request
            return reply_class()

        def stream(request: Message, context: grpc.ServicerContext) -> Iterator[Message]:
            self.requests[method.name] = request
            yield reply_class()

        if method.server_streaming:
            return grpc.unary_stream_rpc_method_handler(
                stream, request_class.FromString, reply_class.SerializeToString
            )
        return grpc.unary_unary_rpc_method_handler(
            unary, request_class.FromString, reply_class.SerializeToString
        )


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    peer = Recorder()
    yield peer
    peer.server.stop(0)


def unset_fields(request: Message) -> list[str]:
    present = {field.name for field, _ in request.ListFields()}
    return [field.name for field in request.DESCRIPTOR.fields if field.name not in present]


@pytest.mark.parametrize("client", list(SERVICES), ids=lambda c: c.__name__)
def test_every_parameter_reaches_its_field_on_the_wire(client: type, recorder: Recorder) -> None:
    with client(f"127.0.0.1:{recorder.port}", timeout=10) as connected:
        for rpc, method in rpc_methods(client).items():
            kwargs = CALLS[method.__name__]
            params = set(inspect.signature(method).parameters) - {"self"}
            assert set(kwargs) == params, f"CALLS[{method.__name__!r}] misses {params - set(kwargs)}"
            answer = getattr(connected, method.__name__)(**kwargs)
            descriptor = SERVICES[client].methods_by_name[rpc]
            reply_name = descriptor.output_type.full_name
            if descriptor.server_streaming:  # the iterator of messages
                replies = list(answer)
                assert [r.DESCRIPTOR.full_name for r in replies] == [reply_name], rpc
            else:  # the response message as it is
                assert answer.DESCRIPTOR.full_name == reply_name, rpc
            request = recorder.requests[rpc]
            assert unset_fields(request) == [], f"{method.__name__} left fields of {rpc} unset"


def test_friendly_forms_arrive_as_their_messages(recorder: Recorder) -> None:
    with OptimizerClient(f"127.0.0.1:{recorder.port}", timeout=10) as opt:
        list(opt.start_optimization(**CALLS["start_optimization"]))
    request = recorder.requests["StartOptimization"]
    assert request.spec == pb.ProgramSpec(
        module="ChainOfThought", signature="a -> b", instructions="be brief"
    )
    assert list(request.trainset) == [pb.Example(fields={"a": "1", "b": "2"}, input_keys=["a"])]
    assert request.trainset_ref == opb.DatasetRef(path="train.jsonl", input_keys=["a"])
    assert request.params["k"] == 4
    with GatewayClient(f"127.0.0.1:{recorder.port}", timeout=10) as gw:
        gw.predict(**CALLS["predict"])
        gw.get_deployment_state(**CALLS["get_deployment_state"])
    assert recorder.requests["Predict"].as_of.time.ToDatetime(tzinfo=UTC) == T0
    assert recorder.requests["GetDeploymentState"].as_of.position == 7
    with GatewayClient(f"127.0.0.1:{recorder.port}", timeout=10) as gw:
        gw.start_experiment(**{**CALLS["start_experiment"], "sequential": False})
    assert recorder.requests["StartExperiment"].sequential is False
