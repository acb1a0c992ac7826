"""A deployment's drift monitor on the gateway: SetDriftMonitor (validated, appended as
DriftMonitorSet through the one writer path), GetDriftStatus (a check run now, nothing
appended) and the periodic check that appends DriftDetected.

Why on the gateway (next to StartCanary) rather than the optimizer: the check reads the
prediction records, which only gateways have, and `drift status` shows statistics of those
records, so the whole monitor is one service's. Every gateway may run the check; a detection
is appended with the deployment's stream version the check was taken on, so when several
gateways detect at once exactly one append wins, the others see ABORTED, and their next check
finds the detection in the state and appends nothing (one per serving version and signal).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from dspyops.actor import SYSTEM, current_actor
from dspyops.commands import Commands, Decision
from dspyops.errors import Aborted, FailedPrecondition, InvalidArgument, shown
from dspyops.eventlog import AppendResult
from dspyops.names import deployment_stream
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.state import DRIFT_ALPHA, DRIFT_MIN_OUTCOMES, DRIFT_WINDOW, DeploymentState, DriftState, State
from gateway_svc.drift.check import DriftCheck, Reference, check_drift
from gateway_svc.drift.window import WindowSummary, summarize
from gateway_svc.experiments import deployment_of
from gateway_svc.records import PredictionStore
from gateway_svc.replica import Replica

REFERENCES = ("offline", "window")


@dataclass(frozen=True)
class DriftResult:
    """One check of one deployment: what it looked at, what it found, what it appended."""

    version: str
    window: WindowSummary
    reference: Reference | None
    check: DriftCheck
    appended: AppendResult | None = None
    reason: str = ""


def serving_version(deployment: DeploymentState) -> str:
    """The version serving most of the traffic (a canary's baseline until it is promoted)."""
    primary = [r for r in deployment.routes if r.role == "primary" and r.weight > 0]
    return max(primary, key=lambda r: r.weight).version if primary else ""


def monitor_from_request(request: gpb.SetDriftMonitorRequest) -> pb.DriftMonitor:
    """The monitor as it goes into the log: checked, defaults filled in (so the event says
    what the gateways run), or INVALID_ARGUMENT naming the field."""
    given = request.monitor
    if not given.enabled:
        return pb.DriftMonitor(enabled=False)
    if given.metric not in (pb.METRIC_KIND_UNSPECIFIED, pb.BINARY, pb.CONTINUOUS):
        raise InvalidArgument("monitor.metric", f"must be BINARY or CONTINUOUS, got {given.metric}")
    alpha = given.alpha or DRIFT_ALPHA
    if not (math.isfinite(alpha) and 0 < alpha <= 0.5):
        raise InvalidArgument("monitor.alpha", f"must be in (0, 0.5], got {alpha}")
    reference = given.reference or "offline"
    if reference not in REFERENCES:
        raise InvalidArgument("monitor.reference", f"must be offline or window, got {shown(reference)}")
    window = given.reference_window or DRIFT_WINDOW
    if reference == "window" and not 10 <= window <= 10_000_000:
        raise InvalidArgument("monitor.reference_window", f"must be in [10, 10000000], got {window}")
    min_outcomes = given.min_outcomes or DRIFT_MIN_OUTCOMES
    if not 10 <= min_outcomes <= 10_000_000:
        raise InvalidArgument("monitor.min_outcomes", f"must be in [10, 10000000], got {min_outcomes}")
    for name in ("max_error_rate", "max_latency_p95_ms", "max_cost_per_prediction"):
        value = getattr(given, name)
        if not (math.isfinite(value) and value >= 0):
            raise InvalidArgument(
                f"monitor.{name}", f"must be a finite number >= 0 (0: not watched), got {value}"
            )
    if given.max_error_rate > 1:
        raise InvalidArgument("monitor.max_error_rate", f"is a share in [0, 1], got {given.max_error_rate}")
    return pb.DriftMonitor(
        enabled=True,
        metric=given.metric or pb.BINARY,
        alpha=alpha,
        reference=reference,
        reference_window=window if reference == "window" else 0,
        min_outcomes=min_outcomes,
        max_error_rate=given.max_error_rate,
        max_latency_p95_ms=given.max_latency_p95_ms,
        max_cost_per_prediction=given.max_cost_per_prediction,
    )


class DriftMonitors:
    def __init__(self, commands: Commands | None, records: PredictionStore) -> None:
        self.commands = commands  # None on a gateway tailing a remote optimizer: checks, no appends
        self.records = records

    def set(self, state: State, request: gpb.SetDriftMonitorRequest) -> Decision:
        """SetDriftMonitor's decision (carried out through the writer path)."""
        deployment = deployment_of(state, request.deployment)
        monitor = monitor_from_request(request)
        if not monitor.enabled and deployment.drift is None:
            raise FailedPrecondition(
                "deployment", f"deployment {deployment.name!r} has no drift monitor to turn off"
            )
        expected = (
            request.expected_version if request.HasField("expected_version") else deployment.stream_version
        )
        event = pb.DriftMonitorSet(deployment=deployment.name, monitor=monitor, reason=request.reason)
        return Decision(deployment_stream(deployment.name), [event], expected)

    def check(self, state: State, name: str) -> DriftResult | None:
        """The check of deployment `name` on `state` (None: no monitor); reads the records."""
        deployment = deployment_of(state, name)
        drift = deployment.drift
        if drift is None:
            return None
        version = serving_version(deployment)
        if not version:
            empty = WindowSummary(drift.set_position)
            return DriftResult("", empty, None, DriftCheck(()), reason="no version serves the deployment")
        rows = self.records.drift_rows(
            name, version, drift.set_position, drift.metric, traces=drift.max_cost_per_prediction > 0
        )
        window = summarize(rows, drift.set_position, reference_window=drift.reference_window)
        reference = _reference(state, deployment, drift, version, window)
        return DriftResult(version, window, reference, check_drift(window, drift, reference))

    def evaluate(self, state: State, name: str) -> DriftResult | None:
        """The check, and a DriftDetected for each signal that drifted and has not been
        detected for this version since the monitor was armed (one batch, decided once)."""
        result = self.check(state, name)
        deployment = deployment_of(state, name)
        if result is None or deployment.drift is None or self.commands is None:
            return result
        drift = deployment.drift
        new = [s for s in result.check.drifted if not drift.detected(result.version, s.signal)]
        if not new:
            return result
        events = [_detected(name, result, signal) for signal in new]
        decision = Decision(deployment_stream(name), events, deployment.stream_version)
        try:  # the gateway's own decision, taken on `state`: no request id
            outcome = self.commands.run("EvaluateDrift", None, lambda _: decision, state=state)
        except Aborted:
            reason = "another writer changed the deployment first; re-check on fresh state"
            return DriftResult(result.version, result.window, result.reference, result.check, reason=reason)
        reason = "; ".join(e.reason for e in events)
        return DriftResult(
            result.version, result.window, result.reference, result.check, outcome.appended, reason
        )


def _reference(
    state: State, deployment: DeploymentState, drift: DriftState, version: str, window: WindowSummary
) -> Reference | None:
    if drift.reference == "window":
        summary = window.reference
        since = f"since position {drift.set_position}"
        text = f"the first {summary.n} outcomes of {version} {since} (rate {summary.mean:.3f})"
        return Reference("window", summary.mean, summary.n, text, summary)
    program = state.programs.get(deployment.program)
    serving = program.versions.get(version) if program is not None else None
    evaluation = serving.last_evaluation if serving is not None else None
    lineage = serving.lineage if serving is not None else {}
    if evaluation:
        score = float(evaluation.get("score", 0.0))
        at = evaluation.get("position", 0)
        text = f"the offline score {score:.3f} of {version} (evaluation at position {at})"
    elif lineage.get("job_id"):
        # never evaluated on its own: the final evaluation of the job that made it is an
        # offline score too (on that job's valset), and a freshly deployed version has no other
        score = float(lineage.get("final_score", 0.0))
        text = (
            f"the final score {score:.3f} of {version} in its job {lineage['job_id']} (on the job's valset)"
        )
    else:
        return None
    if drift.metric == "binary":
        if not 0.0 <= score <= 1.0:
            return None
        if score in (0.0, 1.0):
            # a rate of exactly 1 (or 0) on n examples: against it the one-sample test would
            # call the first failure (success) a drift at p = 0; Laplace's rule of succession,
            # (k + 1) / (n + 2), is the estimate from the same n that leaves room for one
            n = int(evaluation["examples"]) if evaluation else _job_examples(lineage)
            if n <= 0:
                return None
            score = (score * n + 1) / (n + 2)
            text += f", taken as {score:.3f} by the rule of succession (n={n})"
    return Reference("offline", score, 0, text)


def _job_examples(lineage: Mapping[str, Any]) -> int:
    """The examples a job's final score was measured on: its valset, else its trainset."""
    return int(lineage.get("valset_size") or lineage.get("trainset_size") or 0)


def _detected(name: str, result: DriftResult, signal: pb.DriftSignal) -> pb.DriftDetected:
    w = result.window
    reference = result.reference.text if result.reference is not None else ""
    if signal.signal == "outcome_rate":
        what = (
            f"outcome rate {signal.value:.3f} (n={signal.n}) below {signal.reference:.3f}, "
            f"always-valid p={signal.p_value:.3g}"
        )
    else:
        what = f"{signal.signal} {signal.value:.4g} (n={signal.n}) above the threshold {signal.reference:g}"
    return pb.DriftDetected(
        deployment=name,
        version=result.version,
        signal=signal.signal,
        statistics=signal,
        window=w.to_proto(),
        reference=reference if signal.signal == "outcome_rate" else f"threshold {signal.reference:g}",
        signals=list(result.check.signals),
        reason=f"drift of {result.version} on {signal.signal}: {what}",
    )


def status_proto(state: State, name: str, result: DriftResult | None, check_text: str) -> gpb.DriftStatus:
    deployment = deployment_of(state, name)
    status = gpb.DriftStatus(deployment=name, log_position=state.position, check=check_text)
    drift = deployment.drift
    if drift is None or result is None:
        return status
    w = result.window
    status.monitor.CopyFrom(drift.to_proto())
    status.version = result.version
    status.signals.extend(result.check.signals)
    status.window.CopyFrom(w.to_proto())
    status.reference = result.reference.text if result.reference is not None else ""
    status.armed_position = drift.set_position
    for d in drift.detections:
        status.detections.append(
            pb.DriftDetected(
                deployment=name,
                version=d.version,
                signal=d.signal,
                statistics=pb.DriftSignal(
                    signal=d.signal,
                    value=d.value,
                    reference=d.reference,
                    p_value=d.p_value,
                    n=d.n,
                    drifted=True,
                ),
            )
        )
    return status


class DriftService:
    """The RPCs and the loop, on the event loop; checks and appends run in threads."""

    def __init__(self, monitors: DriftMonitors, replica: Replica) -> None:
        self.monitors = monitors
        self.replica = replica
        self._last: dict[str, str] = {}  # deployment -> this gateway's last periodic check, in words

    async def set_monitor(self, request: gpb.SetDriftMonitorRequest) -> gpb.DriftStatus:
        commands = self.monitors.commands
        assert commands is not None  # the servicer checks there is a log first
        outcome = await asyncio.to_thread(
            commands.run, "SetDriftMonitor", request, lambda state: self.monitors.set(state, request)
        )
        await self.replica.wait_for(outcome.state.position, timeout=10)
        return await self.status(request.deployment)

    async def status(self, name: str) -> gpb.DriftStatus:
        state = self.replica.state
        result = await asyncio.to_thread(self.monitors.check, state, name)
        return status_proto(state, name, result, self._last.get(name, ""))

    async def evaluate(self, name: str) -> DriftResult | None:
        result = await asyncio.to_thread(self.monitors.evaluate, self.replica.state, name)
        if result is not None and result.appended is not None:
            await self.replica.wait_for(result.appended.last_position, timeout=10)
            structlog.get_logger().info("drift_detected", deployment=name, reason=result.reason)
        return result

    async def loop(self, interval: float) -> None:
        """Every gateway checks every monitored deployment; the log settles who appends.
        A check that cannot run is logged once per reason and shown in `drift status`."""
        current_actor.set(SYSTEM)  # this task's context only: detections are the service's own
        while True:
            await asyncio.sleep(interval)
            for name, deployment in list(self.replica.state.deployments.items()):
                if deployment.drift is None:
                    continue
                try:
                    result = await self.evaluate(name)
                    current = self.replica.state.deployments.get(name)
                    text = _words(result, current.drift if current is not None else None)
                except Exception as exc:  # must not stop the loop: the next tick retries
                    text = f"drift check failed; nothing was decided: {type(exc).__name__}: {str(exc)[:200]}"
                    if self._last.get(name) != text:
                        structlog.get_logger().error("drift_check_failed", deployment=name, error=text)
                self._last[name] = text


def _words(result: DriftResult | None, drift: DriftState | None) -> str:
    """A check in words: each signal's value, why it was not judged, or its drift (and the
    position of its detection, when one is on record for this version)."""
    if result is None:
        return ""
    if result.reason:
        return result.reason
    parts = []
    for s in result.check.signals:
        if s.note:
            parts.append(f"{s.signal}: {s.note}")
        elif not s.drifted:
            parts.append(f"{s.signal}: {s.value:.4g} ok")
        else:
            found = [
                d.position
                for d in (drift.detections if drift else ())
                if (d.version, d.signal) == (result.version, s.signal)
            ]
            at = f" (detected at position {found[0]})" if found else ""
            parts.append(f"{s.signal}: {s.value:.4g} drifted{at}")
    return f"{result.version}: " + "; ".join(parts)
