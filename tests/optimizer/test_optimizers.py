"""Optimizer adapters: param validation (no LM involved) and the trial plans they announce."""

from __future__ import annotations

from typing import Any

import dspy
import pytest

from optimizer_svc.optimizers.base import (
    CompileInputs,
    InvalidOptimizerParams,
    describe_demos,
    describe_instructions,
)
from optimizer_svc.optimizers.mipro import mipro_plan
from optimizer_svc.optimizers.registry import OPTIMIZERS, validate_params

BAD: list[tuple[str, dict[str, Any], str, str]] = [
    # optimizer, params, field, expected message (after "field: ")
    ("Foo", {}, "optimizer", 'unknown "Foo"; known: LabeledFewShot, BootstrapFewShot, '),
    ("", {}, "optimizer", 'unknown ""'),
    (
        "LabeledFewShot",
        {"bogus": 1},
        "params.bogus",
        "unknown parameter for LabeledFewShot; known: k, num_threads",
    ),
    (
        "BootstrapFewShot",
        {"max_bootstrapped_demos": -1},
        "params.max_bootstrapped_demos",
        "must be an integer",
    ),
    ("BootstrapFewShot", {"max_bootstrapped_demos": -1}, "params.max_bootstrapped_demos", "got -1"),
    ("BootstrapFewShot", {"max_rounds": "2"}, "params.max_rounds", 'must be an integer in [1, 10], got "2"'),
    ("BootstrapFewShot", {"max_rounds": True}, "params.max_rounds", "got true"),
    ("BootstrapFewShot", {"max_labeled_demos": 2.5}, "params.max_labeled_demos", "got 2.5"),
    ("BootstrapFewShot", {"max_labeled_demos": None}, "params.max_labeled_demos", "got null"),
    ("BootstrapFewShot", {"metric_threshold": 1.5}, "params.metric_threshold", "a number in [0, 1], got 1.5"),
    ("BootstrapFewShot", {"metric_threshold": float("nan")}, "params.metric_threshold", "got nan"),
    ("LabeledFewShot", {"k": 0}, "params.k", "must be an integer in [1, 256], got 0"),
    ("LabeledFewShot", {"num_threads": 1000}, "params.num_threads", "got 1000"),
    (
        "BootstrapFewShotWithRandomSearch",
        {"max_bootstrapped_demos": 0},
        "params.max_bootstrapped_demos",
        "in [1, 64], got 0",
    ),
    ("BootstrapFewShotWithRandomSearch", {"stop_at_score": 80}, "params.stop_at_score", "in [0, 1], got 80"),
    ("MIPROv2", {"auto": "quick"}, "params.auto", 'must be one of light, medium, heavy, got "quick"'),
    ("MIPROv2", {"auto": "light", "num_trials": 3}, "params.auto", "either auto or num_trials, not both"),
    ("MIPROv2", {"auto": "heavy", "num_candidates": 3}, "params.auto", "either auto or num_candidates"),
    ("MIPROv2", {"num_trials": 3}, "params.num_candidates", "is required when auto is null"),
    ("MIPROv2", {"auto": None, "num_candidates": 4}, "params.num_trials", "is required when auto is null"),
    ("MIPROv2", {"auto": None}, "params.num_trials", "is required"),
    ("MIPROv2", {"minibatch": "yes"}, "params.minibatch", 'must be true or false, got "yes"'),
    ("COPRO", {"breadth": 1}, "params.breadth", "must be an integer in [2, 64], got 1"),
    ("COPRO", {"depth": []}, "params.depth", "got list"),
    ("GEPA", {"auto": "light", "max_metric_calls": 50}, "params.auto", "either auto or max_metric_calls"),
    ("GEPA", {"auto": None}, "params.max_metric_calls", "is required when auto is null"),
    ("GEPA", {"max_metric_calls": 0}, "params.max_metric_calls", "in [1, 1000000], got 0"),
    (
        "GEPA",
        {"candidate_selection_strategy": "best"},
        "params.candidate_selection_strategy",
        "one of pareto",
    ),
    ("SIMBA", {"num_candidates": 0}, "params.num_candidates", "in [1, 32], got 0"),
    ("KNNFewShot", {"k": 0}, "params.k", "in [1, 64], got 0"),
    ("InferRules", {"num_rules": 51}, "params.num_rules", "got 51"),
    ("BootstrapFewShotWithOptuna", {"max_bootstrapped_demos": 0}, "params.max_bootstrapped_demos", "got 0"),
    ("Ensemble", {"size": 1}, "params.size", "in [2, 16], got 1"),
    ("BetterTogether", {"strategy": "p -> w"}, "params.strategy", 'step "w" is a weight optimizer'),
    ("BetterTogether", {"strategy": "p -> BootstrapFinetune"}, "params.strategy", "fine-tuning"),
    ("BetterTogether", {"strategy": "p -> zz"}, "params.strategy", 'unknown step "zz"; known: p, bootstrap'),
    ("BetterTogether", {"strategy": "p ->"}, "params.strategy", "steps separated by"),
]


