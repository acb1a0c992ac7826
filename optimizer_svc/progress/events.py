"""What a running job reports, as the runner and the capture emit it (optimizer_svc.jobs
turns each into the OptimizationEvent it streams, and logs the lifecycle and trial ones)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Started:
    optimizer: str
    planned_trials: int  # 0 if unknown


@dataclass(frozen=True)
class BaselineEvaluated:
    score: float
    examples: int


@dataclass(frozen=True)
class Progress:
    step: int
    total: int  # 0 if unknown
    message: str
    predictor: str = ""  # the predictor it concerns, when one (a proposed instruction, a rule)


@dataclass(frozen=True)
class TrialCompleted:
    trial: int
    score: float
    best_score: float
    candidate: str  # instruction text, or "4 demos", ...
    predictors: tuple[
        str, ...
    ] = ()  # the predictors this candidate changed (optimizer_svc.progress.predictors)


JobEvent = Started | BaselineEvaluated | Progress | TrialCompleted
Emit = Callable[[JobEvent], None]
