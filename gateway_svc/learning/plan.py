"""What the learning loop does next for one deployment, decided on one state (pure but for
reading the log's job streams and the prediction records): nothing (and why), trigger a
retrain (LearningTriggered, then its job), start the job of a triggered run that has none,
wait for a job, or end a run (LearningRunEnded, with the CanaryStarted of a candidate that
passed its gate in the same batch).

Limits: one run at a time per deployment (a triggered run without its end blocks the next),
`min_interval_seconds` since the last LearningTriggered.at_us on the gateway's clock, no run
while a canary or an experiment runs on the deployment, none while paused, none without
feedback (two labelled examples at least: one to train on, one to hold out).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from dspyops.commands import Decision
from dspyops.errors import DspyopsError
from dspyops.eventlog import EventStore
from dspyops.events import decode
from dspyops.learning_state import LearningRun, LearningState
from dspyops.names import deployment_stream
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.state import DeploymentState, State
from gateway_svc.canary import Canaries
from gateway_svc.drift.monitor import serving_version
from gateway_svc.learning.job import accepted_of, request_id_of, start_request, verdict_of
from gateway_svc.learning.window import digest, read_feedback, split
from gateway_svc.records import PredictionStore

_JOB_FAILED = {"failed": "failed", "cancelled": "was cancelled", "interrupted": "was interrupted"}


@dataclass(frozen=True)
class Plan:
    text: str  # what the loop does, or why it does nothing, in words
    decision: Decision | None = None  # to append (by the deployment's stream version)
    request: opb.StartOptimizationRequest | None = None  # to send after the append (or alone)
    run_id: str = ""  # the run the request is for
    idle: bool = True  # no run is active


def job_of(state: State, run: LearningRun) -> str:
    """The job a run's StartOptimization started ("" : none yet): its request id's stream."""
    entry = state.requests.get(run.request_id)
    return entry.stream.removeprefix("job-") if entry is not None and entry.stream.startswith("job-") else ""


def triggered_of(store: EventStore, run: LearningRun) -> pb.LearningTriggered:
    message = decode(store.read_at([run.position])[0])
    assert isinstance(message, pb.LearningTriggered)
    return message


class Planner:
    def __init__(self, records: PredictionStore, store: EventStore, canaries: Canaries) -> None:
        self.records = records
        self.store = store
        self.canaries = canaries

    def plan(self, state: State, name: str, now_us: int, can_start: str) -> Plan:
        """`can_start`: "" when this gateway has a learning optimizer, else why not."""
        deployment = state.deployments[name]
        learning = deployment.learning
        if learning is None or not learning.enabled:
            return Plan(
                "no learning policy" if learning is None else "the learning policy is off (learn enable)"
            )
        active = learning.active
        if active is not None:
            return self._active(state, deployment, learning, active, can_start)
        return self._idle(state, deployment, learning, now_us, can_start)

    # ------------------------------------------------------------------ a run is active

    def _active(
        self,
        state: State,
        deployment: DeploymentState,
        learning: LearningState,
        run: LearningRun,
        can_start: str,
    ) -> Plan:
        job_id = job_of(state, run)
        if not job_id:
            if can_start:
                return Plan(f"{run.run_id} waits for its job: {can_start}", idle=False)
            return self._restart(state, deployment, learning, run)
        job = state.jobs.get(job_id)
        if job is None or job.state in ("queued", "running"):
            return Plan(f"{run.run_id}: job {job_id} {job.state if job else 'accepted'}", idle=False)
        if job.state in _JOB_FAILED:
            reason = f"job {job_id} {_JOB_FAILED[job.state]}: {job.error[:200]}"
            return self._end(deployment, run, job_id, "job_failed", reason)
        completed, gate = verdict_of(self.store, job_id)
        if completed is None or not completed.version:
            return self._end(deployment, run, job_id, "no_candidate", f"job {job_id} registered no version")
        if completed.existing_version and completed.version == serving_version(deployment):
            reason = f"job {job_id} produced the serving version's artifact ({completed.version})"
            return self._end(deployment, run, job_id, "no_candidate", reason)
        verdict = completed.gate_reason or ("passed" if completed.gate_passed else "failed")
        scores = (completed.final_score, gate.must_beat_score if gate is not None else 0.0)
        if not completed.gate_passed:
            reason = f"{completed.version} failed its gate: {verdict}; it gets no traffic"
            return self._end(
                deployment, run, job_id, "gate_failed", reason, completed.version, verdict, scores
            )
        return self._canary(state, deployment, learning, run, job_id, completed.version, verdict, scores)

    def _restart(
        self, state: State, deployment: DeploymentState, learning: LearningState, run: LearningRun
    ) -> Plan:
        """A triggered run without a job (its gateway died between the append and the call, or
        the call failed): the same request again, rebuilt from the event (idempotent by its id)."""
        triggered = triggered_of(self.store, run)
        base = accepted_of(self.store, triggered.base_job_id)
        w = triggered.feedback
        examples = read_feedback(state, self.records, deployment.name, w.first_token, w.last_token)
        if base is None or len(examples) != w.train_n + w.holdout_n:
            reason = "its feedback window cannot be read again (deleted by the retention?)"
            return self._end(deployment, run, "", "job_failed", reason)
        feedback = split(examples, w.first_token, w.holdout_fraction)
        if (digest(feedback.train), digest(feedback.holdout)) != (w.train_digest, w.holdout_digest):
            return self._end(deployment, run, "", "job_failed", "its feedback changed before its job started")
        request = start_request(learning.policy_proto(), base, triggered, feedback)
        return Plan(f"{run.run_id}: starting its job", request=request, run_id=run.run_id, idle=False)

    def _canary(
        self,
        state: State,
        deployment: DeploymentState,
        learning: LearningState,
        run: LearningRun,
        job_id: str,
        candidate: str,
        verdict: str,
        scores: tuple[float, float],
    ) -> Plan:
        c = learning.policy_proto().canary
        request = gpb.StartCanaryRequest(
            deployment=deployment.name,
            candidate=candidate,
            steps=list(c.steps),
            min_samples_per_step=c.min_samples_per_step,
            metric=pb.CONTINUOUS
            if deployment.drift is not None and deployment.drift.metric == "continuous"
            else pb.BINARY,
            max_error_rate=c.max_error_rate,
            max_latency_p95_ms=c.max_latency_p95_ms,
            max_cost_per_prediction=c.max_cost_per_prediction,
            step_seconds=c.step_seconds,
            reason=f"retrain {run.run_id} (job {job_id}) passed its gate: {verdict}",
        )
        try:  # StartCanary's own checks and event, decided on this state
            started = self.canaries.start(state, request)
        except DspyopsError as exc:
            reason = f"{candidate} passed its gate but its canary cannot start: {exc}"
            return self._end(deployment, run, job_id, "no_candidate", reason, candidate, verdict, scores)
        event = started.payloads[0]
        assert isinstance(event, pb.CanaryStarted)
        ended = _ended(
            deployment.name, run, job_id, "canary_started", request.reason, candidate, verdict, scores
        )
        ended.canary_id = event.canary.canary_id
        decision = Decision(deployment_stream(deployment.name), [event, ended], deployment.stream_version)
        return Plan(
            f"{run.run_id}: {candidate} passed its gate: canary {ended.canary_id}", decision, idle=False
        )

    def _end(
        self,
        deployment: DeploymentState,
        run: LearningRun,
        job_id: str,
        result: str,
        reason: str,
        candidate: str = "",
        verdict: str = "",
        scores: tuple[float, float] = (0.0, 0.0),
    ) -> Plan:
        ended = _ended(deployment.name, run, job_id, result, reason, candidate, verdict, scores)
        decision = Decision(deployment_stream(deployment.name), [ended], deployment.stream_version)
        return Plan(f"{run.run_id} ended: {result}: {reason}", decision, idle=False)

    # ------------------------------------------------------------------ no run: a trigger?

    def _idle(
        self, state: State, deployment: DeploymentState, learning: LearningState, now_us: int, can_start: str
    ) -> Plan:
        policy = learning.policy_proto()
        if learning.paused:
            return Plan("paused (learn resume)")
        if can_start:
            return Plan(can_start)
        running = deployment.canary.canary_id if deployment.canary is not None else ""
        experiment = deployment.experiment
        running = running or (experiment.experiment_id if experiment is not None else "")
        if running:
            return Plan(f"{running} runs on the deployment: no retrain until it ends")
        last = learning.last
        if last is not None and policy.min_interval_seconds:
            next_us = last.at_us + policy.min_interval_seconds * 1_000_000
            if now_us < next_us:
                ago, wait = (now_us - last.at_us) / 1e6, (next_us - now_us) / 1e6
                return Plan(
                    f"the last retrain started {ago:.0f}s ago: the next one in {wait:.0f}s at the earliest"
                )
        serving = serving_version(deployment)
        program = state.programs.get(deployment.program)
        version = program.versions.get(serving) if program is not None and serving else None
        if version is None:
            return Plan("no version serves the deployment")
        base_job = str(version.lineage.get("job_id", ""))
        base = accepted_of(self.store, base_job) if base_job else None
        if base is None or not base.HasField("inputs"):
            return Plan(f"{serving} was not registered by a job on this log: no trainset to retrain from")
        since = last.position if last is not None else 0
        detection = None
        if policy.on_drift and deployment.drift is not None:
            found = [d for d in deployment.drift.detections if d.version == serving and d.position > since]
            detection = found[-1] if found else None
        new = read_feedback(state, self.records, deployment.name, last.feedback_last_token if last else "")
        trigger = ""
        if detection is not None:
            trigger = "drift"
        elif policy.min_new_examples and len(new) >= policy.min_new_examples:
            trigger = "new_examples"
        if not trigger:
            waiting = [
                f"{len(new)} new labelled examples"
                + (f" of {policy.min_new_examples}" if policy.min_new_examples else "")
            ]
            if policy.on_drift:
                waiting.append(
                    f"no drift detection of {serving}" + (f" since position {since}" if since else "")
                )
            return Plan("waiting: " + "; ".join(waiting))
        examples = read_feedback(state, self.records, deployment.name)
        if len(examples) < 2:
            have = len(examples)
            return Plan(
                f"{trigger}, but no feedback: a retrain needs 2 labelled examples at least, there are {have}"
            )
        feedback = split(examples, "", policy.holdout_fraction)
        run_id = f"run-{uuid.uuid4().hex[:10]}"
        why = (
            f"drift of {serving} on {detection.signal} (position {detection.position})"
            if detection is not None
            else f"{len(new)} new labelled examples (>= {policy.min_new_examples})"
        )
        triggered = pb.LearningTriggered(
            deployment=deployment.name,
            run_id=run_id,
            trigger=trigger,
            drift_position=detection.position if detection is not None else 0,
            serving_version=serving,
            base_job_id=base_job,
            feedback=feedback.window,
            request_id=request_id_of(run_id),
            at_us=now_us,
            reason=f"retrain of {serving}: {why}",
            program=deployment.program,
        )
        request = start_request(policy, base, triggered, feedback)
        decision = Decision(deployment_stream(deployment.name), [triggered], deployment.stream_version)
        return Plan(f"{run_id} triggered: {why}", decision, request, run_id, idle=False)


def _ended(
    deployment: str,
    run: LearningRun,
    job_id: str,
    result: str,
    reason: str,
    candidate: str,
    verdict: str,
    scores: tuple[float, float],
) -> pb.LearningRunEnded:
    return pb.LearningRunEnded(
        deployment=deployment,
        run_id=run.run_id,
        job_id=job_id,
        result=result,
        candidate_version=candidate,
        gate=verdict,
        reason=reason,
        final_score=scores[0],
        must_beat_score=scores[1],
    )
