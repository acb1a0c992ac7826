"""The fold: log events -> the state (dspyops.state) at any log position.

`fold` is a pure function: it never mutates the state it is given (a call copies the few
containers it changes, once per call), so a gateway serves from the old state while the next
one is built, and the same events always give the same state (`state_hash` byte for byte).
Its reference is tests/support/reference_fold.py, the plain one-event-at-a-time fold."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from dspyops.evaluators_state import evaluator_set
from dspyops.eventlog import StoredEvent
from dspyops.events import PAYLOAD_TYPES, decode
from dspyops.learning_state import LearningState
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
    DriftState,
    ExperimentState,
    JobSummary,
    ProgramState,
    RequestEntry,
    RouteState,
    State,
    VersionState,
    replace,
    shared,
)


def fold(events: Iterable[StoredEvent], state: State = EMPTY) -> State:
    """Apply events (in log order, all after `state.position`) and return the new state.

    The input state is never mutated. Internally a call folds into a mutable builder that
    copies each container it touches once, and freezes it into a new State at the end:
    a page of 10k events costs one copy per touched program or deployment, not one per event
    (the per-event copies were most of the replay time).
    """
    builder = _Builder(state)
    position = state.position
    dispatch = _DISPATCH
    for event in events:
        if event.position <= position:
            raise ValueError(f"event at position {event.position} is not after state position {position}")
        position = event.position
        entry = dispatch.get(event.type)
        if entry is None:
            if event.type not in PAYLOAD_TYPES:
                decode(event)  # raises UnknownEventType naming the position
            continue  # a payload kind the state does not track (e.g. JobProgress)
        message_class, handler = entry
        handler(builder, event, message_class.FromString(event.payload))
    return state if position == state.position else builder.freeze(position)


def state_hash(state: State) -> str:
    """sha256 of the canonical JSON of the whole state."""
    data = json.dumps(asdict(state), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def _plain(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


class _ProgramDraft:
    """A program being changed by the current fold call: its own copies of the containers,
    and per-version field changes applied once at freeze time."""

    __slots__ = ("aliases", "name", "pending", "stream_version", "versions")

    def __init__(self, program: ProgramState) -> None:
        self.name = program.name
        self.versions: dict[str, VersionState] = dict(program.versions)
        self.aliases: dict[str, str] = dict(program.aliases)
        self.stream_version = program.stream_version
        self.pending: dict[str, dict[str, Any]] = {}  # version -> field changes

    def change(self, version: str, field_name: str, value: Any) -> None:
        changes = self.pending.get(version)
        if changes is None:
            changes = self.pending[version] = {}
        changes[field_name] = value

    def freeze(self) -> ProgramState:
        versions = self.versions
        for version, changes in self.pending.items():
            versions[version] = replace(versions[version], **changes)
        return ProgramState(self.name, versions, self.aliases, self.stream_version)


class _DeploymentDraft:
    """A deployment being changed by the current fold call. Route messages are converted
    at freeze time, so a page of route changes builds the routes of the last one only."""

    __slots__ = (
        "canary",
        "capture",
        "changed_position",
        "created_position",
        "drift",
        "evaluators",
        "experiment",
        "learning",
        "name",
        "program",
        "routes",
        "routes_message",
        "stream_version",
    )

    def __init__(self, deployment: DeploymentState) -> None:
        self.name = deployment.name
        self.program = deployment.program
        self.routes = deployment.routes
        self.routes_message: Any = None  # repeated pb.Route, newer than `routes` when set
        self.stream_version = deployment.stream_version
        self.created_position = deployment.created_position
        self.changed_position = deployment.changed_position
        self.experiment = deployment.experiment
        self.canary = deployment.canary
        self.capture = deployment.capture
        self.drift = deployment.drift
        self.evaluators = deployment.evaluators
        self.learning = deployment.learning

    def freeze(self) -> DeploymentState:
        routes = self.routes if self.routes_message is None else _routes(self.routes_message)
        return DeploymentState(
            self.name,
            self.program,
            routes,
            self.stream_version,
            self.created_position,
            self.changed_position,
            self.experiment,
            self.canary,
            self.capture,
            self.drift,
            self.evaluators,
            self.learning,
        )


class _Builder:
    """The mutable side of one fold call. Reads see this call's changes first, then the
    input state; nothing reachable from the input state is ever written."""

    __slots__ = ("base", "corpora", "corpus_contents", "deployments", "jobs", "programs", "requests")

    def __init__(self, base: State) -> None:
        self.base = base
        self.programs: dict[str, _ProgramDraft] = {}
        self.deployments: dict[str, _DeploymentDraft] = {}
        self.jobs: dict[str, JobSummary] | None = None  # a copy of base.jobs once written
        self.requests: dict[str, RequestEntry] | None = None  # a copy of base.requests once written
        self.corpora: dict[str, CorpusState] | None = None  # copies of the corpus tables once written
        self.corpus_contents: dict[str, CorpusContent] | None = None

    def program(self, name: str) -> _ProgramDraft | None:
        draft = self.programs.get(name)
        if draft is None:
            current = self.base.programs.get(name)
            if current is None:
                return None
            draft = self.programs[name] = _ProgramDraft(current)
        return draft

    def deployment(self, name: str) -> _DeploymentDraft | None:
        draft = self.deployments.get(name)
        if draft is None:
            current = self.base.deployments.get(name)
            if current is None:
                return None
            draft = self.deployments[name] = _DeploymentDraft(current)
        return draft

    def job_table(self) -> dict[str, JobSummary]:
        if self.jobs is None:
            self.jobs = dict(self.base.jobs)
        return self.jobs

    def corpus_tables(self) -> tuple[dict[str, CorpusState], dict[str, CorpusContent]]:
        if self.corpora is None or self.corpus_contents is None:
            self.corpora = dict(self.base.corpora)
            self.corpus_contents = dict(self.base.corpus_contents)
        return self.corpora, self.corpus_contents

    def origin(self, event: StoredEvent, origin: pb.RequestOrigin) -> None:
        """Index the request a command event answers. The first use of an id wins: the
        writer refuses a second one, so a later entry could only come from a racing writer
        of another method, whose retry must then be refused too."""
        if self.requests is None:
            self.requests = dict(self.base.requests)
        if origin.request_id not in self.requests:
            # one string object per method and stream, not one per entry (the index only grows)
            self.requests[origin.request_id] = RequestEntry(
                sys.intern(origin.method), origin.request_sha256, sys.intern(event.stream), event.position
            )

    def freeze(self, position: int) -> State:
        base = self.base
        programs: Mapping[str, ProgramState] = base.programs
        if self.programs:
            programs = dict(programs)
            for name, program in self.programs.items():
                programs[name] = program.freeze()
        deployments: Mapping[str, DeploymentState] = base.deployments
        if self.deployments:
            deployments = dict(deployments)
            for name, deployment in self.deployments.items():
                deployments[name] = deployment.freeze()
        jobs = base.jobs if self.jobs is None else self.jobs
        requests = base.requests if self.requests is None else self.requests
        corpora = base.corpora if self.corpora is None else self.corpora
        contents = base.corpus_contents if self.corpus_contents is None else self.corpus_contents
        return State(position, programs, deployments, jobs, requests, corpora, contents)


def _version_registered(b: _Builder, event: StoredEvent, msg: pb.VersionRegistered) -> None:
    if "origin" in msg:  # HasField, at half its cost (the fold's hot path)
        b.origin(event, msg.origin)
    program = b.program(msg.program)
    if program is None:
        program = b.programs[msg.program] = _ProgramDraft(ProgramState(name=msg.program))
    # the latest version's spec and LM config objects when equal (state.shared)
    latest = next(reversed(program.versions.values()), None)
    program.versions[msg.version] = VersionState(
        program.name,
        msg.version,
        shared(_plain(msg.spec), latest, "spec"),
        shared(_plain(msg.lm), latest, "lm"),
        msg.artifact_digest,
        STATUS_NAMES.get(msg.status, "development"),
        _plain(msg.lineage),
        event.position,
        _micros(event),
    )
    program.pending.pop(msg.version, None)  # a re-registration replaces the version whole
    program.stream_version = event.version


def _status_changed(b: _Builder, event: StoredEvent, msg: pb.VersionStatusChanged) -> None:
    if "origin" in msg:  # HasField, at half its cost (the fold's hot path)
        b.origin(event, msg.origin)
    program = b.program(msg.program)
    if program is None or msg.version not in program.versions:
        return  # the writer validates; the fold stays total for any input
    program.change(msg.version, "status", STATUS_NAMES.get(msg.status, "development"))
    program.stream_version = event.version


def _alias_set(b: _Builder, event: StoredEvent, msg: pb.AliasSet) -> None:
    if "origin" in msg:  # HasField, at half its cost (the fold's hot path)
        b.origin(event, msg.origin)
    program = b.program(msg.program)
    if program is None:
        return
    program.aliases[msg.alias] = msg.version
    program.stream_version = event.version


def _evaluation_recorded(b: _Builder, event: StoredEvent, msg: pb.EvaluationRecorded) -> None:
    program = b.program(msg.program)
    if program is None:
        return
    # the event is on the program's stream: its version moves even if the version is unknown
    if msg.version in program.versions:
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
        program.change(msg.version, "last_evaluation", summary)
    program.stream_version = event.version


def _deployment_created(b: _Builder, event: StoredEvent, msg: pb.DeploymentCreated) -> None:
    if "origin" in msg:  # HasField, at half its cost (the fold's hot path)
        b.origin(event, msg.origin)
    b.deployments[msg.deployment] = _DeploymentDraft(
        DeploymentState(
            name=msg.deployment,
            program=msg.program,
            stream_version=event.version,
            created_position=event.position,
            changed_position=event.position,
        )
    )


def _routes_set(b: _Builder, event: StoredEvent, msg: pb.RoutesSet) -> None:
    if "origin" in msg:  # HasField, at half its cost (the fold's hot path)
        b.origin(event, msg.origin)
    deployment = b.deployment(msg.deployment)
    if deployment is None:
        return
    deployment.routes_message = msg.routes
    deployment.stream_version = event.version
    deployment.changed_position = event.position


def _routes(routes: Any) -> tuple[RouteState, ...]:
    return tuple(RouteState(r.version, r.weight, ROLE_NAMES.get(r.role, "primary")) for r in routes)


def _deployment_update(b: _Builder, event: StoredEvent, name: str) -> _DeploymentDraft | None:
    """The deployment's draft with its stream version and change position moved, or None."""
    deployment = b.deployment(name)
    if deployment is not None:
        deployment.stream_version = event.version
        deployment.changed_position = event.position
    return deployment


