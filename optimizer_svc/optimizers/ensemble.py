"""Ensemble: several members bootstrapped on differently shuffled trainsets, scored each and
as their majority vote, which is what is registered (``ProgramSpec.wrapper = "Ensemble"``:
every member's state and the reduce function's name, ``majority_vote``, in the artifact).
Each scoring is an ``Evaluate``, hence a trial.

DSPy's ``Ensemble`` program holds its reduce function as a callable, which no saved state can
hold; ``dspyops.programs.wrappers.EnsembleProgram`` is the same program (members under
``programs``, so its state keys are DSPy's) with the function named.
"""

from __future__ import annotations

import random

import dspy
from dspy.teleprompt import BootstrapFewShot
from dspy.teleprompt.teleprompt import Teleprompter

from dspyops.programs.wrappers import EnsembleProgram
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
        score_program(member, evalset, inputs)
        members.append(member)
    ensembled = EnsembleProgram(members, reduce="majority_vote")
    score_program(ensembled, evalset, inputs)  # the vote, as the version will answer
    return ensembled


def _ensemble_describe(program: dspy.Module) -> str:
    if isinstance(program, EnsembleProgram):
        return f"majority vote of {len(program.programs)} members ({describe_demos(program)} in all)"
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
    doc="Bootstraps several members and scores each and their majority vote; the version is the "
    "vote of all members (majority_vote).",
    build=lambda _inputs: NoOp(),
    compile=_ensemble_compile,
    planned_trials=lambda inputs: inputs.params["size"] + 1,  # the members, then their vote
    describe=_ensemble_describe,
    wrapper="Ensemble",
)
