"""LMConfig, build_lm and the offline nearest-demo engine, including real optimizer runs on it."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Literal

import dspy
import pytest
from dspy.lm15 import Config, Message, Request

from dspyops.connections import OFFLINE_ONLY, PLACEHOLDER_KEY, Connection, Connections
from dspyops.datasets import load_dataset, split
from dspyops.lm import LMConfig, build_lm
from dspyops.metrics import get_metric
from dspyops.offline import engine as offline_module
from dspyops.offline.engine import OFFLINE_MODEL, AsyncOfflineEngine, OfflineEngine
from dspyops.offline.prompt import parse_prompt

DEMOS = [
    dspy.Example(text="I was charged twice for my plan", label="billing").with_inputs("text"),
    dspy.Example(text="My package never arrived, tracking is stuck", label="shipping").with_inputs("text"),
    dspy.Example(text="I forgot my password and cannot log in", label="account").with_inputs("text"),
]


@pytest.fixture
def offline() -> dspy.LM:
    return build_lm(LMConfig(), OFFLINE_ONLY)


# --- LMConfig -----------------------------------------------------------------------------


def test_config_defaults_and_public_dict() -> None:
    config = LMConfig()
    config.validate()
    assert (config.connection, config.model) == ("offline", "")
    assert config.is_offline and not config.legacy
    # what artifacts record: connection + model + sampling; endpoint fields only when set
    assert config.public_dict() == {
        "connection": "offline",
        "model": "",
        "temperature": 0.0,
        "max_tokens": 512,
    }
    assert json.loads(json.dumps(config.public_dict())) == config.public_dict()
    assert LMConfig.from_dict(config.public_dict()) == config


def test_configs_recorded_before_connections_still_decode() -> None:
    """Artifacts written before connections carry a model string with its provider prefix,
    api_base and api_key_env, and no connection: they decode as legacy configs."""
    old = {
        "model": OFFLINE_MODEL,
        "temperature": 0.0,
        "max_tokens": 512,
        "api_base": "",
        "api_key_env": "",
        "latency_ms": 0,
    }
    config = LMConfig.from_dict(old)
    assert config.legacy and config.is_offline and config.connection == ""
    remote = LMConfig.from_dict({**old, "model": "openai/x", "api_base": "http://127.0.0.1:9/v1"})
    assert remote.legacy and not remote.is_offline


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model": "two words"}, "model"),
        ({"model": "x" * 201}, "model"),
        ({"connection": "Bad Name"}, "connection"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"connection": "local", "api_base": "localhost:8000"}, "api_base"),
        ({"connection": "local", "api_base": "http://user:sk-abc123@localhost:8000/v1"}, "api_base"),
        ({"connection": "local", "api_key_env": "sk-abc123 secret"}, "api_key_env"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"connection": "local", "latency_ms": 5}, "latency_ms"),
        ({"api_base": "http://localhost:1"}, "api_base"),
    ],
)
def test_config_validate_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError) as err:
        LMConfig(**kwargs).validate()
    assert str(err.value).startswith(f"{field}:")
    assert "sk-abc123" not in str(err.value)  # a pasted key is never echoed


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="api_key"):
        LMConfig.from_dict({"model": "openai/x", "api_key": "sk-1"})


def test_build_lm_offline(offline: dspy.LM) -> None:
    assert offline.model == OFFLINE_MODEL
    assert isinstance(offline.engine, OfflineEngine)
    assert offline.cache is False


def test_build_lm_gives_the_connections_key_explicitly_and_never_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DSPYOPS_TEST_KEY", "sk-from-env-0123456789")
    connections = Connections(
        [Connection("local", "openai/", "http://127.0.0.1:9/v1", "DSPYOPS_TEST_KEY", ("local",))]
    )
    config = LMConfig(connection="local", model="local", max_tokens=64)
    lm = build_lm(config, connections)
    assert lm.model == "openai/local" and lm.cache is False
    assert (
        lm.kwargs["api_key"] == "sk-from-env-0123456789" and lm.kwargs["api_base"] == "http://127.0.0.1:9/v1"
    )
    assert "sk-from-env" not in json.dumps(config.public_dict())
    assert build_lm(config, connections, cache=True).cache is True
    # without a key variable: a placeholder, never empty (an empty key means "use the environment's")
    keyless = Connections([Connection("local", "openai/", "http://127.0.0.1:9/v1", "", ("local",))])
    assert build_lm(config, keyless).kwargs["api_key"] == PLACEHOLDER_KEY


# --- The offline engine on DSPy modules ---------------------------------------------------


def test_predict_without_demos_is_a_deterministic_weak_guess(offline: dspy.LM) -> None:
    with dspy.context(lm=offline):
        first = dspy.Predict("text -> label")(text="The courier left my parcel at the wrong house")
        again = dspy.Predict("text -> label")(text="The courier left my parcel at the wrong house")
    assert first.label == again.label
    assert first.label in "the courier left my parcel at the wrong house"  # a word from the input


def test_predict_answers_from_the_nearest_demo(offline: dspy.LM) -> None:
    predict = dspy.Predict("text -> label")
    predict.demos = list(DEMOS)
    with dspy.context(lm=offline):
        assert predict(text="where is my package? tracking has not moved").label == "shipping"
        assert predict(text="you charged my card twice this month").label == "billing"
        assert predict(text="password reset email never came").label == "account"


def test_chain_of_thought_sync_and_async(offline: dspy.LM) -> None:
    cot = dspy.ChainOfThought("text -> label")
    cot.predict.demos = list(DEMOS)  # no `reasoning`: DSPy sends them as incomplete demos
    with dspy.context(lm=offline):
        sync = cot(text="my package is lost")
        asyn = asyncio.run(cot.acall(text="my package is lost"))
        bare = dspy.ChainOfThought("text -> label")(text="my package is lost")
    assert sync.label == asyn.label == "shipping"
    assert sync.reasoning == asyn.reasoning and "package" in sync.reasoning
    assert bare.reasoning and bare.label  # no demos: still well-formed


def test_async_predict_under_context(offline: dspy.LM) -> None:
    async def run() -> list[str]:
        predict = dspy.Predict("text -> label")
        predict.demos = list(DEMOS)
        with dspy.context(lm=offline):
            results = await asyncio.gather(
                *(predict.acall(text=t) for t in ("charged twice", "password lost"))
            )
        return [r.label for r in results]

    assert asyncio.run(run()) == ["billing", "account"]


def test_json_adapter(offline: dspy.LM) -> None:
    cot = dspy.ChainOfThought("text -> label")
    cot.predict.demos = list(DEMOS)
    with dspy.context(lm=offline, adapter=dspy.JSONAdapter()):
        result = cot(text="I cannot log in, forgot my password")
    assert result.label == "account"
    reply = offline.history[-1]["outputs"][0]
    reply_text = reply if isinstance(reply, str) else reply["text"]
    assert json.loads(reply_text)["label"] == "account"


def test_literal_choices_without_demos(offline: dspy.LM) -> None:
    class Route(dspy.Signature):
        """Route the ticket."""

        text: str = dspy.InputField()
        queue: Literal["billing", "shipping", "account"] = dspy.OutputField()

    with dspy.context(lm=offline):
        named = dspy.Predict(Route)(text="This is a shipping question about my box")
        hashed = dspy.Predict(Route)(text="Hello, something odd happened")
    assert named.queue == "shipping"  # a choice named in the input wins
    assert hashed.queue in ("billing", "shipping", "account")


def test_typed_outputs(offline: dspy.LM) -> None:
    with dspy.context(lm=offline):
        bare = dspy.Predict("question -> answer: int, sure: bool, tags: list[str]")(question="How many?")
        assert (bare.answer, bare.sure, bare.tags) == (0, False, [])
        predict = dspy.Predict("question -> answer: int")
        predict.demos = [
            dspy.Example(question="two plus two", answer=4),
            dspy.Example(question="ten minus one", answer=9),
        ]
        assert predict(question="what is two plus two?").answer == 4
        with dspy.context(adapter=dspy.JSONAdapter()):
            assert predict(question="ten minus one equals").answer == 9


def test_same_request_same_response() -> None:
    request = Request(
        model=OFFLINE_MODEL,
        system="Your input fields are:\n1. `text` (str):\nYour output fields are:\n1. `label` (str):\n",
        messages=(Message.user("[[ ## text ## ]]\nmy parcel is late"),),
    )
    engine = OfflineEngine()
    first, second = engine.complete(request), engine.complete(request)
    assert first.message.text == second.message.text
    assert first.message.text.endswith("[[ ## completed ## ]]")
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0
    assert asyncio.run(AsyncOfflineEngine(engine).complete(request)).message.text == first.message.text
    events = list(engine.stream(request))
    assert events[0].type == "start" and events[-1].type == "end"


def test_usage_is_reported(offline: dspy.LM) -> None:
    with dspy.context(lm=offline), dspy.track_usage() as tracker:
        dspy.Predict("text -> label")(text="one two three")
    usage = tracker.get_total_tokens()[OFFLINE_MODEL]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


def test_latency_sync_sleeps_and_async_overlaps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sync engine sleeps latency_ms per call; the async one awaits it, so concurrent
    calls are in the engine together (observed by counting, not by timing them)."""
    slept: list[float] = []
    real_sleep = time.sleep

    def recorded_sleep(seconds: float) -> None:
        slept.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(offline_module.time, "sleep", recorded_sleep)
    lm = build_lm(LMConfig(latency_ms=500), OFFLINE_ONLY)
    predict = dspy.Predict("text -> label")
    with dspy.context(lm=lm):
        predict(text="hello")
        assert slept == [0.5]

        in_flight = {"now": 0, "most": 0}
        original = AsyncOfflineEngine.complete

        async def counted(self: AsyncOfflineEngine, request: Request) -> object:
            in_flight["now"] += 1
            in_flight["most"] = max(in_flight["most"], in_flight["now"])
            try:
                return await original(self, request)
            finally:
                in_flight["now"] -= 1

        monkeypatch.setattr(AsyncOfflineEngine, "complete", counted)

        async def many() -> None:
            await asyncio.gather(*(predict.acall(text=f"ticket {i}") for i in range(10)))

        asyncio.run(many())
        assert in_flight["most"] > 1  # serialized calls would each have left before the next came
        assert slept == [0.5]  # the async calls never blocked the loop in time.sleep


