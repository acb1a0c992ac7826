"""Canary rollouts: start one, and decide its next move from its guardrails.

A canary sends steps[i] percent of traffic to the candidate and the rest to the baseline.
Each step is judged on its own predictions (recorded under the step's key, made on states
since the step began) by every guardrail (gateway_svc.canary_guardrails): the one-sided
outcome test against the baseline, and the candidate's error rate, latency p95 and cost per
prediction against their limits when set. A failing guardrail rolls back (baseline 100%) at
any check. Otherwise the step ends once every guardrail is judged (enough outcomes), or,
with a schedule's monitoring period, once the period is over on the gateway's clock
(GatewayConfig.clock), as GrowthBook's Safe Rollouts ramp on time and roll back on a failed
guardrail: then the next step, and after the last step below 100%, promotion (candidate
100%). Every gateway may run the check; each decision is appended with the stream version
it was taken on, so when several gateways decide at once exactly one append wins and the
others see ABORTED and stand down.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from dspyops.commands import Commands, Decision
from dspyops.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, shown
from dspyops.eventlog import AppendResult
from dspyops.names import deployment_stream
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.state import CanaryState, State
from gateway_svc.canary_guardrails import describe, failed, has_thresholds, judge_step, unjudged
from gateway_svc.drift.window import WindowSummary, summarize
from gateway_svc.experiments import deployment_of
from gateway_svc.records import PredictionStore
from gateway_svc.statistics.summary import ArmSummary

DEFAULT_STEPS = (1.0, 5.0, 25.0, 50.0, 100.0)
MAX_STEP_SECONDS = 366 * 86_400  # a monitoring period beyond a year is a mistake, not a schedule


@dataclass(frozen=True)
class CanaryDecision:
    action: str  # none | wait | advanced | promoted | rolled_back
    reason: str
    canary: CanaryState | None = None
    check: pb.GuardrailCheck | None = None
    appended: AppendResult | None = None


class Canaries:
    def __init__(
        self, commands: Commands, records: PredictionStore, clock: Callable[[], float] = time.time
    ) -> None:
        self.commands = commands  # the one writer path, for the gateway's own decisions
        self.records = records
        self.clock = clock  # the gateway's (GatewayConfig.clock): when steps start, periods end

    def _now_us(self) -> int:
        return int(self.clock() * 1_000_000)

    def start(self, state: State, request: gpb.StartCanaryRequest) -> Decision:
        """StartCanary's decision (carried out by the server through the writer path)."""
        deployment = deployment_of(state, request.deployment)
        if deployment.experiment is not None or deployment.canary is not None:
            current, canary_now = deployment.experiment, deployment.canary
            running = (
                current.experiment_id if current is not None else canary_now.canary_id if canary_now else ""
            )
            raise FailedPrecondition("deployment", f"{running} runs on {deployment.name!r}; end it first")
        primary = [r for r in deployment.routes if r.role == "primary"]
        if not primary:
            raise FailedPrecondition(
                "deployment", f"deployment {deployment.name!r} has no routes: nothing to compare with"
            )
        baseline = max(primary, key=lambda r: r.weight).version
        if not request.candidate:
            raise InvalidArgument("candidate", "is required (a version or an @alias)")
        candidate = state.programs[deployment.program].resolve(request.candidate)
        if candidate is None:
            raise NotFound(
                "candidate",
                f"program {deployment.program!r} has no version or alias {shown(request.candidate)}",
            )
        if candidate.version == baseline:
            raise InvalidArgument("candidate", f"{candidate.version} is the baseline already")
        if candidate.status == "archived":
            raise FailedPrecondition("candidate", f"version {candidate.version} is archived")
        steps = tuple(request.steps) or DEFAULT_STEPS
        for i, step in enumerate(steps):
            if not math.isfinite(step) or not 0 < step <= 100:
                raise InvalidArgument(f"steps[{i}]", f"must be a percent in (0, 100], got {step}")
            if i and step <= steps[i - 1]:
                raise InvalidArgument(f"steps[{i}]", "steps must increase")
        if steps[-1] != 100 or len(steps) < 2:
            raise InvalidArgument("steps", "at least two steps, the last one 100 (promotion)")
        min_samples = request.min_samples_per_step or 100
        if not 2 <= min_samples <= 10_000_000:
            raise InvalidArgument("min_samples_per_step", f"must be in [2, 10000000], got {min_samples}")
        if request.metric not in (pb.BINARY, pb.CONTINUOUS):
            raise InvalidArgument("metric", "must be BINARY or CONTINUOUS")
        alpha = request.alpha or 0.05
        if not 0 < alpha <= 0.5:
            raise InvalidArgument("alpha", f"must be in (0, 0.5], got {alpha}")
        _check_guardrails(request, deployment.capture is not None and deployment.capture.traces)
        canary = pb.Canary(
            canary_id=f"canary-{uuid.uuid4().hex[:10]}",
            baseline=baseline,
            candidate=candidate.version,
            steps=list(steps),
            min_samples_per_step=min_samples,
            metric=request.metric,
            alpha=alpha,
            step=0,
            max_error_rate=request.max_error_rate,
            max_latency_p95_ms=request.max_latency_p95_ms,
            max_cost_per_prediction=request.max_cost_per_prediction,
            step_seconds=request.step_seconds,
            step_started_us=self._now_us(),
        )
        expected = (
            request.expected_version if request.HasField("expected_version") else deployment.stream_version
        )
        event = pb.CanaryStarted(deployment=deployment.name, canary=canary, reason=request.reason)
        return Decision(deployment_stream(deployment.name), [event], expected)

    def evaluate(self, state: State, name: str) -> CanaryDecision:
        deployment = deployment_of(state, name)
        canary = deployment.canary
        if canary is None:
            return CanaryDecision("none", f"no canary runs on {name!r}")
        now_us = self._now_us()
        counts = self.records.arm_counts(name, canary.step_key, canary.metric)
        excluded = sum(counts[v].excluded for v in (canary.baseline, canary.candidate) if v in counts)
        note = f"; {excluded} stored outcomes outside the {canary.metric} range left out" if excluded else ""
        arms = {
            v: ArmSummary(counts[v].n, counts[v].total, counts[v].total_sq) if v in counts else ArmSummary()
            for v in (canary.baseline, canary.candidate)
        }
        base, cand = arms[canary.baseline], arms[canary.candidate]
        results = judge_step(canary, base, cand, self._windows(name, canary))
        outcome = results[0]
        check = pb.GuardrailCheck(
            candidate_n=cand.n,
            candidate_mean=cand.mean,
            baseline_n=base.n,
            baseline_mean=base.mean,
            p_value=outcome.p_value,
            worse=outcome.failed,
            excluded=excluded,
            guardrails=results,
            step_started_us=canary.step_started_us,
            checked_at_us=now_us,
        )
        at = f"step {canary.step} ({canary.percent:g}%)"
        summary = "; ".join(describe(r) for r in results) + note
        bad = failed(results)
        if not bad:
            waiting = self._waiting(canary, results, now_us)
            if waiting is not None:
                return CanaryDecision("wait", f"{at}: {waiting}{summary}", canary, check)
        stream = deployment_stream(name)
        if bad:
            names = ", ".join(r.guardrail for r in bad)
            why = f"guardrail failed ({names})"
            if [r.guardrail for r in bad] == ["outcome"]:
                why = f"candidate significantly worse (p < {canary.alpha:g})"
            reason = f"step {canary.step}: {why}: {summary}"
            event: pb.CanaryEnded | pb.CanaryAdvanced = pb.CanaryEnded(
                deployment=name,
                canary_id=canary.canary_id,
                promoted=False,
                routes=[pb.Route(version=canary.baseline, weight=1.0, role=pb.PRIMARY)],
                check=check,
                reason=reason,
            )
            action = "rolled_back"
        elif canary.steps[canary.step + 1] >= 100:
            reason = f"step {canary.step} passed, last step: promote: {summary}"
            event = pb.CanaryEnded(
                deployment=name,
                canary_id=canary.canary_id,
                promoted=True,
                routes=[pb.Route(version=canary.candidate, weight=1.0, role=pb.PRIMARY)],
                check=check,
                reason=reason,
            )
            action = "promoted"
        else:
            nxt = canary.step + 1
            reason = f"step {canary.step} passed, to {canary.steps[nxt]:g}%: {summary}"
            event = pb.CanaryAdvanced(
                deployment=name,
                canary_id=canary.canary_id,
                step=nxt,
                percent=canary.steps[nxt],
                check=check,
                reason=reason,
                started_us=now_us,
            )
            action = "advanced"
        decision = Decision(stream, [event], deployment.stream_version)
        try:  # the gateway's own decision, taken on `state`: no request id
            ran = self.commands.run("EvaluateCanary", None, lambda _: decision, state=state)
        except Aborted:
            return CanaryDecision(
                "wait", "another writer changed the deployment first; re-check on fresh state", canary, check
            )
        return CanaryDecision(action, reason, canary, check, ran.appended)

    def _windows(self, name: str, canary: CanaryState) -> tuple[WindowSummary, WindowSummary] | None:
        """The baseline's and the candidate's predictions in the step (errors included), for
        the limits; None when none is set. The step's predictions are those made on states
        since the step began (what its key also marks), read as the drift monitor reads them."""
        if not has_thresholds(canary):
            return None
        since = canary.step_started_position
        traces = canary.max_cost_per_prediction > 0
        base, cand = (
            summarize(self.records.drift_rows(name, v, since, canary.metric, traces=traces), since)
            for v in (canary.baseline, canary.candidate)
        )
        return base, cand

    @staticmethod
    def _waiting(canary: CanaryState, results: list[pb.GuardrailResult], now_us: int) -> str | None:
        """None when the step ends now (no guardrail failed); else what it waits for, in
        words before the guardrails' ("" : the guardrails say it). With a period: until it
        is over (guardrails not judged by then are named in the decision's statistics);
        without: until every guardrail is judged."""
        if canary.step_seconds:
            elapsed = max(0, now_us - canary.step_started_us) / 1_000_000
            if elapsed < canary.step_seconds:
                return f"{elapsed:.0f} of {canary.step_seconds} seconds of its monitoring period: "
            return None
        return "" if unjudged(results) else None


