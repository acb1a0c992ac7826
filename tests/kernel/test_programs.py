"""ProgramSpec validation and the spec + JSON state <-> dspy.Module round trip."""

from __future__ import annotations

import json

import dspy
import pytest

from dspyops.programs.build import build_module, load_program, program_state
from dspyops.programs.spec import MODULE_KINDS, ProgramSpec


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        (ProgramSpec(module="ReAct", signature="q -> a"), "module", "unknown module kind"),
        (ProgramSpec(signature=""), "signature", "non-empty"),
        (ProgramSpec(signature="question answer"), "signature", "no '->'"),
        (ProgramSpec(signature="a b -> c"), "signature", "not an identifier"),
        (ProgramSpec(signature="a: NoSuchType -> c"), "signature", "not a supported type"),
        (ProgramSpec(signature="-> answer"), "signature", "no input fields"),
        (ProgramSpec(signature="question ->"), "signature", "no output fields"),
    ],
)
def test_validate_names_the_field(spec: ProgramSpec, field: str, fragment: str) -> None:
    with pytest.raises(ValueError) as err:
        spec.validate()
    assert str(err.value).startswith(f"{field}:")
    assert fragment in str(err.value)


def test_fields_and_dict_round_trip() -> None:
    spec = ProgramSpec("ChainOfThought", "question: str, context: list[str] -> answer: int", "Answer it.")
    spec.validate()
    assert spec.input_fields() == ["question", "context"]
    assert spec.output_fields() == ["answer"]  # CoT's `reasoning` is the module's, not the spec's
    assert ProgramSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert MODULE_KINDS == ("Predict", "ChainOfThought")


@pytest.mark.parametrize(
    ("d", "fragment"),
    [
        ({"module": "Predict", "signature": 3}, "signature"),
        ({"signature": "a -> b", "extra": 1}, "unknown keys"),
    ],
)
def test_from_dict_rejects_bad_input(d: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        ProgramSpec.from_dict(d)


def test_build_module_kinds_and_instructions() -> None:
    predict = build_module(ProgramSpec("Predict", "text -> label", "Classify the ticket."))
    assert isinstance(predict, dspy.Predict)
    assert predict.signature.instructions == "Classify the ticket."
    cot = build_module(ProgramSpec("ChainOfThought", "text -> label"))
    assert isinstance(cot, dspy.ChainOfThought)
    assert list(cot.predict.signature.output_fields) == ["reasoning", "label"]


@pytest.mark.parametrize("kind", MODULE_KINDS)
def test_state_round_trip_keeps_demos_and_instructions(kind: str) -> None:
    spec = ProgramSpec(kind, "text -> label")
    module = build_module(spec)
    predictor = module.predictors()[0]
    predictor.demos = [dspy.Example(text="I was charged twice", label="billing").with_inputs("text")]
    predictor.signature = predictor.signature.with_instructions("Pick the ticket's queue.")
    state = program_state(module)
    assert json.loads(json.dumps(state)) == state  # JSON-able as is
    assert state["metadata"]["dependency_versions"]["dspy"] == dspy.__version__

    loaded = load_program(spec, json.loads(json.dumps(state)))
    got = loaded.predictors()[0]
    assert got.signature.instructions == "Pick the ticket's queue."
    assert [dict(d) for d in got.demos] == [{"text": "I was charged twice", "label": "billing"}]
    assert program_state(loaded) == state
    assert not hasattr(got, "metadata")  # save-file bookkeeping is not set as an attribute


def test_state_never_carries_a_predictor_lm() -> None:
    module = build_module(ProgramSpec("Predict", "text -> label"))
    module.lm = dspy.LM("openai/gpt-4o-mini", api_key="sk-secret-value", cache=False)
    state = program_state(module)
    assert state["lm"] is None
    assert "sk-secret-value" not in json.dumps(state)


def test_load_program_rejects_a_state_of_another_shape() -> None:
    state = program_state(build_module(ProgramSpec("Predict", "text -> label")))
    with pytest.raises(ValueError, match="state:"):
        load_program(ProgramSpec("ChainOfThought", "text -> label"), state)
    with pytest.raises(ValueError, match="state:"):
        load_program(ProgramSpec("Predict", "text -> label"), [])  # type: ignore[arg-type]
