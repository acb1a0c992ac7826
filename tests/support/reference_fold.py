"""A straightforward reference fold, one event at a time with dataclasses.replace (the
implementation dspyops.fold had before the page builder): the property tests compare the
fast fold against it, so an optimisation can never change what the fold means."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from dspyops.evaluators_state import EvaluatorState
from dspyops.eventlog import StoredEvent
from dspyops.events import decode
from dspyops.learning_state import LearningRun, LearningState
from dspyops.proto import events_pb2 as pb
from dspyops.state import (
    EMPTY,
    ROLE_NAMES,
    STATUS_NAMES,
    CanaryState,
    CaptureState,
    CorpusContent,
    CorpusState,
    DeploymentState,
    DriftDetection,
    DriftState,
    ExperimentState,
    JobSummary,
    ProgramState,
    RequestEntry,
    RouteState,
    State,
    VersionState,
)


def reference_fold(events: Iterable[StoredEvent], state: State = EMPTY) -> State:
    for event in events:
        if event.position <= state.position:
            raise ValueError(
                f"event at position {event.position} is not after state position {state.position}"
            )
        payload = decode(event)
        state = replace(_index_origin(_apply(state, event, payload), event, payload), position=event.position)
    return state


def _index_origin(state: State, event: StoredEvent, payload: Message) -> State:
    """A command event's RequestOrigin: request_id -> where it was first answered."""
    if "origin" not in payload.DESCRIPTOR.fields_by_name or not payload.HasField("origin"):
        return state
    origin = payload.origin  # type: ignore[attr-defined]
    if origin.request_id in state.requests:
        return state  # the first use of an id wins
    entry = RequestEntry(origin.method, origin.request_sha256, event.stream, event.position)
    return replace(state, requests=_with(state.requests, origin.request_id, entry))


