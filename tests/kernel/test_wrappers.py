"""KNNFewShot and Ensemble programs (dspyops.programs.wrappers): JSON state round trips, and
a state that does not fit is refused naming what is wrong, never half-loaded."""

from __future__ import annotations

import json
from typing import Any

import dspy
import pytest

from dspyops.programs.build import build_module, load_program, program_state
from dspyops.programs.errors import ProgramError
from dspyops.programs.spec import ProgramSpec
from dspyops.programs.wrappers import EnsembleProgram, KNNProgram, majority_vote

KNN = ProgramSpec(module="Predict", signature="text -> label", wrapper="KNNFewShot")
ENSEMBLE = ProgramSpec(module="ChainOfThought", signature="text -> label", wrapper="Ensemble")
TRAIN = [
    dspy.Example(text="refund my order", label="refund").with_inputs("text"),
    dspy.Example(text="my card was charged twice", label="billing").with_inputs("text"),
    dspy.Example(text="the app crashes on start", label="bug").with_inputs("text"),
]


def test_a_knn_state_round_trips_through_json_and_retrieves_per_input() -> None:
    program = KNNProgram(dspy.Predict("text -> label"), TRAIN, k=1)
    state = json.loads(json.dumps(program_state(program)))
    loaded = load_program(KNN, state)
    assert isinstance(loaded, KNNProgram) and loaded.k == 1
    assert [e.label for e in loaded.neighbours(text="app crashes")] == ["bug"]
    assert [e.label for e in loaded.neighbours(text="charged twice on my card")] == ["billing"]
    # each call works on a copy: the loaded version's own predictor keeps no demos
    assert loaded.with_demos(text="refund").predictors()[0].demos[0].label == "refund"
    assert loaded.program.demos == []


def test_an_ensemble_state_round_trips_with_its_members() -> None:
    members = [dspy.ChainOfThought("text -> label") for _ in range(3)]
    for i, member in enumerate(members):
        member.predict.demos = TRAIN[: i + 1]
    state = json.loads(json.dumps(program_state(EnsembleProgram(members))))
    loaded = load_program(ENSEMBLE, state)
    assert isinstance(loaded, EnsembleProgram) and loaded.reduce == "majority_vote"
    assert [len(m.predict.demos) for m in loaded.programs] == [1, 2, 3]


def test_the_vote_ignores_reasoning_and_keeps_the_first_of_the_majority() -> None:
    outputs = [
        dspy.Prediction(reasoning="a", label="bug"),
        dspy.Prediction(reasoning="b", label="Refund"),
        dspy.Prediction(reasoning="c", label="refund "),
    ]
    assert majority_vote(outputs) is outputs[1]


def _knn_state(**knn: Any) -> dict[str, Any]:
    return {"program": program_state(dspy.Predict("text -> label")), "knn": knn}


@pytest.mark.parametrize(
    ("spec", "state", "message"),
    [
        (KNN, {"program": {}}, "state: a KNNFewShot version's state lacks its 'knn' object"),
        (KNN, _knn_state(k=0, examples=[]), "state: knn.k must be an integer in [1, 64], got 0"),
        (KNN, _knn_state(k=True, examples=[]), "state: knn.k must be an integer"),
        (KNN, _knn_state(k=2, examples="x"), "state: knn.examples must be a list"),
        (KNN, _knn_state(k=2, examples=[{"inputs": {}}]), "state: knn.examples[0] must hold 'inputs'"),
        (
            KNN,
            _knn_state(k=2, examples=[{"inputs": {"a": 1}, "labels": {"a": 2}}]),
            "state: knn.examples[0]: a field is both an input and a label",
        ),
        (ENSEMBLE, {}, "state: an Ensemble version's state lacks its 'ensemble' object"),
        (ENSEMBLE, {"ensemble": {"size": 65, "reduce": "majority_vote"}}, "state: ensemble.size must be"),
        (
            ENSEMBLE,
            {"ensemble": {"size": 2, "reduce": "__import__"}},
            "state: ensemble.reduce: unknown '__import__'; known: majority_vote",
        ),
        (ENSEMBLE, {"ensemble": {"size": 2, "reduce": "majority_vote"}}, "state: does not fit"),
    ],
)
def test_a_state_that_does_not_fit_is_refused(spec: ProgramSpec, state: dict[str, Any], message: str) -> None:
    with pytest.raises(ProgramError) as raised:
        load_program(spec, state)
    assert str(raised.value).startswith(message)


def test_an_unknown_wrapper_is_refused_naming_the_field() -> None:
    with pytest.raises(ProgramError, match=r"^wrapper: unknown wrapper 'Bagging'"):
        build_module(ProgramSpec(signature="text -> label", wrapper="Bagging"))
    with pytest.raises(ProgramError, match=r"^spec: unknown keys"):
        ProgramSpec.from_dict({"signature": "text -> label", "wrappers": "x"})
    # no wrapper, no key: a one-predictor spec's JSON (so its artifact digest) is unchanged
    assert ProgramSpec(signature="text -> label").to_dict() == {
        "module": "Predict",
        "signature": "text -> label",
        "instructions": "",
    }
