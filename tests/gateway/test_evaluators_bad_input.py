"""Bad input over SetEvaluator, ListEvaluators and GetExperimentResults' source: the right
status, the field named, nothing appended, both servers still serving (tests/support/bad_input.py;
tests/e2e/test_bad_input_coverage.py counts these rows too)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from tests.support.bad_input import BAD, NOT_FOUND, PRECONDITION, Case, Servers, check_refused


def evaluator(**fields: object) -> Callable[[Servers], object]:
    arguments: dict[str, object] = {"deployment": "web", "name": "exact", "metric": "exact_match", **fields}
    return lambda s: s.gw.set_evaluator(**arguments)  # type: ignore[arg-type]


def results_with(source: str) -> Callable[[Servers], object]:
    # the source is checked before the experiment is looked up (none runs on "web" here)
    return lambda s: s.gw.get_experiment_results("web", source=source)


def _judge(program: str, version: str = "1.0.0", **fields: object) -> Callable[[Servers], object]:
    return evaluator(metric="", judge_program=program, judge_version=version, **fields)


EVALUATOR_CASES: list[Case] = [
    ("evaluator without deployment", "SetEvaluator", evaluator(deployment=""), BAD, "deployment"),
    (
        "evaluator of unknown deployment",
        "SetEvaluator",
        evaluator(deployment="ghost"),
        NOT_FOUND,
        "deployment",
    ),
    ("evaluator without name", "SetEvaluator", evaluator(name=""), BAD, "evaluator.name"),
    ("evaluator with a bad name", "SetEvaluator", evaluator(name="Bad Name!" * 500), BAD, "evaluator.name"),
    ("evaluator sampling nothing", "SetEvaluator", evaluator(share=0.0), BAD, "evaluator.share"),
    ("evaluator sampling more than all", "SetEvaluator", evaluator(share=1.5), BAD, "evaluator.share"),
    ("evaluator with a NaN share", "SetEvaluator", evaluator(share=float("nan")), BAD, "evaluator.share"),
    (
        "evaluator with neither metric nor judge",
        "SetEvaluator",
        evaluator(metric=""),
        BAD,
        "evaluator.metric",
    ),
    (
        "evaluator with both a metric and a judge",
        "SetEvaluator",
        evaluator(judge_program="judge", judge_version="1.0.0"),
        BAD,
        "evaluator.metric",
    ),
    (
        "evaluator with an unknown metric",
        "SetEvaluator",
        evaluator(metric="x" * 5000),
        BAD,
        "evaluator.metric",
    ),
    (
        "evaluator with a metric of a module not allowlisted",
        "SetEvaluator",
        evaluator(metric="os:system"),
        BAD,
        "evaluator.metric",
    ),
    (
        "metric evaluator with a budget",
        "SetEvaluator",
        evaluator(max_calls_per_hour=10),
        BAD,
        "evaluator.max_calls_per_hour",
    ),
    (
        "judge with an infinite cost budget",
        "SetEvaluator",
        _judge("judge", max_cost_per_hour=float("inf")),
        BAD,
        "evaluator.max_cost_per_hour",
    ),
    ("judge of an unknown program", "SetEvaluator", _judge("ghost"), NOT_FOUND, "evaluator.judge_program"),
    ("judge without a version", "SetEvaluator", _judge("ghost", ""), BAD, "evaluator.judge_version"),
    ("judge that is the served program", "SetEvaluator", _judge("tickets"), BAD, "evaluator.judge_program"),
    (
        "removing an evaluator that is not there",
        "SetEvaluator",
        evaluator(enabled=False),
        PRECONDITION,
        "evaluator.name",
    ),
    (
        "evaluator with a stale expected_version",
        "SetEvaluator",
        evaluator(expected_version=77),
        grpc.StatusCode.ABORTED,
        "expected_version",
    ),
    (
        "evaluators without deployment",
        "ListEvaluators",
        lambda s: s.gw.list_evaluators(""),
        BAD,
        "deployment",
    ),
    (
        "evaluators of unknown deployment",
        "ListEvaluators",
        lambda s: s.gw.list_evaluators("ghost"),
        NOT_FOUND,
        "deployment",
    ),
    ("results of an unknown source", "GetExperimentResults", results_with("robot"), BAD, "source"),
    ("results of a bad evaluator name", "GetExperimentResults", results_with("evaluator:A B"), BAD, "source"),
]


@pytest.mark.parametrize("name,rpc,call,code,field", EVALUATOR_CASES, ids=[c[0] for c in EVALUATOR_CASES])
def test_bad_evaluator_input_is_refused_cleanly(
    servers: Servers,
    name: str,
    rpc: str,
    call: Callable[[Servers], object],
    code: grpc.StatusCode,
    field: str,
) -> None:
    check_refused(servers, rpc, call, code, field)