def _check_guardrails(request: gpb.StartCanaryRequest, keeps_traces: bool) -> None:
    """INVALID_ARGUMENT naming the field for a limit or period that cannot mean what it says."""
    for name in ("max_error_rate", "max_latency_p95_ms", "max_cost_per_prediction"):
        value = getattr(request, name)
        if not (math.isfinite(value) and value >= 0):
            raise InvalidArgument(name, f"must be a finite number >= 0 (0: not judged), got {value}")
    if request.max_error_rate > 1:
        raise InvalidArgument("max_error_rate", f"is a share in [0, 1], got {request.max_error_rate}")
    if request.max_cost_per_prediction > 0 and not keeps_traces:
        raise FailedPrecondition(
            "max_cost_per_prediction",
            "the cost of a prediction is read from its kept trace, and the deployment's capture "
            "policy keeps none: set one that keeps traces first (dspyops deployments set-capture-policy)",
        )
    if request.step_seconds > MAX_STEP_SECONDS:
        raise InvalidArgument(
            "step_seconds", f"must be at most {MAX_STEP_SECONDS} (366 days), got {request.step_seconds}"
        )


@dataclass(frozen=True)
class _LastCheck:
    canary_id: str
    text: str  # what DeploymentState.canary_check shows
    error: str = ""  # why the check could not run ("" when it ran)
    failures: int = 0  # checks failed in a row with this error


