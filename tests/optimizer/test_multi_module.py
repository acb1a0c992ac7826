"""Every optimizer family on a two-predictor dspy.Module ("analyze, then answer"), through the
job runner on the offline engine: each predictor is optimized and saved under its name, and
progress names the predictor it concerns (Progress.predictor, TrialCompleted.predictors)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import dspy
import pytest

from dspyops.datasets import load_dataset, split
from dspyops.lm import LMConfig
from dspyops.programs.context import ProgramContext
from dspyops.programs.spec import ProgramSpec
from optimizer_svc.cancel import CancelToken
from optimizer_svc.jobs.runner import JobResult, JobSpec, run_job
from optimizer_svc.optimizers.registry import OPTIMIZERS
from optimizer_svc.progress.events import JobEvent, Progress, TrialCompleted
from tests.programs_pkg.modules import AnalyzeThenAnswer

PREDICTORS = ("analyze", "answer")


# the classic two-stage program, as a team's own module from an allowlisted package
MODULES = "tests.programs_pkg.modules"
SPEC = ProgramSpec(module=f"{MODULES}:AnalyzeThenAnswer")
ALLOWED = ProgramContext(program_modules=frozenset({MODULES}))


PARAMS: dict[str, dict[str, Any]] = {
    "LabeledFewShot": {"k": 4},
    "BootstrapFewShot": {"max_bootstrapped_demos": 2, "max_labeled_demos": 2},
    "BootstrapFewShotWithRandomSearch": {"num_candidate_programs": 2, "max_labeled_demos": 2},
    "MIPROv2": {"auto": "light", "max_labeled_demos": 0, "max_bootstrapped_demos": 0},
    "COPRO": {"breadth": 2, "depth": 1},
    "GEPA": {"max_metric_calls": 60},
    "SIMBA": {"num_candidates": 2, "max_steps": 1, "bsize": 4},
    "KNNFewShot": {"k": 2},
    "InferRules": {"num_candidates": 2},
    "BootstrapFewShotWithOptuna": {"num_candidate_programs": 4},
    "Ensemble": {"size": 2},
    "BetterTogether": {},
}


def test_every_family_is_covered() -> None:
    assert set(PARAMS) == set(OPTIMIZERS)


@pytest.fixture(scope="module")
def data() -> tuple[list[dspy.Example], list[dspy.Example]]:
    train, val = split(load_dataset("support_tickets"), val_fraction=0.3, seed=0)
    return train[:12], val[:8]


_RUNS: dict[str, tuple[JobResult, list[JobEvent]]] = {}


def run(optimizer: str, data: tuple[list, list]) -> tuple[JobResult, list[JobEvent]]:
    """One job per family on the two-predictor module (shared by the tests of that family)."""
    if optimizer not in _RUNS:
        events: list[JobEvent] = []
        train, val = data
        job = JobSpec(
            job_id=f"multi-{optimizer}",
            spec=SPEC,
            lm=LMConfig(),
            optimizer=optimizer,
            params=PARAMS[optimizer],
            metric="exact_match",
            trainset=train,
            valset=val,
            programs=ALLOWED,
        )
        _RUNS[optimizer] = (run_job(job, events.append, CancelToken()), events)
    return _RUNS[optimizer]


def _predictor_names(state: dict[str, Any]) -> set[str]:
    """The saved predictors' names in the module ("programs[1].answer" is a member's "answer")."""
    return {
        key.rsplit(".", 1)[-1]
        for key, value in state.items()
        if isinstance(value, dict) and "signature" in value
    }


@pytest.mark.parametrize("optimizer", list(PARAMS))
def test_each_family_optimizes_and_saves_both_predictors(optimizer: str, data: tuple[list, list]) -> None:
    result, events = run(optimizer, data)
    assert _predictor_names(result.state) == set(PREDICTORS)
    if not result.spec.wrapper:  # plain DSPy loads the state into a fresh instance of the class
        fresh = AnalyzeThenAnswer()
        fresh.load_state({k: v for k, v in result.state.items() if k != "metadata"})
        assert [len(p.demos) for p in fresh.predictors()] == [
            len(result.state[name]["demos"]) for name in PREDICTORS
        ]
    trials = [e for e in events if isinstance(e, TrialCompleted)]
    assert trials and result.trials == len(trials)
    # every trial names only predictors the program has
    assert all(set(t.predictors) <= set(PREDICTORS) for t in trials)


def test_bootstrap_collects_demos_per_predictor_from_full_traces(data: tuple[list, list]) -> None:
    result, events = run("BootstrapFewShot", data)
    analyze, answer = result.state["analyze"]["demos"], result.state["answer"]["demos"]
    # the first predictor's demos come from the trace: the topic it produced, which no example has
    assert analyze and all("topic" in d and "text" in d for d in analyze)
    assert answer and any("topic" in d for d in answer)
    final = [e for e in events if isinstance(e, TrialCompleted)][-1]
    assert final.predictors == PREDICTORS


def test_labeled_demos_are_reported_per_predictor(data: tuple[list, list]) -> None:
    _, events = run("LabeledFewShot", data)
    named = Counter(e.predictor for e in events if isinstance(e, Progress))
    assert named["analyze"] == 4 and named["answer"] == 4


def test_mipro_proposes_an_instruction_for_each_predictor(data: tuple[list, list]) -> None:
    _, events = run("MIPROv2", data)
    proposals = [e for e in events if isinstance(e, Progress) and "proposed instruction" in e.message]
    assert {e.predictor for e in proposals} == set(PREDICTORS)
    assert all(e.message.startswith(f"{e.predictor}: ") for e in proposals)
    # its trials combine an instruction per predictor: some change the second predictor
    assert any("answer" in e.predictors for e in events if isinstance(e, TrialCompleted))


def test_copro_refines_each_predictor_in_turn(data: tuple[list, list]) -> None:
    _, events = run("COPRO", data)
    trials = [e for e in events if isinstance(e, TrialCompleted)]
    assert len(trials) == 4  # COPRO's plan for two predictors (optimizer_svc.optimizers.copro)
    assert {name for t in trials for name in t.predictors} == set(PREDICTORS)


def test_gepa_reflects_on_each_predictor(data: tuple[list, list]) -> None:
    _, events = run("GEPA", data)
    proposals = [e for e in events if isinstance(e, Progress) and "proposed instruction" in e.message]
    assert {e.predictor for e in proposals} == set(PREDICTORS)


def test_wrappers_hold_every_predictor_of_the_student(data: tuple[list, list]) -> None:
    knn, _ = run("KNNFewShot", data)
    assert {"program.analyze", "program.answer", "knn"} <= set(knn.state)
    ensemble, _ = run("Ensemble", data)
    assert {"programs[0].analyze", "programs[1].answer", "ensemble"} <= set(ensemble.state)
    assert knn.spec.wrapper == "KNNFewShot" and ensemble.spec.wrapper == "Ensemble"
