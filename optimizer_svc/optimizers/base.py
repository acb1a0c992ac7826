"""What every optimizer family shares: parameter specs, the adapter, and what a compile gets.

Params arrive as JSON (a protobuf Struct), so numbers may be floats: an integral float is
accepted for an integer param. ``OptimizerAdapter.validate`` runs before any LM is built and
names the offending field in every error (``params.max_bootstrapped_demos: must be ...``).

Each adapter also knows how many trials its optimizer will report (for ``Started``), how to
describe a candidate program in a ``TrialCompleted`` (its demo count, or its instruction
text), and how its optimizer's progress is read: the lines it writes to the ``dspy`` logger
(``log_parsers``) and the DSPy modules that propose instructions or rules (``proposers``),
which the job's ``ProgressCapture`` (optimizer_svc.progress.capture) consults. Adapters are
built and compiled inside the job's ``dspy.context``: MIPROv2 captures ``dspy.settings.lm``
at construction.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import dspy
from dspy.teleprompt.teleprompt import Teleprompter

Metric = Callable[..., float]


class InvalidOptimizerParams(ValueError):
    """A bad optimizer name or param; ``field`` is the request field path, e.g. ``params.k``."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: type
    default: Any
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    nullable: bool = False  # JSON null is a meaningful value (e.g. "no threshold")

    def describe_range(self) -> str:
        kind = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[self.type]
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        if self.minimum is not None and self.maximum is not None:
            return f"{kind} in [{_num(self.minimum)}, {_num(self.maximum)}]"
        if self.minimum is not None:
            return f"{kind} >= {_num(self.minimum)}"
        if self.maximum is not None:
            return f"{kind} <= {_num(self.maximum)}"
        return kind

    def normalize(self, value: Any) -> Any:
        """The value coerced to this param's type; raises InvalidOptimizerParams naming the field."""
        where = f"params.{self.name}"
        if value is None:
            if self.nullable:
                return None
            raise InvalidOptimizerParams(where, f"must be {self.describe_range()}, got null")
        bad = InvalidOptimizerParams(where, f"must be {self.describe_range()}, got {show_value(value)}")
        if self.type is bool:
            if not isinstance(value, bool):
                raise bad
            return value
        if self.type is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise bad
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        if self.type is int:
            if isinstance(value, float):
                if not math.isfinite(value) or not value.is_integer():
                    raise bad
                value = int(value)
        else:
            if not math.isfinite(value):
                raise bad
            value = float(value)
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise bad
        return value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def show_value(value: Any) -> str:
    """A request value as an error message quotes it: strings cut to 40 characters."""
    if isinstance(value, str):
        return f'"{value[:40]}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _num(value) if math.isfinite(value) else str(value)
    return type(value).__name__


class ProgressSink(Protocol):
    """Where an optimizer's progress goes: the job's ProgressCapture (optimizer_svc.progress)."""

    def progress(self, step: int, total: int, message: str, predictor: str = "") -> None: ...

    def record_trial(
        self,
        score: float,
        candidate: str,
        *,
        counts_for_best: bool = True,
        program: Any = None,
        predictors: Sequence[str] | None = None,
    ) -> object: ...


@dataclass(frozen=True)
class LogParser:
    """One kind of line an optimizer writes to the ``dspy`` logger, and what it reports.

    DSPy exposes no hook for these phases (MIPROv2's steps, COPRO's rounds, SIMBA's scores):
    the log lines are all there is. ``read`` gets the match and the job's sink."""

    pattern: re.Pattern[str]
    read: Callable[[re.Match[str], ProgressSink], None]


@dataclass(frozen=True)
class Proposer:
    """A DSPy module that proposes instructions or rules during a compile, matched by its
    class name (they are not part of DSPy's public API); ``message(n, outputs)`` is the
    progress line of its n-th proposal."""

    module: str
    message: Callable[[int, Any], str]
    # the predictor a proposal is for, from the proposing module's call arguments ("" if unknown)
    predictor: Callable[[dict[str, Any]], str] | None = None


@dataclass(frozen=True)
class CompileInputs:
    """Everything an adapter needs, built by the runner inside the job's dspy.context."""

    student: dspy.Module
    trainset: list[dspy.Example]
    valset: list[dspy.Example]  # may be empty: each optimizer then does what it does by default
    metric: Metric
    params: dict[str, Any]  # normalized by OptimizerAdapter.validate
    prompt_lm: dspy.LM | None = None
    # The job's ProgressCapture and CancelToken, for adapters that report progress through
    # hooks of their own (GEPA's callbacks, the k-NN embedder).
    capture: ProgressSink | None = None
    cancel: Any = None

    def progress(self, step: int, total: int, message: str, predictor: str = "") -> None:
        if self.capture is not None:
            self.capture.progress(step, total, message, predictor)


@dataclass(frozen=True)
class Preset:
    """A documented (optimizer, params) pair a request can name instead of spelling it out."""

    name: str
    optimizer: str
    params: dict[str, Any] = field(default_factory=dict)
    doc: str = ""


