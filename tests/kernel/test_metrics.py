"""Built-in metrics: names, normalisation, missing fields."""

from __future__ import annotations

import sys

import dspy
import pytest

from dspyops.metrics import (
    METRICS,
    allowed_metric_modules,
    get_metric,
    lcs_length,
    normalize_answer,
    resolve_metric,
)


def ex(**kw: str) -> dspy.Example:
    return dspy.Example(question="q?", **kw).with_inputs("question")


def test_names_and_unknown_metric() -> None:
    assert METRICS == ("exact_match", "f1", "contains", "rouge_l")
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


@pytest.mark.parametrize(
    ("expected", "predicted", "score"),
    [
        # LCS "the cat on the mat" = 5 tokens; P = 5/5, R = 5/6, F = 2PR/(P+R) = 10/11
        ("the cat sat on the mat", "the cat on the mat", 10 / 11),
        # LCS "police killed gunman" = 3; P = R = 3/4 -> 0.75 (the ROUGE paper's example)
        ("police killed the gunman", "police kill the gunman", 0.75),
        ("police killed the gunman", "the gunman police killed", 0.5),  # LCS "the gunman" = 2 of 4
        ("A B C", "a, b. c!", 1.0),  # case and punctuation do not count
        ("a b c d", "d c b a", 0.25),  # order matters: LCS 1
        ("billing", "shipping", 0.0),
        ("", "", 1.0),
        ("answer", "", 0.0),
    ],
)
def test_rouge_l_hand_computed(expected: str, predicted: str, score: float) -> None:
    rouge_l = get_metric("rouge_l")
    assert rouge_l(ex(answer=expected), dspy.Prediction(answer=predicted)) == pytest.approx(score)


def test_lcs_length() -> None:
    assert lcs_length("a b c b d a b".split(), "b d c a b a".split()) == 4  # CLRS's example
    assert lcs_length([], ["a"]) == 0


def test_allowlist_from_the_environment() -> None:
    env = {"DSPYOPS_METRIC_MODULES": " tests.support.metric_plugins, other.mod ,bad-name,"}
    assert allowed_metric_modules(env) == {"tests.support.metric_plugins", "other.mod"}
    assert allowed_metric_modules({}) == frozenset()


def test_resolve_metric_builtin_and_allowlisted() -> None:
    assert resolve_metric("f1") is get_metric("f1")
    half = resolve_metric("tests.support.metric_plugins:half", {"tests.support.metric_plugins"})
    assert half(ex(answer="x"), dspy.Prediction(answer="y")) == 0.5


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("tests.support.metric_not_allowed:metric", "not allowlisted"),
        ("os:system", "not allowlisted"),
        ("accuracy", "unknown metric"),
        ("tests.support.metric_plugins:no_such", "has no function"),
        ("tests.support.metric_plugins:a.b", "not of the form"),
        ("../x:y", "not of the form"),
    ],
)
def test_resolve_metric_refuses_without_importing(name: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as err:
        resolve_metric(name, {"tests.support.metric_plugins"})
    assert str(err.value).startswith("metric: ")
    assert "tests.support.metric_not_allowed" not in sys.modules
