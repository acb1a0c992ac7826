"""KNNFewShot: each input's k nearest training examples (a local hashed bag-of-words
embedding) become its demos; the registered version is a fixed prompt of the examples
retrieved most often (``export``).

KNNFewShot embeds its trainset in its constructor, so it is built inside compile (``build``
is a no-op) and reports the embedding's progress through its embedder.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import dspy
import numpy as np
from dspy.teleprompt import KNNFewShot
from dspy.teleprompt.teleprompt import Teleprompter

from dspyops.offline.words import content_words
from optimizer_svc.optimizers.base import (
    NUM_THREADS,
    CompileInputs,
    NoOp,
    OptimizerAdapter,
    ParamSpec,
    describe_demos,
)

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


KNN = OptimizerAdapter(
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
        NUM_THREADS,
    ),
    needs_valset=False,
    doc="Retrieves each input's k nearest training examples (local hashed bag-of-words embedding) "
    "as its demos; registers a fixed prompt of the examples retrieved most often.",
    build=lambda _inputs: NoOp(),
    compile=_knn_compile,
    planned_trials=lambda _inputs: 2,  # the per-input k-NN program, then the registered one
    describe=_knn_describe,
    export=_knn_export,
)
