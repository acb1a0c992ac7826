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

import hashlib
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dspy
import numpy as np
from dspy.teleprompt import (
    COPRO,
    GEPA,
    SIMBA,
    BetterTogether,
    BootstrapFewShot,
    BootstrapFewShotWithOptuna,
    BootstrapFewShotWithRandomSearch,
    Ensemble,
    InferRules,
    KNNFewShot,
    LabeledFewShot,
    MIPROv2,
)
from dspy.teleprompt.teleprompt import Teleprompter
from google.protobuf.struct_pb2 import Struct

from dspyops.jsondepth import MAX_JSON_DEPTH
from dspyops.offline import content_words

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
    # The job's ProgressCapture (optimizer_svc.progress) and CancelToken, for adapters that
    # report progress through hooks of their own (GEPA's callbacks, the k-NN embedder).
    capture: Any = None
    cancel: Any = None

    def progress(self, step: int, total: int, message: str) -> None:
        if self.capture is not None:
            self.capture.progress(step, total, message)


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
    # The optimized program may not fit a registry version (one predictor of the spec's
    # module with a fixed prompt); export turns it into one, which is then scored and saved.
    export: Callable[[dspy.Module, CompileInputs], dspy.Module] | None = field(default=None, repr=False)

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
# GEPA
# --------------------------------------------------------------------------------------


def _gepa_check(p: dict[str, Any]) -> None:
    if p["auto"] is not None and p["max_metric_calls"] is not None:
        raise InvalidOptimizerParams(
            "params.auto", "GEPA takes either auto or max_metric_calls, not both (set auto to null)"
        )
    if p["auto"] is None and p["max_metric_calls"] is None:
        raise InvalidOptimizerParams("params.max_metric_calls", "is required when auto is null, or set auto")


def feedback_metric(metric: Metric) -> Callable[..., dspy.Prediction]:
    """The job's metric as GEPA's five-argument feedback metric.

    The feedback names each output field the prediction got wrong, with the expected value:
    that is what the reflection LM reads when it rewrites the instruction.
    """

    def gepa_metric(
        gold: dspy.Example,
        pred: Any,
        trace: Any = None,
        pred_name: str | None = None,
        pred_trace: Any = None,
    ) -> dspy.Prediction:
        score = float(metric(gold, pred, None))
        wrong = []
        for key in gold.labels().keys():
            got = pred.get(key) if hasattr(pred, "get") else None
            if str(got).strip() != str(gold[key]).strip():
                wrong.append(f"{key}: expected {_clip(gold[key])!r}, got {_clip(got)!r}")
        feedback = f"Score {score:g}. " + ("; ".join(wrong) if wrong else "All outputs are correct.")
        return dspy.Prediction(score=score, feedback=feedback)

    return gepa_metric


def _clip(value: Any, n: int = 200) -> str:
    text = str(value)
    return text if len(text) <= n else text[:n] + "..."


class _CancelStopper:
    """GEPA's stop-callback protocol: called between iterations, True ends the run."""

    def __init__(self, token: Any) -> None:
        self.token = token

    def __call__(self, gepa_state: Any) -> bool:
        return bool(self.token is not None and self.token.cancelled)


def _gepa_build(inputs: CompileInputs) -> Teleprompter:
    from optimizer_svc.progress import GepaProgress  # progress imports this module

    p = inputs.params
    callbacks = [GepaProgress(inputs.capture, describe_instructions)] if inputs.capture is not None else []
    return GEPA(
        metric=feedback_metric(inputs.metric),
        auto=p["auto"],
        max_metric_calls=p["max_metric_calls"],
        reflection_minibatch_size=p["reflection_minibatch_size"],
        candidate_selection_strategy=p["candidate_selection_strategy"],
        # GEPA insists on a reflection LM: the prompt LM if the job has one, else the task LM.
        reflection_lm=inputs.prompt_lm or dspy.settings.lm,
        skip_perfect_score=p["skip_perfect_score"],
        use_merge=p["use_merge"],
        max_merge_invocations=p["max_merge_invocations"],
        num_threads=p["num_threads"],
        seed=p["seed"],
        warn_on_score_mismatch=False,
        gepa_kwargs={"callbacks": callbacks, "stop_callbacks": [_CancelStopper(inputs.cancel)]},
    )


