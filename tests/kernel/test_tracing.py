"""The trace collector (dspyops.tracing) on real DSPy modules and the offline LM, on the async
path the gateway serves with: names, classes, inputs, outputs, LM usage with nested calls,
ReAct trajectories, errors; concurrent calls never mix; values are cut and scrubbed; and
outside `traced` DSPy runs without our callback."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import dspy
import pytest

from dspyops.connections import OFFLINE_ONLY
from dspyops.lm import LMConfig, lm_from_resolved
from dspyops.proto import events_pb2 as pb
from dspyops.tracing import (
    CUT_NAME,
    MAX_CALLS,
    VALUE_CHARS,
    keep_fields,
    module_names,
    trace_from_json,
    trace_json,
    traced,
)


class AnalyzeThenAnswer(dspy.Module):
    """The classic two-stage program: analyze the ticket, then label it with the analysis."""

    def __init__(self) -> None:
        super().__init__()
        self.analyze = dspy.ChainOfThought("text -> topic")
        self.answer = dspy.Predict("text, topic -> label")

    async def aforward(self, text: str) -> dspy.Prediction:
        analysis = await self.analyze.acall(text=text)
        return await self.answer.acall(text=text, topic=analysis.topic)


class Failing(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = dspy.Predict("text -> label")

    async def aforward(self, text: str) -> dspy.Prediction:
        await self.first.acall(text=text)
        raise RuntimeError("stage two is down")


class Fanout(dspy.Module):
    """Calls its predictor many times: a trace longer than the limit."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times
        self.step = dspy.Predict("text -> label")

    async def aforward(self, text: str) -> dspy.Prediction:
        result = None
        for _ in range(self.times):
            result = await self.step.acall(text=text)
        assert result is not None
        return result


def offline(program: dspy.Module) -> dspy.Module:
    program.set_lm(lm_from_resolved(OFFLINE_ONLY.resolve_stored(LMConfig(), "test")))
    return program


def run(program: dspy.Module, **inputs: str) -> tuple[Any, list[pb.ModuleCall]]:
    async def call() -> tuple[Any, list[pb.ModuleCall]]:
        with traced(program) as collector:
            result = await program.acall(**inputs)
        return result, collector.calls()

    return asyncio.run(call())


def by_name(calls: list[pb.ModuleCall]) -> dict[str, pb.ModuleCall]:
    return {c.name: c for c in calls}


def test_a_two_module_program_is_traced_call_by_call_with_usage_of_nested_calls() -> None:
    program = offline(AnalyzeThenAnswer())
    result, calls = run(program, text="I was charged twice")
    assert [(c.name, c.module) for c in calls] == [
        ("self", "AnalyzeThenAnswer"),
        ("analyze", "ChainOfThought"),
        ("analyze.predict", "Predict"),
        ("answer", "Predict"),
    ]
    named = by_name(calls)
    assert named["self"].inputs == {"text": "I was charged twice"}
    assert named["self"].outputs == {"label": result.label}
    assert named["answer"].inputs == {
        "text": "I was charged twice",
        "topic": named["analyze"].outputs["topic"],
    }
    assert set(named["analyze"].outputs) == {"reasoning", "topic"}
    # usage: each LM call counts for the module it ran in and for every module around it
    assert named["analyze.predict"].usage.lm_calls == 1
    assert named["analyze"].usage.lm_calls == 1
    assert named["answer"].usage.lm_calls == 1
    assert named["self"].usage.lm_calls == 2
    for stage in ("analyze.predict", "answer"):
        assert named[stage].usage.input_tokens > 0 and named[stage].usage.output_tokens > 0
    assert named["self"].usage.input_tokens == (
        named["analyze.predict"].usage.input_tokens + named["answer"].usage.input_tokens
    )
    assert named["analyze"].usage.output_tokens == named["analyze.predict"].usage.output_tokens
    assert all(c.latency_ms > 0 for c in calls)
    assert named["self"].latency_ms >= named["answer"].latency_ms
    # the names are DSPy's own: named_predictors() names the same predictors
    assert {n for n, _ in program.named_predictors()} == {"analyze.predict", "answer"}


def test_a_lone_predictor_is_named_as_named_predictors_names_it() -> None:
    program = offline(dspy.Predict("text -> label"))
    _, calls = run(program, text="where is my parcel")
    assert [(c.name, c.module) for c in calls] == [("self", "Predict")]
    assert [n for n, _ in program.named_predictors()] == ["self"]
    assert module_names(program) == {id(program): "self"}


