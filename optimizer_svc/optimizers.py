"""One small adapter per DSPy optimizer: validated request params -> teleprompter -> compile.

Params arrive as JSON (a protobuf Struct), so numbers may be floats: an integral float is
accepted for an integer param. ``validate_params`` runs before any LM is built and names
the offending field in every error (``params.max_bootstrapped_demos: must be ...``).

Each adapter also knows how many trials the optimizer will report (for ``Started``) and
how to describe a candidate program in a ``TrialCompleted`` (its demo count, or its
instruction text). Adapters are built and compiled inside the job's ``dspy.context``:
MIPROv2 captures ``dspy.settings.lm`` at construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dspy
from dspy.teleprompt import (
    COPRO,
    BootstrapFewShot,
    BootstrapFewShotWithRandomSearch,
    LabeledFewShot,
    MIPROv2,
)
from dspy.teleprompt.teleprompt import Teleprompter

Metric = Callable[..., float]
_MISSING: Any = object()


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
        bad = InvalidOptimizerParams(where, f"must be {self.describe_range()}, got {_show(value)}")
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


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value[:40]}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _num(value) if math.isfinite(value) else str(value)
    return type(value).__name__


@dataclass(frozen=True)
class CompileInputs:
    """Everything an adapter needs, built by the runner inside the job's dspy.context."""

    student: dspy.Module
    trainset: list[dspy.Example]
    valset: list[dspy.Example]  # may be empty: each optimizer then does what it does by default
    metric: Metric
    params: dict[str, Any]  # normalized by validate_params
    prompt_lm: dspy.LM | None = None


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

    def param(self, name: str) -> ParamSpec:
        return next(p for p in self.params if p.name == name)


# --------------------------------------------------------------------------------------
# Candidate descriptions
# --------------------------------------------------------------------------------------


def count_demos(program: dspy.Module) -> int:
    return sum(len(p.demos) for p in program.predictors())


def describe_demos(program: dspy.Module) -> str:
    n = count_demos(program)
    return f"{n} demo" if n == 1 else f"{n} demos"


def describe_instructions(program: dspy.Module) -> str:
    text = " || ".join(p.signature.instructions for p in program.predictors())
    n = count_demos(program)
    return f"{text} [{describe_demos(program)}]" if n else text


# --------------------------------------------------------------------------------------
# Shared params
# --------------------------------------------------------------------------------------

_NUM_THREADS = ParamSpec(
    "num_threads", int, 2, "threads for evaluating candidates (and the baseline/final evaluation)", 1, 32
)
_MAX_BOOTSTRAPPED = ParamSpec(
    "max_bootstrapped_demos", int, 4, "demos generated by running the program on training examples", 0, 64
)
_MAX_LABELED = ParamSpec("max_labeled_demos", int, 16, "demos taken as-is from the training set", 0, 256)
_MAX_ROUNDS = ParamSpec("max_rounds", int, 1, "bootstrap attempts per training example", 1, 10)
_METRIC_THRESHOLD = ParamSpec(
    "metric_threshold",
    float,
    None,
    "minimum metric score for a bootstrapped demo to be kept (null: any truthy score)",
    0.0,
    1.0,
    nullable=True,
)


# --------------------------------------------------------------------------------------
# LabeledFewShot
# --------------------------------------------------------------------------------------


def _lfs_build(inputs: CompileInputs) -> Teleprompter:
    return LabeledFewShot(k=inputs.params["k"])


def _lfs_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    return optimizer.compile(inputs.student, trainset=inputs.trainset)


# --------------------------------------------------------------------------------------
# BootstrapFewShot
# --------------------------------------------------------------------------------------


def _bfs_build(inputs: CompileInputs) -> Teleprompter:
    p = inputs.params
    return BootstrapFewShot(
        metric=inputs.metric,
        metric_threshold=p["metric_threshold"],
        max_bootstrapped_demos=p["max_bootstrapped_demos"],
        max_labeled_demos=p["max_labeled_demos"],
        max_rounds=p["max_rounds"],
    )


def _bfs_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    return optimizer.compile(inputs.student, trainset=inputs.trainset)