def _gepa_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    return optimizer.compile(inputs.student, trainset=inputs.trainset, valset=inputs.valset or None)


# --------------------------------------------------------------------------------------
# SIMBA
# --------------------------------------------------------------------------------------


def _simba_bsize(inputs: CompileInputs) -> int:
    # SIMBA asserts len(trainset) >= bsize; a batch as large as the trainset is the whole set.
    return min(inputs.params["bsize"], len(inputs.trainset))


def _simba_build(inputs: CompileInputs) -> Teleprompter:
    p = inputs.params
    return SIMBA(
        metric=inputs.metric,
        bsize=_simba_bsize(inputs),
        num_candidates=p["num_candidates"],
        max_steps=p["max_steps"],
        max_demos=p["max_demos"],
        prompt_model=inputs.prompt_lm,  # None: dspy.settings.lm, read in the constructor
        num_threads=p["num_threads"],
        temperature_for_sampling=p["temperature_for_sampling"],
        temperature_for_candidates=p["temperature_for_candidates"],
    )


def _simba_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    return optimizer.compile(inputs.student, trainset=inputs.trainset, seed=inputs.params["seed"])


def simba_planned(inputs: CompileInputs) -> int:
    """Candidates SIMBA scores (dspy 3.4.1): per step min(bsize, num_candidates + 1) on the
    minibatch, then the distinct evenly spaced winners on the whole trainset."""
    p = inputs.params
    n = p["num_candidates"] + 1
    per_step = min(_simba_bsize(inputs), n)
    m = p["max_steps"]  # winning programs beyond the student: one per step
    final = len(dict.fromkeys(round(i * m / (n - 1)) for i in range(n)))
    return m * per_step + final


# --------------------------------------------------------------------------------------
# KNNFewShot
# --------------------------------------------------------------------------------------

EMBEDDING_DIM = 512