@pytest.mark.parametrize(("optimizer", "params", "field", "problem"), BAD)
def test_bad_params_name_the_field(optimizer: str, params: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(InvalidOptimizerParams) as caught:
        validate_params(optimizer, params)
    assert caught.value.field == field
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{field}: ")


def test_params_must_be_an_object() -> None:
    with pytest.raises(InvalidOptimizerParams, match=r"^params: must be an object, got list"):
        validate_params("COPRO", [])  # type: ignore[arg-type]


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_defaults_are_valid_and_complete(optimizer: str) -> None:
    adapter = OPTIMIZERS[optimizer]
    normalized = validate_params(optimizer, {})
    assert normalized == {p.name: p.default for p in adapter.params}
    assert validate_params(optimizer, normalized) == normalized  # idempotent
    assert adapter.doc and all(p.doc for p in adapter.params)


def test_json_numbers_are_accepted() -> None:
    # A protobuf Struct turns every number into a float.
    normalized = validate_params("BootstrapFewShot", {"max_bootstrapped_demos": 4.0, "metric_threshold": 1})
    assert normalized["max_bootstrapped_demos"] == 4 and type(normalized["max_bootstrapped_demos"]) is int
    assert normalized["metric_threshold"] == 1.0 and type(normalized["metric_threshold"]) is float
    assert validate_params("BootstrapFewShot", {"metric_threshold": None})["metric_threshold"] is None


def test_mipro_auto_resolution() -> None:
    assert validate_params("MIPROv2", {})["auto"] == "light"
    manual = validate_params("MIPROv2", {"num_trials": 5.0, "num_candidates": 3})
    assert manual["auto"] is None and manual["num_trials"] == 5
    assert validate_params("MIPROv2", {"auto": None, "num_trials": 5, "num_candidates": 3})["auto"] is None


def test_the_optimizers_are_registered() -> None:
    assert list(OPTIMIZERS) == [
        "LabeledFewShot",
        "BootstrapFewShot",
        "BootstrapFewShotWithRandomSearch",
        "MIPROv2",
        "COPRO",
        "GEPA",
        "SIMBA",
        "KNNFewShot",
        "InferRules",
        "BootstrapFewShotWithOptuna",
        "Ensemble",
        "BetterTogether",
    ]
    assert {n for n, a in OPTIMIZERS.items() if a.needs_valset} == {
        "BootstrapFewShotWithRandomSearch",
        "MIPROv2",
        "GEPA",
        "InferRules",
        "BootstrapFewShotWithOptuna",
        "Ensemble",
        "BetterTogether",
    }
    assert not any(a.needs_teacher for a in OPTIMIZERS.values())
    assert {n: a.wrapper for n, a in OPTIMIZERS.items() if a.wrapper} == {
        "KNNFewShot": "KNNFewShot",
        "Ensemble": "Ensemble",
    }


def _inputs(optimizer: str, params: dict[str, Any], n_train: int = 20, n_val: int = 10) -> CompileInputs:
    examples = [dspy.Example(text=f"t{i}", label="x").with_inputs("text") for i in range(n_train + n_val)]
    return CompileInputs(
        student=dspy.Predict("text -> label"),
        trainset=examples[:n_train],
        valset=examples[n_train:],
        metric=lambda example, pred, trace=None: 1.0,
        params=validate_params(optimizer, params),
    )


@pytest.mark.parametrize(
    ("params", "n_val", "planned", "minibatch"),
    [
        ({}, 10, 11, False),  # light: n=6, 2 variables -> max(4*log2(6), 9) = 10 trials + the default
        ({"max_bootstrapped_demos": 0, "max_labeled_demos": 0}, 10, 10, False),  # zero-shot: max(2*2.58, 9)
        ({}, 80, 10 + 2 + 1 + 0, True),  # 80 > 50 examples: minibatches, full eval every 5
        ({"num_trials": 7, "num_candidates": 3}, 10, 8, False),  # valset smaller than minibatch_size
        (
            {"num_trials": 7, "num_candidates": 3, "minibatch_size": 4, "minibatch_full_eval_steps": 3},
            10,
            11,
            True,
        ),
        ({"num_trials": 7, "num_candidates": 3, "minibatch": False}, 80, 8, False),
    ],
)
def test_mipro_plan_mirrors_dspy(params: dict[str, Any], n_val: int, planned: int, minibatch: bool) -> None:
    plan = mipro_plan(_inputs("MIPROv2", params, n_val=n_val))
    assert (plan.planned_trials, plan.minibatch) == (planned, minibatch)


def test_mipro_without_valset_plans_on_the_trainset_split() -> None:
    plan = mipro_plan(_inputs("MIPROv2", {"num_trials": 3, "num_candidates": 3}, n_train=20, n_val=0))
    assert plan.valset_size == 16  # DSPy keeps the last 80% of the trainset for validation


def test_other_plans() -> None:
    assert OPTIMIZERS["COPRO"].planned_trials(_inputs("COPRO", {"breadth": 4, "depth": 3})) == 12
    rs = OPTIMIZERS["BootstrapFewShotWithRandomSearch"]
    assert rs.planned_trials(_inputs(rs.name, {"num_candidate_programs": 5})) == 8
    assert OPTIMIZERS["LabeledFewShot"].planned_trials(_inputs("LabeledFewShot", {})) == 1


def test_candidate_descriptions() -> None:
    program = dspy.Predict(dspy.Signature("text -> label", "Classify the ticket."))
    assert describe_demos(program) == "0 demos"
    assert describe_instructions(program) == "Classify the ticket."
    program.demos = [dspy.Example(text="a", label="b")]
    assert describe_demos(program) == "1 demo"
    assert describe_instructions(program) == "Classify the ticket. [1 demo]"


def test_construction_captures_the_context_lm() -> None:
    """MIPROv2 reads dspy.settings.lm in its constructor: adapters must build inside the job context."""
    lm = dspy.utils.DummyLM([{"label": "x"}])
    inputs = _inputs("MIPROv2", {"num_trials": 3, "num_candidates": 3})
    with dspy.context(lm=lm):
        optimizer = OPTIMIZERS["MIPROv2"].build(inputs)
    assert optimizer.task_model is lm and optimizer.prompt_model is lm


def test_gepa_auto_resolution() -> None:
    assert validate_params("GEPA", {})["auto"] == "light"
    manual = validate_params("GEPA", {"max_metric_calls": 40.0})
    assert manual["auto"] is None and manual["max_metric_calls"] == 40


def test_simba_plan_mirrors_dspy() -> None:
    simba = OPTIMIZERS["SIMBA"]
    # bsize capped at the 20 training examples; 4 candidates+1 per step; finalists round(i*3/4), i<5
    inputs = _inputs("SIMBA", {"bsize": 50, "num_candidates": 4, "max_steps": 3})
    assert simba.planned_trials(inputs) == 3 * 5 + 4
    small = _inputs("SIMBA", {"bsize": 2, "num_candidates": 6, "max_steps": 2})
    assert simba.planned_trials(small) == 2 * 2 + 3


def test_feedback_metric_names_the_wrong_field() -> None:
    from optimizer_svc.optimizers.gepa import feedback_metric

    gold = dspy.Example(text="t", label="billing").with_inputs("text")
    metric = feedback_metric(lambda example, pred, trace=None: float(pred.label == example.label))
    wrong = metric(gold, dspy.Prediction(label="refund"), None, "self", None)
    assert wrong.score == 0.0 and "label: expected 'billing', got 'refund'" in wrong.feedback
    assert metric(gold, dspy.Prediction(label="billing"), None, None, None).score == 1.0


def test_hashed_embedding_is_deterministic_and_normalized() -> None:
    import numpy as np

    from dspyops.programs.wrappers import hashed_bag_of_words

    a = hashed_bag_of_words(["refund my order please", "refund my order please", ""])
    assert np.allclose(a[0], a[1]) and np.isclose(np.linalg.norm(a[0]), 1.0) and not a[2].any()