# --------------------------------------------------------------------------------------
# BootstrapFewShotWithRandomSearch
# --------------------------------------------------------------------------------------


def _rs_build(inputs: CompileInputs) -> Teleprompter:
    p = inputs.params
    stop = p["stop_at_score"]
    return BootstrapFewShotWithRandomSearch(
        metric=inputs.metric,
        metric_threshold=p["metric_threshold"],
        max_bootstrapped_demos=p["max_bootstrapped_demos"],
        max_labeled_demos=p["max_labeled_demos"],
        max_rounds=p["max_rounds"],
        num_candidate_programs=p["num_candidate_programs"],
        num_threads=p["num_threads"],
        # DSPy compares stop_at_score with Evaluate's percentage score.
        stop_at_score=None if stop is None else stop * 100.0,
    )


def _rs_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    return optimizer.compile(inputs.student, trainset=inputs.trainset, valset=inputs.valset or None)


def _rs_planned(inputs: CompileInputs) -> int:
    # Seeds -3 (zero-shot), -2 (labeled only), -1 (unshuffled bootstrap), then N shuffled.
    return inputs.params["num_candidate_programs"] + 3


# --------------------------------------------------------------------------------------
# MIPROv2
# --------------------------------------------------------------------------------------

_MIPRO_AUTO_N = {"light": 6, "medium": 12, "heavy": 18}  # dspy AUTO_RUN_SETTINGS[...]["n"]
_MIPRO_AUTO_VAL = {"light": 100, "medium": 300, "heavy": 1000}  # ... ["val_size"]


def _mipro_check(p: dict[str, Any]) -> None:
    if p["auto"] is not None:
        for name in ("num_trials", "num_candidates"):
            if p[name] is not None:
                raise InvalidOptimizerParams(
                    "params.auto", f"MIPROv2 takes either auto or {name}, not both (set auto to null)"
                )
    else:
        for name, other in (("num_trials", "num_candidates"), ("num_candidates", "num_trials")):
            if p[name] is None:
                raise InvalidOptimizerParams(
                    f"params.{name}", f"is required when auto is null (with {other}), or set auto"
                )


@dataclass(frozen=True)
class MiproPlan:
    num_trials: int
    valset_size: int
    minibatch: bool
    num_instruct_candidates: int
    num_fewshot_candidates: int
    planned_trials: int  # evaluations MIPROv2 runs, counting the default program's


def mipro_plan(inputs: CompileInputs) -> MiproPlan:
    """Mirror MIPROv2.compile's own arithmetic (dspy 3.4.1), so Started can announce the trials."""
    p = inputs.params
    n_predictors = len(inputs.student.predictors())
    zeroshot = p["max_bootstrapped_demos"] == 0 and p["max_labeled_demos"] == 0
    if inputs.valset:
        valset_size = len(inputs.valset)
    else:  # MIPROv2 keeps the last 80% of the trainset for validation
        valset_size = min(1000, max(1, int(len(inputs.trainset) * 0.8)))
    if p["auto"] is not None:
        n = _MIPRO_AUTO_N[p["auto"]]
        valset_size = min(valset_size, _MIPRO_AUTO_VAL[p["auto"]])
        minibatch = valset_size > 50
        instruct = n if zeroshot else int(n * 0.5)
        fewshot = n
        num_vars = n_predictors * (1 if zeroshot else 2)
        num_trials = int(max(2 * num_vars * math.log2(n), 1.5 * n))
    else:
        instruct = fewshot = p["num_candidates"]
        num_trials = p["num_trials"]
        minibatch = _mipro_minibatch(p, valset_size)
    if minibatch:
        steps = p["minibatch_full_eval_steps"]
        planned = num_trials + num_trials // steps + 1 + (1 if num_trials % steps else 0)
    else:
        planned = num_trials + 1
    return MiproPlan(num_trials, valset_size, minibatch, instruct, fewshot, planned)


def _mipro_minibatch(p: dict[str, Any], valset_size: int) -> bool:
    # DSPy refuses minibatch_size > len(valset); a minibatch that large is a full evaluation anyway.
    return bool(p["minibatch"]) and valset_size > p["minibatch_size"]