def test_instruction_proposal_prompts(offline: dspy.LM) -> None:
    from dspy.teleprompt.copro_optimizer import BasicGenerateInstruction, GenerateInstructionGivenAttempts

    with dspy.context(lm=offline):
        basic = dspy.Predict(BasicGenerateInstruction)(basic_instruction="Classify the support ticket.")
        attempts = [
            "Instruction #1: Classify the support ticket.",
            "Prefix #1: Label:",
            "Resulting Score #1: 0.5",
            f"Instruction #2: {basic.proposed_instruction}",
            "Prefix #2: Answer:",
            "Resulting Score #2: 0.6",
        ]
        better = dspy.Predict(GenerateInstructionGivenAttempts)(attempted_instructions=attempts)
    assert basic.proposed_instruction.startswith("Classify the support ticket.")
    assert basic.proposed_prefix_for_output_field.endswith(":")
    assert better.proposed_instruction.startswith("Classify the support ticket.")
    assert better.proposed_instruction != basic.proposed_instruction  # tried variants are skipped
    assert "»" not in better.proposed_instruction


# --- Optimizers make measurable progress on it -------------------------------------------


def _score(program: dspy.Module, devset: list[dspy.Example]) -> float:
    metric = get_metric("exact_match")
    return sum(metric(e, program(**e.inputs())) for e in devset) / len(devset)


