"""Canary rollouts through real servers: advance on a candidate that is not worse, roll back
a worse one, decide once when two gateways race, and run by themselves on a gateway's loop."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()
TRAIN, VAL = ROWS[:60], ROWS[60:]


@dataclass
class Stack:
    opt: OptimizerClient
    manual: list[GatewayClient]  # canary loop off: decisions only through EvaluateCanary
    log: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("canary")
    log = str(tmp / "log.db")
    servers = [ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))]
    opt = OptimizerClient(servers[0].address)
    for optimizer, params in (
        ("BootstrapFewShot", {"max_bootstrapped_demos": 0, "max_labeled_demos": 0}),
        ("LabeledFewShot", {"k": 16}),
    ):
        events = list(
            opt.start_optimization(
                "tickets", "text -> label", trainset=TRAIN, valset=VAL, optimizer=optimizer, params=params
            )
        )
        assert events[-1].WhichOneof("kind") == "completed"
    for name, version in (("promote", "1.0.0"), ("reject", "1.1.0"), ("race", "1.0.0"), ("auto", "1.0.0")):
        opt.create_deployment(name, "tickets")
        opt.set_routes(name, {version: 1.0})
    servers += [
        ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0))) for _ in range(2)
    ]
    clients = [GatewayClient(s.address) for s in servers[1:]]
    head = opt.read_log(0, 1).head
    for client in clients:
        assert wait_until(lambda c=client: c.list_deployment_states().log_position >= head)
    yield Stack(opt, clients, log)
    for client in clients:
        client.close()
    opt.close()
    for server in reversed(servers):
        server.stop()


def traffic(gw: GatewayClient, deployment: str, users: range) -> None:
    for i in users:
        row = VAL[i % len(VAL)]
        response = gw.predict(deployment, {"text": row["text"]}, routing_key=f"{deployment}-{i}")
        gw.record_outcome(response.prediction_id, float(response.outputs["label"].lower() == row["label"]))


def start(gw: GatewayClient, deployment: str, candidate: str, steps: list[float]) -> gpb.DeploymentState:
    return gw.start_canary(deployment, candidate, steps=steps, min_samples_per_step=15)


def evaluate(gw: GatewayClient, deployment: str) -> gpb.CanaryStatus:
    return gw.evaluate_canary(deployment)


def test_a_better_candidate_advances_step_by_step_and_is_promoted(stack: Stack) -> None:
    gw = stack.manual[0]
    state = start(gw, "promote", "1.1.0", [20, 50, 100])
    assert state.canary.baseline == "1.0.0" and state.canary.candidate == "1.1.0" and state.canary.step == 0
    assert evaluate(gw, "promote").action == "wait"
    traffic(gw, "promote", range(0, 150))
    advanced = evaluate(gw, "promote")
    assert advanced.action == "advanced", advanced.reason
    assert advanced.state.canary.step == 1 and not advanced.check.worse
    assert advanced.check.candidate_mean > advanced.check.baseline_mean
    assert evaluate(gw, "promote").action == "wait"  # the new step starts counting afresh
    traffic(gw, "promote", range(150, 230))
    promoted = evaluate(gw, "promote")
    assert promoted.action == "promoted", promoted.reason
    assert [(r.version, r.weight) for r in promoted.state.routes] == [("1.1.0", 1.0)]
    assert not promoted.state.HasField("canary")
    events = [e for e in stack.opt.read_log(0, 1000, "deployment-promote").events]
    ended = events[-1].payload.canary_ended
    assert ended.promoted and ended.check.candidate_n >= 15 and "promote" in ended.reason


def test_a_worse_candidate_is_rolled_back_automatically_with_its_statistics(stack: Stack) -> None:
    gw = stack.manual[1]
    start(gw, "reject", "1.0.0", [20, 100])
    traffic(gw, "reject", range(0, 150))
    status = evaluate(gw, "reject")
    assert status.action == "rolled_back", status.reason
    assert status.check.worse and status.check.p_value < 0.05
    assert [(r.version, r.weight) for r in status.state.routes] == [("1.1.0", 1.0)]
    last = stack.opt.read_log(0, 1000, "deployment-reject").events[-1].payload.canary_ended
    assert not last.promoted and "significantly worse" in last.reason


def test_racing_gateways_append_one_decision(stack: Stack) -> None:
    a, b = stack.manual
    start(a, "race", "1.1.0", [20, 50, 100])
    traffic(a, "race", range(0, 150))
    assert wait_until(
        lambda: b.get_deployment_state("race").log_position >= a.get_deployment_state("race").log_position
    )
    barrier = threading.Barrier(2)
    actions: list[str] = []

    def check(gw: GatewayClient) -> None:
        barrier.wait()
        actions.append(evaluate(gw, "race").action)

    threads = [threading.Thread(target=check, args=(gw,)) for gw in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(actions) == ["advanced", "wait"]
    advances = [
        e for e in stack.opt.read_log(0, 1000, "deployment-race").events if e.type.endswith("CanaryAdvanced")
    ]
    assert len(advances) == 1


def test_the_gateway_loop_runs_a_canary_to_the_end(stack: Stack) -> None:
    server = ServerThread(lambda: start_gateway(GatewayConfig(log=stack.log, canary_interval=0.1)))
    try:
        with GatewayClient(server.address) as auto:
            start(auto, "auto", "1.1.0", [25, 100])
            traffic(auto, "auto", range(0, 120))
            assert wait_until(lambda: not auto.get_deployment_state("auto").HasField("canary"), 10)
            assert [r.version for r in auto.get_deployment_state("auto").routes] == ["1.1.0"]
    finally:
        server.stop()


@pytest.mark.parametrize(
    "request_,code,field",
    [
        (
            dict(deployment="promote", candidate=""),
            "INVALID_ARGUMENT",
            "candidate",
        ),
        (
            dict(deployment="promote", candidate="4.0.0"),
            "NOT_FOUND",
            "candidate",
        ),
        (
            dict(deployment="ghost", candidate="1.0.0"),
            "NOT_FOUND",
            "deployment",
        ),
        (
            dict(deployment="reject", candidate="1.0.0", steps=[5, 1, 100]),
            "INVALID_ARGUMENT",
            "steps[1]",
        ),
        (
            dict(deployment="reject", candidate="1.0.0", steps=[5, 50]),
            "INVALID_ARGUMENT",
            "steps",
        ),
        (
            dict(deployment="reject", candidate="1.0.0", steps=[-1, 100]),
            "INVALID_ARGUMENT",
            "steps[0]",
        ),
        (
            dict(deployment="reject", candidate="1.0.0", metric=pb.METRIC_KIND_UNSPECIFIED),
            "INVALID_ARGUMENT",
            "metric",
        ),
        (
            dict(deployment="reject", candidate="1.1.0"),
            "INVALID_ARGUMENT",
            "candidate",
        ),
    ],
)
def test_bad_canaries_append_nothing(
    stack: Stack, request_: dict[str, object], code: str, field: str
) -> None:
    gw = stack.manual[0]
    head = stack.opt.read_log(0, 1).head
    with pytest.raises(grpc.RpcError) as err:
        gw.start_canary(**request_)  # type: ignore[arg-type]
    assert err.value.code().name == code and field in err.value.details(), err.value.details()
    assert stack.opt.read_log(0, 1).head == head