def hashed_bag_of_words(texts: list[str]) -> np.ndarray:
    """A deterministic local embedding: stemmed content words hashed into 512 buckets, L2-normed."""
    vectors = np.zeros((len(texts), EMBEDDING_DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in content_words(str(text)):
            bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
            vectors[row, bucket % EMBEDDING_DIM] += 1.0
        norm = float(np.linalg.norm(vectors[row]))
        if norm:
            vectors[row] /= norm
    return vectors


def _knn_embedder(inputs: CompileInputs) -> dspy.Embedder:
    total = len(inputs.trainset)
    done = 0

    def embed(texts: list[str]) -> np.ndarray:
        nonlocal done
        vectors = hashed_bag_of_words(texts)
        if done < total:  # the first calls embed the trainset, in batches
            done = min(total, done + len(texts))
            inputs.progress(done, total, f"embedded {done}/{total} training examples")
        return vectors

    return dspy.Embedder(embed, caching=False)


class _NoOp(Teleprompter):
    """KNNFewShot embeds its trainset in the constructor: it is built inside compile instead."""


def _knn_make(inputs: CompileInputs) -> KNNFewShot:
    p = inputs.params
    # Per input, the k nearest training examples become its demos as they are (no bootstrapping).
    return KNNFewShot(
        k=p["k"],
        trainset=inputs.trainset,
        vectorizer=_knn_embedder(inputs),
        metric=inputs.metric,
        max_bootstrapped_demos=0,
        max_labeled_demos=p["k"],
    )


def _knn_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    knn = _knn_make(inputs)
    program = knn.compile(inputs.student)
    program._dspyops_knn = knn  # the retriever, for describe and export
    # Score the per-input k-NN program: the optimizer's own result, reported as a trial.
    evalset = inputs.valset or inputs.trainset
    dspy.Evaluate(
        devset=evalset, metric=inputs.metric, num_threads=inputs.params["num_threads"], display_progress=False
    )(program)
    return program


def _knn_export(program: dspy.Module, inputs: CompileInputs) -> dspy.Module:
    """A registry version is one fixed prompt: keep the training examples the retriever picks
    most often for the evaluation inputs (valset, else trainset), up to max_demos."""
    knn = program._dspyops_knn.KNN
    evalset = inputs.valset or inputs.trainset
    counts: Counter[int] = Counter()
    index = {id(example): i for i, example in enumerate(inputs.trainset)}
    for n, example in enumerate(evalset, 1):
        for neighbour in knn(**example.inputs()):
            counts[index.get(id(neighbour), -1)] += 1
        inputs.progress(n, len(evalset), f"retrieved neighbours for evaluation input {n}/{len(evalset)}")
    chosen = [i for i, _ in counts.most_common() if i >= 0][: inputs.params["max_demos"]]
    exported = inputs.student.reset_copy()
    for predictor in exported.predictors():
        predictor.demos = [inputs.trainset[i] for i in chosen]
    return exported


def _knn_describe(program: dspy.Module) -> str:
    knn = getattr(program, "_dspyops_knn", None)
    if knn is not None:
        return f"k-NN: the {knn.KNN.k} nearest training examples as demos, per input"
    return f"{describe_demos(program)} (most retrieved)"


# --------------------------------------------------------------------------------------
# InferRules
# --------------------------------------------------------------------------------------


def _rules_build(inputs: CompileInputs) -> Teleprompter:
    p = inputs.params
    optimizer = InferRules(
        num_candidates=p["num_candidates"],
        num_rules=p["num_rules"],
        num_threads=p["num_threads"],
        metric=inputs.metric,
        metric_threshold=p["metric_threshold"],
        max_bootstrapped_demos=p["max_bootstrapped_demos"],
        max_labeled_demos=p["max_labeled_demos"],
        max_rounds=p["max_rounds"],
    )
    if inputs.prompt_lm is not None:
        # Only the rule writer: teacher_settings would also move the demo bootstrapping.
        optimizer.rules_induction_program.teacher_settings = {"lm": inputs.prompt_lm}
    return optimizer


def _rules_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    # Without a valset InferRules keeps the first half of the trainset and scores on the rest.
    return optimizer.compile(inputs.student, trainset=inputs.trainset, valset=inputs.valset or None)


# --------------------------------------------------------------------------------------
# BootstrapFewShotWithOptuna
# --------------------------------------------------------------------------------------


def _optuna_build(inputs: CompileInputs) -> Teleprompter:
    p = inputs.params
    return BootstrapFewShotWithOptuna(
        metric=inputs.metric,
        max_bootstrapped_demos=p["max_bootstrapped_demos"],
        max_labeled_demos=p["max_labeled_demos"],
        max_rounds=p["max_rounds"],
        num_candidate_programs=p["num_candidate_programs"],
        num_threads=p["num_threads"],
    )


def _optuna_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    return optimizer.compile(
        inputs.student,
        trainset=inputs.trainset,
        valset=inputs.valset or None,
        max_demos=inputs.params["max_bootstrapped_demos"],
    )


# --------------------------------------------------------------------------------------
# Ensemble
# --------------------------------------------------------------------------------------


def majority_vote(outputs: list[Any]) -> Any:
    """The first prediction whose output values are the most common among the members'."""
    keys = [tuple(sorted((k, str(v).strip().lower()) for k, v in o.items())) for o in outputs]
    counts = Counter(keys)
    best = max(counts.values())
    return next(o for o, key in zip(outputs, keys, strict=True) if counts[key] == best)


def _ensemble_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    """Bootstrap ``size`` members on differently shuffled trainsets, score each, then the
    majority vote of all of them (each scoring is a trial)."""
    p = inputs.params
    evalset = inputs.valset or inputs.trainset
    members = []
    for seed in range(p["size"]):
        trainset = list(inputs.trainset)
        random.Random(seed).shuffle(trainset)
        bootstrap = BootstrapFewShot(
            metric=inputs.metric,
            max_bootstrapped_demos=p["max_bootstrapped_demos"],
            max_labeled_demos=p["max_labeled_demos"],
        )
        member = bootstrap.compile(inputs.student, trainset=trainset)
        result = _score(member, evalset, inputs)
        member._dspyops_score = result
        members.append(member)
    ensembled = Ensemble(reduce_fn=majority_vote).compile(members)
    ensembled._dspyops_score = _score(ensembled, evalset, inputs)
    return ensembled


def _score(program: dspy.Module, devset: list[dspy.Example], inputs: CompileInputs) -> float:
    from optimizer_svc.progress import evaluation_score

    result = dspy.Evaluate(
        devset=devset, metric=inputs.metric, num_threads=inputs.params["num_threads"], display_progress=False
    )(program)
    return evaluation_score(result)


def _ensemble_export(program: dspy.Module, inputs: CompileInputs) -> dspy.Module:
    """A registry version is one predictor: the member that scored best (first on ties)."""
    members = list(program.programs)
    return max(members, key=lambda m: m._dspyops_score)


def _ensemble_describe(program: dspy.Module) -> str:
    members = getattr(program, "programs", None)
    if members is not None:
        return f"majority vote of {len(members)} members ({describe_demos(program)} in all)"
    return describe_demos(program)


# --------------------------------------------------------------------------------------
# BetterTogether
# --------------------------------------------------------------------------------------

# Strategy steps: prompt optimizers only. "p" is what DSPy's BetterTogether calls its default
# prompt optimizer (BootstrapFewShotWithRandomSearch).
BT_STEPS = {
    "p": "BootstrapFewShotWithRandomSearch",
    "bootstrap": "BootstrapFewShot",
    "labeled": "LabeledFewShot",
    "copro": "COPRO",
    "mipro": "MIPROv2",
}
_BT_WEIGHT_STEPS = {"w", "finetune", "bootstrapfinetune", "grpo", "ft"}


def bt_strategy(value: str) -> list[str]:
    steps = [s.strip() for s in value.split("->")]
    if not value.strip() or any(not s for s in steps):
        raise InvalidOptimizerParams(
            "params.strategy", f"must be steps separated by ' -> ', got {_show(value)}"
        )
    for step in steps:
        if step.lower() in _BT_WEIGHT_STEPS:
            raise InvalidOptimizerParams(
                "params.strategy",
                f'step "{step}" is a weight optimizer (fine-tuning), which this service does not run; '
                f"use prompt optimizers only: {', '.join(BT_STEPS)}",
            )
        if step not in BT_STEPS:
            raise InvalidOptimizerParams(
                "params.strategy", f'unknown step "{step}"; known: {", ".join(BT_STEPS)}'
            )
    return steps


def _bt_check(p: dict[str, Any]) -> None:
    bt_strategy(p["strategy"])


def _bt_build(inputs: CompileInputs) -> Teleprompter:
    p = inputs.params
    steps = set(bt_strategy(p["strategy"]))
    shared = {"num_threads": p["num_threads"]}
    demos = {
        "max_bootstrapped_demos": p["max_bootstrapped_demos"],
        "max_labeled_demos": p["max_labeled_demos"],
    }
    step_params = {
        "p": {**demos, **shared, "num_candidate_programs": p["num_candidate_programs"]},
        "bootstrap": demos,
        "labeled": {"k": p["max_labeled_demos"], **shared},
        "copro": {"breadth": p["breadth"], "depth": p["depth"], **shared},
        "mipro": {**demos, **shared, "auto": p["mipro_auto"], "seed": p["seed"]},
    }
    optimizers = {}
    for step in steps:
        adapter = OPTIMIZERS[BT_STEPS[step]]
        sub = CompileInputs(
            student=inputs.student,
            trainset=inputs.trainset,
            valset=inputs.valset,
            metric=inputs.metric,
            params=validate_params(adapter.name, step_params[step]),
            prompt_lm=inputs.prompt_lm,
        )
        optimizers[step] = adapter.build(sub)
    return BetterTogether(metric=inputs.metric, **optimizers)


def _bt_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    p = inputs.params
    student = inputs.student.deepcopy()
    # BetterTogether insists on an LM on every predictor (for weight optimizers' launch/kill):
    # the task LM, which is what they would use anyway. Saved states never keep it.
    student.set_lm(dspy.settings.lm)
    compiled = optimizer.compile(
        student,
        trainset=list(inputs.trainset),  # BetterTogether shuffles it in place
        valset=inputs.valset or None,
        strategy=" -> ".join(bt_strategy(p["strategy"])),
        valset_ratio=0.1 if not inputs.valset else 0.0,
        num_threads=p["num_threads"],
        seed=p["seed"],
        optimizer_compile_args={
            # COPRO scores on the trainset; BetterTogether would not pass these through otherwise.
            step: {"eval_kwargs": {"num_threads": p["num_threads"], "display_progress": False}}
            for step in bt_strategy(p["strategy"])
            if step == "copro"
        },
    )
    if getattr(compiled, "flag_compilation_error_occurred", False):
        # BetterTogether logs a failed step and returns the best program so far: fail instead.
        raise RuntimeError("BetterTogether: a strategy step failed (see the optimizer log)")
    return compiled


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
            replaces_auto=("num_trials", "num_candidates"),
            rules="auto, or else both num_candidates and num_trials",
            prompt_lm_role="proposes the instructions",
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
            prompt_lm_role="proposes the instructions",
        ),
        OptimizerAdapter(
            name="GEPA",
            params=(
                ParamSpec(
                    "auto",
                    str,
                    "light",
                    "budget preset; null to set max_metric_calls yourself",
                    choices=("light", "medium", "heavy"),
                    nullable=True,
                ),
                ParamSpec(
                    "max_metric_calls", int, None, "budget: metric calls in all", 1, 1_000_000, nullable=True
                ),
                ParamSpec("reflection_minibatch_size", int, 3, "examples reflected on per iteration", 1, 64),
                ParamSpec(
                    "candidate_selection_strategy",
                    str,
                    "pareto",
                    "which candidate to mutate next",
                    choices=("pareto", "current_best"),
                ),
                ParamSpec("skip_perfect_score", bool, True, "skip reflecting on minibatches already perfect"),
                ParamSpec(
                    "use_merge", bool, True, "also merge candidates that do well on different examples"
                ),
                ParamSpec("max_merge_invocations", int, 5, "merge attempts at most", 0, 100),
                ParamSpec("seed", int, 0, "random seed", 0, 2**31 - 1),
                _NUM_THREADS,
            ),
            needs_valset=True,
            doc="Evolves each predictor's instruction by reflecting on failures (with textual feedback) "
            "and keeps a Pareto front of candidates scored on the valset.",
            build=_gepa_build,
            compile=_gepa_compile,
            planned_trials=lambda _inputs: 0,  # iterations run until the metric-call budget is spent
            describe=describe_instructions,
            check=_gepa_check,
            replaces_auto=("max_metric_calls",),
            rules="exactly one of auto and max_metric_calls",
            prompt_lm_role="reflects on failures and rewrites instructions (default: the task LM)",
            trials_from_evaluate=False,
        ),
        OptimizerAdapter(
            name="SIMBA",
            params=(
                ParamSpec("bsize", int, 32, "minibatch size (capped at the trainset size)", 1, 1000),
                ParamSpec("num_candidates", int, 6, "new candidate programs per step", 1, 32),
                ParamSpec("max_steps", int, 8, "optimization steps", 1, 100),
                ParamSpec("max_demos", int, 4, "demos per predictor at most (0: rules only)", 0, 32),
                ParamSpec(
                    "temperature_for_sampling",
                    float,
                    0.2,
                    "softmax temperature picking programs to run",
                    0.0,
                    2.0,
                ),
                ParamSpec(
                    "temperature_for_candidates",
                    float,
                    0.2,
                    "softmax temperature picking programs to improve",
                    0.0,
                    2.0,
                ),
                ParamSpec("seed", int, 0, "random seed", 0, 2**31 - 1),
                _NUM_THREADS,
            ),
            needs_valset=False,
            doc="Stochastic introspective mini-batch ascent: finds examples with high output variance and "
            "adds a successful trace as a demo or a self-written rule; picks the best on the trainset.",
            build=_simba_build,
            compile=_simba_compile,
            planned_trials=simba_planned,
            describe=describe_instructions,
            prompt_lm_role="writes the improvement rules",
        ),
        OptimizerAdapter(
            name="KNNFewShot",
            params=(
                ParamSpec("k", int, 3, "nearest training examples used as demos for each input", 1, 64),
                ParamSpec(
                    "max_demos",
                    int,
                    16,
                    "demos in the registered program: the training examples retrieved most often",
                    1,
                    256,
                ),
                _NUM_THREADS,
            ),
            needs_valset=False,
            doc="Retrieves each input's k nearest training examples (local hashed bag-of-words embedding) "
            "as its demos; registers a fixed prompt of the examples retrieved most often.",
            build=lambda _inputs: _NoOp(),
            compile=_knn_compile,
            planned_trials=lambda _inputs: 2,  # the per-input k-NN program, then the registered one
            describe=_knn_describe,
            export=_knn_export,
        ),
        OptimizerAdapter(
            name="InferRules",
            params=(
                ParamSpec("num_candidates", int, 4, "rule sets induced and scored", 1, 64),
                ParamSpec("num_rules", int, 10, "rules asked for per rule set", 1, 50),
                _MAX_BOOTSTRAPPED,
                _MAX_LABELED,
                _MAX_ROUNDS,
                _METRIC_THRESHOLD,
                _NUM_THREADS,
            ),
            needs_valset=True,
            doc="Bootstraps demos, then has the LM induce natural-language rules from the training "
            "examples into the instruction; keeps the rule set that scores best.",
            build=_rules_build,
            compile=_rules_compile,
            planned_trials=lambda inputs: inputs.params["num_candidates"],
            describe=describe_instructions,
            prompt_lm_role="induces the rules",
        ),
        OptimizerAdapter(
            name="BootstrapFewShotWithOptuna",
            params=(
                ParamSpec(
                    "max_bootstrapped_demos",
                    int,
                    4,
                    "demos bootstrapped, from which each trial picks one",
                    1,
                    64,
                ),
                _MAX_LABELED,
                _MAX_ROUNDS,
                ParamSpec("num_candidate_programs", int, 16, "Optuna trials", 1, 256),
                _NUM_THREADS,
            ),
            needs_valset=True,
            doc="Bootstraps a demo pool, then Optuna searches which single demo per predictor scores best.",
            build=_optuna_build,
            compile=_optuna_compile,
            planned_trials=lambda inputs: inputs.params["num_candidate_programs"],
            describe=describe_demos,
        ),
        OptimizerAdapter(
            name="Ensemble",
            params=(
                ParamSpec(
                    "size", int, 3, "members, each bootstrapped on a differently shuffled trainset", 2, 16
                ),
                ParamSpec("max_bootstrapped_demos", int, 4, _MAX_BOOTSTRAPPED.doc, 0, 64),
                ParamSpec("max_labeled_demos", int, 4, _MAX_LABELED.doc, 0, 256),
                _NUM_THREADS,
            ),
            needs_valset=True,
            doc="Bootstraps several members and scores each and their majority vote; a registry version "
            "is one predictor, so the best-scoring member is registered.",
            build=lambda _inputs: _NoOp(),
            compile=_ensemble_compile,
            planned_trials=lambda inputs: inputs.params["size"] + 2,  # members, the vote, the registered
            describe=_ensemble_describe,
            export=_ensemble_export,
        ),
        OptimizerAdapter(
            name="BetterTogether",
            params=(
                ParamSpec(
                    "strategy",
                    str,
                    "p -> copro",
                    "prompt optimizers run in turn, ' -> '-separated: p (random search), bootstrap, "
                    "labeled, copro, mipro; weight optimizers (fine-tuning) are refused",
                ),
                ParamSpec("max_bootstrapped_demos", int, 4, _MAX_BOOTSTRAPPED.doc, 0, 64),
                ParamSpec("max_labeled_demos", int, 4, _MAX_LABELED.doc, 0, 256),
                ParamSpec("num_candidate_programs", int, 4, "random-search candidates of step p", 1, 256),
                ParamSpec("breadth", int, 4, "COPRO instruction candidates per round", 2, 64),
                ParamSpec("depth", int, 2, "COPRO rounds", 1, 20),
                ParamSpec(
                    "mipro_auto", str, "light", "MIPROv2 run size", choices=("light", "medium", "heavy")
                ),
                ParamSpec("seed", int, 0, "random seed (trainset shuffles, MIPROv2)", 0, 2**31 - 1),
                _NUM_THREADS,
            ),
            needs_valset=True,
            doc="Runs prompt optimizers in sequence, each starting from the previous result, and keeps "
            "the program that scores best on the valset (10% of the trainset if none).",
            build=_bt_build,
            compile=_bt_compile,
            planned_trials=lambda _inputs: 0,  # depends on the steps' own searches
            describe=describe_instructions,
            check=_bt_check,
            rules="strategy steps: p, bootstrap, labeled, copro, mipro (no weight optimizers)",
            prompt_lm_role="proposes instructions in copro and mipro steps",
        ),
    )
}


