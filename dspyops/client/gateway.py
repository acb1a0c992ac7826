"""GatewayClient: one method per RPC of gateway_svc (predictions, deployment state,
experiments, canaries, shadow results, rollback, explanations, drift monitors, learning), every request field
a parameter. Unary methods return the response message; none of the gateway's RPCs streams.

Points of the log (`as_of`, `to`) are a position (int), a time (datetime; naive means UTC)
or an AsOf message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.client import messages as msg
from dspyops.client.channel import Client, new_request_id, rpc
from dspyops.client.messages import Point
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import gateway_pb2_grpc


class GatewayClient(Client):
    """gateway_svc at `address`:

    with GatewayClient("127.0.0.1:50052") as gw:
        answer = gw.predict("web", {"text": "refund please"}, routing_key="user-7")
        gw.record_outcome(answer.prediction_id, 1.0)
    """

    def __init__(self, address: str, timeout: float | None = 30.0, **options: Any) -> None:
        super().__init__(address, timeout, **options)
        # kept public: tests that must send a malformed message call it directly
        self.stub = gateway_pb2_grpc.GatewayStub(self.channel)  # type: ignore[no-untyped-call]

    # ------------------------------------------------------------------ predictions

    @rpc("Predict")
    def predict(
        self,
        deployment: str,
        inputs: Mapping[str, str],
        routing_key: str = "",
        *,
        as_of: Point | None = None,
        include_trace: bool = False,
    ) -> gpb.PredictResponse:
        """Predict: routes (sticky per `routing_key`), runs the program, records the
        prediction; `as_of` serves from the state at that point of the log; `include_trace`
        returns every module call (name, inputs, outputs, latency, LM usage, trajectory).

        gw.predict("web", {"text": "refund please"}, routing_key="user-7").outputs["label"]
        """
        request = gpb.PredictRequest(
            deployment=deployment,
            inputs=dict(inputs),
            routing_key=routing_key,
            as_of=msg.as_of_point(as_of),
            include_trace=include_trace,
        )
        return self._unary(self.stub.Predict, request, gpb.PredictResponse)

    @rpc("RecordOutcome")
    def record_outcome(
        self,
        prediction_id: str,
        value: float,
        *,
        expected: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> gpb.RecordOutcomeResponse:
        """RecordOutcome: 1/0 for binary metrics, a score for continuous ones; once per
        prediction (a second is ALREADY_EXISTS; the same request_id again is not a second).
        `expected`: the correct outputs when known (output field -> value), a training label.

        gw.record_outcome(answer.prediction_id, 0.0, expected={"label": "billing"}).version
        """
        request = gpb.RecordOutcomeRequest(
            prediction_id=prediction_id,
            value=value,
            expected=dict(expected or {}),
            request_id=request_id or new_request_id(),
        )
        return self._send(self.stub.RecordOutcome, request, gpb.RecordOutcomeResponse)

    @rpc("ExportFeedback")
    def export_feedback(
        self,
        deployment: str,
        since: datetime | Timestamp | None = None,
        until: datetime | Timestamp | None = None,
        *,
        limit: int = 0,
        page_token: str = "",
    ) -> gpb.ExportFeedbackResponse:
        """ExportFeedback: one page of the deployment's labelled examples (outcomes with
        expected outputs on predictions with captured inputs) recorded in [since, until), in
        time order; pass next_page_token back for the next page (empty: none left).

        gw.export_feedback("web", since=datetime(2026, 12, 1)).examples[0].expected
        """
        request = gpb.ExportFeedbackRequest(deployment=deployment, limit=limit, page_token=page_token)
        if since is not None:
            request.since.CopyFrom(msg.timestamp(since))
        if until is not None:
            request.until.CopyFrom(msg.timestamp(until))
        return self._unary(self.stub.ExportFeedback, request, gpb.ExportFeedbackResponse)

    @rpc("ExplainPrediction")
    def explain_prediction(self, prediction_id: str, routing_key: str = "") -> gpb.Explanation:
        """ExplainPrediction: refolds the log to the prediction's position and recomputes its
        assignment; with the matching `routing_key` it also shows the key's hash.

        gw.explain_prediction(answer.prediction_id, routing_key="user-7").reproduced  # True
        """
        request = gpb.ExplainPredictionRequest(prediction_id=prediction_id, routing_key=routing_key)
        return self._unary(self.stub.ExplainPrediction, request, gpb.Explanation)

    # ------------------------------------------------------------------ deployment state

    @rpc("GetDeploymentState")
    def get_deployment_state(self, deployment: str, *, as_of: Point | None = None) -> gpb.DeploymentState:
        """GetDeploymentState: what this gateway serves a deployment with, now or as of a point.

        gw.get_deployment_state("web", as_of=datetime(2026, 11, 22, 6, 0)).routes
        """
        request = gpb.GetDeploymentStateRequest(deployment=deployment, as_of=msg.as_of_point(as_of))
        return self._unary(self.stub.GetDeploymentState, request, gpb.DeploymentState)

    @rpc("ListDeploymentStates")
    def list_deployment_states(self) -> gpb.ListDeploymentStatesResponse:
        """ListDeploymentStates: every deployment's state and the log position they reflect.

        gw.list_deployment_states().log_position
        """
        return self._unary(
            self.stub.ListDeploymentStates,
            gpb.ListDeploymentStatesRequest(),
            gpb.ListDeploymentStatesResponse,
        )

    @rpc("GetShadowResults")
    def get_shadow_results(self, deployment: str) -> gpb.ShadowResults:
        """GetShadowResults: how shadow routes agree with the served answers, and their latency.

        [(v.version, v.agreement) for v in gw.get_shadow_results("web").versions]
        """
        request = gpb.GetShadowResultsRequest(deployment=deployment)
        return self._unary(self.stub.GetShadowResults, request, gpb.ShadowResults)

    @rpc("Rollback")
    def rollback(
        self,
        deployment: str,
        to: Point,
        *,
        reason: str = "",
        expected_version: int | None = None,
        request_id: str | None = None,
    ) -> gpb.DeploymentState:
        """Rollback: appends an event restoring routes and experiment as they were at `to`.

        gw.rollback("web", 42, reason="the new version misroutes refunds").routes
        """
        request = gpb.RollbackRequest(
            deployment=deployment,
            to=msg.as_of_point(to),
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        if expected_version is not None:
            request.expected_version = expected_version
        return self._send(self.stub.Rollback, request, gpb.DeploymentState)

    @rpc("ListConnections")
    def list_connections(self) -> pb.ListConnectionsResponse:
        """ListConnections: the LM connections this gateway was started with (never a key).

        [c.name for c in gw.list_connections().connections]
        """
        return self._unary(self.stub.ListConnections, pb.ListConnectionsRequest(), pb.ListConnectionsResponse)

    # ------------------------------------------------------------------ experiments

    @rpc("StartExperiment")
    def start_experiment(
        self,
        deployment: str,
        control: str,
        treatments: Sequence[str],
        *,
        weights: Sequence[float] = (),
        metric: str | int = "binary",
        alpha: float = 0.05,
        min_samples_per_arm: int = 100,
        sequential: bool = True,
        hash_version: int = 2,
        seed: str = "",
        coverage: float = 1.0,
        expected_version: int | None = None,
        reason: str = "",
        request_id: str | None = None,
    ) -> gpb.DeploymentState:
        """StartExperiment: an A/B test of `control` against `treatments` (versions or
        @aliases); `weights` one per arm, control first (empty: equal).

        gw.start_experiment("web", "1.0.0", ["1.1.0"], min_samples_per_arm=50).experiment
        """
        request = gpb.StartExperimentRequest(
            deployment=deployment,
            control=control,
            treatments=list(treatments),
            weights=list(weights),
            metric=msg.metric_kind(metric),
            alpha=alpha,
            min_samples_per_arm=min_samples_per_arm,
            sequential=sequential,
            hash_version=hash_version,
            seed=seed,
            coverage=coverage,
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        if expected_version is not None:
            request.expected_version = expected_version
        return self._send(self.stub.StartExperiment, request, gpb.DeploymentState)

    @rpc("GetExperimentResults")
    def get_experiment_results(
        self, deployment: str, source: str = "", *, include_history: bool = False
    ) -> gpb.ExperimentResults:
        """GetExperimentResults: per-arm statistics and the decision so far, on the human
        outcomes, or on an online evaluator's scores (`source="evaluator:<name>"`);
        `include_history` adds each treatment's always-valid p over the sample (it reads
        every outcome of the experiment).

        gw.get_experiment_results("web").decision  # "keep_running", "treatment_better", ...
        """
        request = gpb.GetExperimentResultsRequest(
            deployment=deployment, source=source, include_history=include_history
        )
        return self._unary(self.stub.GetExperimentResults, request, gpb.ExperimentResults)

    @rpc("ConcludeExperiment")
    def conclude_experiment(
        self, deployment: str, *, promote_winner: bool, reason: str = "", request_id: str | None = None
    ) -> gpb.DeploymentState:
        """ConcludeExperiment: ends it, routing everything to the winner (or the control).

        gw.conclude_experiment("web", promote_winner=True, reason="treatment wins").routes
        """
        request = gpb.ConcludeExperimentRequest(
            deployment=deployment,
            promote_winner=promote_winner,
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        return self._send(self.stub.ConcludeExperiment, request, gpb.DeploymentState)

    @rpc("StopExperiment")
    def stop_experiment(
        self, deployment: str, reason: str = "", *, request_id: str | None = None
    ) -> gpb.DeploymentState:
        """StopExperiment: ends it without a decision; the routes before it serve again.

        gw.stop_experiment("web", "bad metric")
        """
        request = gpb.StopExperimentRequest(
            deployment=deployment, reason=reason, request_id=request_id or new_request_id()
        )
        return self._send(self.stub.StopExperiment, request, gpb.DeploymentState)

    # ------------------------------------------------------------------ canaries

    @rpc("StartCanary")
    def start_canary(
        self,
        deployment: str,
        candidate: str,
        *,
        steps: Sequence[float] = (),
        min_samples_per_step: int = 100,
        metric: str | int = "binary",
        alpha: float = 0.05,
        max_error_rate: float = 0.0,
        max_latency_p95_ms: float = 0.0,
        max_cost_per_prediction: float = 0.0,
        step_seconds: int = 0,
        expected_version: int | None = None,
        reason: str = "",
        request_id: str | None = None,
    ) -> gpb.DeploymentState:
        """StartCanary: a gradual rollout of `candidate` in percent `steps` (empty: 1, 5,
        25, 50, 100); gateways advance or roll it back by its guardrails: the outcome test
        against the baseline, and the candidate's error rate, latency p95 (ms) and cost per
        prediction (USD) under their limits when given (0: not judged). `step_seconds`: a
        monitoring period per step (a schedule: each step lasts that long, then advances
        unless a guardrail failed); 0: a step ends once every guardrail has
        `min_samples_per_step` observations.

        gw.start_canary("web", "1.2.0", steps=[10, 25, 50, 75, 100], step_seconds=3600,
                        max_error_rate=0.02, max_latency_p95_ms=800).canary
        """
        request = gpb.StartCanaryRequest(
            deployment=deployment,
            candidate=candidate,
            steps=list(steps),
            min_samples_per_step=min_samples_per_step,
            metric=msg.metric_kind(metric),
            alpha=alpha,
            max_error_rate=max_error_rate,
            max_latency_p95_ms=max_latency_p95_ms,
            max_cost_per_prediction=max_cost_per_prediction,
            step_seconds=step_seconds,
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        if expected_version is not None:
            request.expected_version = expected_version
        return self._send(self.stub.StartCanary, request, gpb.DeploymentState)

    @rpc("EvaluateCanary")
    def evaluate_canary(self, deployment: str) -> gpb.CanaryStatus:
        """EvaluateCanary: runs the canary's guardrail check now.

        gw.evaluate_canary("web").action  # "wait", "advanced", "promoted", "rolled_back", ...
        """
        request = gpb.EvaluateCanaryRequest(deployment=deployment)
        return self._unary(self.stub.EvaluateCanary, request, gpb.CanaryStatus)

    # ------------------------------------------------------------------ drift

    @rpc(
        "SetDriftMonitor",
        monitor=(
            "enabled",
            "metric",
            "alpha",
            "reference",
            "reference_window",
            "min_outcomes",
            "max_error_rate",
            "max_latency_p95_ms",
            "max_cost_per_prediction",
        ),
    )
    def set_drift_monitor(
        self,
        deployment: str,
        *,
        enabled: bool = True,
        metric: str | int = "binary",
        alpha: float = 0.05,
        reference: str = "offline",
        reference_window: int = 0,
        min_outcomes: int = 0,
        max_error_rate: float = 0.0,
        max_latency_p95_ms: float = 0.0,
        max_cost_per_prediction: float = 0.0,
        expected_version: int | None = None,
        reason: str = "",
        request_id: str | None = None,
    ) -> gpb.DriftStatus:
        """SetDriftMonitor: watch the serving version's outcome rate against `reference`
        ("offline": its last offline score; "window": its first `reference_window` outcomes)
        and the thresholds given (0: not watched); `enabled=False` turns the monitor off.

        gw.set_drift_monitor("web", max_error_rate=0.05).monitor
        """
        request = gpb.SetDriftMonitorRequest(
            deployment=deployment,
            monitor=pb.DriftMonitor(
                enabled=enabled,
                metric=msg.metric_kind(metric),
                alpha=alpha,
                reference=reference,
                reference_window=reference_window,
                min_outcomes=min_outcomes,
                max_error_rate=max_error_rate,
                max_latency_p95_ms=max_latency_p95_ms,
                max_cost_per_prediction=max_cost_per_prediction,
            )
            if enabled
            else pb.DriftMonitor(enabled=False),
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        if expected_version is not None:
            request.expected_version = expected_version
        return self._send(self.stub.SetDriftMonitor, request, gpb.DriftStatus)

    @rpc("GetDriftStatus")
    def get_drift_status(self, deployment: str) -> gpb.DriftStatus:
        """GetDriftStatus: the monitor, a check run now (nothing appended), its detections.

        [s.signal for s in gw.get_drift_status("web").detections]
        """
        request = gpb.GetDriftStatusRequest(deployment=deployment)
        return self._unary(self.stub.GetDriftStatus, request, gpb.DriftStatus)

    # ------------------------------------------------------------------ online evaluators

    @rpc(
        "SetEvaluator",
        evaluator=(
            "name",
            "share",
            "metric",
            "judge_program",
            "judge_version",
            "max_calls_per_hour",
            "max_cost_per_hour",
            "enabled",
        ),
    )
    def set_evaluator(
        self,
        deployment: str,
        name: str,
        *,
        share: float = 1.0,
        metric: str = "",
        judge_program: str = "",
        judge_version: str = "",
        max_calls_per_hour: int = 0,
        max_cost_per_hour: float = 0.0,
        enabled: bool = True,
        expected_version: int | None = None,
        reason: str = "",
        request_id: str | None = None,
    ) -> gpb.EvaluatorStatus:
        """SetEvaluator: score a sampled `share` of the deployment's live predictions with a
        metric (when outcomes carry expected outputs) or a judge program version (on the
        captured inputs and outputs), as outcomes with source "evaluator:<name>";
        `enabled=False` removes it.

        gw.set_evaluator("web", "exact", metric="exact_match", share=0.1).source
        """
        evaluator = (
            pb.Evaluator(
                name=name,
                share=share,
                metric=metric,
                judge_program=judge_program,
                judge_version=judge_version,
                max_calls_per_hour=max_calls_per_hour,
                max_cost_per_hour=max_cost_per_hour,
                enabled=True,
            )
            if enabled
            else pb.Evaluator(name=name, enabled=False)
        )
        request = gpb.SetEvaluatorRequest(
            deployment=deployment,
            evaluator=evaluator,
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        if expected_version is not None:
            request.expected_version = expected_version
        return self._send(self.stub.SetEvaluator, request, gpb.EvaluatorStatus)

    @rpc("ListEvaluators")
    def list_evaluators(self, deployment: str) -> gpb.ListEvaluatorsResponse:
        """ListEvaluators: the deployment's evaluators, this gateway's counters (sampled,
        scored, dropped, over budget, failed, the judges' LM calls and cost) and the statistics
        of their recorded scores.

        [(e.evaluator.name, e.mean) for e in gw.list_evaluators("web").evaluators]
        """
        request = gpb.ListEvaluatorsRequest(deployment=deployment)
        return self._unary(self.stub.ListEvaluators, request, gpb.ListEvaluatorsResponse)

    @rpc(
        "SetLearningPolicy",
        policy=(
            "optimizer",
            "preset",
            "params",
            "min_new_examples",
            "on_drift",
            "holdout_fraction",
            "min_improvement",
            "canary_steps",
            "step_seconds",
            "max_error_rate",
            "max_latency_p95_ms",
            "max_cost_per_prediction",
            "min_samples_per_step",
            "min_interval_seconds",
            "budget",
        ),
    )
    def set_learning_policy(
        self,
        deployment: str,
        *,
        enabled: bool = True,
        optimizer: str = "",
        preset: str = "",
        params: Mapping[str, Any] | Struct | None = None,
        min_new_examples: int = 0,
        on_drift: bool = False,
        holdout_fraction: float = 0.0,
        min_improvement: float | None = None,
        canary_steps: Sequence[float] = (),
        step_seconds: int = 0,
        max_error_rate: float = 0.0,
        max_latency_p95_ms: float = 0.0,
        max_cost_per_prediction: float = 0.0,
        min_samples_per_step: int = 0,
        min_interval_seconds: int = 0,
        budget: pb.Budget | None = None,
        expected_version: int | None = None,
        reason: str = "",
        request_id: str | None = None,
    ) -> gpb.LearningStatus:
        """SetLearningPolicy: retrain the serving version on drift (`on_drift`) or once
        `min_new_examples` labelled examples arrived, gate it on the held-out feedback against
        the serving version, canary it on `canary_steps`; `enabled=False` turns it off.

        gw.set_learning_policy("web", optimizer="LabeledFewShot", params={"k": 16}, on_drift=True)
        """
        policy = pb.LearningPolicy(
            optimizer=optimizer,
            preset=preset,
            params=msg.struct(params),
            min_new_examples=min_new_examples,
            on_drift=on_drift,
            holdout_fraction=holdout_fraction,
            canary=pb.LearningCanary(
                steps=list(canary_steps),
                step_seconds=step_seconds,
                max_error_rate=max_error_rate,
                max_latency_p95_ms=max_latency_p95_ms,
                max_cost_per_prediction=max_cost_per_prediction,
                min_samples_per_step=min_samples_per_step,
            ),
            min_interval_seconds=min_interval_seconds,
        )
        if min_improvement is not None:
            policy.min_improvement = min_improvement
        if budget is not None:
            policy.budget.CopyFrom(budget)
        request = gpb.SetLearningPolicyRequest(
            deployment=deployment,
            policy=policy if enabled else None,
            enabled=enabled,
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        if expected_version is not None:
            request.expected_version = expected_version
        return self._send(self.stub.SetLearningPolicy, request, gpb.LearningStatus)

    @rpc("PauseLearning")
    def pause_learning(
        self, deployment: str, *, paused: bool = True, reason: str = "", request_id: str | None = None
    ) -> gpb.LearningStatus:
        """PauseLearning: no retrain is triggered while paused (`paused=False` resumes); the
        policy, a running retrain and its canary are kept.

        gw.pause_learning("web", reason="holiday freeze")
        """
        request = gpb.PauseLearningRequest(
            deployment=deployment, paused=paused, reason=reason, request_id=request_id or new_request_id()
        )
        return self._send(self.stub.PauseLearning, request, gpb.LearningStatus)

    @rpc("GetLearningStatus")
    def get_learning_status(self, deployment: str) -> gpb.LearningStatus:
        """GetLearningStatus: the policy, why the loop is idle, the drift monitor, the active
        and last retrain (job, gate verdict), the canary.

        gw.get_learning_status("web").idle
        """
        request = gpb.GetLearningStatusRequest(deployment=deployment)
        return self._unary(self.stub.GetLearningStatus, request, gpb.LearningStatus)
