"""The gateway's prompt cache (gateway_svc.prompt_cache) gives DSPy's own prompts, byte for
byte: every module kind a version can be (Predict, ChainOfThought, ReAct with tools, a
pipeline, a user module run on a worker thread, KNNFewShot and Ensemble wrappers), with
complete and incomplete demos and typed fields, loaded by the gateway's own loader from an
artifact, and called once with DSPy's per-call ChatAdapter and twice through the cache."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import dspy
import pytest
from dspy.utils.callback import BaseCallback

from dspyops.artifacts import encode_artifact
from dspyops.lm import LMConfig
from dspyops.programs.asynccall import acall
from dspyops.programs.build import build_module, program_state
from dspyops.programs.context import ProgramContext
from dspyops.programs.protos import spec_from_proto
from dspyops.programs.spec import ProgramSpec
from dspyops.programs.wrappers import EnsembleProgram, KNNProgram
from gateway_svc.loader import LoadedProgram, ProgramCache
from gateway_svc.run_settings import running
from tests.programs_pkg.specs import ALLOWED, MODULES, PIPELINE, agent

CTX = ProgramContext(program_modules=ALLOWED)
TEXTS = ["I was charged twice for my order 123", "the app crashes when I log in"]


def demo(text: str, label: str, **more: Any) -> dspy.Example:
    return dspy.Example(text=text, label=label, **more).with_inputs("text")


DEMOS = [
    demo("refund my order", "refund", reasoning="they want money back", topic="refunds"),
    demo("my card was charged twice", "billing", topic="payments"),  # no reasoning: incomplete for CoT
    demo("the app crashes on start", "bug"),
]


def with_demos(module: dspy.Module) -> dspy.Module:
    for _, predictor in module.named_predictors():
        predictor.demos = list(DEMOS)
    return module


def knn() -> dspy.Module:
    return KNNProgram(dspy.Predict("text -> label"), DEMOS, k=2)


def ensemble() -> dspy.Module:
    return with_demos(EnsembleProgram([dspy.ChainOfThought("text -> label") for _ in range(2)]))


PROGRAMS: dict[str, tuple[ProgramSpec, Any]] = {
    "predict": (ProgramSpec("Predict", "text -> label", "Classify the ticket."), None),
    "chain_of_thought": (ProgramSpec("ChainOfThought", "text -> label"), None),
    "typed": (ProgramSpec("Predict", "text: str, hints: list[str] -> label, confidence: float"), None),
    "pipeline": (spec_from_proto(PIPELINE), None),
    "react": (spec_from_proto(agent()), None),
    "user_module": (ProgramSpec(f"{MODULES}:TwoStep"), None),
    "knn": (ProgramSpec("Predict", "text -> label", wrapper="KNNFewShot"), knn),
    "ensemble": (ProgramSpec("ChainOfThought", "text -> label", wrapper="Ensemble"), ensemble),
}


def loaded_version(spec: ProgramSpec, make: Any) -> LoadedProgram:
    """The version as a gateway loads it: an artifact of the program's state, demos in it."""
    module = make() if make is not None else with_demos(build_module(spec, CTX))
    state = json.loads(json.dumps(program_state(module)))
    digest, artifact = encode_artifact(spec, state, LMConfig())
    return ProgramCache(programs=CTX).get(digest, artifact)


class Prompts(BaseCallback):
    """The messages of every LM call, as DSPy hands them to the LM, and the adapter calls
    DSPy's callbacks hear (a subclass of ChatAdapter must not make them hear each twice)."""

    def __init__(self) -> None:
        self.messages: list[list[dict[str, Any]]] = []
        self.formats = self.parses = 0

    def on_adapter_format_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self.formats += 1

    def on_adapter_parse_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self.parses += 1

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self.messages.append(copy.deepcopy(inputs["messages"]))


def prompts(loaded: LoadedProgram, cached: bool) -> list[list[dict[str, Any]]]:
    recorder = Prompts()
    calls = recorder.messages

    async def run() -> None:
        for text in TEXTS:
            hints = {"hints": ["orders", "payments"]} if "hints" in loaded.inputs else {}
            await acall(loaded.module, {"text": text, **hints})

    with dspy.context(callbacks=[recorder]):
        if cached:
            with running(loaded, None):
                asyncio.run(run())
        else:
            asyncio.run(run())
    assert recorder.formats == recorder.parses == len(calls)  # once per LM call, cached or not
    return calls


@pytest.mark.parametrize("kind", list(PROGRAMS))
def test_cached_prompts_are_dspys_own_byte_for_byte(kind: str) -> None:
    loaded = loaded_version(*PROGRAMS[kind])
    assert loaded.adapter.hits == 0
    own = prompts(loaded, cached=False)
    assert own and all(m[0]["role"] == "system" for m in own)
    first = prompts(loaded, cached=True)
    again = prompts(loaded, cached=True)
    assert json.dumps(first) == json.dumps(own)
    assert json.dumps(again) == json.dumps(own)
    assert loaded.adapter.hits > 0  # the cache answered: the comparison is not DSPy against itself


def test_demos_changed_on_the_predictor_are_formatted_anew() -> None:
    loaded = loaded_version(*PROGRAMS["predict"])
    prompts(loaded, cached=True)
    [(_, predictor)] = loaded.module.named_predictors()
    predictor.demos = [demo("where is my parcel", "shipping")]
    own, cached = prompts(loaded, cached=False), prompts(loaded, cached=True)
    assert json.dumps(cached) == json.dumps(own)
    assert "where is my parcel" in json.dumps(cached) and "refund my order" not in json.dumps(cached)


def test_an_adapter_chosen_outside_is_left_in_charge() -> None:
    loaded = loaded_version(*PROGRAMS["predict"])
    recorder = Prompts()
    with dspy.context(adapter=dspy.JSONAdapter(), callbacks=[recorder]), running(loaded, None):
        asyncio.run(acall(loaded.module, {"text": TEXTS[0]}))
    assert loaded.adapter.hits == 0 and "JSON" in recorder.messages[0][0]["content"]
