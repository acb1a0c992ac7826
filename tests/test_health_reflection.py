"""Both servers answer grpc.health.v1 and list their services through reflection."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.harness import ServerThread


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