def _mipro_build(inputs: CompileInputs) -> Teleprompter:
    p = inputs.params
    return MIPROv2(
        metric=inputs.metric,
        prompt_model=inputs.prompt_lm,  # None: dspy.settings.lm, i.e. the job's LM
        max_bootstrapped_demos=p["max_bootstrapped_demos"],
        max_labeled_demos=p["max_labeled_demos"],
        auto=p["auto"],
        num_candidates=p["num_candidates"],
        num_threads=p["num_threads"],
        seed=p["seed"],
        init_temperature=p["init_temperature"],
        metric_threshold=p["metric_threshold"],
        verbose=False,
    )


def _mipro_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    p = inputs.params
    plan = mipro_plan(inputs)
    kwargs: dict[str, Any] = {}
    if p["auto"] is None:
        kwargs["num_trials"] = p["num_trials"]
        kwargs["minibatch"] = plan.minibatch
    return optimizer.compile(
        inputs.student,
        trainset=inputs.trainset,
        valset=inputs.valset or None,
        minibatch_size=p["minibatch_size"],
        minibatch_full_eval_steps=p["minibatch_full_eval_steps"],
        **kwargs,
    )


# --------------------------------------------------------------------------------------
# COPRO
# --------------------------------------------------------------------------------------


def _copro_build(inputs: CompileInputs) -> Teleprompter:
    p = inputs.params
    return COPRO(
        prompt_model=inputs.prompt_lm,
        metric=inputs.metric,
        breadth=p["breadth"],
        depth=p["depth"],
        init_temperature=p["init_temperature"],
    )


def _copro_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    # COPRO scores candidates on the trainset; eval_kwargs go to both Evaluate() and its call.
    eval_kwargs = {"num_threads": inputs.params["num_threads"], "display_progress": False}
    return optimizer.compile(inputs.student, trainset=inputs.trainset, eval_kwargs=eval_kwargs)


def _copro_planned(inputs: CompileInputs) -> int:
    breadth, depth = inputs.params["breadth"], inputs.params["depth"]
    k = len(inputs.student.predictors())
    if k == 1:
        return breadth * depth  # breadth candidates per depth (breadth-1 proposals + the current one)
    # With several predictors COPRO re-evaluates every candidate so far at each depth.
    return k * breadth * depth * (depth + 1) // 2


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------

