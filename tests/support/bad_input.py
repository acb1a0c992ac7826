"""What the bad-input tests of both services share: the two servers they run against
(module-scoped), request builders, and the check every row gets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import gateway_pb2 as gpb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()[:12]
BAD = grpc.StatusCode.INVALID_ARGUMENT
DENIED = grpc.StatusCode.PERMISSION_DENIED
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
AFTER_MAX = 2**64 - 1  # a valid uint64 on the wire, beyond any SQLite position
BEYOND_TIMESTAMP = Timestamp(seconds=253402300800 + 10)  # after 9999-12-31: not a valid Timestamp


@dataclass(frozen=True)
class Servers:
    opt: OptimizerClient
    gw: GatewayClient
    v1: str  # the first registered version of "tickets" (served by "web")
    v2: str  # a second one, so experiments and canaries have something to compare
    prediction_id: str


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("bad-input")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start(OptimizerConfig(log=log, data_dir=tmp / "data")))
    with OptimizerClient(optimizer.address) as opt:
        for k in (4, 8):  # two artifacts: two versions
            events = list(
                opt.start_optimization(
                    "tickets", "text -> label", trainset=ROWS, optimizer="LabeledFewShot", params={"k": k}
                )
            )
            assert events[-1].WhichOneof("kind") == "completed"
        v1, v2 = sorted(v.version for v in opt.list_versions("tickets").versions)
        opt.create_deployment("web", "tickets")
        deployment = opt.set_routes("web", {v1: 1.0})
        # a learning optimizer (loop off): SetLearningPolicy asks it what optimizers it runs
        config = GatewayConfig(
            log=log, canary_interval=0, learning_interval=0, learning_optimizer=optimizer.address
        )
        gateway = ServerThread(lambda: start_gateway(config))
        with GatewayClient(gateway.address) as gw:
            assert wait_until(lambda: gw.list_deployment_states().log_position >= deployment.log_position)
            prediction_id = gw.predict("web", {"text": "my invoice is wrong"}, "user-1").prediction_id
            yield Servers(opt, gw, v1, v2, prediction_id)
        gateway.stop()
    optimizer.stop()


def start_request(**changes: object) -> dict[str, object]:
    """The client's arguments of a good StartOptimization, with `changes`."""
    return {
        "program": "tickets2",
        "signature": "text -> label",
        "optimizer": "BootstrapFewShot",
        "metric": "exact_match",
        "trainset": ROWS,
        **changes,
    }


def optimize(arguments: dict[str, object]) -> Callable[[Servers], object]:
    return lambda s: list(s.opt.start_optimization(**arguments))  # type: ignore[arg-type]


def experiment(s: Servers, **changes: object) -> gpb.DeploymentState:
    """StartExperiment on "web" with v1 as control and v2 as treatment, plus `changes`."""
    fields: dict[str, object] = {"deployment": "web", "control": s.v1, "treatments": [s.v2], **changes}
    return s.gw.start_experiment(**fields)  # type: ignore[arg-type]


def canary(s: Servers, **changes: object) -> gpb.DeploymentState:
    fields: dict[str, object] = {"deployment": "web", "candidate": s.v2, **changes}
    return s.gw.start_canary(**fields)  # type: ignore[arg-type]


def evaluate(**fields: object) -> Callable[[Servers], object]:
    return lambda s: list(s.opt.evaluate(**fields))  # type: ignore[arg-type]


def read_after(after: int) -> Callable[[Servers], object]:
    return lambda s: s.opt.read_log(after)


def subscribe_after(after: int) -> Callable[[Servers], object]:
    return lambda s: next(iter(s.opt.subscribe_log(after, timeout=10)))


def predict(**fields: object) -> Callable[[Servers], object]:
    arguments: dict[str, object] = {"deployment": "web", "inputs": {"text": "hi"}, **fields}
    return lambda s: s.gw.predict(**arguments)  # type: ignore[arg-type]


def rollback(**fields: object) -> Callable[[Servers], object]:
    arguments: dict[str, object] = {"to": gpb.AsOf(), **fields}  # an empty AsOf: no point given
    return lambda s: s.gw.rollback("web", **arguments)  # type: ignore[arg-type]


Case = tuple[str, str, Callable[[Servers], object], grpc.StatusCode, str]


def check_refused(
    servers: Servers, rpc: str, call: Callable[[Servers], object], code: grpc.StatusCode, field: str
) -> None:
    """The right status naming the field, nothing appended, and both servers still serving."""
    head = servers.opt.read_log(0, 1).head
    with pytest.raises(grpc.RpcError) as err:
        call(servers)
    assert err.value.code() == code, f"{rpc}: {err.value.code()} {err.value.details()}"
    assert field in str(err.value.details()), err.value.details()
    assert servers.opt.read_log(0, 1).head == head, f"a refused {rpc} appended to the log"
    # both still serving
    assert servers.opt.list_programs().programs[0].program == "tickets"
    assert servers.gw.predict("web", {"text": "my invoice is wrong"}, "user-1").version == servers.v1