@pytest.fixture(scope="module")
def tickets() -> tuple[list[dspy.Example], list[dspy.Example]]:
    return split(load_dataset("support_tickets"), 0.3, seed=0)


def test_few_shot_optimizers_beat_the_unoptimized_program(
    tickets: tuple[list[dspy.Example], list[dspy.Example]],
) -> None:
    train, val = tickets
    metric = get_metric("exact_match")
    with dspy.context(lm=build_lm(LMConfig(), OFFLINE_ONLY)):
        baseline = _score(dspy.Predict("text -> label"), val)
        labeled = dspy.LabeledFewShot(k=16).compile(dspy.Predict("text -> label"), trainset=train)
        bootstrap = dspy.BootstrapFewShot(
            metric=metric, max_bootstrapped_demos=4, max_labeled_demos=16
        ).compile(dspy.Predict("text -> label"), trainset=train)
        labeled_score, bootstrap_score = _score(labeled, val), _score(bootstrap, val)
    assert baseline < 0.35
    assert labeled_score >= 0.6
    assert bootstrap_score >= 0.6


def test_mipro_and_copro_compile_to_completion(
    tickets: tuple[list[dspy.Example], list[dspy.Example]],
) -> None:
    train, val = tickets
    metric = get_metric("exact_match")
    dspy_logger = logging.getLogger("dspy")
    level = dspy_logger.level
    dspy_logger.setLevel(logging.WARNING)
    try:
        _compile_mipro_and_copro(train, val, metric)
    finally:
        dspy_logger.setLevel(level)