def _experiment_started(b: _Builder, event: StoredEvent, msg: pb.ExperimentStarted) -> None:
    if "origin" in msg:  # HasField, at half its cost (the fold's hot path)
        b.origin(event, msg.origin)
    deployment = _deployment_update(b, event, msg.deployment)
    if deployment is not None:
        deployment.experiment = ExperimentState.from_proto(msg.experiment, event.position)


def _experiment_concluded(b: _Builder, event: StoredEvent, msg: pb.ExperimentConcluded) -> None:
    if "origin" in msg:  # HasField, at half its cost (the fold's hot path)
        b.origin(event, msg.origin)
    deployment = _deployment_update(b, event, msg.deployment)
    if deployment is not None:
        deployment.experiment = None
        deployment.routes_message = msg.routes


def _experiment_stopped(b: _Builder, event: StoredEvent, msg: pb.ExperimentStopped) -> None:
    if "origin" in msg:  # HasField, at half its cost (the fold's hot path)
        b.origin(event, msg.origin)
    deployment = _deployment_update(b, event, msg.deployment)
    if deployment is not None:
        deployment.experiment = None


def _rolled_back(b: _Builder, event: StoredEvent, msg: pb.RolledBack) -> None:
    if "origin" in msg:  # HasField, at half its cost (the fold's hot path)
        b.origin(event, msg.origin)
    deployment = _deployment_update(b, event, msg.deployment)
    if deployment is not None:
        deployment.routes_message = msg.routes
        deployment.experiment = (
            ExperimentState.from_proto(msg.experiment, event.position) if msg.HasField("experiment") else None
        )
        deployment.canary = (
            CanaryState.from_proto(msg.canary, event.position) if msg.HasField("canary") else None
        )