class CheckBook:
    """This gateway's last guardrail check of each running canary, in words.

    A check that cannot run (records unreadable, the log failing, ...) must neither stop
    the loop nor fill the service log: it is shown in DeploymentState.canary_check and in
    EvaluateCanary's answer, and logged once each time its reason changes (and once when
    the checks run again). Used from the event loop only, so it needs no lock.
    """

    def __init__(self) -> None:
        self._last: dict[str, _LastCheck] = {}

    def ran(self, deployment: str, canary_id: str, reason: str) -> None:
        previous = self._last.get(deployment)
        if previous is not None and previous.error and previous.canary_id == canary_id:
            structlog.get_logger().info(
                "canary_check_recovered",
                deployment=deployment,
                canary_id=canary_id,
                failures=previous.failures,
            )
        self._last[deployment] = _LastCheck(canary_id, reason)

    def failed(self, deployment: str, canary_id: str, exc: BaseException) -> str:
        """Record a check that could not run; returns the text shown for it."""
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
        previous = self._last.get(deployment)
        again = previous is not None and previous.canary_id == canary_id and previous.error == error
        failures = previous.failures + 1 if again and previous is not None else 1
        if not again:
            structlog.get_logger().error(
                "canary_check_failed", deployment=deployment, canary_id=canary_id, error=error, exc_info=exc
            )
        text = (
            f"guardrail check failed ({failures} check{'s' if failures > 1 else ''} in a row); "
            f"nothing was decided: {error}"
        )
        self._last[deployment] = _LastCheck(canary_id, text, error, failures)
        return text

    def text(self, deployment: str, canary_id: str) -> str:
        last = self._last.get(deployment)
        return last.text if last is not None and last.canary_id == canary_id else ""
