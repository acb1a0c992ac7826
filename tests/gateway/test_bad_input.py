"""Bad input over every Gateway RPC: the right status, the field named, nothing appended to the
log, and both servers still serving afterwards (tests/support/bad_input.py)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from dspyops.proto import gateway_pb2 as gpb
from tests.support.bad_input import (
    AFTER_MAX,
    BAD,
    BEYOND_TIMESTAMP,
    NOT_FOUND,
    PRECONDITION,
    Case,
    Servers,
    canary,
    check_refused,
    experiment,
    predict,
    rollback,
)

GATEWAY_CASES: list[Case] = [
    ("predict unknown deployment", "Predict", predict(deployment="ghost"), NOT_FOUND, "deployment"),
    ("predict without deployment", "Predict", predict(deployment=""), BAD, "deployment"),
    ("predict without inputs", "Predict", predict(inputs={}), BAD, "inputs"),
    ("predict with an unknown input", "Predict", predict(inputs={"text": "a", "x": "b"}), BAD, "inputs"),
    ("predict with a huge input", "Predict", predict(inputs={"text": "x" * 100_001}), BAD, "inputs.text"),
    (
        "predict as of a future position",
        "Predict",
        predict(as_of=gpb.AsOf(position=AFTER_MAX)),
        BAD,
        "as_of.position",
    ),
    (
        "predict as of an invalid time",
        "Predict",
        predict(as_of=gpb.AsOf(time=BEYOND_TIMESTAMP)),
        BAD,
        "as_of.time",
    ),
    ("outcome without id", "RecordOutcome", lambda s: s.gw.record_outcome("", 1.0), BAD, "prediction_id"),
    (
        "outcome of unknown prediction",
        "RecordOutcome",
        lambda s: s.gw.record_outcome("nope", 1.0),
        NOT_FOUND,
        "prediction_id",
    ),
    (
        "NaN outcome",
        "RecordOutcome",
        lambda s: s.gw.record_outcome(s.prediction_id, float("nan")),
        BAD,
        "value",
    ),
    (
        "infinite outcome",
        "RecordOutcome",
        lambda s: s.gw.record_outcome(s.prediction_id, float("inf")),
        BAD,
        "value",
    ),
    (
        "state of unknown deployment",
        "GetDeploymentState",
        lambda s: s.gw.get_deployment_state("ghost"),
        NOT_FOUND,
        "deployment",
    ),
    (
        "state as of an invalid time",
        "GetDeploymentState",
        lambda s: s.gw.get_deployment_state("web", as_of=gpb.AsOf(time=BEYOND_TIMESTAMP)),
        BAD,
        "as_of.time",
    ),
    (
        "experiment without treatments",
        "StartExperiment",
        lambda s: experiment(s, treatments=[]),
        BAD,
        "treatments",
    ),
    (
        "experiment arm twice",
        "StartExperiment",
        lambda s: experiment(s, treatments=[s.v1]),
        BAD,
        "treatments",
    ),
    ("experiment alpha 2", "StartExperiment", lambda s: experiment(s, alpha=2.0), BAD, "alpha"),
    (
        "experiment one weight for two arms",
        "StartExperiment",
        lambda s: experiment(s, weights=[1.0]),
        BAD,
        "weights",
    ),
    (
        "experiment NaN weight",
        "StartExperiment",
        lambda s: experiment(s, weights=[float("nan"), 0.5]),
        BAD,
        "weights",
    ),
    (
        "experiment hash version 7",
        "StartExperiment",
        lambda s: experiment(s, hash_version=7),
        BAD,
        "hash_version",
    ),
    ("experiment coverage 3", "StartExperiment", lambda s: experiment(s, coverage=3.0), BAD, "coverage"),
    ("experiment metric out of enum", "StartExperiment", lambda s: experiment(s, metric=99), BAD, "metric"),
    (
        "experiment negative samples",
        "StartExperiment",
        lambda s: experiment(s, min_samples_per_arm=-5),
        BAD,
        "min_samples_per_arm",
    ),
    (
        "experiment unknown control",
        "StartExperiment",
        lambda s: experiment(s, control="8.0.0"),
        NOT_FOUND,
        "control",
    ),
    (
        "experiment stale expected_version",
        "StartExperiment",
        lambda s: experiment(s, expected_version=77),
        grpc.StatusCode.ABORTED,
        "expected_version",
    ),
    (
        "results without an experiment",
        "GetExperimentResults",
        lambda s: s.gw.get_experiment_results("web"),
        PRECONDITION,
        "deployment",
    ),
    (
        "results of unknown deployment",
        "GetExperimentResults",
        lambda s: s.gw.get_experiment_results("ghost"),
        NOT_FOUND,
        "deployment",
    ),
    (
        "conclude without an experiment",
        "ConcludeExperiment",
        lambda s: s.gw.conclude_experiment("web", promote_winner=True),
        PRECONDITION,
        "deployment",
    ),
    ("stop without deployment", "StopExperiment", lambda s: s.gw.stop_experiment(""), BAD, "deployment"),
    (
        "stop without an experiment",
        "StopExperiment",
        lambda s: s.gw.stop_experiment("web"),
        PRECONDITION,
        "deployment",
    ),
    ("canary without candidate", "StartCanary", lambda s: canary(s, candidate=""), BAD, "candidate"),
    ("canary of the baseline", "StartCanary", lambda s: canary(s, candidate=s.v1), BAD, "candidate"),
    (
        "canary unknown candidate",
        "StartCanary",
        lambda s: canary(s, candidate="5.0.0"),
        NOT_FOUND,
        "candidate",
    ),
    ("canary steps going down", "StartCanary", lambda s: canary(s, steps=[50.0, 10.0]), BAD, "steps"),
    ("canary step above 100", "StartCanary", lambda s: canary(s, steps=[200.0]), BAD, "steps"),
    ("canary NaN step", "StartCanary", lambda s: canary(s, steps=[float("nan")]), BAD, "steps"),
    ("canary negative alpha", "StartCanary", lambda s: canary(s, alpha=-1.0), BAD, "alpha"),
    (
        "evaluate canary of unknown deployment",
        "EvaluateCanary",
        lambda s: s.gw.evaluate_canary("ghost"),
        NOT_FOUND,
        "deployment",
    ),
    (
        "shadow results without deployment",
        "GetShadowResults",
        lambda s: s.gw.get_shadow_results(""),
        BAD,
        "deployment",
    ),
    (
        "shadow results of unknown deployment",
        "GetShadowResults",
        lambda s: s.gw.get_shadow_results("ghost"),
        NOT_FOUND,
        "deployment",
    ),
    ("rollback without a point", "Rollback", rollback(), BAD, "to"),
    ("rollback to the future", "Rollback", rollback(to=gpb.AsOf(position=AFTER_MAX)), BAD, "to"),
    ("rollback to an invalid time", "Rollback", rollback(to=gpb.AsOf(time=BEYOND_TIMESTAMP)), BAD, "to.time"),
    ("rollback before the deployment", "Rollback", rollback(to=gpb.AsOf(position=1)), PRECONDITION, "to"),
    (
        "rollback of unknown deployment",
        "Rollback",
        lambda s: s.gw.rollback("ghost", 1),
        NOT_FOUND,
        "deployment",
    ),
    (
        "rollback with a stale expected_version",
        "Rollback",
        lambda s: s.gw.rollback("web", s.gw.get_deployment_state("web").log_position, expected_version=77),
        grpc.StatusCode.ABORTED,
        "expected_version",
    ),
    ("explain without id", "ExplainPrediction", lambda s: s.gw.explain_prediction(""), BAD, "prediction_id"),
    (
        "explain unknown prediction",
        "ExplainPrediction",
        lambda s: s.gw.explain_prediction("nope"),
        NOT_FOUND,
        "prediction_id",
    ),
]


@pytest.mark.parametrize("name,rpc,call,code,field", GATEWAY_CASES, ids=[c[0] for c in GATEWAY_CASES])
def test_bad_input_is_refused_cleanly(
    servers: Servers,
    name: str,
    rpc: str,
    call: Callable[[Servers], object],
    code: grpc.StatusCode,
    field: str,
) -> None:
    check_refused(servers, rpc, call, code, field)
