"""User module classes and ReAct tools: allowlisted modules only, checked, guarded, identified."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from pathlib import Path

import dspy
import pytest
from dspy.utils.dummies import DummyLM

from dspyops.connections import OFFLINE_ONLY
from dspyops.lm import LMConfig, build_lm
from dspyops.programs.build import build_module, load_program, program_state
from dspyops.programs.code import code_identity
from dspyops.programs.context import ProgramContext, parse_program_modules
from dspyops.programs.errors import ModuleNotAllowed, ProgramError
from dspyops.programs.pipeline import PipelineSpec
from dspyops.programs.spec import ProgramSpec
from dspyops.programs.stages import StageSpec
from dspyops.programs.tools import build_tools
from dspyops.programs.usermodules import forward_inputs

MODULES = "tests.programs_pkg.modules"
TOOLS = "tests.programs_pkg.tools"
CTX = ProgramContext(program_modules=frozenset({MODULES, TOOLS}))


def test_program_modules_flag_parses_and_refuses_non_names() -> None:
    assert parse_program_modules(["a.b,c", " d "]) == {"a.b", "c", "d"}
    with pytest.raises(ValueError, match="not a module name"):
        parse_program_modules(["a;b"])


def test_user_module_built_with_init_args_and_its_predictors() -> None:
    spec = ProgramSpec(f"{MODULES}:TwoStep", init_args='{"hint":"be brief","n":2}')
    module = build_module(spec, CTX)
    assert (module.hint, module.n) == ("be brief", 2)
    assert [n for n, _ in module.named_predictors()] == ["analyze.predict", "answer"]
    assert forward_inputs(module) == ["text"]
    with dspy.context(lm=build_lm(LMConfig(), OFFLINE_ONLY)):
        assert "label" in module(text="money back please")
    state = json.loads(json.dumps(program_state(module)))
    module.answer.signature = module.answer.signature.with_instructions("Pick one.")
    reloaded = load_program(spec, {**state, "answer": program_state(module)["answer"]}, CTX)
    assert reloaded.answer.signature.instructions == "Pick one."


def test_module_not_allowlisted_is_never_imported() -> None:
    sys.modules.pop("tests.programs_pkg.elsewhere", None)
    os.environ.pop("DSPYOPS_TEST_ELSEWHERE_IMPORTED", None)
    with pytest.raises(ModuleNotAllowed) as err:
        build_module(ProgramSpec("tests.programs_pkg.elsewhere:Anything"), CTX)
    assert err.value.field == "module"
    assert "'tests.programs_pkg.elsewhere' is not allowlisted" in err.value.problem
    assert f"{MODULES}, {TOOLS}" in err.value.problem  # the allowlist, named
    assert "tests.programs_pkg.elsewhere" not in sys.modules
    assert "DSPYOPS_TEST_ELSEWHERE_IMPORTED" not in os.environ


@pytest.mark.parametrize(
    ("module", "init_args", "field", "fragment"),
    [
        (f"{MODULES}:NotAModule", "", "module", "not a dspy.Module subclass"),
        (f"{MODULES}:not_a_class", "", "module", "not a dspy.Module subclass"),
        (f"{MODULES}:Missing", "", "module", "has no attribute 'Missing'"),
        (f"{MODULES}:__builtins__", "", "module", "package.module:Class"),
        (f"{MODULES}:_private", "", "module", "package.module:Class"),
        (f"{MODULES}:TwoStep", '{"bogus":1}', "init_args", "could not be constructed: TypeError"),
        (f"{MODULES}:Exploding", "", "init_args", "constructor failed on purpose"),
    ],
)
def test_bad_user_modules_refused(module: str, init_args: str, field: str, fragment: str) -> None:
    with pytest.raises(ProgramError) as err:
        build_module(ProgramSpec(module, init_args=init_args), CTX)
    assert err.value.field == field and fragment in err.value.problem, err.value


def test_code_identity_digests_the_source() -> None:
    spec = ProgramSpec(f"{MODULES}:TwoStep")
    build_module(spec, CTX)
    identity = code_identity(spec)
    path = Path(sys.modules[MODULES].__file__ or "")
    assert identity.digests == {MODULES: hashlib.sha256(path.read_bytes()).hexdigest()}
    assert (identity.distribution, identity.version) == ("", "")  # the tests are no installed distribution


def test_code_identity_names_the_distribution_of_an_installed_package() -> None:
    from dspyops.programs.code import distribution_of

    name, version = distribution_of("dspy.predict")
    assert name == "dspy" and version == dspy.__version__


def react_pipeline(*tools: str, timeout: float = 0.0) -> ProgramSpec:
    agent = StageSpec(
        "agent", "ReAct", "question -> answer", "", (("question", "input.question"),), tuple(tools),
        max_iters=3, tool_timeout_seconds=timeout,
    )  # fmt: skip
    outputs = (("answer", "agent.answer"), ("steps", "agent.trajectory"))
    return ProgramSpec("Pipeline", pipeline=PipelineSpec((agent,), outputs))


def test_tool_exception_becomes_an_observation_the_agent_sees() -> None:
    spec = react_pipeline(f"{TOOLS}:lookup_order", f"{TOOLS}:refund")
    module = build_module(spec, CTX)
    assert [n for n, _ in module.named_predictors()] == ["agent.react", "agent.extract.predict"]
    lm = DummyLM(
        [
            {"next_thought": "refund it", "next_tool_name": "refund", "next_tool_args": {"order_id": "12"}},
            {"next_thought": "done", "next_tool_name": "finish", "next_tool_args": {}},
            {"reasoning": "refunds are closed", "answer": "cannot refund"},
        ]
    )
    with dspy.context(lm=lm):
        result = module(question="refund order 12")
    assert result.answer == "cannot refund"
    observation = result.steps["observation_0"]
    assert observation == "Tool refund failed: RuntimeError: 'refunds are closed for 12'"
    assert "Traceback" not in observation and "/" not in observation  # no server paths


def test_tool_timeout_and_async_path() -> None:
    [tool] = build_tools((f"{TOOLS}:slow",), CTX, "tools", timeout=0.05)
    assert tool(order_id="1") == "Tool slow did not answer within 0.05 seconds."
    assert asyncio.run(tool.acall(order_id="1")) == "Tool slow did not answer within 0.05 seconds."
    [ok] = build_tools((f"{TOOLS}:lookup_order",), CTX, "tools", timeout=1.0)
    assert asyncio.run(ok.acall(order_id="7")) == "order 7 shipped yesterday"
    # arguments that do not fit the function are an observation too
    assert ok(order_id=3) == (
        "Tool lookup_order failed: ValueError: \"Arg order_id is invalid: 3 is not of type 'string'\""
    )


@pytest.mark.parametrize(
    ("tool", "error", "fragment"),
    [
        (f"{TOOLS}:nope", ProgramError, "unknown tool"),
        (f"{TOOLS}:NOT_A_FUNCTION", ProgramError, "is not a function"),
        ("tests.programs_pkg.elsewhere:tool", ModuleNotAllowed, "not allowlisted"),
        ("os.path:join", ModuleNotAllowed, "not allowlisted"),
    ],
)
def test_bad_tools_refused_naming_the_stage_tool(tool: str, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as err:
        build_module(react_pipeline(tool), CTX)
    assert isinstance(err.value, ProgramError)
    assert err.value.field == "pipeline.stages[0].tools[0]" and fragment in err.value.problem


def test_step_limit_bounds_a_react_stage() -> None:
    spec = react_pipeline(f"{TOOLS}:lookup_order")
    module = build_module(spec, CTX)
    assert module.agent.max_iters == 3
    step = {"next_thought": "again", "next_tool_name": "lookup_order", "next_tool_args": {"order_id": "1"}}
    lm = DummyLM([step, step, step, {"reasoning": "r", "answer": "gave up"}])
    with dspy.context(lm=lm):
        result = module(question="where is order 1")
    assert result.answer == "gave up"
    assert sorted(k for k in result.steps if k.startswith("observation")) == [
        "observation_0",
        "observation_1",
        "observation_2",
    ]


def test_user_module_tools_from_init_args_are_allowlisted_guarded_and_digested() -> None:
    args = json.dumps(
        {"tools": [{"$tool": f"{TOOLS}:refund", "timeout": 1}, {"$tool": f"{TOOLS}:lookup_order"}]}
    )
    spec = ProgramSpec(f"{MODULES}:ToolUser", init_args=args)
    module = build_module(spec, CTX)
    assert (
        module.act.tools["refund"](order_id="9")
        == "Tool refund failed: RuntimeError: 'refunds are closed for 9'"
    )
    assert module.act.tools["refund"].timeout == 1
    assert set(code_identity(spec).digests) == {MODULES, TOOLS}
    foreign = json.dumps({"tools": [{"$tool": "tests.programs_pkg.elsewhere:tool"}]})
    with pytest.raises(ModuleNotAllowed) as err:
        build_module(ProgramSpec(f"{MODULES}:ToolUser", init_args=foreign), CTX)
    assert err.value.field == "init_args.tools[0]"
    assert "tests.programs_pkg.elsewhere" not in sys.modules


def test_a_request_cannot_raise_a_react_stages_step_limit() -> None:
    # dspy.ReAct pops an input named max_iters as the call's step limit: no stage may have one
    agent = StageSpec(
        "agent", "ReAct", "question, max_iters -> answer", "",
        (("max_iters", "input.max_iters"), ("question", "input.question")), (f"{TOOLS}:lookup_order",),
    )  # fmt: skip
    spec = ProgramSpec("Pipeline", pipeline=PipelineSpec((agent,), (("answer", "agent.answer"),)))
    with pytest.raises(ProgramError) as err:
        build_module(spec, CTX)
    assert err.value.field == "pipeline.stages[0].signature" and "max_iters" in err.value.problem


def test_an_observation_is_bounded() -> None:
    from dspyops.programs.tools import MAX_OBSERVATION_CHARS

    [tool] = build_tools((f"{TOOLS}:flood",), CTX, "tools", timeout=5)
    for answer in (tool(order_id="1"), asyncio.run(tool.acall(order_id="1"))):
        assert len(answer) < MAX_OBSERVATION_CHARS + 100
        assert answer.endswith(f"[cut: the tool answered 1000000 characters, {MAX_OBSERVATION_CHARS} kept]")