def _canary_started(b: _Builder, event: StoredEvent, msg: pb.CanaryStarted) -> None:
    if "origin" in msg:  # HasField, at half its cost (the fold's hot path)
        b.origin(event, msg.origin)
    deployment = _deployment_update(b, event, msg.deployment)
    if deployment is not None:
        deployment.canary = CanaryState.from_proto(msg.canary, event.position)


def _canary_advanced(b: _Builder, event: StoredEvent, msg: pb.CanaryAdvanced) -> None:
    deployment = b.deployment(msg.deployment)
    if deployment is None or deployment.canary is None or deployment.canary.canary_id != msg.canary_id:
        return
    _deployment_update(b, event, msg.deployment)
    deployment.canary = deployment.canary.advanced(msg, event.position)


def _canary_ended(b: _Builder, event: StoredEvent, msg: pb.CanaryEnded) -> None:
    deployment = _deployment_update(b, event, msg.deployment)
    if deployment is not None:
        deployment.canary = None
        deployment.routes_message = msg.routes


def _capture_policy_set(b: _Builder, event: StoredEvent, msg: pb.CapturePolicySet) -> None:
    """The deployment's policy, whole. Its stream version moves (SetCapturePolicy takes an
    expected_version) but not `changed_position`: what serves the deployment is unchanged."""
    if "origin" in msg:  # HasField, at half its cost (the fold's hot path)
        b.origin(event, msg.origin)
    deployment = b.deployment(msg.deployment)
    if deployment is not None:
        deployment.capture = CaptureState.from_proto(msg.policy, event.position)
        deployment.stream_version = event.version