OPTIMIZERS: dict[str, OptimizerAdapter] = {
    a.name: a
    for a in (
        OptimizerAdapter(
            name="LabeledFewShot",
            params=(
                ParamSpec("k", int, 16, "labeled demos sampled from the training set", 1, 256),
                _NUM_THREADS,
            ),
            needs_valset=False,
            doc="Puts k randomly sampled training examples into each predictor's prompt.",
            build=_lfs_build,
            compile=_lfs_compile,
            planned_trials=lambda _inputs: 1,
            describe=describe_demos,
        ),
        OptimizerAdapter(
            name="BootstrapFewShot",
            params=(_MAX_BOOTSTRAPPED, _MAX_LABELED, _MAX_ROUNDS, _METRIC_THRESHOLD, _NUM_THREADS),
            needs_valset=False,
            doc="Runs the program on training examples and keeps the traces the metric accepts as demos.",
            build=_bfs_build,
            compile=_bfs_compile,
            planned_trials=lambda _inputs: 1,
            describe=describe_demos,
        ),
        OptimizerAdapter(
            name="BootstrapFewShotWithRandomSearch",
            params=(
                ParamSpec(
                    "max_bootstrapped_demos",
                    int,
                    4,
                    "upper bound of the random demo count per candidate",
                    1,
                    64,
                ),
                _MAX_LABELED,
                _MAX_ROUNDS,
                ParamSpec(
                    "num_candidate_programs",
                    int,
                    16,
                    "shuffled bootstrap candidates (plus 3 baselines)",
                    1,
                    256,
                ),
                ParamSpec(
                    "stop_at_score",
                    float,
                    None,
                    "stop once a candidate scores this much",
                    0.0,
                    1.0,
                    nullable=True,
                ),
                _METRIC_THRESHOLD,
                _NUM_THREADS,
            ),
            needs_valset=True,
            doc="Bootstraps several demo sets and keeps the one that scores best on the valset.",
            build=_rs_build,
            compile=_rs_compile,
            planned_trials=_rs_planned,
            describe=describe_demos,
        ),
        OptimizerAdapter(
            name="MIPROv2",
            params=(
                ParamSpec(
                    "auto",
                    str,
                    "light",
                    "run size preset; null to set num_candidates and num_trials yourself",
                    choices=("light", "medium", "heavy"),
                    nullable=True,
                ),
                ParamSpec(
                    "num_candidates", int, None, "instruction and demo-set candidates", 2, 64, nullable=True
                ),
                ParamSpec("num_trials", int, None, "Bayesian optimization trials", 1, 500, nullable=True),
                ParamSpec("max_bootstrapped_demos", int, 4, _MAX_BOOTSTRAPPED.doc, 0, 64),
                ParamSpec("max_labeled_demos", int, 4, _MAX_LABELED.doc, 0, 256),
                ParamSpec(
                    "minibatch",
                    bool,
                    True,
                    "score trials on minibatches (when the valset exceeds minibatch_size)",
                ),
                ParamSpec("minibatch_size", int, 35, "examples per minibatch", 1, 10_000),
                ParamSpec(
                    "minibatch_full_eval_steps",
                    int,
                    5,
                    "full evaluation of the best every N minibatch trials",
                    1,
                    100,
                ),
                ParamSpec("seed", int, 9, "random seed", 0, 2**31 - 1),
                ParamSpec("init_temperature", float, 1.0, "instruction proposal temperature", 0.0, 2.0),
                _METRIC_THRESHOLD,
                _NUM_THREADS,
            ),
            needs_valset=True,
            doc="Proposes instructions, bootstraps demo sets, and searches their combinations with Optuna.",
            build=_mipro_build,
            compile=_mipro_compile,
            planned_trials=lambda inputs: mipro_plan(inputs).planned_trials,
            describe=describe_instructions,
            check=_mipro_check,
        ),
        OptimizerAdapter(
            name="COPRO",
            params=(
                ParamSpec("breadth", int, 10, "instruction candidates per round", 2, 64),
                ParamSpec("depth", int, 3, "rounds of refinement", 1, 20),
                ParamSpec("init_temperature", float, 1.4, "instruction proposal temperature", 0.0, 2.0),
                _NUM_THREADS,
            ),
            needs_valset=False,
            doc="Refines each predictor's instruction by coordinate ascent, scored on the trainset.",
            build=_copro_build,
            compile=_copro_compile,
            planned_trials=_copro_planned,
            describe=describe_instructions,
        ),
    )
}


def get_adapter(optimizer: str) -> OptimizerAdapter:
    adapter = OPTIMIZERS.get(optimizer) if isinstance(optimizer, str) else None
    if adapter is None:
        shown = f'"{optimizer}"' if isinstance(optimizer, str) else type(optimizer).__name__
        raise InvalidOptimizerParams("optimizer", f"unknown {shown}; known: {', '.join(OPTIMIZERS)}")
    return adapter


def validate_params(optimizer: str, params: dict[str, Any]) -> dict[str, Any]:
    """Normalized params (defaults filled in, integral floats made ints); raises InvalidOptimizerParams."""
    adapter = get_adapter(optimizer)
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidOptimizerParams("params", f"must be an object, got {type(params).__name__}")
    known = {p.name for p in adapter.params}
    for name in params:
        if name not in known:
            raise InvalidOptimizerParams(
                f"params.{name}", f"unknown parameter for {adapter.name}; known: {', '.join(sorted(known))}"
            )
    normalized = {
        p.name: p.normalize(params[p.name]) if p.name in params else p.default for p in adapter.params
    }
    if (
        adapter.name == "MIPROv2"
        and "auto" not in params
        and (normalized["num_trials"] is not None or normalized["num_candidates"] is not None)
    ):
        normalized["auto"] = None  # asking for trials or candidates means "no preset"
    if adapter.check is not None:
        adapter.check(normalized)
    return normalized
