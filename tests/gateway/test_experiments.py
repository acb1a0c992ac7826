"""Issue 3's loop through real servers: an experiment between a weak and a strong version of
one program, outcomes from labelled data, a decision by the statistics, conclusion, a rollback
to a time before the experiment seen by two gateways, explain, and as-of replay."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import pytest

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import events_pb2 as pb
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
    gateways: list[GatewayClient]
    before_experiment: datetime


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("experiments")
    log = str(tmp / "log.db")
    servers = [ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))]
    with OptimizerClient(servers[0].address) as opt:
        weak = list(
            opt.start_optimization(
                "tickets",
                "text -> label",
                trainset=TRAIN,
                valset=VAL,
                optimizer="BootstrapFewShot",
                params={"max_bootstrapped_demos": 0, "max_labeled_demos": 0},
            )
        )
        strong = list(
            opt.start_optimization(
                "tickets",
                "text -> label",
                trainset=TRAIN,
                valset=VAL,
                optimizer="LabeledFewShot",
                params={"k": 16},
            )
        )
        assert weak[-1].completed.version == "1.0.0" and strong[-1].completed.version == "1.1.0"
        assert strong[-1].completed.final_score > weak[-1].completed.final_score + 0.3
        opt.create_deployment("web", "tickets")
        opt.set_routes("web", {"1.0.0": 1.0}, reason="weak version serves")
        servers += [ServerThread(lambda: start_gateway(GatewayConfig(log=log))) for _ in range(2)]
        gateways = [GatewayClient(s.address) for s in servers[1:]]
        head = opt.read_log(0, 1).head
        for gw in gateways:
            assert wait_until(lambda gw=gw: gw.list_deployment_states().log_position >= head)
        time.sleep(0.02)
        yield Stack(opt, gateways, datetime.now(UTC))
        for gw in gateways:
            gw.close()
    for server in reversed(servers):
        server.stop()


def drive(gw: GatewayClient, users: range) -> list:
    """One prediction per user, its outcome computed by exact match against the label."""
    responses = []
    for i in users:
        row = VAL[i % len(VAL)]
        response = gw.predict("web", {"text": row["text"]}, routing_key=f"user-{i}")
        gw.record_outcome(response.prediction_id, float(response.outputs["label"].lower() == row["label"]))
        responses.append(response)
    return responses


def test_experiment_decides_concludes_explains_and_rolls_back(stack: Stack) -> None:
    gw, other = stack.gateways
    state = gw.start_experiment(
        "web",
        "1.0.0",
        ["1.1.0"],
        metric="binary",
        min_samples_per_arm=30,
        sequential=True,
        # a fixed seed: with the default (the random experiment id) 1 run in ~250 splits the
        # first 50 users so unevenly (13/37) that the SRM check rightly alarms
        seed="weak-vs-strong",
        reason="weak vs strong",
    )
    experiment = state.experiment
    assert experiment.control == "1.0.0" and list(experiment.treatments) == ["1.1.0"]
    assert experiment.hash_version == 2 and experiment.seed == "weak-vs-strong"
    started_at = state.log_position

    responses: list = []
    results = None
    for batch in range(12):
        responses += drive(gw if batch % 2 == 0 else other, range(batch * 50, (batch + 1) * 50))
        results = gw.get_experiment_results("web")
        if results.decision != "keep_running":
            break
    assert results is not None
    assert results.decision == "treatment_better", results.reason
    assert results.winner == "1.1.0"
    assert results.srm_p_value > 0.001
    control, treatment = results.arms
    assert control.control and not treatment.control
    assert treatment.mean > control.mean and treatment.lift == pytest.approx(treatment.mean - control.mean)
    assert treatment.sequential_p_value < 0.05 and treatment.p_value < 0.05
    assert control.n + treatment.n == len(responses)
    assert all(r.experiment_id == experiment.experiment_id for r in responses)

    # every decision can be explained from the state at its log position
    for response in responses[::17]:
        explanation = gw.explain_prediction(
            response.prediction_id, routing_key=f"user-{responses.index(response)}"
        )
        assert explanation.reproduced and explanation.recomputed_version == response.version
        assert explanation.routing_key_matches and explanation.experiment_id == experiment.experiment_id
        assert (explanation.change, explanation.changed_position) == ("ExperimentStarted", started_at)
        assert explanation.changed_by == ""  # these servers run without tokens
    assert not other.explain_prediction(
        responses[0].prediction_id, routing_key="someone-else"
    ).routing_key_matches

    # replaying a past decision: the state then, and Predict served from it
    then = other.get_deployment_state("web", as_of=started_at)
    assert then.experiment.experiment_id == experiment.experiment_id
    replay = other.predict("web", {"text": VAL[0]["text"]}, routing_key="user-0", as_of=started_at)
    assert replay.version == responses[0].version and replay.log_position == started_at

    concluded = gw.conclude_experiment("web", promote_winner=True, reason="treatment wins")
    assert not concluded.HasField("experiment")
    assert [(r.version, r.weight) for r in concluded.routes] == [("1.1.0", 1.0)]

    rolled = gw.rollback("web", stack.before_experiment, reason="back to before the experiment")
    assert [(r.version, r.weight) for r in rolled.routes] == [("1.0.0", 1.0)]
    assert not rolled.HasField("experiment")
    assert wait_until(lambda: other.get_deployment_state("web").log_position >= rolled.log_position, 5)
    assert {other.predict("web", {"text": "x"}, routing_key=f"u{i}").version for i in range(10)} == {"1.0.0"}

    undone = other.rollback("web", rolled.log_position - 1, reason="undo the rollback")
    assert [(r.version, r.weight) for r in undone.routes] == [("1.1.0", 1.0)]

    events = stack.opt.read_log(0, 1000, "deployment-web").events
    types = [e.type.rsplit(".", 1)[1] for e in events]
    assert types[-4:] == ["ExperimentStarted", "ExperimentConcluded", "RolledBack", "RolledBack"]
    assert stack.opt.verify_log().ok


def test_outcomes_are_recorded_once(stack: Stack) -> None:
    gw = stack.gateways[0]
    response = gw.predict("web", {"text": "refund please"}, routing_key="once")
    gw.record_outcome(response.prediction_id, 1.0)
    with pytest.raises(grpc.RpcError) as err:
        gw.record_outcome(response.prediction_id, 0.0)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS and "prediction_id" in err.value.details()
    for prediction_id, value, code in [
        ("nope", 1.0, grpc.StatusCode.NOT_FOUND),
        ("", 1.0, grpc.StatusCode.INVALID_ARGUMENT),
        (response.prediction_id, math.nan, grpc.StatusCode.INVALID_ARGUMENT),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            gw.record_outcome(prediction_id, value)
        assert err.value.code() == code


@pytest.mark.parametrize(
    "call,code,field",
    [
        (lambda g: g.start_experiment("web", "1.0.0", []), grpc.StatusCode.INVALID_ARGUMENT, "treatments"),
        (lambda g: g.start_experiment("web", "1.0.0", ["9.9.9"]), grpc.StatusCode.NOT_FOUND, "treatments[0]"),
        (lambda g: g.start_experiment("web", "", ["1.1.0"]), grpc.StatusCode.INVALID_ARGUMENT, "control"),
        (
            lambda g: g.start_experiment("web", "1.0.0", ["1.0.0"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "treatments",
        ),
        (
            lambda g: g.start_experiment("web", "1.0.0", ["1.1.0"], weights=[0.5, 0.6]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "weights",
        ),
        (
            lambda g: g.start_experiment("web", "1.0.0", ["1.1.0"], weights=[1.5, -0.5]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "weights[1]",
        ),
        (
            lambda g: g.start_experiment("web", "1.0.0", ["1.1.0"], metric=0),
            grpc.StatusCode.INVALID_ARGUMENT,
            "metric",
        ),
        (
            lambda g: g.start_experiment("web", "1.0.0", ["1.1.0"], alpha=0.9),
            grpc.StatusCode.INVALID_ARGUMENT,
            "alpha",
        ),
        (
            lambda g: g.start_experiment("web", "1.0.0", ["1.1.0"], hash_version=3),
            grpc.StatusCode.INVALID_ARGUMENT,
            "hash_version",
        ),
        (
            lambda g: g.start_experiment("web", "1.0.0", ["1.1.0"], coverage=1.5),
            grpc.StatusCode.INVALID_ARGUMENT,
            "coverage",
        ),
        (lambda g: g.start_experiment("ghost", "1.0.0", ["1.1.0"]), grpc.StatusCode.NOT_FOUND, "deployment"),
        (
            lambda g: g.start_experiment("web", "1.0.0", ["1.1.0"], expected_version=1),
            grpc.StatusCode.ABORTED,
            "expected_version",
        ),
        (lambda g: g.get_experiment_results("web"), grpc.StatusCode.FAILED_PRECONDITION, "deployment"),
        (lambda g: g.stop_experiment("web"), grpc.StatusCode.FAILED_PRECONDITION, "deployment"),
        (
            lambda g: g.conclude_experiment("web", promote_winner=True),
            grpc.StatusCode.FAILED_PRECONDITION,
            "deployment",
        ),
        (lambda g: g.rollback("web", 1), grpc.StatusCode.FAILED_PRECONDITION, "to"),
        (lambda g: g.rollback("web", 10**9), grpc.StatusCode.INVALID_ARGUMENT, "to"),
        (lambda g: g.rollback("web", _no_point()), grpc.StatusCode.INVALID_ARGUMENT, "to"),
        (lambda g: g.explain_prediction("nope"), grpc.StatusCode.NOT_FOUND, "prediction_id"),
        (lambda g: g.rollback("web", _bad_time(10**12)), grpc.StatusCode.INVALID_ARGUMENT, "to.time"),
        (
            lambda g: g.get_deployment_state("web", as_of=_bad_time(-(10**12))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "as_of.time",
        ),
        (lambda g: g.get_deployment_state("web", as_of=10**9), grpc.StatusCode.INVALID_ARGUMENT, "as_of"),
    ],
)
def test_bad_experiment_commands_append_nothing(
    stack: Stack, call: object, code: grpc.StatusCode, field: str
) -> None:
    gw = stack.gateways[1]
    head = stack.opt.read_log(0, 1).head
    with pytest.raises(grpc.RpcError) as err:
        call(gw)  # type: ignore[operator]
    assert err.value.code() == code, err.value.details()
    assert field in err.value.details(), err.value.details()
    assert stack.opt.read_log(0, 1).head == head
    assert gw.predict("web", {"text": "still serving"}).version


def test_a_second_experiment_cannot_start_while_one_runs(stack: Stack) -> None:
    gw = stack.gateways[0]
    started = gw.start_experiment("web", "1.0.0", ["1.1.0"], metric="continuous", reason="second round")
    assert started.experiment.seed == started.experiment.experiment_id  # the default seed
    with pytest.raises(grpc.RpcError) as err:
        gw.start_experiment("web", "1.0.0", ["1.1.0"])
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    stopped = gw.stop_experiment("web", reason="enough")
    assert not stopped.HasField("experiment")
    assert pb.PRIMARY == stopped.routes[0].role


def _no_point() -> object:
    from dspyops.proto import gateway_pb2 as gpb

    return gpb.AsOf()  # neither a position nor a time


def _bad_time(seconds: int) -> object:
    """A point whose Timestamp is outside the range Timestamp allows."""
    from google.protobuf.timestamp_pb2 import Timestamp

    from dspyops.proto import gateway_pb2 as gpb

    return gpb.AsOf(time=Timestamp(seconds=seconds))
