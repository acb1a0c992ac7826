"""Bad input over every Gateway RPC: the right status, the field named, nothing appended to the
log, and both servers still serving afterwards (tests/support/bad_input.py)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from dspyops.proto import events_pb2 as pb
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
        "outcome expecting a field that is no output",
        "RecordOutcome",
        lambda s: s.gw.record_outcome(s.prediction_id, 1.0, expected={"text": "an input"}),
        BAD,
        "expected",
    ),
    (
        "outcome expecting an over-long value",
        "RecordOutcome",
        lambda s: s.gw.record_outcome(s.prediction_id, 1.0, expected={"label": "x" * 20_001}),
        BAD,
        "expected",
    ),
    ("feedback without deployment", "ExportFeedback", lambda s: s.gw.export_feedback(""), BAD, "deployment"),
    (
        "feedback of unknown deployment",
        "ExportFeedback",
        lambda s: s.gw.export_feedback("ghost"),
        NOT_FOUND,
        "deployment",
    ),
    (
        "feedback page too large",
        "ExportFeedback",
        lambda s: s.gw.export_feedback("web", limit=5_001),
        BAD,
        "limit",
    ),
    (
        "feedback with a forged page token",
        "ExportFeedback",
        lambda s: s.gw.export_feedback("web", page_token="12/"),
        BAD,
        "page_token",
    ),
    (
        "feedback since an invalid time",
        "ExportFeedback",
        lambda s: s.gw.stub.ExportFeedback(
            gpb.ExportFeedbackRequest(deployment="web", since=BEYOND_TIMESTAMP)
        ),
        BAD,
        "since",
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
        "canary error rate above 1",
        "StartCanary",
        lambda s: canary(s, max_error_rate=1.5),
        BAD,
        "max_error_rate",
    ),
    (
        "canary NaN error rate",
        "StartCanary",
        lambda s: canary(s, max_error_rate=float("nan")),
        BAD,
        "max_error_rate",
    ),
    (
        "canary negative latency limit",
        "StartCanary",
        lambda s: canary(s, max_latency_p95_ms=-5.0),
        BAD,
        "max_latency_p95_ms",
    ),
    (
        "canary infinite cost limit",
        "StartCanary",
        lambda s: canary(s, max_cost_per_prediction=float("inf")),
        BAD,
        "max_cost_per_prediction",
    ),
    (
        "canary cost limit without kept traces",
        "StartCanary",
        lambda s: canary(s, max_cost_per_prediction=0.01),
        PRECONDITION,
        "max_cost_per_prediction",
    ),
    (
        "canary monitoring period beyond a year",
        "StartCanary",
        lambda s: canary(s, step_seconds=10**12),
        BAD,
        "step_seconds",
    ),
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
    (
        "drift monitor without deployment",
        "SetDriftMonitor",
        lambda s: s.gw.set_drift_monitor(""),
        BAD,
        "deployment",
    ),
    (
        "drift monitor of unknown deployment",
        "SetDriftMonitor",
        lambda s: s.gw.set_drift_monitor("ghost"),
        NOT_FOUND,
        "deployment",
    ),
    (
        "drift monitor with alpha above 0.5",
        "SetDriftMonitor",
        lambda s: s.gw.set_drift_monitor("web", alpha=0.9),
        BAD,
        "monitor.alpha",
    ),
    (
        "drift monitor with NaN alpha",
        "SetDriftMonitor",
        lambda s: s.gw.set_drift_monitor("web", alpha=float("nan")),
        BAD,
        "monitor.alpha",
    ),
    (
        "drift monitor with an unknown reference",
        "SetDriftMonitor",
        lambda s: s.gw.set_drift_monitor("web", reference="x" * 5000),
        BAD,
        "monitor.reference",
    ),
    (
        "drift monitor with a tiny reference window",
        "SetDriftMonitor",
        lambda s: s.gw.set_drift_monitor("web", reference="window", reference_window=3),
        BAD,
        "monitor.reference_window",
    ),
    (
        "drift monitor with too few outcomes",
        "SetDriftMonitor",
        lambda s: s.gw.set_drift_monitor("web", min_outcomes=2),
        BAD,
        "monitor.min_outcomes",
    ),
    (
        "drift monitor with an error rate above 1",
        "SetDriftMonitor",
        lambda s: s.gw.set_drift_monitor("web", max_error_rate=1.5),
        BAD,
        "monitor.max_error_rate",
    ),
    (
        "drift monitor with a negative latency threshold",
        "SetDriftMonitor",
        lambda s: s.gw.set_drift_monitor("web", max_latency_p95_ms=-1.0),
        BAD,
        "monitor.max_latency_p95_ms",
    ),
    (
        "drift monitor with an infinite cost threshold",
        "SetDriftMonitor",
        lambda s: s.gw.set_drift_monitor("web", max_cost_per_prediction=float("inf")),
        BAD,
        "monitor.max_cost_per_prediction",
    ),
    (
        "drift monitor with a bad metric",
        "SetDriftMonitor",
        lambda s: s.gw.set_drift_monitor("web", metric=7),
        BAD,
        "monitor.metric",
    ),
    (
        "drift monitor off when there is none",
        "SetDriftMonitor",
        lambda s: s.gw.set_drift_monitor("web", enabled=False),
        PRECONDITION,
        "deployment",
    ),
    (
        "drift monitor with a stale expected_version",
        "SetDriftMonitor",
        lambda s: s.gw.set_drift_monitor("web", expected_version=77),
        grpc.StatusCode.ABORTED,
        "expected_version",
    ),
    (
        "drift status without deployment",
        "GetDriftStatus",
        lambda s: s.gw.get_drift_status(""),
        BAD,
        "deployment",
    ),
    (
        "drift status of unknown deployment",
        "GetDriftStatus",
        lambda s: s.gw.get_drift_status("ghost"),
        NOT_FOUND,
        "deployment",
    ),
    (
        "learning policy without deployment",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy("", optimizer="LabeledFewShot", on_drift=True),
        BAD,
        "deployment",
    ),
    (
        "learning policy of unknown deployment",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy("ghost", optimizer="LabeledFewShot", on_drift=True),
        NOT_FOUND,
        "deployment",
    ),
    (
        "learning policy without optimizer or preset",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy("web", on_drift=True),
        BAD,
        "policy.optimizer",
    ),
    (
        "learning policy with optimizer and preset",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy("web", optimizer="LabeledFewShot", preset="quick", on_drift=True),
        BAD,
        "policy.optimizer",
    ),
    (
        "learning policy with an unknown optimizer",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy("web", optimizer="NoSuchOptimizer", on_drift=True),
        BAD,
        "policy.optimizer",
    ),
    (
        "learning policy with a huge optimizer name",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy("web", optimizer="x" * 5000, on_drift=True),
        BAD,
        "policy.optimizer",
    ),
    (
        "learning policy with an unknown preset",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy("web", preset="no-such-preset", on_drift=True),
        BAD,
        "policy.preset",
    ),
    (
        "learning policy without a trigger",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy("web", optimizer="LabeledFewShot"),
        BAD,
        "policy.min_new_examples",
    ),
    (
        "learning policy holding out everything",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy(
            "web", optimizer="LabeledFewShot", on_drift=True, holdout_fraction=1.0
        ),
        BAD,
        "policy.holdout_fraction",
    ),
    (
        "learning policy with a negative holdout",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy(
            "web", optimizer="LabeledFewShot", on_drift=True, holdout_fraction=-0.2
        ),
        BAD,
        "policy.holdout_fraction",
    ),
    (
        "learning policy with a NaN holdout",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy(
            "web", optimizer="LabeledFewShot", on_drift=True, holdout_fraction=float("nan")
        ),
        BAD,
        "policy.holdout_fraction",
    ),
    (
        "learning policy with min_improvement above 1",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy(
            "web", optimizer="LabeledFewShot", on_drift=True, min_improvement=2.0
        ),
        BAD,
        "policy.min_improvement",
    ),
    (
        "learning policy with decreasing canary steps",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy(
            "web", optimizer="LabeledFewShot", on_drift=True, canary_steps=[50, 25, 100]
        ),
        BAD,
        "policy.canary.steps[1]",
    ),
    (
        "learning policy with canary steps short of 100",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy(
            "web", optimizer="LabeledFewShot", on_drift=True, canary_steps=[10, 50]
        ),
        BAD,
        "policy.canary.steps",
    ),
    (
        "learning policy with an error rate above 1",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy(
            "web", optimizer="LabeledFewShot", on_drift=True, max_error_rate=1.5
        ),
        BAD,
        "policy.canary.max_error_rate",
    ),
    (
        "learning policy with a negative latency limit",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy(
            "web", optimizer="LabeledFewShot", on_drift=True, max_latency_p95_ms=-1.0
        ),
        BAD,
        "policy.canary.max_latency_p95_ms",
    ),
    (
        "learning policy with a negative LM-call budget",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy(
            "web", optimizer="LabeledFewShot", on_drift=True, budget=pb.Budget(max_lm_calls=-1)
        ),
        BAD,
        "policy.budget.max_lm_calls",
    ),
    (
        "learning policy with an infinite cost budget",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy(
            "web", optimizer="LabeledFewShot", on_drift=True, budget=pb.Budget(max_cost_usd=float("inf"))
        ),
        BAD,
        "policy.budget.max_cost_usd",
    ),
    (
        "learning policy with a min interval beyond a year",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy(
            "web", optimizer="LabeledFewShot", on_drift=True, min_interval_seconds=10**9
        ),
        BAD,
        "policy.min_interval_seconds",
    ),
    (
        "learning policy off when there is none",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy("web", enabled=False),
        PRECONDITION,
        "deployment",
    ),
    (
        "learning policy with a stale expected_version",
        "SetLearningPolicy",
        lambda s: s.gw.set_learning_policy(
            "web", optimizer="LabeledFewShot", on_drift=True, expected_version=77
        ),
        grpc.StatusCode.ABORTED,
        "expected_version",
    ),
    (
        "pause learning without deployment",
        "PauseLearning",
        lambda s: s.gw.pause_learning(""),
        BAD,
        "deployment",
    ),
    (
        "pause learning of unknown deployment",
        "PauseLearning",
        lambda s: s.gw.pause_learning("ghost"),
        NOT_FOUND,
        "deployment",
    ),
    (
        "pause learning without a policy",
        "PauseLearning",
        lambda s: s.gw.pause_learning("web"),
        PRECONDITION,
        "deployment",
    ),
    (
        "learning status without deployment",
        "GetLearningStatus",
        lambda s: s.gw.get_learning_status(""),
        BAD,
        "deployment",
    ),
    (
        "learning status of unknown deployment",
        "GetLearningStatus",
        lambda s: s.gw.get_learning_status("ghost"),
        NOT_FOUND,
        "deployment",
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
