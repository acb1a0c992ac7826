"""Declarative pipelines: the wiring check (before anything is built), and the real
dspy.Module they become (predictors named after the stages, sync and async forward, DSPy's
saved state)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import dspy
import pytest

from dspyops.connections import OFFLINE_ONLY
from dspyops.lm import LMConfig, build_lm
from dspyops.programs.build import build_module, load_program, program_state
from dspyops.programs.errors import ProgramError
from dspyops.programs.pipeline import PipelineModule, PipelineSpec
from dspyops.programs.spec import ProgramSpec
from dspyops.programs.stages import StageSpec


def stage(name: str, sig: str, kind: str = "Predict", **inputs: str) -> StageSpec:
    return StageSpec(name, kind, sig, "", tuple(sorted(inputs.items())))


ANALYZE = stage("analyze", "text -> topic", "ChainOfThought", text="input.text")
ANSWER = stage("answer", "text, topic -> label", text="input.text", topic="analyze.topic")
GOOD = PipelineSpec((ANALYZE, ANSWER), (("label", "answer.label"),))


def refused(pipeline: PipelineSpec) -> ProgramError:
    with pytest.raises(ProgramError) as err:
        build_module(ProgramSpec("Pipeline", pipeline=pipeline))
    return err.value


@pytest.mark.parametrize(
    ("pipeline", "field", "fragment"),
    [
        (
            PipelineSpec(
                (ANALYZE, replace(ANSWER, inputs=(("text", "input.text"), ("topic", "analyse.topic")))),
                GOOD.outputs,
            ),
            "pipeline.stages[1].inputs.topic",
            "there is no stage 'analyse'",
        ),
        (
            PipelineSpec(
                (ANALYZE, replace(ANSWER, inputs=(("text", "input.text"), ("topic", "analyze.subject")))),
                GOOD.outputs,
            ),
            "pipeline.stages[1].inputs.topic",
            "stage 'analyze' has no output 'subject'",
        ),
        (
            PipelineSpec(
                (ANALYZE, replace(ANSWER, inputs=(("text", "input.text"), ("topc", "analyze.topic")))),
                GOOD.outputs,
            ),
            "pipeline.stages[1].inputs.topc",
            "is not an input of stage 'answer'",
        ),
        (
            PipelineSpec((ANALYZE, replace(ANSWER, inputs=(("text", "input.text"),))), GOOD.outputs),
            "pipeline.stages[1].inputs.topic",
            "is not wired",
        ),
        (
            PipelineSpec(
                (
                    stage("a", "x, y -> p", x="input.x", y="b.q"),
                    stage("b", "p -> q, out", p="a.p"),
                ),
                (("out", "b.out"),),
            ),
            "pipeline.stages[",
            "cycle",
        ),
        (
            PipelineSpec(GOOD.stages, (("label", "answer.verdict"),)),
            "pipeline.outputs.label",
            "no output 'verdict'",
        ),
        (
            PipelineSpec(GOOD.stages, (("label", "nowhere.label"),)),
            "pipeline.outputs.label",
            "no stage 'nowhere'",
        ),
        (PipelineSpec(GOOD.stages, ()), "pipeline.outputs", "at least one program output"),
        (
            PipelineSpec(
                (ANALYZE, replace(ANSWER, signature="text, topic -> label, confidence")), GOOD.outputs
            ),
            "pipeline.stages[1].signature",
            "output 'confidence' of stage 'answer' is used by nothing",
        ),
        (
            PipelineSpec((ANALYZE, replace(ANSWER, name="analyze")), GOOD.outputs),
            "pipeline.stages[1].name",
            "unique",
        ),
        (
            PipelineSpec((ANALYZE, replace(ANSWER, name="forward")), GOOD.outputs),
            "pipeline.stages[1].name",
            "reserved",
        ),
        (
            PipelineSpec((ANALYZE, replace(ANSWER, kind="Bagging")), GOOD.outputs),
            "pipeline.stages[1].kind",
            "unknown stage kind",
        ),
        (
            PipelineSpec((ANALYZE, replace(ANSWER, tools=("m:f",))), GOOD.outputs),
            "pipeline.stages[1].tools",
            "only a ReAct",
        ),
        (
            PipelineSpec((ANALYZE, replace(ANSWER, kind="ReAct")), GOOD.outputs),
            "pipeline.stages[1].tools",
            "at least one tool",
        ),
    ],
)
def test_wiring_refused_naming_stage_and_field(pipeline: PipelineSpec, field: str, fragment: str) -> None:
    err = refused(pipeline)
    assert err.field.startswith(field), err
    assert fragment in err.problem, err


def test_cycle_names_the_loop() -> None:
    a = stage("a", "x, y -> p", x="input.x", y="b.q")
    b = stage("b", "p -> q, out", p="a.p")
    err = refused(PipelineSpec((a, b), (("out", "b.out"),)))
    assert "a -> b -> a" in err.problem


def test_module_predictors_are_the_stages() -> None:
    module = build_module(ProgramSpec("Pipeline", pipeline=GOOD))
    assert isinstance(module, PipelineModule)
    assert [name for name, _ in module.named_predictors()] == ["analyze.predict", "answer"]
    assert ProgramSpec("Pipeline", pipeline=GOOD).input_fields() == ["text"]


def test_forward_sync_and_async_on_the_offline_engine() -> None:
    module = build_module(ProgramSpec("Pipeline", pipeline=GOOD))
    module.answer.demos = [dspy.Example(text="money back please", topic="refund", label="refund")]
    with dspy.context(lm=build_lm(LMConfig(), OFFLINE_ONLY)):
        sync = module(text="I want my money back")
        asynchronous = asyncio.run(module.acall(text="I want my money back"))
    assert sync.label == asynchronous.label == "refund"
    assert set(sync.keys()) == {"label"}  # the named outputs, nothing of the stages' inner fields
    with pytest.raises(ValueError, match="missing"):
        module(txt="no such input")


def test_state_round_trip_through_dspy_json() -> None:
    spec = ProgramSpec("Pipeline", pipeline=GOOD)
    module = build_module(spec)
    module.answer.signature = module.answer.signature.with_instructions("Pick the queue.")
    module.analyze.predict.demos = [dspy.Example(text="t", reasoning="r", topic="billing")]
    state = json.loads(json.dumps(program_state(module)))
    assert set(state) == {"analyze.predict", "answer", "metadata"}
    loaded = load_program(spec, state)
    assert loaded.answer.signature.instructions == "Pick the queue."
    assert program_state(loaded) == program_state(module)
    # plain DSPy reads it too: a module with the same predictors loads the same state
    plain = PipelineModule(
        GOOD,
        {"analyze": dspy.ChainOfThought("text -> topic"), "answer": dspy.Predict("text, topic -> label")},
    )
    plain.load_state({k: v for k, v in state.items() if k != "metadata"})
    assert plain.answer.signature.instructions == "Pick the queue."


def test_state_of_another_program_is_refused_naming_the_predictors() -> None:
    spec = ProgramSpec("Pipeline", pipeline=GOOD)
    with pytest.raises(ProgramError) as err:
        load_program(spec, {"classify": {}})
    assert err.value.field == "state"
    assert "missing" in err.value.problem and "classify" in err.value.problem
