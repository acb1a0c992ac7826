"""EvaluationReport.stages: each module of the program evaluated, with its calls, latency
p50/p95 and LM usage, from a whole-program run (optimizer_svc.evaluation.stages)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dspy
import pytest

from dspyops.client import OptimizerClient
from dspyops.connections import OFFLINE_ONLY
from dspyops.lm import LMConfig
from dspyops.metrics import resolve_metric
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from optimizer_svc.evaluation.plan import EvaluationPlan, Target
from optimizer_svc.evaluation.report import build_report
from optimizer_svc.evaluation.run import run_evaluation
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, ticket_rows

ROWS = ticket_rows()
TRAIN, VAL = ROWS[:20], ROWS[20:30]


class AnalyzeThenAnswer(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.analyze = dspy.ChainOfThought("text -> topic")
        self.answer = dspy.Predict("text, topic -> label")

    def forward(self, text: str) -> dspy.Prediction:
        return self.answer(text=text, topic=self.analyze(text=text).topic)


@dataclass
class TwoStageTarget(Target):
    """The job runner's seam for a user module is p1's; here the test hands the run its module."""

    def module(self) -> dspy.Module:
        return AnalyzeThenAnswer()


def _examples(rows: list[dict[str, str]]) -> list[dspy.Example]:
    return [dspy.Example(**row).with_inputs("text") for row in rows]


@pytest.mark.parametrize("threads", [1, 3])
def test_a_two_stage_program_reports_each_module(threads: int) -> None:
    target = TwoStageTarget(ProgramSpec(signature="text -> label"), {}, OFFLINE_ONLY.resolve(LMConfig()))
    dataset = _examples(VAL)
    metric = resolve_metric("exact_match", ())
    run = run_evaluation(target, dataset, metric, num_threads=threads)
    plan = EvaluationPlan(target, dataset, "exact_match", metric, threads, include_results=False)
    report = build_report(plan, run, include_results=False)

    stages = {s.name: s for s in report.stages}
    assert list(stages) == ["analyze", "answer", "analyze.predict"]  # named_sub_modules order
    n = len(VAL)
    for stage in stages.values():
        assert stage.calls == n and stage.usage.lm_calls == n  # one LM call per module call
        assert stage.usage.input_tokens > 0 and stage.usage.output_tokens > 0
        assert 0 < stage.latency_p50_ms <= stage.latency_p95_ms
    # the ChainOfThought's inner Predict is its only LM caller: both count the same calls
    assert stages["analyze"].usage == stages["analyze.predict"].usage
    # every LM call of the run is some module's: the stages that make them add up to the total
    callers = ("analyze.predict", "answer")
    assert sum(stages[c].usage.lm_calls for c in callers) == report.usage.lm_calls
    assert sum(stages[c].usage.input_tokens for c in callers) == report.usage.input_tokens


@pytest.fixture(scope="module")
def optimizer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OptimizerClient]:
    tmp: Path = tmp_path_factory.mktemp("stages")
    server = ServerThread(lambda: start(OptimizerConfig(log=str(tmp / "log.db"), data_dir=tmp / "data")))
    with OptimizerClient(server.address) as client:
        yield client
    server.stop()


def _report(client: OptimizerClient, program: str, version: str) -> pb.EvaluationReport:
    events = list(client.evaluate(program, version, dataset=VAL))
    return events[-1].report


def test_evaluate_reports_the_stages_of_registered_versions(optimizer: OptimizerClient) -> None:
    for program, module, opt, params in [
        ("plain", "Predict", "LabeledFewShot", {"k": 4}),
        ("cot", "ChainOfThought", "LabeledFewShot", {"k": 4}),
        ("vote", "Predict", "Ensemble", {"size": 3, "max_bootstrapped_demos": 1, "max_labeled_demos": 1}),
        ("knn", "Predict", "KNNFewShot", {"k": 2}),
    ]:
        events = list(
            optimizer.start_optimization(
                program,
                "text -> label",
                module=module,
                trainset=TRAIN,
                valset=VAL,
                optimizer=opt,
                params=params,
            )
        )
        assert events[-1].WhichOneof("kind") == "completed", events[-1]

    n = len(VAL)
    expected = {
        "plain": ["self"],  # a lone Predict is its own only module
        "cot": ["predict"],
        "vote": ["programs[0]", "programs[1]", "programs[2]"],  # every member answers every example
        "knn": ["program"],  # the per-call copy of the inner module, by its name in the program
    }
    for program, names in expected.items():
        report = _report(optimizer, program, "1.0.0")
        assert [s.name for s in report.stages] == names, program
        assert all(s.calls == n and s.usage.lm_calls == n for s in report.stages), program
        assert sum(s.usage.lm_calls for s in report.stages) == report.usage.lm_calls, program