@dataclass(frozen=True)
class OptimizerAdapter:
    name: str
    params: tuple[ParamSpec, ...]
    needs_valset: bool  # the optimizer selects among candidates on a validation set
    doc: str
    build: Callable[[CompileInputs], Teleprompter] = field(repr=False)
    compile: Callable[[Teleprompter, CompileInputs], dspy.Module] = field(repr=False)
    planned_trials: Callable[[CompileInputs], int] = field(repr=False)
    describe: Callable[[dspy.Module], str] = field(repr=False)
    check: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)  # cross-field rules
    # Setting any of these params (and not ``auto``) means "no auto preset": auto becomes null.
    replaces_auto: tuple[str, ...] = ()
    rules: str = ""  # cross-field rules in words, for ListOptimizers
    needs_teacher: bool = False  # no adapter takes a teacher program (the student teaches itself)
    prompt_lm_role: str = ""  # what the job's prompt_lm does here ("" = not used)
    # False: the adapter reports trials through its own hooks, not from every dspy.Evaluate.
    trials_from_evaluate: bool = True
    # What the optimized program is around the student (ProgramSpec.wrapper: "KNNFewShot",
    # "Ensemble"; dspyops.programs.wrappers): the version registered names it. "" = the
    # student itself, optimized.
    wrapper: str = ""
    # How its progress is read (first matching parser wins), and its proposing modules.
    log_parsers: tuple[LogParser, ...] = ()
    proposers: tuple[Proposer, ...] = ()
    presets: tuple[Preset, ...] = ()

    def param(self, name: str) -> ParamSpec:
        return next(p for p in self.params if p.name == name)

    def validate(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """Normalized params (defaults filled in, integral floats made ints); raises
        InvalidOptimizerParams naming the field."""
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise InvalidOptimizerParams("params", f"must be an object, got {type(params).__name__}")
        known = {p.name for p in self.params}
        for name in params:
            if name not in known:
                raise InvalidOptimizerParams(
                    f"params.{name}", f"unknown parameter for {self.name}; known: {', '.join(sorted(known))}"
                )
        normalized = {
            p.name: p.normalize(params[p.name]) if p.name in params else p.default for p in self.params
        }
        if (
            self.replaces_auto
            and "auto" not in params
            and any(normalized[name] is not None for name in self.replaces_auto)
        ):
            normalized["auto"] = None  # asking for trials, candidates or calls means "no auto preset"
        if self.check is not None:
            self.check(normalized)
        return normalized


class NoOp(Teleprompter):
    """For adapters whose optimizer is built inside compile (KNNFewShot embeds its trainset in
    its constructor; Ensemble bootstraps its members there)."""


# --------------------------------------------------------------------------------------
# Candidate descriptions and scores
# --------------------------------------------------------------------------------------


def count_demos(program: dspy.Module) -> int:
    return sum(len(p.demos) for p in program.predictors())


def describe_demos(program: dspy.Module) -> str:
    n = count_demos(program)
    return f"{n} demo" if n == 1 else f"{n} demos"


def describe_instructions(program: dspy.Module) -> str:
    named = program.named_predictors()
    # several predictors: each instruction under its predictor's name
    text = " || ".join(
        p.signature.instructions if len(named) == 1 else f"{name}: {p.signature.instructions}"
        for name, p in named
    )
    n = count_demos(program)
    return f"{text} [{describe_demos(program)}]" if n else text


def one_line(value: Any, n: int = 300) -> str:
    """Text for a progress message: whitespace collapsed, at most ``n`` characters."""
    return " ".join(str(value or "").split())[:n]


def evaluation_score(result: Any) -> float:
    """Mean metric score in [0, 1] of an ``EvaluationResult``.

    Computed from the per-example results: ``result.score`` is a percentage rounded to two
    decimals, which turns 2/3 into 0.6667000000000001.
    """
    results = getattr(result, "results", None) or []
    if results:
        return sum(float(score) for *_, score in results) / len(results)
    return float(getattr(result, "score", 0.0)) / 100.0


def score_program(program: dspy.Module, devset: list[dspy.Example], inputs: CompileInputs) -> float:
    """The program's mean score on ``devset`` with the job's metric (an Evaluate: a trial)."""
    result = dspy.Evaluate(
        devset=devset, metric=inputs.metric, num_threads=inputs.params["num_threads"], display_progress=False
    )(program)
    return evaluation_score(result)


# --------------------------------------------------------------------------------------
# Params several families share
# --------------------------------------------------------------------------------------

NUM_THREADS = ParamSpec(
    "num_threads", int, 2, "threads for evaluating candidates (and the baseline/final evaluation)", 1, 32
)
MAX_BOOTSTRAPPED = ParamSpec(
    "max_bootstrapped_demos", int, 4, "demos generated by running the program on training examples", 0, 64
)
MAX_LABELED = ParamSpec("max_labeled_demos", int, 16, "demos taken as-is from the training set", 0, 256)
MAX_ROUNDS = ParamSpec("max_rounds", int, 1, "bootstrap attempts per training example", 1, 10)
METRIC_THRESHOLD = ParamSpec(
    "metric_threshold",
    float,
    None,
    "minimum metric score for a bootstrapped demo to be kept (null: any truthy score)",
    0.0,
    1.0,
    nullable=True,
)
