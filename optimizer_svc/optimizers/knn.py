"""KNNFewShot: each input's k nearest training examples (a local hashed bag-of-words
embedding) become its demos, per call, at serving time as in the job.

DSPy's ``KNNFewShot`` returns its student with ``forward`` replaced by a closure over its
retriever, which no saved state can hold; the compile builds the same retrieval as a module
with a JSON state instead (``dspyops.programs.wrappers.KNNProgram``: the training examples and
k are in the state), so the version registered (``ProgramSpec.wrapper = "KNNFewShot"``) is
the very program the job scored.
"""

from __future__ import annotations

import dspy
from dspy.teleprompt.teleprompt import Teleprompter

from dspyops.programs.wrappers import KNNProgram
from optimizer_svc.optimizers.base import (
    NUM_THREADS,
    CompileInputs,
    NoOp,
    OptimizerAdapter,
    ParamSpec,
)


def _knn_compile(optimizer: Teleprompter, inputs: CompileInputs) -> dspy.Module:
    # Every predictor of the student gets the same per-input demos, as DSPy's KNNFewShot
    # does (its labeled demos are the neighbours as they are, no bootstrapping).
    inputs.progress(0, len(inputs.trainset), "embedding the training examples")
    program = KNNProgram(inputs.student.reset_copy(), inputs.trainset, k=inputs.params["k"])
    inputs.progress(
        len(inputs.trainset), len(inputs.trainset), f"embedded {len(inputs.trainset)} training examples"
    )
    return program


def _knn_describe(program: dspy.Module) -> str:
    if isinstance(program, KNNProgram):
        return (
            f"k-NN: the {program.k} nearest of {len(program.examples)} training examples as demos, per input"
        )
    return "k-NN"


KNN = OptimizerAdapter(
    name="KNNFewShot",
    params=(
        ParamSpec("k", int, 3, "nearest training examples used as demos for each input", 1, 64),
        NUM_THREADS,
    ),
    needs_valset=False,
    doc="Retrieves each input's k nearest training examples (local hashed bag-of-words embedding) "
    "as its demos, per call; the version holds the training examples and retrieves when served.",
    build=lambda _inputs: NoOp(),
    compile=_knn_compile,
    planned_trials=lambda _inputs: 1,  # the per-input k-NN program, scored by the final evaluation
    describe=_knn_describe,
    wrapper="KNNFewShot",
)
