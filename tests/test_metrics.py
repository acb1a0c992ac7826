"""Built-in metrics: names, normalisation, missing fields."""

from __future__ import annotations

import dspy
import pytest

from dspyops.metrics import METRICS, get_metric, normalize_answer


def ex(**kw: str) -> dspy.Example:
    return dspy.Example(question="q?", **kw).with_inputs("question")


def test_names_and_unknown_metric() -> None:
    assert METRICS == ("exact_match", "f1", "contains")
    for name in METRICS:
        assert callable(get_metric(name))
    with pytest.raises(KeyError) as err:
        get_metric("accuracy")
    assert "exact_match, f1, contains" in str(err.value)


@pytest.mark.parametrize(
    ("expected", "predicted", "score"),
    [
        ("Billing", "  billing ", 1.0),
        ("new  york", "New York", 1.0),
        ("billing", "billing.", 0.0),  # exact means exact, up to case and whitespace
        ("billing", "shipping", 0.0),
    ],
)
def test_exact_match(expected: str, predicted: str, score: float) -> None:
    assert get_metric("exact_match")(ex(answer=expected), dspy.Prediction(answer=predicted)) == score


def test_exact_match_needs_every_output_field() -> None:
    example = ex(answer="Paris", country="France")
    metric = get_metric("exact_match")
    assert metric(example, dspy.Prediction(answer="paris", country="france")) == 1.0
    assert metric(example, dspy.Prediction(answer="paris", country="spain")) == 0.0
    assert metric(example, dspy.Prediction(answer="paris")) == 0.0  # missing field: 0, no exception


def test_f1_squad_style() -> None:
    f1 = get_metric("f1")
    assert f1(ex(answer="The Eiffel Tower"), dspy.Prediction(answer="eiffel tower!")) == 1.0
    assert f1(ex(answer="red apple"), dspy.Prediction(answer="green apple")) == pytest.approx(0.5)
    assert f1(ex(answer="red"), dspy.Prediction(answer="blue")) == 0.0
    assert f1(ex(answer="two", other="x y"), dspy.Prediction(answer="two")) == pytest.approx(0.5)
    assert normalize_answer("  An Apple, the PIE. ") == "apple pie"


def test_contains() -> None:
    contains = get_metric("contains")
    assert contains(ex(answer="Paris"), dspy.Prediction(answer="It is  paris, France")) == 1.0
    assert contains(ex(answer="Paris"), dspy.Prediction(answer="Lyon")) == 0.0


@pytest.mark.parametrize("name", METRICS)
@pytest.mark.parametrize(
    "prediction",
    [dspy.Prediction(), dspy.Prediction(answer=None), None, {"other": "x"}],
    ids=["empty", "none-field", "none", "dict"],
)
def test_missing_fields_score_zero(name: str, prediction: object) -> None:
    assert get_metric(name)(ex(answer="Paris"), prediction, None) == 0.0


def test_dict_predictions_and_undeclared_inputs() -> None:
    metric = get_metric("exact_match")
    assert metric(ex(answer="Paris"), {"answer": "paris"}) == 1.0
    # Without with_inputs the fields the prediction answers are the ones compared.
    assert metric(dspy.Example(question="q", answer="Paris"), dspy.Prediction(answer="paris")) == 1.0
