"""How each optimizer family's progress is read: its adapter's log parsers and proposers,
which the job's generic ProgressCapture consults. Real DSPy runs on the offline engine
(run_job), and the real capture fed the lines DSPy writes."""

from __future__ import annotations

from typing import Any

import dspy
import pytest

from dspyops.datasets import load_dataset, split
from dspyops.lm import LMConfig
from dspyops.programs.spec import ProgramSpec
from optimizer_svc.cancel import CancelToken
from optimizer_svc.jobs.runner import JobSpec, run_job
from optimizer_svc.optimizers.base import describe_instructions
from optimizer_svc.optimizers.registry import OPTIMIZERS, get_adapter
from optimizer_svc.progress.capture import ProgressCapture
from optimizer_svc.progress.events import JobEvent, Progress, TrialCompleted
from optimizer_svc.progress.usage import SharedUsageTracker

SPEC = ProgramSpec(module="Predict", signature="text -> label")


@pytest.fixture(scope="module")
def data() -> tuple[list[dspy.Example], list[dspy.Example]]:
    train, val = split(load_dataset("support_tickets"), val_fraction=0.3, seed=0)
    return train[:16], val[:12]


def run(optimizer: str, params: dict[str, Any], data: tuple[list, list]) -> list[JobEvent]:
    events: list[JobEvent] = []
    spec = JobSpec(
        job_id="t",
        spec=SPEC,
        lm=LMConfig(),
        optimizer=optimizer,
        params=params,
        metric="exact_match",
        trainset=data[0],
        valset=data[1],
    )
    run_job(spec, events.append, CancelToken())
    return events


def messages(events: list[JobEvent]) -> list[str]:
    return [e.message for e in events if isinstance(e, Progress)]


def test_better_together_reports_its_steps_and_what_its_copro_step_reports(data: tuple[list, list]) -> None:
    """A step's own lines are read in a BetterTogether job: its adapter takes its steps' parsers."""
    events = run("BetterTogether", {"strategy": "bootstrap -> copro", "breadth": 2, "depth": 2}, data)
    lines = messages(events)
    assert [m for m in lines if m.startswith("strategy step")] == [
        "strategy step 1/2: BootstrapFewShot",
        "strategy step 2/2: COPRO",
    ]
    assert [m for m in lines if m.startswith("refinement round")] == [
        "refinement round 1/2",
        "refinement round 2/2",
    ]
    assert lines.index("strategy step 2/2: COPRO") < lines.index("refinement round 1/2")


def test_better_together_reports_what_its_mipro_step_reports(data: tuple[list, list]) -> None:
    events = run(
        "BetterTogether", {"strategy": "mipro", "max_labeled_demos": 2, "max_bootstrapped_demos": 2}, data
    )
    lines = messages(events)
    assert lines[0] == "strategy step 1/1: MIPROv2"
    assert [m.split(":")[0] for m in lines if m.startswith("step ")] == ["step 1/3", "step 2/3", "step 3/3"]
    assert any(m.startswith("proposed instruction 1: ") for m in lines)  # its proposer's progress


# ---------------------------------------------------------------------- the parsers, line by line


def capture_of(optimizer: str, events: list[JobEvent]) -> ProgressCapture:
    adapter = get_adapter(optimizer)
    return ProgressCapture(
        events.append,
        describe_instructions,
        SharedUsageTracker(),
        CancelToken(),
        log_parsers=adapter.log_parsers,
        proposers=adapter.proposers,
    )


# (optimizer, a line its DSPy optimizer logs, the events it becomes); in DSPy 3.4.1's words
LINES: list[tuple[str, str, list[JobEvent]]] = [
    (
        "MIPROv2",
        "==> STEP 2: PROPOSE INSTRUCTION CANDIDATES <==",
        [Progress(2, 3, "step 2/3: propose instruction candidates")],
    ),
    ("COPRO", "Iteration Depth: 2/3.", [Progress(2, 3, "refinement round 2/3")]),
    ("SIMBA", "Starting batch 1 of 8.", [Progress(1, 8, "SIMBA step 1/8: sampling trajectories")]),
    (
        "SIMBA",
        "Batch 3: Invoking strategy: append_a_rule",
        [Progress(3, 0, "SIMBA step 3: new candidate by append_a_rule")],
    ),
    (
        "SIMBA",
        "Advice for answer: If the text mentions a refund,\n the label is refund.",
        [Progress(0, 0, "rule for answer: If the text mentions a refund, the label is refund.", "answer")],
    ),
    (
        "SIMBA",
        "Scores after 2 batches: [0.5, np.float64(0.25)], Best: 0.5",
        [
            TrialCompleted(1, 0.5, 0.5, "step 2 candidate 1 (minibatch)"),  # no best yet: its own
            TrialCompleted(2, 0.25, 0.25, "step 2 candidate 2 (minibatch)"),
        ],
    ),
    (
        "SIMBA",
        "Final trainset scores: [0.75, 0.5], Best: 0.75 (at index 0)",
        [
            TrialCompleted(1, 0.75, 0.75, "finalist 1 (whole trainset)"),
            TrialCompleted(2, 0.5, 0.75, "finalist 2 (whole trainset)"),
        ],
    ),
    (
        "BetterTogether",
        "\n\x1b[1m==> STEP 1/2: BOOTSTRAPFEWSHOTWITHRANDOMSEARCH <==\x1b[0m",
        [Progress(1, 2, "strategy step 1/2: BootstrapFewShotWithRandomSearch")],
    ),
]


@pytest.mark.parametrize(("optimizer", "line", "expected"), LINES)
def test_each_family_reads_the_lines_its_optimizer_logs(
    optimizer: str, line: str, expected: list[JobEvent]
) -> None:
    events: list[JobEvent] = []
    capture = capture_of(optimizer, events)
    capture.on_log_line(line)  # outside the compile: nothing
    assert events == []
    with capture.compile_phase():
        capture.on_log_line(line)
    assert events == expected


def test_a_family_ignores_the_lines_of_the_others() -> None:
    lines = [line for _, line, _ in LINES]
    for optimizer in OPTIMIZERS:
        own = {line for name, line, _ in LINES if name == optimizer}
        events: list[JobEvent] = []
        capture = capture_of(optimizer, events)
        with capture.compile_phase():
            for line in lines:
                if line not in own:
                    capture.on_log_line(line)
        # BetterTogether runs COPRO and MIPROv2 steps: their lines are its own too
        if optimizer == "BetterTogether":
            assert {e.message for e in events if isinstance(e, Progress)} == {
                "step 2/3: propose instruction candidates",
                "refinement round 2/3",
            }
        else:
            assert events == [], optimizer


def test_proposers_belong_to_the_families_that_run_them() -> None:
    proposers = {name: [p.module for p in a.proposers] for name, a in OPTIMIZERS.items() if a.proposers}
    assert proposers == {
        "MIPROv2": ["GenerateModuleInstruction"],
        "InferRules": ["RulesInductionProgram"],
        "BetterTogether": ["GenerateModuleInstruction"],  # its mipro step's
    }