def test_concurrent_calls_on_one_program_never_mix_their_traces() -> None:
    program = offline(AnalyzeThenAnswer())
    texts = [f"ticket number {i} about order {i * 7}" for i in range(40)]

    async def one(text: str) -> list[pb.ModuleCall]:
        with traced(program) as collector:
            await program.acall(text=text)
        return collector.calls()

    async def all_at_once() -> list[list[pb.ModuleCall]]:
        return await asyncio.gather(*(one(t) for t in texts))

    traces = asyncio.run(all_at_once())
    for text, calls in zip(texts, traces, strict=True):
        assert [c.name for c in calls] == ["self", "analyze", "analyze.predict", "answer"]
        for call in calls:
            assert call.inputs["text"] == text  # its own request's text, nobody else's
        assert by_name(calls)["self"].usage.lm_calls == 2


def test_outside_traced_dspy_runs_without_the_collector() -> None:
    program = offline(dspy.Predict("text -> label"))
    before = list(dspy.settings.callbacks)

    async def call() -> list[pb.ModuleCall]:
        with traced(program) as collector:
            inside = list(dspy.settings.callbacks)
        assert collector in inside
        await program.acall(text="after the block")  # not collected
        return collector.calls()

    assert asyncio.run(call()) == []
    assert list(dspy.settings.callbacks) == before
    assert dspy.settings.usage_tracker is None


def test_an_error_is_recorded_on_the_call_that_raised_and_its_callers() -> None:
    program = offline(Failing())

    async def call() -> list[pb.ModuleCall]:
        with traced(program) as collector, pytest.raises(RuntimeError):
            await program.acall(text="hello")
        return collector.calls()

    calls = asyncio.run(call())
    named = by_name(calls)
    assert named["self"].error == "RuntimeError: stage two is down"
    assert named["first"].error == "" and named["first"].outputs["label"]


def test_react_keeps_its_trajectory_as_json_and_a_failing_tool_is_an_observation() -> None:
    def lookup(query: str) -> str:
        """Look up a help-centre article."""
        return f"article about {query}"

    def broken(query: str) -> str:
        """A tool that is down."""
        raise RuntimeError("tool down")

    program = offline(dspy.ReAct("question -> answer", tools=[lookup, broken], max_iters=2))
    _, calls = run(program, question="how do refunds work")
    root = by_name(calls)["self"]
    assert root.module == "ReAct"
    steps = json.loads(root.trajectory)
    assert "thought_0" in steps and "observation_0" in steps
    assert "trajectory" not in root.outputs and "answer" in root.outputs
    assert {c.name for c in calls} >= {"react", "extract"}
    assert root.usage.lm_calls == sum(
        c.usage.lm_calls for c in calls if c.name in ("react", "extract.predict")
    )


def test_values_are_cut_and_scrubbed() -> None:
    program = offline(dspy.Predict("text -> label"))
    secret = "api_key=abcd1234efgh5678ijkl"
    _, calls = run(program, text=f"{secret} " + "x" * (VALUE_CHARS * 3))
    text = calls[0].inputs["text"]
    assert len(text) == VALUE_CHARS and text.endswith("…")
    assert "abcd1234efgh5678ijkl" not in text and "[redacted]" in text


def test_a_trace_longer_than_the_limit_ends_with_a_cut_marker() -> None:
    program = offline(Fanout(MAX_CALLS + 5))
    _, calls = run(program, text="again and again")
    assert len(calls) == MAX_CALLS + 1
    assert calls[-1].name == CUT_NAME and "6 more module calls" in calls[-1].error


def test_keep_fields_leaves_out_other_values_and_trajectories() -> None:
    program = offline(AnalyzeThenAnswer())
    _, calls = run(program, text="charged twice")
    calls[0].trajectory = "{}"
    kept = keep_fields(calls, ["label"])
    assert [c.name for c in kept] == [c.name for c in calls]  # the structure stays
    assert all(set(c.inputs) == set() for c in kept)
    assert by_name(kept)["self"].outputs == {"label": by_name(calls)["self"].outputs["label"]}
    assert by_name(kept)["analyze"].outputs == {}
    assert all(c.trajectory == "" for c in kept)
    assert by_name(calls)["self"].inputs  # the original is untouched


def test_a_kept_trace_round_trips_through_its_json() -> None:
    program = offline(AnalyzeThenAnswer())
    _, calls = run(program, text="charged twice")
    assert trace_from_json(trace_json(calls)) == calls
    assert trace_from_json("") == []
    with pytest.raises(ValueError):
        trace_from_json('{"not": "a list"}')
