"""The folded model: registry, deployment, job and corpus state at one log position.

Frozen, slotted dataclasses, built only by the fold (dspyops.fold) and read by both
services; nothing here knows about the log. The state also indexes the client requests
that command events answer (`State.requests`, from their `RequestOrigin`), so a writer can
recognise a retried request (dspyops.commands). The tables below translate between the
proto enums and the names the state keeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dspyops.evaluators_state import EvaluatorState
from dspyops.learning_state import LearningState
from dspyops.proto import events_pb2 as pb

_T = TypeVar("_T")


def replace(obj: _T, /, **changes: Any) -> _T:
    """dataclasses.replace for the state's frozen slotted dataclasses, without its per-call
    field introspection (the fold's hot path)."""
    names: tuple[str, ...] = type(obj).__slots__  # type: ignore[attr-defined]  # slots=True
    return type(obj)(*[changes[n] if n in changes else getattr(obj, n) for n in names])


def shared(value: Mapping[str, Any], previous: VersionState | None, name: str) -> Mapping[str, Any]:
    """``previous``'s field ``name`` (its ``spec`` or ``lm``) when equal to ``value``, else
    ``value``: a program's versions mostly share one spec and one LM config, so one object holds
    each (~0.8 KB a registered version, bench/bench_registry.py). The state is never written,
    so sharing is safe."""
    if previous is None:
        return value
    found: Mapping[str, Any] = getattr(previous, name)
    return found if _same(found, value) else value


def _same(a: Any, b: Any) -> bool:
    """Equal with the same types throughout (``==`` alone takes True for 1 and 1.0, which
    the state's JSON and hash tell apart)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# The enums as the state names them, and back (for the messages built from the state).
STATUS_VALUES: dict[str, pb.VersionStatus] = {
    "development": pb.DEVELOPMENT,
    "staging": pb.STAGING,
    "production": pb.PRODUCTION,
    "deprecated": pb.DEPRECATED,
    "archived": pb.ARCHIVED,
}
STATUS_NAMES: dict[int, str] = {value: name for name, value in STATUS_VALUES.items()}
ROLE_VALUES: dict[str, pb.RouteRole] = {"primary": pb.PRIMARY, "shadow": pb.SHADOW}
ROLE_NAMES: dict[int, str] = {
    pb.ROUTE_ROLE_UNSPECIFIED: "primary",
    **{value: name for name, value in ROLE_VALUES.items()},
}


@dataclass(frozen=True, slots=True)
class VersionState:
    program: str
    version: str
    spec: Mapping[str, str]
    lm: Mapping[str, Any]
    artifact_digest: str
    status: str
    lineage: Mapping[str, Any]
    registered_position: int
    registered_at_us: int
    # summary of the latest EvaluationRecorded for this version (None: never evaluated)
    last_evaluation: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ProgramState:
    name: str
    versions: Mapping[str, VersionState] = field(default_factory=dict)  # in registration order
    aliases: Mapping[str, str] = field(default_factory=dict)
    # version of the program-<name> stream this state reflects: writers decide from this
    # state and append with it as expected_version, so a decision on stale state aborts
    stream_version: int = 0

    def resolve(self, ref: str) -> VersionState | None:
        """A version by semver or alias ('@champion' or 'champion')."""
        if ref in self.versions:
            return self.versions[ref]
        target = self.aliases.get(ref.removeprefix("@"))
        return self.versions.get(target) if target else None

    @property
    def production_version(self) -> str:
        return next((v for v, s in self.versions.items() if s.status == "production"), "")


@dataclass(frozen=True, slots=True)
class RouteState:
    version: str
    weight: float
    role: str = "primary"


METRIC_VALUES: dict[str, pb.MetricKind] = {"binary": pb.BINARY, "continuous": pb.CONTINUOUS}
METRIC_KINDS: dict[int, str] = {value: name for name, value in METRIC_VALUES.items()}


@dataclass(frozen=True, slots=True)
class ExperimentState:
    experiment_id: str
    control: str
    treatments: tuple[str, ...]
    weights: tuple[float, ...]  # one per arm, control first
    metric: str  # binary | continuous
    alpha: float
    min_samples_per_arm: int
    sequential: bool
    hash_version: int
    seed: str
    coverage: float
    started_position: int = 0

    @property
    def arms(self) -> tuple[str, ...]:
        return (self.control, *self.treatments)

    @classmethod
    def from_proto(cls, msg: pb.Experiment, position: int) -> ExperimentState:
        return cls(
            experiment_id=msg.experiment_id,
            control=msg.control,
            treatments=tuple(msg.treatments),
            weights=tuple(msg.weights),
            metric=METRIC_KINDS.get(msg.metric, "binary"),
            alpha=msg.alpha,
            min_samples_per_arm=msg.min_samples_per_arm,
            sequential=msg.sequential,
            hash_version=msg.hash_version,
            seed=msg.seed,
            coverage=msg.coverage,
            started_position=position,
        )

    def to_proto(self) -> pb.Experiment:
        return pb.Experiment(
            experiment_id=self.experiment_id,
            control=self.control,
            treatments=list(self.treatments),
            weights=list(self.weights),
            metric=METRIC_VALUES[self.metric],
            alpha=self.alpha,
            min_samples_per_arm=self.min_samples_per_arm,
            sequential=self.sequential,
            hash_version=self.hash_version,
            seed=self.seed,
            coverage=self.coverage,
        )


@dataclass(frozen=True, slots=True)
class CanaryState:
    canary_id: str
    baseline: str
    candidate: str
    steps: tuple[float, ...]  # percents
    min_samples_per_step: int
    metric: str
    alpha: float
    step: int = 0
    step_started_position: int = 0
    # guardrails and the schedule's period (Canary.max_*, step_seconds; 0: not used)
    max_error_rate: float = 0.0
    max_latency_p95_ms: float = 0.0
    max_cost_per_prediction: float = 0.0
    step_seconds: int = 0
    step_started_us: int = 0  # on the deciding gateway's clock

    @property
    def percent(self) -> float:
        return self.steps[self.step]

    @property
    def step_key(self) -> str:
        """Predictions made during a step are recorded under this key, so each step is
        judged on its own traffic."""
        return f"{self.canary_id}/{self.step}"

    @classmethod
    def from_proto(cls, msg: pb.Canary, position: int) -> CanaryState:
        return cls(
            canary_id=msg.canary_id,
            baseline=msg.baseline,
            candidate=msg.candidate,
            steps=tuple(msg.steps),
            min_samples_per_step=msg.min_samples_per_step,
            metric=METRIC_KINDS.get(msg.metric, "binary"),
            alpha=msg.alpha,
            step=msg.step,
            step_started_position=position,
            max_error_rate=msg.max_error_rate,
            max_latency_p95_ms=msg.max_latency_p95_ms,
            max_cost_per_prediction=msg.max_cost_per_prediction,
            step_seconds=msg.step_seconds,
            step_started_us=msg.step_started_us,
        )

    def advanced(self, msg: pb.CanaryAdvanced, position: int) -> CanaryState:
        """The canary at the step a CanaryAdvanced moved it to."""
        return dataclasses.replace(
            self, step=msg.step, step_started_position=position, step_started_us=msg.started_us
        )

    def to_proto(self) -> pb.Canary:
        return pb.Canary(
            canary_id=self.canary_id,
            baseline=self.baseline,
            candidate=self.candidate,
            steps=list(self.steps),
            min_samples_per_step=self.min_samples_per_step,
            metric=METRIC_VALUES[self.metric],
            alpha=self.alpha,
            step=self.step,
            max_error_rate=self.max_error_rate,
            max_latency_p95_ms=self.max_latency_p95_ms,
            max_cost_per_prediction=self.max_cost_per_prediction,
            step_seconds=self.step_seconds,
            step_started_us=self.step_started_us,
        )


@dataclass(frozen=True, slots=True)
class CaptureState:
    """What a deployment keeps of its predictions beyond the decision (CapturePolicySet):
    module-call traces, the inputs and outputs, only `fields` of them when given, deleted
    after `retention_days` (0: kept). A deployment without one keeps nothing."""

    traces: bool
    inputs_outputs: bool
    fields: tuple[str, ...]
    retention_days: int
    set_position: int = 0

    @classmethod
    def from_proto(cls, msg: pb.CapturePolicy, position: int) -> CaptureState:
        return cls(msg.traces, msg.inputs_outputs, tuple(msg.fields), msg.retention_days, position)

    def to_proto(self) -> pb.CapturePolicy:
        return pb.CapturePolicy(
            traces=self.traces,
            inputs_outputs=self.inputs_outputs,
            fields=list(self.fields),
            retention_days=self.retention_days,
        )


DRIFT_SIGNALS: tuple[str, ...] = ("outcome_rate", "error_rate", "latency_p95", "cost_per_prediction")
# what a monitor's unset (0) settings mean; SetDriftMonitor writes them into its event, and
# the fold applies them too, so a DriftMonitorSet appended without them watches the same way
DRIFT_ALPHA = 0.05
DRIFT_WINDOW = 200
DRIFT_MIN_OUTCOMES = 100


@dataclass(frozen=True, slots=True)
class DriftDetection:
    """A DriftDetected, in short: its signal's live value against the reference."""

    version: str
    signal: str
    position: int  # the DriftDetected
    value: float = 0.0
    reference: float = 0.0
    p_value: float = 0.0
    n: int = 0

    @classmethod
    def from_proto(cls, msg: pb.DriftDetected, position: int) -> DriftDetection:
        s = msg.statistics
        return cls(msg.version, msg.signal, position, s.value, s.reference, s.p_value, s.n)


@dataclass(frozen=True, slots=True)
class DriftState:
    """A deployment's drift monitor (DriftMonitorSet; None: off, the default) and what it has
    detected since it was armed at `set_position`: one DriftDetected per serving version and
    signal, until a DriftMonitorSet re-arms it. Its live window is the serving version's
    predictions made on states at or after `set_position`."""

    metric: str  # binary | continuous
    alpha: float
    reference: str  # offline | window
    reference_window: int
    min_outcomes: int
    max_error_rate: float  # 0: not watched
    max_latency_p95_ms: float
    max_cost_per_prediction: float
    set_position: int = 0
    detections: tuple[DriftDetection, ...] = ()

    @classmethod
    def from_proto(cls, msg: pb.DriftMonitor, position: int) -> DriftState:
        reference = msg.reference or "offline"
        return cls(
            metric=METRIC_KINDS.get(msg.metric, "binary"),
            alpha=msg.alpha or DRIFT_ALPHA,
            reference=reference,
            reference_window=(msg.reference_window or DRIFT_WINDOW) if reference == "window" else 0,
            min_outcomes=msg.min_outcomes or DRIFT_MIN_OUTCOMES,
            max_error_rate=msg.max_error_rate,
            max_latency_p95_ms=msg.max_latency_p95_ms,
            max_cost_per_prediction=msg.max_cost_per_prediction,
            set_position=position,
        )

    def to_proto(self) -> pb.DriftMonitor:
        return pb.DriftMonitor(
            enabled=True,
            metric=METRIC_VALUES[self.metric],
            alpha=self.alpha,
            reference=self.reference,
            reference_window=self.reference_window,
            min_outcomes=self.min_outcomes,
            max_error_rate=self.max_error_rate,
            max_latency_p95_ms=self.max_latency_p95_ms,
            max_cost_per_prediction=self.max_cost_per_prediction,
        )

    def detected(self, version: str, signal: str) -> bool:
        return any(d.version == version and d.signal == signal for d in self.detections)

    @staticmethod
    def after(
        current: DriftState | None, msg: pb.DriftMonitorSet | pb.DriftDetected, position: int
    ) -> DriftState | None:
        """A deployment's monitor after a drift event on its stream (the fold's one rule)."""
        if isinstance(msg, pb.DriftMonitorSet):
            return DriftState.from_proto(msg.monitor, position) if msg.monitor.enabled else None
        if current is None or current.detected(msg.version, msg.signal):
            return current  # no monitor, or a detection it holds already: nothing new
        detection = DriftDetection.from_proto(msg, position)
        return dataclasses.replace(current, detections=(*current.detections, detection))


@dataclass(frozen=True, slots=True)
class DeploymentState:
    name: str
    program: str
    routes: tuple[RouteState, ...] = ()
    stream_version: int = 0
    created_position: int = 0
    changed_position: int = 0  # the last change of what serves it (routes, experiment, canary)
    experiment: ExperimentState | None = None
    canary: CanaryState | None = None
    capture: CaptureState | None = None  # None: nothing kept beyond the decision
    drift: DriftState | None = None  # the drift monitor (None: off)
    evaluators: tuple[EvaluatorState, ...] = ()  # its online evaluators, by name
    learning: LearningState | None = None  # the learning policy and its runs (None: never set)


@dataclass(frozen=True, slots=True)
class JobSummary:
    job_id: str
    program: str
    optimizer: str
    state: str  # queued | running | succeeded | failed | cancelled | interrupted
    accepted_position: int
    accepted_at_us: int
    baseline_score: float = 0.0
    final_score: float = 0.0
    best_score: float = 0.0
    trials: int = 0
    version: str = ""
    error: str = ""
    # Claims (JobClaimed): 0 / "" for jobs of logs from before them (max_attempts == 0).
    max_attempts: int = 0
    lease_ms: int = 0
    owner: str = ""  # the replica holding the job's lease ("" : nobody)
    fence: int = 0  # the stream version of the last JobClaimed (kept after a release)
    attempt: int = 0
    lease_until_us: int = 0  # recorded_at of the owner's last event + lease_ms (the log's clock)
    stream_version: int = 0  # the job stream's version: a claim appends expecting it
    cancel_requested: str = ""  # the reason of a JobCancelRequested the owner has to act on
    lm_calls: int = 0  # paid LM calls, from its terminal event's usage (0 until it ends)
    ended_at_us: int = 0  # recorded_at of its terminal event (the log's clock; 0: not ended)

    @property
    def current_fence(self) -> int:
        """The fence an event must carry to count: the owner's claim, or 0 while nobody
        owns the job (queued, or a log from before claims)."""
        return self.fence if self.owner else 0


@dataclass(frozen=True, slots=True)
class RequestEntry:
    """The first command a client request_id was used for: where its origin event is.

    A retry of the same request (same method, same request_sha256) is answered from the log
    at `position`; the same id with anything else is refused (dspyops.commands)."""

    method: str
    request_sha256: str
    stream: str
    position: int


@dataclass(frozen=True, slots=True)
class CorpusState:
    """A corpus name and the documents it points to now (a re-registration moves it)."""

    name: str
    digest: str
    count: int
    registered_position: int  # the CorpusRegistered that moved the name to this digest
    stream_version: int  # of corpus-<name>: a registration appends with it as expected_version


@dataclass(frozen=True, slots=True)
class CorpusContent:
    """Documents by digest, for as long as the log holds them: a version that recorded a
    digest resolves it after its name has moved on. Never the documents themselves: they
    stay in the event at `position` (and the optimizer's artifact store), so the state stays
    small and its hash cheap."""

    digest: str
    count: int
    corpus: str  # the name it was first registered under
    position: int  # the first CorpusRegistered that carries these documents
    # every name that has pointed at it, in order: a version records digests by stage, and a
    # build asks for corpora by name, so a registered version's names resolve among these
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class State:
    position: int = 0
    programs: Mapping[str, ProgramState] = field(default_factory=dict)
    deployments: Mapping[str, DeploymentState] = field(default_factory=dict)
    jobs: Mapping[str, JobSummary] = field(default_factory=dict)
    # request_id -> the command it first answered (from RequestOrigin on command events)
    requests: Mapping[str, RequestEntry] = field(default_factory=dict)
    corpora: Mapping[str, CorpusState] = field(default_factory=dict)  # name -> where it points
    corpus_contents: Mapping[str, CorpusContent] = field(default_factory=dict)  # digest -> where


EMPTY = State()
