"""The few-shot family: demos labeled or bootstrapped from the trainset, and the searches over
bootstrapped demo sets (random search, Optuna).

Their progress needs no parser of its own: BootstrapFewShot is the only caller passing a
``trace`` to the metric, once per training example tried, which the job's capture counts
("bootstrapped 3 demos"); LabeledFewShot's picks are reported after its one step; and every
candidate a search scores is a ``dspy.Evaluate``, hence a trial.
"""

from __future__ import annotations

import dspy
from dspy.teleprompt import (
    BootstrapFewShot,
    BootstrapFewShotWithOptuna,
    BootstrapFewShotWithRandomSearch,
    LabeledFewShot,
)
from dspy.teleprompt.teleprompt import Teleprompter

from optimizer_svc.optimizers.base import (
    MAX_BOOTSTRAPPED,
    MAX_LABELED,
    MAX_ROUNDS,
    METRIC_THRESHOLD,
    NUM_THREADS,
    CompileInputs,
    OptimizerAdapter,
    ParamSpec,
    Preset,
    describe_demos,
)

# --------------------------------------------------------------------------------------
# LabeledFewShot
# --------------------------------------------------------------------------------------


def _lfs_build(inputs: CompileInputs) -> Teleprompter:
    return LabeledFewShot(k=inputs.params["k"])


def _lfs_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    return optimizer.compile(inputs.student, trainset=inputs.trainset)


LABELED = OptimizerAdapter(
    name="LabeledFewShot",
    params=(
        ParamSpec("k", int, 16, "labeled demos sampled from the training set", 1, 256),
        NUM_THREADS,
    ),
    needs_valset=False,
    doc="Puts k randomly sampled training examples into each predictor's prompt.",
    build=_lfs_build,
    compile=_lfs_compile,
    planned_trials=lambda _inputs: 1,
    describe=describe_demos,
)

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


BOOTSTRAP = OptimizerAdapter(
    name="BootstrapFewShot",
    params=(MAX_BOOTSTRAPPED, MAX_LABELED, MAX_ROUNDS, METRIC_THRESHOLD, NUM_THREADS),
    needs_valset=False,
    doc="Runs the program on training examples and keeps the traces the metric accepts as demos.",
    build=_bfs_build,
    compile=_bfs_compile,
    planned_trials=lambda _inputs: 1,
    describe=describe_demos,
    presets=(
        Preset(
            "quick-bootstrap",
            "BootstrapFewShot",
            {"max_bootstrapped_demos": 4, "max_labeled_demos": 8},
            "Seconds, one pass: up to 4 bootstrapped and 8 labeled demos; no valset needed.",
        ),
    ),
)

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


RANDOM_SEARCH = OptimizerAdapter(
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
        MAX_LABELED,
        MAX_ROUNDS,
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
        METRIC_THRESHOLD,
        NUM_THREADS,
    ),
    needs_valset=True,
    doc="Bootstraps several demo sets and keeps the one that scores best on the valset.",
    build=_rs_build,
    compile=_rs_compile,
    planned_trials=_rs_planned,
    describe=describe_demos,
)

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


OPTUNA = OptimizerAdapter(
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
        MAX_LABELED,
        MAX_ROUNDS,
        ParamSpec("num_candidate_programs", int, 16, "Optuna trials", 1, 256),
        NUM_THREADS,
    ),
    needs_valset=True,
    doc="Bootstraps a demo pool, then Optuna searches which single demo per predictor scores best.",
    build=_optuna_build,
    compile=_optuna_compile,
    planned_trials=lambda inputs: inputs.params["num_candidate_programs"],
    describe=describe_demos,
)