def _plain(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def _with(mapping: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    copy = dict(mapping)
    copy[key] = value
    return copy


def _apply(state: State, event: StoredEvent, payload: Message) -> State:
    handler = _HANDLERS.get(type(payload).__name__)
    return handler(state, event, payload) if handler else state


def _version_registered(state: State, event: StoredEvent, msg: pb.VersionRegistered) -> State:
    program = state.programs.get(msg.program) or ProgramState(name=msg.program)
    version = VersionState(
        program=msg.program,
        version=msg.version,
        spec=_plain(msg.spec),
        lm=_plain(msg.lm),
        artifact_digest=msg.artifact_digest,
        status=STATUS_NAMES.get(msg.status, "development"),
        lineage=_plain(msg.lineage),
        registered_position=event.position,
        registered_at_us=_micros(event),
    )
    program = replace(
        program, versions=_with(program.versions, msg.version, version), stream_version=event.version
    )
    return replace(state, programs=_with(state.programs, msg.program, program))


def _status_changed(state: State, event: StoredEvent, msg: pb.VersionStatusChanged) -> State:
    program = state.programs.get(msg.program)
    if program is None or msg.version not in program.versions:
        return state  # the writer validates; the fold stays total for any input
    version = replace(program.versions[msg.version], status=STATUS_NAMES.get(msg.status, "development"))
    program = replace(
        program, versions=_with(program.versions, msg.version, version), stream_version=event.version
    )
    return replace(state, programs=_with(state.programs, msg.program, program))


def _alias_set(state: State, event: StoredEvent, msg: pb.AliasSet) -> State:
    program = state.programs.get(msg.program)
    if program is None:
        return state
    program = replace(
        program, aliases=_with(program.aliases, msg.alias, msg.version), stream_version=event.version
    )
    return replace(state, programs=_with(state.programs, msg.program, program))


def _evaluation_recorded(state: State, event: StoredEvent, msg: pb.EvaluationRecorded) -> State:
    program = state.programs.get(msg.program)
    if program is None:
        return state
    # the event is on the program's stream: its version moves even if the version is unknown
    versions = program.versions
    if msg.version in versions:
        report = msg.report
        summary = {
            "position": event.position,
            "recorded_at_us": _micros(event),
            "metric": report.metric,
            "dataset_digest": report.dataset_digest,
            "examples": report.examples,
            "score": report.score,
            "accuracy": report.accuracy,
            "macro_f1": report.macro_f1,
            "errors": report.errors,
        }
        versions = _with(versions, msg.version, replace(versions[msg.version], last_evaluation=summary))
    program = replace(program, versions=versions, stream_version=event.version)
    return replace(state, programs=_with(state.programs, msg.program, program))


def _deployment_created(state: State, event: StoredEvent, msg: pb.DeploymentCreated) -> State:
    deployment = DeploymentState(
        name=msg.deployment,
        program=msg.program,
        stream_version=event.version,
        created_position=event.position,
        changed_position=event.position,
    )
    return replace(state, deployments=_with(state.deployments, msg.deployment, deployment))


def _routes_set(state: State, event: StoredEvent, msg: pb.RoutesSet) -> State:
    current = state.deployments.get(msg.deployment)
    if current is None:
        return state
    routes = tuple(RouteState(r.version, r.weight, ROLE_NAMES.get(r.role, "primary")) for r in msg.routes)
    deployment = replace(
        current,
        routes=routes,
        stream_version=event.version,
        changed_position=event.position,
    )
    return replace(state, deployments=_with(state.deployments, msg.deployment, deployment))


def _routes(routes: Any) -> tuple[RouteState, ...]:
    return tuple(RouteState(r.version, r.weight, ROLE_NAMES.get(r.role, "primary")) for r in routes)


def _deployment_update(current: State, event: StoredEvent, name: str, /, **changes: Any) -> State:
    deployment = current.deployments.get(name)
    if deployment is None:
        return current
    changed = replace(deployment, stream_version=event.version, changed_position=event.position, **changes)
    return replace(current, deployments=_with(current.deployments, name, changed))


def _experiment_started(state: State, event: StoredEvent, msg: pb.ExperimentStarted) -> State:
    experiment = ExperimentState.from_proto(msg.experiment, event.position)
    return _deployment_update(state, event, msg.deployment, experiment=experiment)


def _experiment_concluded(state: State, event: StoredEvent, msg: pb.ExperimentConcluded) -> State:
    return _deployment_update(state, event, msg.deployment, experiment=None, routes=_routes(msg.routes))


def _experiment_stopped(state: State, event: StoredEvent, msg: pb.ExperimentStopped) -> State:
    return _deployment_update(state, event, msg.deployment, experiment=None)


def _rolled_back(state: State, event: StoredEvent, msg: pb.RolledBack) -> State:
    experiment = (
        ExperimentState.from_proto(msg.experiment, event.position) if msg.HasField("experiment") else None
    )
    canary = CanaryState.from_proto(msg.canary, event.position) if msg.HasField("canary") else None
    return _deployment_update(
        state, event, msg.deployment, routes=_routes(msg.routes), experiment=experiment, canary=canary
    )


def _canary_started(state: State, event: StoredEvent, msg: pb.CanaryStarted) -> State:
    return _deployment_update(
        state, event, msg.deployment, canary=CanaryState.from_proto(msg.canary, event.position)
    )


def _canary_advanced(state: State, event: StoredEvent, msg: pb.CanaryAdvanced) -> State:
    deployment = state.deployments.get(msg.deployment)
    if deployment is None or deployment.canary is None or deployment.canary.canary_id != msg.canary_id:
        return state
    canary = replace(
        deployment.canary, step=msg.step, step_started_position=event.position, step_started_us=msg.started_us
    )
    return _deployment_update(state, event, msg.deployment, canary=canary)


def _canary_ended(state: State, event: StoredEvent, msg: pb.CanaryEnded) -> State:
    return _deployment_update(state, event, msg.deployment, canary=None, routes=_routes(msg.routes))


def _capture_policy_set(state: State, event: StoredEvent, msg: pb.CapturePolicySet) -> State:
    deployment = state.deployments.get(msg.deployment)
    if deployment is None:
        return state
    capture = CaptureState.from_proto(msg.policy, event.position)
    changed = replace(deployment, capture=capture, stream_version=event.version)  # routes unchanged
    return replace(state, deployments=_with(state.deployments, msg.deployment, changed))


def _drift_monitor_set(state: State, event: StoredEvent, msg: pb.DriftMonitorSet) -> State:
    deployment = state.deployments.get(msg.deployment)
    if deployment is None:
        return state
    drift = DriftState.from_proto(msg.monitor, event.position) if msg.monitor.enabled else None
    changed = replace(deployment, drift=drift, stream_version=event.version)
    return replace(state, deployments=_with(state.deployments, msg.deployment, changed))


def _drift_detected(state: State, event: StoredEvent, msg: pb.DriftDetected) -> State:
    deployment = state.deployments.get(msg.deployment)
    if deployment is None:
        return state
    drift = deployment.drift
    if drift is not None and (msg.version, msg.signal) not in {
        (d.version, d.signal) for d in drift.detections
    }:
        stats = msg.statistics
        detection = DriftDetection(
            msg.version, msg.signal, event.position, stats.value, stats.reference, stats.p_value, stats.n
        )
        drift = replace(drift, detections=(*drift.detections, detection))
    changed = replace(deployment, drift=drift, stream_version=event.version)
    return replace(state, deployments=_with(state.deployments, msg.deployment, changed))


def _evaluator_set(state: State, event: StoredEvent, msg: pb.EvaluatorSet) -> State:
    deployment = state.deployments.get(msg.deployment)
    if deployment is None:
        return state
    given = msg.evaluator
    others = [e for e in deployment.evaluators if e.name != given.name]
    if given.enabled:
        others.append(
            EvaluatorState(
                given.name,
                given.share,
                given.metric,
                given.judge_program,
                given.judge_version,
                given.max_calls_per_hour,
                given.max_cost_per_hour,
                event.position,
            )
        )
    evaluators = tuple(sorted(others, key=lambda e: e.name))
    changed = replace(deployment, evaluators=evaluators, stream_version=event.version)
    return replace(state, deployments=_with(state.deployments, msg.deployment, changed))


def _learning(state: State, event: StoredEvent, msg: Any) -> State:
    """The learning events, written out on their own (not through LearningState.after)."""
    deployment = state.deployments.get(msg.deployment)
    if deployment is None:
        return state
    learning = deployment.learning
    if isinstance(msg, pb.LearningPolicySet):
        policy = msg.policy.SerializeToString(deterministic=True).hex()
        runs = learning.runs if learning is not None else ()
        learning = LearningState(policy, msg.enabled, msg.paused, event.position, runs)
    elif learning is not None and isinstance(msg, pb.LearningTriggered):
        if all(r.run_id != msg.run_id for r in learning.runs):
            run = LearningRun(
                msg.run_id,
                msg.trigger,
                msg.drift_position,
                msg.serving_version,
                msg.base_job_id,
                msg.request_id,
                msg.at_us,
                event.position,
                msg.feedback.last_token,
            )
            learning = replace(learning, runs=(*learning.runs, run))
    elif learning is not None:
        closed: list[LearningRun] = []
        for r in learning.runs:
            if r.run_id == msg.run_id and r.ended_position == 0:
                r = replace(
                    r,
                    ended_position=event.position,
                    result=msg.result,
                    job_id=msg.job_id,
                    candidate=msg.candidate_version,
                    canary_id=msg.canary_id,
                )
            closed.append(r)
        learning = replace(learning, runs=tuple(closed))
    changed = replace(state.deployments[msg.deployment], learning=learning, stream_version=event.version)
    return replace(state, deployments=_with(state.deployments, msg.deployment, changed))


def _job_id(event: StoredEvent) -> str:
    return event.stream.removeprefix("job-")


_ENDED = {"succeeded", "failed", "cancelled", "interrupted"}
_UNFENCED = {"JobRetried", "JobCancelRequested"}  # apply to any job still going


def _job_accepted(state: State, event: StoredEvent, msg: pb.JobAccepted) -> State:
    job = JobSummary(
        job_id=msg.job_id,
        program=msg.program,
        optimizer=msg.optimizer,
        state="queued" if msg.max_attempts else "running",
        accepted_position=event.position,
        accepted_at_us=_micros(event),
        max_attempts=msg.max_attempts,
        lease_ms=msg.lease_ms,
        stream_version=event.version,
    )
    return replace(state, jobs=_with(state.jobs, msg.job_id, job))


def _job_event(state: State, event: StoredEvent, msg: Any) -> State:
    """Every job event after JobAccepted: the stream version always moves; a claim takes the
    job (fence = its version); any other event counts only with the current fence (the
    owner's, or 0 while nobody owns it), and then renews an owned job's lease."""
    job = state.jobs.get(_job_id(event))
    if job is None:  # lifecycle event without JobAccepted: keep the fold total, ignore it
        return state
    name = type(msg).__name__
    moved = replace(job, stream_version=event.version)
    lease_until = _micros(event) + job.lease_ms * 1000
    current = job.fence if job.owner else 0
    if name == "JobClaimed":
        if job.max_attempts == 0 or job.state in _ENDED:
            new = moved
        else:
            new = replace(moved, state="running", owner=msg.owner, fence=event.version, attempt=msg.attempt)
            new = replace(new, lease_until_us=lease_until)
    elif name in _UNFENCED and job.state in _ENDED:
        new = moved
    elif name not in _UNFENCED and msg.fence != current:
        new = moved
    else:
        new = replace(moved, **_job_changes(name, msg, job, _micros(event)))
        if job.owner:
            new = replace(new, lease_until_us=lease_until)
    return replace(state, jobs=_with(state.jobs, job.job_id, new))


def _job_changes(name: str, msg: Any, job: JobSummary, at_us: int) -> dict[str, Any]:
    match name:
        case "BaselineEvaluated":
            return {"baseline_score": msg.score}
        case "TrialCompleted":
            return {"trials": job.trials + 1, "best_score": msg.best_score}
        case "JobCompleted":
            ended = {"owner": "", "lm_calls": msg.usage.lm_calls, "ended_at_us": at_us}
            return {"state": "succeeded", "final_score": msg.final_score, "version": msg.version, **ended}
        case "JobFailed":
            return {
                "state": "failed",
                "error": msg.error,
                "owner": "",
                "lm_calls": msg.usage.lm_calls,
                "ended_at_us": at_us,
            }
        case "JobCancelled":
            return {
                "state": "cancelled",
                "error": msg.reason,
                "owner": "",
                "lm_calls": msg.usage.lm_calls,
                "ended_at_us": at_us,
            }
        case "JobInterrupted":
            return {"state": "interrupted", "error": msg.reason, "owner": "", "ended_at_us": at_us}
        case "JobRetried":
            zero = {"baseline_score": 0.0, "final_score": 0.0, "best_score": 0.0, "trials": 0}
            return {"attempt": msg.attempt, **zero}
        case "JobLeaseReleased":
            return {"state": "queued", "owner": ""}
        case "JobCancelRequested":
            return {"cancel_requested": msg.reason}
    return {}  # JobStarted, GateEvaluated, JobLeaseRenewed: the lease only


def _corpus_registered(state: State, event: StoredEvent, msg: pb.CorpusRegistered) -> State:
    corpus = CorpusState(msg.corpus, msg.digest, msg.count, event.position, event.version)
    contents = state.corpus_contents
    content = contents.get(msg.digest)
    if content is None:  # the first event carrying the documents stays their home
        content = CorpusContent(msg.digest, msg.count, msg.corpus, event.position, (msg.corpus,))
        contents = _with(contents, msg.digest, content)
    elif msg.corpus not in content.names:
        contents = _with(contents, msg.digest, replace(content, names=(*content.names, msg.corpus)))
    return replace(state, corpora=_with(state.corpora, msg.corpus, corpus), corpus_contents=contents)


def _micros(event: StoredEvent) -> int:
    return int(event.recorded_at.timestamp() * 1_000_000)


_HANDLERS: dict[str, Any] = {
    "VersionRegistered": _version_registered,
    "VersionStatusChanged": _status_changed,
    "AliasSet": _alias_set,
    "EvaluationRecorded": _evaluation_recorded,
    "DeploymentCreated": _deployment_created,
    "RoutesSet": _routes_set,
    "ExperimentStarted": _experiment_started,
    "ExperimentConcluded": _experiment_concluded,
    "ExperimentStopped": _experiment_stopped,
    "RolledBack": _rolled_back,
    "CanaryStarted": _canary_started,
    "CanaryAdvanced": _canary_advanced,
    "CanaryEnded": _canary_ended,
    "CapturePolicySet": _capture_policy_set,
    "DriftMonitorSet": _drift_monitor_set,
    "DriftDetected": _drift_detected,
    "EvaluatorSet": _evaluator_set,
    "LearningPolicySet": _learning,
    "LearningTriggered": _learning,
    "LearningRunEnded": _learning,
    "JobAccepted": _job_accepted,
    **dict.fromkeys(
        [
            "JobClaimed",
            "JobRetried",
            "JobLeaseRenewed",
            "JobLeaseReleased",
            "JobCancelRequested",
            "JobStarted",
            "GateEvaluated",
            "BaselineEvaluated",
            "TrialCompleted",
            "JobCompleted",
            "JobFailed",
            "JobCancelled",
            "JobInterrupted",
        ],
        _job_event,
    ),
    "CorpusRegistered": _corpus_registered,
}