def _drift(b: _Builder, event: StoredEvent, msg: Any) -> None:
    """Drift and learning events, like a capture policy: the stream version moves, not `changed_position`."""
    if not isinstance(msg, pb.DriftDetected) and "origin" in msg:
        b.origin(event, msg.origin)
    if (deployment := b.deployment(msg.deployment)) is None:
        return
    if isinstance(msg, pb.DriftMonitorSet | pb.DriftDetected):
        deployment.drift = DriftState.after(deployment.drift, msg, event.position)
    else:
        deployment.learning = LearningState.after(deployment.learning, msg, event.position)
    deployment.stream_version = event.version


_JOB_ENDED = frozenset({"succeeded", "failed", "cancelled", "interrupted"})


def _job_update(b: _Builder, event: StoredEvent, fence: int, /, **changes: Any) -> None:
    """A job-stream event of the job's owner (``fence``: the token it carries). The stream
    version always moves (a claimer appends expecting it); the changes apply only when the
    fence is the current one (any other is a shut-out owner's: the record keeps the event,
    the state ignores it), and then they renew a claimed job's lease."""
    jobs = b.job_table()
    job_id = event.stream.removeprefix("job-")
    job = jobs.get(job_id)
    if job is None:  # lifecycle event without JobAccepted: keep the fold total, ignore it
        return
    if fence != job.current_fence:
        jobs[job_id] = replace(job, stream_version=event.version)
        return
    if job.owner:
        changes["lease_until_us"] = _micros(event) + job.lease_ms * 1000
    jobs[job_id] = replace(job, stream_version=event.version, **changes)


def _job_accepted(b: _Builder, event: StoredEvent, msg: pb.JobAccepted) -> None:
    if "origin" in msg:  # HasField, at half its cost (the fold's hot path)
        b.origin(event, msg.origin)
    b.job_table()[msg.job_id] = JobSummary(
        job_id=msg.job_id,
        program=msg.program,
        optimizer=msg.optimizer,
        state="queued" if msg.max_attempts > 0 else "running",  # claimed jobs wait for a claim
        accepted_position=event.position,
        accepted_at_us=_micros(event),
        max_attempts=msg.max_attempts,
        lease_ms=msg.lease_ms,
        stream_version=event.version,
    )


def _job_claimed(b: _Builder, event: StoredEvent, msg: pb.JobClaimed) -> None:
    """The fence of the claim is its own stream version. A claim on a job that is never
    claimed (an old log's) or has ended changes nothing but the stream version."""
    job = b.job_table().get(event.stream.removeprefix("job-"))
    if job is None or job.max_attempts == 0 or job.state in _JOB_ENDED:
        _job_update(b, event, -1)  # no fence matches -1: only the stream version moves
        return
    b.job_table()[job.job_id] = replace(
        job,
        state="running",
        owner=msg.owner,
        fence=event.version,
        attempt=msg.attempt,
        lease_until_us=_micros(event) + job.lease_ms * 1000,
        stream_version=event.version,
    )


def _job_retried(b: _Builder, event: StoredEvent, msg: pb.JobRetried) -> None:
    """The next attempt starts from nothing: its scores and trials are its own."""
    job = b.job_table().get(event.stream.removeprefix("job-"))
    fence = -1 if job is None or job.state in _JOB_ENDED else job.current_fence
    _job_update(
        b, event, fence, attempt=msg.attempt, baseline_score=0.0, final_score=0.0, best_score=0.0, trials=0
    )


def _lease_renewed(b: _Builder, event: StoredEvent, msg: pb.JobLeaseRenewed) -> None:
    _job_update(b, event, msg.fence)


def _lease_released(b: _Builder, event: StoredEvent, msg: pb.JobLeaseReleased) -> None:
    _job_update(b, event, msg.fence, state="queued", owner="")


