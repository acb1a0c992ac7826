"""What an optimizer registers around a module: KNNFewShot's per-input demos, Ensemble's vote.

A version whose ``ProgramSpec.wrapper`` is set is built from the spec without it (the inner
module, through ``build_module``) plus the wrapper, and its state is JSON (never pickle) in
DSPy's own shape: every predictor under the name DSPy gives it, plus one key of the wrapper's:

- ``KNNFewShot``: the inner module is attribute ``program`` (``"program.<predictor>"`` keys),
  and ``"knn": {"k": 3, "examples": [{"inputs": {...}, "labels": {...}}, ...]}`` holds the
  training examples it retrieves from. Per call, the k training examples nearest to the
  inputs (the local hashed bag-of-words embedding below: deterministic, no model) become
  the demos of every predictor of a copy of the inner module, which then answers.
- ``Ensemble``: the members are the list attribute ``programs`` (``"programs[0].<predictor>"``
  keys, as in the program ``dspy.Ensemble().compile(members)`` returns, so plain DSPy loads an
  export into one), and ``"ensemble": {"size": 3, "reduce": "majority_vote"}``. The reduce
  function is named, and looked up in ``REDUCERS``: never a callable from a request or a file.

DSPy's ``KNNFewShot`` returns its student with ``forward`` replaced by a closure over the
retriever: there is nothing to save, so a version could not hold it. ``KNNProgram`` is the
same retrieval (DSPy's ``KNN`` scores, on the same ``"key: value | ..."`` text of the inputs)
as a module with a state.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol

import dspy
import numpy as np

from dspyops.errors import shown
from dspyops.offline.words import content_words
from dspyops.programs.errors import ProgramError

WRAPPERS: Final = ("KNNFewShot", "Ensemble")  # ProgramSpec.wrapper
EMBEDDING_DIM: Final = 512
MAX_K: Final = 64
MAX_MEMBERS: Final = 64  # the Ensemble optimizer builds at most 16; a state may not claim more than this
# ChainOfThought's own output: members that reason differently to the same answer agree.
_NOT_VOTED: Final = frozenset({"reasoning"})


def hashed_bag_of_words(texts: Sequence[str]) -> np.ndarray:
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


def inputs_text(inputs: Mapping[str, Any]) -> str:
    """The text DSPy's KNN embeds for an example's inputs (and for a call's)."""
    return " | ".join(f"{key}: {value}" for key, value in inputs.items())


class KNNProgram(dspy.Module):  # type: ignore[misc]  # dspy is untyped
    """The inner module, answering each call with the k nearest training examples as demos."""

    def __init__(self, program: dspy.Module, examples: Sequence[dspy.Example] = (), k: int = 3) -> None:
        super().__init__()
        self.program = program
        self.k = k
        self.examples = list(examples)
        self._vectors = hashed_bag_of_words([inputs_text(e.inputs()) for e in self.examples])

    def neighbours(self, **inputs: Any) -> list[dspy.Example]:
        """The k training examples nearest to ``inputs``, nearest first; ties go to the earlier
        example (DSPy's KNN sorts unstably, and fails on a trainset of one)."""
        if not self.examples:
            return []
        query = hashed_bag_of_words([inputs_text(inputs)])[0]
        scores = self._vectors @ query
        order = np.argsort(-scores, kind="stable")[: self.k]
        return [self.examples[int(i)] for i in order]

    def with_demos(self, **inputs: Any) -> dspy.Module:
        """A copy of the inner module whose predictors hold this call's demos (a copy: calls
        run concurrently on one loaded version)."""
        demos = self.neighbours(**inputs)
        program = self.program.deepcopy()
        for predictor in program.predictors():
            predictor.demos = list(demos)
        for name, module in program.named_sub_modules():
            # the copy's modules by their names in this program, for per-module reports
            module.stage_name = "program" if name == "self" else f"program.{name.removeprefix('self.')}"
        return program

    def forward(self, **inputs: Any) -> Any:
        return self.with_demos(**inputs)(**inputs)

    async def aforward(self, **inputs: Any) -> Any:
        return await self.with_demos(**inputs).acall(**inputs)

    def dump_state(self, json_mode: bool = True) -> dict[str, Any]:
        state: dict[str, Any] = super().dump_state(json_mode=json_mode)
        examples = [{"inputs": dict(e.inputs()), "labels": dict(e.labels())} for e in self.examples]
        state["knn"] = {"k": self.k, "examples": examples}
        return state

    def load_state(self, state: Any, **kwargs: Any) -> None:
        k, examples = _knn_state(state)
        super().load_state({key: value for key, value in state.items() if key != "knn"}, **kwargs)
        self.k = k
        self.examples = examples
        self._vectors = hashed_bag_of_words([inputs_text(e.inputs()) for e in examples])


def _knn_state(state: Any) -> tuple[int, list[dspy.Example]]:
    knn = state.get("knn") if isinstance(state, dict) else None
    if not isinstance(knn, dict):
        raise ProgramError("state", "a KNNFewShot version's state lacks its 'knn' object (k and examples)")
    k = knn.get("k")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise ProgramError("state", f"knn.k must be an integer in [1, {MAX_K}], got {shown(k)}")
    rows = knn.get("examples")
    if not isinstance(rows, list):
        raise ProgramError("state", "knn.examples must be a list of {inputs, labels} objects")
    examples = []
    for i, row in enumerate(rows):
        inputs = row.get("inputs") if isinstance(row, dict) else None
        labels = row.get("labels") if isinstance(row, dict) else None
        if not isinstance(inputs, dict) or not inputs or not isinstance(labels, dict):
            raise ProgramError(
                "state", f"knn.examples[{i}] must hold 'inputs' (non-empty) and 'labels' objects"
            )
        if set(inputs) & set(labels):
            raise ProgramError("state", f"knn.examples[{i}]: a field is both an input and a label")
        examples.append(dspy.Example(**inputs, **labels).with_inputs(*inputs))
    return k, examples


# --------------------------------------------------------------------------------------
# Ensemble
# --------------------------------------------------------------------------------------


def _answer(prediction: Any) -> tuple[tuple[str, str], ...]:
    """What members vote on: the output values but reasoning, compared as exact_match does."""
    items = prediction.items() if hasattr(prediction, "items") else []
    return tuple(sorted((k, " ".join(str(v).split()).casefold()) for k, v in items if k not in _NOT_VOTED))


def majority_vote(outputs: Sequence[Any]) -> Any:
    """The first member's prediction among those giving the most common answer."""
    answers = [_answer(o) for o in outputs]
    counts = Counter(answers)
    best = max(counts.values())
    return next(o for o, answer in zip(outputs, answers, strict=True) if counts[answer] == best)


REDUCERS: Final[dict[str, Callable[[Sequence[Any]], Any]]] = {"majority_vote": majority_vote}


class EnsembleProgram(dspy.Module):  # type: ignore[misc]  # dspy is untyped
    """Every member answers; the named reduce function picks the answer."""

    def __init__(
        self,
        members: Sequence[dspy.Module] = (),
        reduce: str = "majority_vote",
        make_member: Callable[[], dspy.Module] | None = None,
    ) -> None:
        super().__init__()
        if reduce not in REDUCERS:
            raise ProgramError(
                "state", f"ensemble.reduce: unknown {shown(reduce)}; known: {', '.join(REDUCERS)}"
            )
        members = list(members)
        for member in members:
            # An optimizer marks what it compiled frozen, which hides it from named_parameters
            # (so from the state, and from set_lm): a member of a version is not frozen.
            member._compiled = False
        self.programs = members  # the attribute dspy.Ensemble's program has: same state keys
        self.reduce = reduce
        self._make_member = make_member

    def forward(self, **inputs: Any) -> Any:
        return REDUCERS[self.reduce]([member(**inputs) for member in self.programs])

    async def aforward(self, **inputs: Any) -> Any:
        outputs = await asyncio.gather(*(member.acall(**inputs) for member in self.programs))
        return REDUCERS[self.reduce](list(outputs))

    def dump_state(self, json_mode: bool = True) -> dict[str, Any]:
        state: dict[str, Any] = super().dump_state(json_mode=json_mode)
        state["ensemble"] = {"size": len(self.programs), "reduce": self.reduce}
        return state

    def load_state(self, state: Any, **kwargs: Any) -> None:
        size, reduce = _ensemble_state(state)
        if self._make_member is None:
            raise ProgramError("state", "this Ensemble program was built without a way to build its members")
        previous = self.programs
        self.programs = [self._make_member() for _ in range(size)]
        try:
            super().load_state({key: value for key, value in state.items() if key != "ensemble"}, **kwargs)
        except BaseException:
            self.programs = previous
            raise
        self.reduce = reduce


def _ensemble_state(state: Any) -> tuple[int, str]:
    meta = state.get("ensemble") if isinstance(state, dict) else None
    if not isinstance(meta, dict):
        raise ProgramError(
            "state", "an Ensemble version's state lacks its 'ensemble' object (size and reduce)"
        )
    size, reduce = meta.get("size"), meta.get("reduce")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_MEMBERS:
        raise ProgramError(
            "state", f"ensemble.size must be an integer in [1, {MAX_MEMBERS}], got {shown(size)}"
        )
    if not isinstance(reduce, str) or reduce not in REDUCERS:
        raise ProgramError("state", f"ensemble.reduce: unknown {shown(reduce)}; known: {', '.join(REDUCERS)}")
    return size, reduce


# --------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------


class _SpecLike(Protocol):
    @property
    def wrapper(self) -> str: ...


def build_wrapped(spec: _SpecLike, inner: dspy.Module, state: dict[str, Any] | None) -> dspy.Module:
    """The program ``spec.wrapper`` names around ``inner`` (a freshly built module of the spec
    without its wrapper), with ``state`` loaded when given (DSPy's JSON state plus the
    wrapper's key, ``metadata`` already dropped). Without a state it is empty: no training
    examples, no members."""
    wrapped: dspy.Module
    if spec.wrapper == "KNNFewShot":
        wrapped = KNNProgram(inner)
    elif spec.wrapper == "Ensemble":
        wrapped = EnsembleProgram(make_member=inner.deepcopy)
    else:
        raise ProgramError(
            "wrapper", f"unknown {shown(spec.wrapper)}; known: {', '.join(WRAPPERS)} (or none)"
        )
    if state is not None:
        wrapped.load_state(state)
    return wrapped


def inner_predictor_names(program: dspy.Module) -> list[str]:
    """The predictors of the module(s) a wrapper holds, by their names in the inner module
    (a member's, for an ensemble: they all have the same); a plain module's own names."""
    if isinstance(program, KNNProgram):
        return inner_predictor_names(program.program)
    if isinstance(program, EnsembleProgram):
        return inner_predictor_names(program.programs[0]) if program.programs else []
    return [name for name, _ in program.named_predictors()]


__all__ = [
    "EMBEDDING_DIM",
    "REDUCERS",
    "WRAPPERS",
    "EnsembleProgram",
    "KNNProgram",
    "build_wrapped",
    "hashed_bag_of_words",
    "inner_predictor_names",
    "inputs_text",
    "majority_vote",
]
