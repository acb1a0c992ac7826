"""A deployment's online evaluators as the fold keeps them (EvaluatorSet events): what each
scores with, the share it samples and its budget. Kept out of dspyops/state.py (one idea per
module); DeploymentState.evaluators holds a tuple of these, ordered by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dspyops.eventlog import StoredEvent
from dspyops.proto import events_pb2 as pb

SOURCE_PREFIX = "evaluator:"  # an evaluator's outcomes: source "evaluator:<name>"; a human's: ""


def evaluator_source(name: str) -> str:
    return f"{SOURCE_PREFIX}{name}"


@dataclass(frozen=True, slots=True)
class EvaluatorState:
    name: str
    share: float
    metric: str  # a metric name, or "" for a judge
    judge_program: str
    judge_version: str
    max_calls_per_hour: int  # 0: no limit
    max_cost_per_hour: float  # 0: no limit
    set_position: int = 0

    @property
    def source(self) -> str:
        return evaluator_source(self.name)

    @property
    def is_judge(self) -> bool:
        return not self.metric

    @classmethod
    def from_proto(cls, msg: pb.Evaluator, position: int) -> EvaluatorState:
        return cls(
            name=msg.name,
            share=msg.share,
            metric=msg.metric,
            judge_program=msg.judge_program,
            judge_version=msg.judge_version,
            max_calls_per_hour=msg.max_calls_per_hour,
            max_cost_per_hour=msg.max_cost_per_hour,
            set_position=position,
        )

    def to_proto(self) -> pb.Evaluator:
        return pb.Evaluator(
            name=self.name,
            share=self.share,
            metric=self.metric,
            judge_program=self.judge_program,
            judge_version=self.judge_version,
            max_calls_per_hour=self.max_calls_per_hour,
            max_cost_per_hour=self.max_cost_per_hour,
            enabled=True,
        )

    @staticmethod
    def after(
        current: tuple[EvaluatorState, ...], msg: pb.EvaluatorSet, position: int
    ) -> tuple[EvaluatorState, ...]:
        """The evaluators once `msg` is folded: the one of that name replaced, added, or
        (enabled false) removed; ordered by name."""
        name = msg.evaluator.name
        kept = {e.name: e for e in current if e.name != name}
        if msg.evaluator.enabled:
            kept[name] = EvaluatorState.from_proto(msg.evaluator, position)
        return tuple(kept[n] for n in sorted(kept))


class _Draft(Protocol):
    """What the fold's deployment draft offers this handler (dspyops.fold._DeploymentDraft)."""

    evaluators: tuple[EvaluatorState, ...]
    stream_version: int


class _Builder(Protocol):
    def deployment(self, name: str) -> _Draft | None: ...

    def origin(self, event: StoredEvent, origin: pb.RequestOrigin) -> None: ...


def evaluator_set(b: _Builder, event: StoredEvent, msg: pb.EvaluatorSet) -> None:
    """The fold's EvaluatorSet handler (here, not in fold.py: a module per idea). Like a
    capture policy: the stream version moves, `changed_position` (what serves) does not."""
    if msg.HasField("origin"):  # RequestOrigin's wire twin (evaluators.proto): read as one
        b.origin(event, msg.origin)
    deployment = b.deployment(msg.deployment)
    if deployment is not None:
        deployment.evaluators = EvaluatorState.after(deployment.evaluators, msg, event.position)
        deployment.stream_version = event.version
