"""Fuzzing (hypothesis): request validation, registry commands and the fold answer any input
with a domain error or a result, never another exception; raw garbage sent to a live server
gets an error status and the server keeps serving."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dspyops.client import OptimizerClient
from dspyops.errors import DspyopsError
from dspyops.eventlog import open_store
from dspyops.ledger import Ledger
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.jobs.requests import validate_start
from optimizer_svc.registry.commands import Registry, RouteInput
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread

texts = st.text(max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers(-(2**40), 2**40) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def start_requests(draw: st.DrawFn) -> opb.StartOptimizationRequest:
    fields = st.dictionaries(st.sampled_from(["text", "label", "x", ""]) | texts, texts, max_size=3)
    request = opb.StartOptimizationRequest(
        program=draw(st.sampled_from(["tickets", ""]) | texts),
        spec=pb.ProgramSpec(
            module=draw(st.sampled_from(["Predict", "ChainOfThought", ""]) | texts),
            signature=draw(st.sampled_from(["text -> label", "a, b -> c: int", "->", "x -> "]) | texts),
        ),
        optimizer=draw(st.sampled_from(["BootstrapFewShot", "MIPROv2", "LabeledFewShot", "GEPA"]) | texts),
        metric=draw(st.sampled_from(["exact_match", "f1", ""]) | texts),
        trainset=[
            pb.Example(fields=f, input_keys=draw(st.lists(texts, max_size=2)))
            for f in draw(st.lists(fields, max_size=4))
        ],
        lm=pb.LMConfig(
            model=draw(st.sampled_from(["", "offline/nearest-demo"]) | texts),
            temperature=draw(st.floats(allow_nan=True, allow_infinity=True)),
            max_tokens=draw(st.integers(-5, 10**6)),
            api_key_env=draw(st.sampled_from(["", "X"]) | texts),
        ),
    )
    params = Struct()
    params.update(
        draw(
            st.dictionaries(
                st.sampled_from(["k", "auto", "num_trials", "max_bootstrapped_demos"]) | texts,
                json_values,
                max_size=3,
            )
        )
    )
    request.params.CopyFrom(params)
    if draw(st.booleans()):
        request.min_score = draw(st.floats(allow_nan=True, allow_infinity=True))
    return request


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start_requests())
def test_start_requests_validate_or_name_the_problem(request: opb.StartOptimizationRequest) -> None:
    try:
        validate_start(request)
    except DspyopsError as exc:
        assert exc.field or exc.problem


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    store = open_store(str(tmp_path_factory.mktemp("fuzz") / "log.db"))
    registry = Registry(Ledger(store))
    for _ in range(2):
        registry.register_version(
            pb.VersionRegistered(
                program="p",
                spec=pb.ProgramSpec(module="Predict", signature="a -> b"),
                artifact_digest="0" * 64,
            ),
            promote=False,
        )
    registry.create_deployment("web", "p")
    yield registry
    store.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(["status", "alias", "routes", "deploy"]),
    st.sampled_from(["p", "web", "ghost", ""]) | texts,
    st.lists(
        st.tuples(
            st.sampled_from(["1.0.0", "1.1.0", "@x"]) | texts,
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-1, 3),
        ),
        max_size=3,
    ),
    st.integers(-3, 10),
)
def test_registry_commands_fail_cleanly_and_append_nothing(
    registry: Registry, command: str, name: str, routes: list, number: int
) -> None:
    head = registry.ledger.store.head()
    try:
        if command == "status":
            registry.set_status(name, routes[0][0] if routes else "", number, "fuzz")
        elif command == "alias":
            registry.set_alias(name, name, routes[0][0] if routes else "")
        elif command == "routes":
            registry.set_routes(
                name, [RouteInput(v, w, r) for v, w, r in routes], number if number >= 0 else None, "fuzz"
            )
        else:
            registry.create_deployment(name, name)
    except DspyopsError:
        assert registry.ledger.store.head() == head
    assert registry.ledger.store.verify().ok


def test_raw_garbage_gets_a_status_and_the_server_keeps_serving(tmp_path: Path) -> None:
    server = ServerThread(
        lambda: start(OptimizerConfig(log=str(tmp_path / "log.db"), data_dir=tmp_path / "data"))
    )
    rng = random.Random(5)
    methods = [m.name for m in opb.DESCRIPTOR.services_by_name["Optimizer"].methods]
    try:
        with grpc.insecure_channel(server.address) as channel:
            for name in methods:
                method = opb.DESCRIPTOR.services_by_name["Optimizer"].methods_by_name[name]
                stream = method.server_streaming
                for _ in range(15):
                    garbage = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
                    path = f"/dspyops.v1.Optimizer/{name}"
                    call = (channel.unary_stream if stream else channel.unary_unary)(path)
                    try:
                        result = call(garbage, timeout=5)
                        if stream:
                            for _ in result:
                                break
                    except grpc.RpcError as exc:
                        assert exc.code() != grpc.StatusCode.UNAVAILABLE, name
        with OptimizerClient(server.address) as client:
            assert client.read_log(0, 1).head == client.verify_log().checked
            assert client.list_programs().programs == []
    finally:
        server.stop()