def _cancel_requested(b: _Builder, event: StoredEvent, msg: pb.JobCancelRequested) -> None:
    """Any replica may ask; whoever owns the job acts on it. No fence: it is not the owner's."""
    if "origin" in msg:
        b.origin(event, msg.origin)
    job = b.job_table().get(event.stream.removeprefix("job-"))
    fence = -1 if job is None or job.state in _JOB_ENDED else job.current_fence
    _job_update(b, event, fence, cancel_requested=msg.reason)


def _fenced(b: _Builder, event: StoredEvent, msg: pb.JobStarted | pb.GateEvaluated) -> None:
    """An owner's event the summary does not show: it still renews the lease."""
    _job_update(b, event, msg.fence)


def _baseline(b: _Builder, event: StoredEvent, msg: pb.BaselineEvaluated) -> None:
    _job_update(b, event, msg.fence, baseline_score=msg.score)


def _trial(b: _Builder, event: StoredEvent, msg: pb.TrialCompleted) -> None:
    job = b.job_table().get(event.stream.removeprefix("job-"))
    trials = (job.trials if job else 0) + 1
    _job_update(b, event, msg.fence, trials=trials, best_score=msg.best_score)


def _completed(b: _Builder, event: StoredEvent, msg: pb.JobCompleted) -> None:
    _job_update(
        b,
        event,
        msg.fence,
        state="succeeded",
        final_score=msg.final_score,
        version=msg.version,
        owner="",
        lm_calls=msg.usage.lm_calls,
        ended_at_us=_micros(event),
    )


def _failed(b: _Builder, event: StoredEvent, msg: pb.JobFailed) -> None:
    _job_update(
        b,
        event,
        msg.fence,
        state="failed",
        error=msg.error,
        owner="",
        lm_calls=msg.usage.lm_calls,
        ended_at_us=_micros(event),
    )


def _cancelled(b: _Builder, event: StoredEvent, msg: pb.JobCancelled) -> None:
    _job_update(
        b,
        event,
        msg.fence,
        state="cancelled",
        error=msg.reason,
        owner="",
        lm_calls=msg.usage.lm_calls,
        ended_at_us=_micros(event),
    )


def _interrupted(b: _Builder, event: StoredEvent, msg: pb.JobInterrupted) -> None:
    _job_update(
        b, event, msg.fence, state="interrupted", error=msg.reason, owner="", ended_at_us=_micros(event)
    )


def _corpus_registered(b: _Builder, event: StoredEvent, msg: pb.CorpusRegistered) -> None:
    """The name moves to the digest; the digest stays resolvable at its first event for good
    (a version that recorded it keeps its documents after the name moved on)."""
    if "origin" in msg:
        b.origin(event, msg.origin)
    corpora, contents = b.corpus_tables()
    corpora[msg.corpus] = CorpusState(msg.corpus, msg.digest, msg.count, event.position, event.version)
    content = contents.get(msg.digest)
    if content is None:
        contents[msg.digest] = CorpusContent(msg.digest, msg.count, msg.corpus, event.position, (msg.corpus,))
    elif msg.corpus not in content.names:
        contents[msg.digest] = replace(content, names=(*content.names, msg.corpus))


def _micros(event: StoredEvent) -> int:
    return int(event.recorded_at.timestamp() * 1_000_000)


Handler = Callable[[_Builder, StoredEvent, Any], None]

_HANDLERS: dict[str, Handler] = {
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
    "DriftMonitorSet": _drift,
    "DriftDetected": _drift,
    "EvaluatorSet": evaluator_set,
    **dict.fromkeys(("LearningPolicySet", "LearningTriggered", "LearningRunEnded"), _drift),
    "JobAccepted": _job_accepted,
    "JobClaimed": _job_claimed,
    "JobRetried": _job_retried,
    "JobLeaseRenewed": _lease_renewed,
    "JobLeaseReleased": _lease_released,
    "JobCancelRequested": _cancel_requested,
    "JobStarted": _fenced,
    "GateEvaluated": _fenced,
    "BaselineEvaluated": _baseline,
    "TrialCompleted": _trial,
    "JobCompleted": _completed,
    "JobFailed": _failed,
    "JobCancelled": _cancelled,
    "JobInterrupted": _interrupted,
    "CorpusRegistered": _corpus_registered,
}
# full type name -> (message class, handler): one dict lookup per event, no decode() call
_DISPATCH: dict[str, tuple[type[Message], Handler]] = {
    type_name: (message_class, _HANDLERS[message_class.DESCRIPTOR.name])
    for type_name, (_, message_class) in PAYLOAD_TYPES.items()
    if message_class.DESCRIPTOR.name in _HANDLERS
}
