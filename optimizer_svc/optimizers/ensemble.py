"""Ensemble: several members bootstrapped on differently shuffled trainsets, scored each and
as their majority vote; a registry version is one predictor, so the best-scoring member is
registered (``export``). Each scoring is an ``Evaluate``, hence a trial.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import dspy
from dspy.teleprompt import BootstrapFewShot, Ensemble
from dspy.teleprompt.teleprompt import Teleprompter

from optimizer_svc.optimizers.base import (
    MAX_BOOTSTRAPPED,
    MAX_LABELED,
    NUM_THREADS,
    CompileInputs,
    NoOp,
    OptimizerAdapter,
    ParamSpec,
    describe_demos,
    score_program,
)


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
        result = score_program(member, evalset, inputs)
        member._dspyops_score = result
        members.append(member)
    ensembled = Ensemble(reduce_fn=majority_vote).compile(members)
    ensembled._dspyops_score = score_program(ensembled, evalset, inputs)
    return ensembled


def _ensemble_export(program: dspy.Module, inputs: CompileInputs) -> dspy.Module:
    """A registry version is one predictor: the member that scored best (first on ties)."""
    members = list(program.programs)
    return max(members, key=lambda m: m._dspyops_score)


def _ensemble_describe(program: dspy.Module) -> str:
    members = getattr(program, "programs", None)
    if members is not None:
        return f"majority vote of {len(members)} members ({describe_demos(program)} in all)"
    return describe_demos(program)


ENSEMBLE = OptimizerAdapter(
    name="Ensemble",
    params=(
        ParamSpec("size", int, 3, "members, each bootstrapped on a differently shuffled trainset", 2, 16),
        ParamSpec("max_bootstrapped_demos", int, 4, MAX_BOOTSTRAPPED.doc, 0, 64),
        ParamSpec("max_labeled_demos", int, 4, MAX_LABELED.doc, 0, 256),
        NUM_THREADS,
    ),
    needs_valset=True,
    doc="Bootstraps several members and scores each and their majority vote; a registry version "
    "is one predictor, so the best-scoring member is registered.",
    build=lambda _inputs: NoOp(),
    compile=_ensemble_compile,
    planned_trials=lambda inputs: inputs.params["size"] + 2,  # members, the vote, the registered
    describe=_ensemble_describe,
    export=_ensemble_export,
)