def get_adapter(optimizer: str) -> OptimizerAdapter:
    adapter = OPTIMIZERS.get(optimizer) if isinstance(optimizer, str) else None
    if adapter is None:
        shown = f'"{optimizer}"' if isinstance(optimizer, str) else type(optimizer).__name__
        raise InvalidOptimizerParams("optimizer", f"unknown {shown}; known: {', '.join(OPTIMIZERS)}")
    return adapter


def params_from_struct(params: Struct) -> dict[str, Any]:
    """A request's params Struct as plain Python values, NaN and infinities kept as floats.

    ``json_format.MessageToDict`` refuses NaN/inf (they are not JSON) with a ValueError that
    became INTERNAL; a JSON client can still send them (``Value.number_value``). Kept as
    floats, ``validate_params`` refuses them naming the parameter. Protobuf bounds a Struct's
    nesting when it decodes the request (about 30 levels), below ``MAX_JSON_DEPTH``; the walk
    checks it anyway, with an explicit stack rather than recursion.
    """
    result: dict[str, Any] = {}
    stack: list[tuple[Any, Any, str, int]] = [(params, result, "params", 1)]
    while stack:
        message, into, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidOptimizerParams(where, f"nested deeper than {MAX_JSON_DEPTH} levels")
        items = message.fields.items() if isinstance(message, Struct) else enumerate(message.values)
        for key, value in items:
            kind = value.WhichOneof("kind")
            path = f"{where}.{key}" if isinstance(message, Struct) else f"{where}[{key}]"
            converted: Any
            if kind == "struct_value":
                converted = {}
                stack.append((value.struct_value, converted, path, depth + 1))
            elif kind == "list_value":
                converted = [None] * len(value.list_value.values)
                stack.append((value.list_value, converted, path, depth + 1))
            else:
                converted = None if kind in (None, "null_value") else getattr(value, kind)
            into[key] = converted
    return result


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
        adapter.replaces_auto
        and "auto" not in params
        and any(normalized[name] is not None for name in adapter.replaces_auto)
    ):
        normalized["auto"] = None  # asking for trials, candidates or calls means "no auto preset"
    if adapter.check is not None:
        adapter.check(normalized)
    return normalized
