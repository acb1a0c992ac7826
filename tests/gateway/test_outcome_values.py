"""Outcome values are checked against the metric of the prediction's experiment or canary
(issue 11): binary metrics take 0 or 1, continuous ones any finite number; anything else is
INVALID_ARGUMENT naming `value`, and nothing is recorded. A prediction outside any
experiment or canary takes any finite number."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dspy
import grpc
import pytest

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import gateway_pb2 as gpb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

SIG = "text -> label"
ROWS = ticket_rows()
BAD = grpc.StatusCode.INVALID_ARGUMENT


@dataclass
class Stack:
    log: str
    opt: OptimizerClient
    gw: GatewayClient

    def outcomes(self) -> int:
        with sqlite3.connect(f"{self.log}.predictions") as conn:
            return conn.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0]

    def deployment(self, name: str) -> None:
        self.opt.create_deployment(name, "p")
        changed = self.opt.set_routes(name, {"1.0.0": 1.0})
        assert wait_until(lambda: self.gw.list_deployment_states().log_position >= changed.log_position)

    def predict(self, name: str, key: str) -> gpb.PredictResponse:
        return self.gw.predict(name, {"text": "my parcel is late"}, routing_key=key)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("outcome-values")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
    gateway = ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0)))
    with OptimizerClient(optimizer.address) as opt, GatewayClient(gateway.address) as gw:
        for demos in (1, 2):
            program = dspy.Predict(SIG)
            program.demos = [dspy.Example(**row) for row in ROWS[:demos]]
            path = Path(tmp / f"s{demos}.json")
            program.save(str(path))
            opt.import_program("p", SIG, path.read_bytes())
        yield Stack(log, opt, gw)
    gateway.stop()
    optimizer.stop()


def refused(stack: Stack, prediction_id: str, value: float) -> str:
    before = stack.outcomes()
    with pytest.raises(grpc.RpcError) as error:
        stack.gw.record_outcome(prediction_id, value)
    assert error.value.code() == BAD, error.value.details()
    assert error.value.details().startswith("value:"), error.value.details()
    assert stack.outcomes() == before, "a refused outcome was recorded"
    return error.value.details()


def test_binary_experiment_takes_zero_or_one(stack: Stack) -> None:
    stack.deployment("binary")
    stack.gw.start_experiment("binary", "1.0.0", ["1.1.0"], metric="binary", min_samples_per_arm=10)
    predictions = [stack.predict("binary", f"user-{i}") for i in range(4)]
    assert all(p.experiment_id for p in predictions)
    for value in (5.0, -1.0, 1e6, 0.5, math.nan, math.inf):
        message = refused(stack, predictions[0].prediction_id, value)
        assert "binary" in message
    stack.gw.record_outcome(predictions[0].prediction_id, 1.0)
    stack.gw.record_outcome(predictions[1].prediction_id, 0.0)


def test_continuous_experiment_takes_any_finite_number_in_the_statistics_range(stack: Stack) -> None:
    stack.deployment("continuous")
    stack.gw.start_experiment("continuous", "1.0.0", ["1.1.0"], metric="continuous", min_samples_per_arm=10)
    predictions = [stack.predict("continuous", f"user-{i}") for i in range(3)]
    # 1e300 is finite, but its square overflows the running sums the statistics keep
    for value in (math.nan, math.inf, -math.inf, 1e300, -1e101):
        refused(stack, predictions[0].prediction_id, value)
    stack.gw.record_outcome(predictions[0].prediction_id, 5.0)
    stack.gw.record_outcome(predictions[1].prediction_id, -1.0)
    stack.gw.record_outcome(predictions[2].prediction_id, 1e6)


def test_binary_canary_step_takes_zero_or_one(stack: Stack) -> None:
    stack.deployment("canary")
    stack.gw.start_canary("canary", "1.1.0", steps=[50, 100], metric="binary", min_samples_per_step=10)
    prediction = stack.predict("canary", "user-1")
    assert "/" in prediction.experiment_id  # recorded under the canary's step key
    refused(stack, prediction.prediction_id, 5.0)
    refused(stack, prediction.prediction_id, -1.0)
    stack.gw.record_outcome(prediction.prediction_id, 1.0)


def test_a_prediction_outside_any_experiment_takes_any_finite_number(stack: Stack) -> None:
    stack.deployment("plain")
    predictions = [stack.predict("plain", f"user-{i}") for i in range(2)]
    assert not predictions[0].experiment_id
    refused(stack, predictions[0].prediction_id, math.nan)
    refused(stack, predictions[0].prediction_id, math.inf)
    refused(stack, predictions[0].prediction_id, 1e300)
    stack.gw.record_outcome(predictions[0].prediction_id, 5.0)
    stack.gw.record_outcome(predictions[1].prediction_id, -3.5)


def test_the_experiment_ended_since_the_prediction(stack: Stack) -> None:
    """The metric is the one of the experiment that assigned the prediction, even once it
    has been stopped (the gateway looks it up as of the prediction's log position)."""
    stack.deployment("ended")
    stack.gw.start_experiment("ended", "1.0.0", ["1.1.0"], metric="binary", min_samples_per_arm=10)
    prediction = stack.predict("ended", "user-1")
    stack.gw.stop_experiment("ended", reason="done")
    refused(stack, prediction.prediction_id, 5.0)
    stack.gw.record_outcome(prediction.prediction_id, 0.0)