def _compile_mipro_and_copro(train: list[dspy.Example], val: list[dspy.Example], metric: object) -> None:
    with dspy.context(lm=build_lm(LMConfig(), OFFLINE_ONLY)):
        mipro = dspy.MIPROv2(metric=metric, auto="light", num_threads=1)  # captures the context LM here
        tuned = mipro.compile(dspy.Predict("text -> label"), trainset=train[:16], valset=val[:10])
        assert tuned.signature.instructions
        assert _score(tuned, val) > _score(dspy.Predict("text -> label"), val)

        copro = dspy.COPRO(metric=metric, breadth=2, depth=1)
        prompted = copro.compile(
            dspy.ChainOfThought("text -> label"),
            trainset=train[:10],
            eval_kwargs={"num_threads": 1, "display_progress": False},
        )
        assert prompted.predict.signature.instructions


def test_response_format_and_raw_calls(offline: dspy.LM) -> None:
    system = "Your input fields are:\n1. `text` (str):\nYour output fields are:\n1. `label` (str):\n"
    demo = (
        Message.user("[[ ## text ## ]]\nparcel late"),
        Message.assistant('{"label": "shipping"}'),
        Message.user("[[ ## text ## ]]\nmy parcel is late again"),
    )
    request = Request(
        model=OFFLINE_MODEL,
        system=system,
        messages=demo,
        config=Config(response_format={"type": "json_object"}),
    )
    assert json.loads(OfflineEngine().complete(request).message.text) == {"label": "shipping"}
    (reply,) = offline("hello there")
    assert "hello there" in reply and "[[" not in reply


def test_parse_prompt_reads_adapter_layout() -> None:
    system = (
        "Your input fields are:\n1. `text` (str): the ticket\nYour output fields are:\n"
        "1. `reasoning` (str): \n2. `queue` (Literal['a b', 'c']): where it goes\n"
        "All interactions will be structured in the following way...\n"
        "In adhering to this structure, your objective is: \n        Route   the ticket."
    )
    prompt = parse_prompt(
        system,
        [
            (
                "user",
                "This is an example of the task, though some input or output fields are not supplied."
                "\n\n[[ ## text ## ]]\nx",
            ),
            (
                "assistant",
                "[[ ## reasoning ## ]]\nNot supplied for this particular example. "
                "\n\n[[ ## queue ## ]]\nc\n\n[[ ## completed ## ]]",
            ),
            (
                "user",
                "[[ ## text ## ]]\ny\n\nRespond with the corresponding output fields, starting with ...",
            ),
        ],
    )
    assert [f.name for f in prompt.inputs] == ["text"]
    assert [(f.name, f.choices) for f in prompt.outputs] == [("reasoning", ()), ("queue", ("a b", "c"))]
    assert prompt.instructions == "Route the ticket."
    assert prompt.demos == [({"text": "x"}, {"queue": "c"})]
    assert prompt.current == {"text": "y"} and not prompt.json_mode
