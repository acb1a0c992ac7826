"""Both servers answer grpc.health.v1 and list their services through reflection, v1alpha
and v1 (a client that speaks only grpc.reflection.v1 gets answers, not UNIMPLEMENTED)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from dspyops.auth import hash_token
from dspyops.client import OptimizerClient
from dspyops.rpc import Security
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("health")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
    gateway = ServerThread(lambda: start_gateway(GatewayConfig(log=log)))
    yield {"dspyops.v1.Optimizer": optimizer.address, "dspyops.v1.Gateway": gateway.address}
    gateway.stop()
    optimizer.stop()


@pytest.mark.parametrize("service", ["dspyops.v1.Optimizer", "dspyops.v1.Gateway"])
def test_health_and_reflection(servers: dict[str, str], service: str) -> None:
    with grpc.insecure_channel(servers[service]) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", service):
            status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as err:
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        response = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=5)))
        names = {s.name for s in response.list_services_response.service}
        assert {service, "grpc.health.v1.Health"} <= names


# ------------------------------------------------------------------ reflection v1

V1_METHOD = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
V1_SERVICE = "grpc.reflection.v1.ServerReflection"


@pytest.fixture(scope="module", params=["open", "tokens"])
def reflected(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Both servers, without auth and with a tokens file (reflection stays open: no token sent)."""
    tmp = tmp_path_factory.mktemp(f"reflection-{request.param}")
    security = Security()
    if request.param == "tokens":
        (tmp / "tokens").write_text(f"{hash_token('secret-admin')} admin admin-user\n")
        security = Security(tokens_file=str(tmp / "tokens"))
    log = str(tmp / "log.db")
    optimizer = ServerThread(
        lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data", security=security))
    )
    gateway = ServerThread(
        lambda: start_gateway(GatewayConfig(log=log, canary_interval=0, security=security))
    )
    yield {
        "mode": request.param,
        "dspyops.v1.Optimizer": optimizer.address,
        "dspyops.v1.Gateway": gateway.address,
    }
    gateway.stop()
    optimizer.stop()


def ask_v1(address: str, *requests: reflection_pb2.ServerReflectionRequest) -> list:
    """A client that speaks only grpc.reflection.v1: it calls the v1 method. Its messages are
    v1's, which have v1alpha's fields and numbers (the protocols differ only in package), so
    v1alpha's classes encode and decode them."""
    with grpc.insecure_channel(address) as channel:
        call = channel.stream_stream(
            V1_METHOD,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        return list(call(iter(requests), timeout=5))


def files_of(
    response: reflection_pb2.ServerReflectionResponse,
) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    assert response.WhichOneof("message_response") == "file_descriptor_response", response
    files = {}
    for raw in response.file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        files[proto.name] = proto
    return files


@pytest.mark.parametrize("service", ["dspyops.v1.Optimizer", "dspyops.v1.Gateway"])
def test_a_v1_only_client_lists_services_and_resolves_symbols(reflected: dict, service: str) -> None:
    listed, ours, health, itself = ask_v1(
        reflected[service],
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=service),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="grpc.health.v1.Health"),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=V1_SERVICE),
    )
    names = {s.name for s in listed.list_services_response.service}
    assert {service, "grpc.health.v1.Health", V1_SERVICE, "grpc.reflection.v1alpha.ServerReflection"} <= names

    package, _, name = service.rpartition(".")
    declaring = [
        f for f in files_of(ours).values() if f.package == package and name in {s.name for s in f.service}
    ]
    assert len(declaring) == 1 and declaring[0].name.startswith("dspyops/v1/")
    assert any(f.package == "grpc.health.v1" for f in files_of(health).values())

    # the v1 reflection service is itself described: a v1 client can bootstrap from it
    v1 = files_of(itself)["grpc/reflection/v1/reflection.proto"]
    assert v1.package == "grpc.reflection.v1"
    (method,) = next(s for s in v1.service if s.name == "ServerReflection").method
    assert (method.name, method.client_streaming, method.server_streaming) == (
        "ServerReflectionInfo",
        True,
        True,
    )
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"
    assert method.output_type == ".grpc.reflection.v1.ServerReflectionResponse"
    # ... with v1alpha's messages, field for field (names, numbers, types, oneofs), in v1's package
    alpha = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(alpha)
    assert [m.name for m in v1.message_type] == [m.name for m in alpha.message_type]
    for ours_m, theirs in zip(v1.message_type, alpha.message_type, strict=True):
        assert [(f.name, f.number, f.type, f.label, f.oneof_index) for f in ours_m.field] == [
            (f.name, f.number, f.type, f.label, f.oneof_index) for f in theirs.field
        ], ours_m.name
        assert [f.type_name.replace(".v1alpha.", ".v1.") for f in theirs.field] == [
            f.type_name for f in ours_m.field
        ]
    assert v1.options.java_package == "io.grpc.reflection.v1"
    assert v1.options.go_package == "google.golang.org/grpc/reflection/grpc_reflection_v1"


def test_v1_errors_come_back_as_error_responses(reflected: dict) -> None:
    (missing,) = ask_v1(
        reflected["dspyops.v1.Optimizer"],
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
    )
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert missing.original_request.file_containing_symbol == "no.such.Symbol"


def test_reflection_is_open_while_the_services_keep_their_tokens(reflected: dict) -> None:
    """The fixture's 'tokens' servers answered reflection above without a token; their own
    RPCs still refuse a caller without one."""
    with OptimizerClient(reflected["dspyops.v1.Optimizer"], timeout=5) as anonymous:
        if reflected["mode"] == "open":
            assert anonymous.list_programs().programs == []
        else:
            with pytest.raises(grpc.RpcError) as err:
                anonymous.list_programs()
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
