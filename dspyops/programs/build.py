"""Program spec -> ``dspy.Module``, and DSPy's JSON saved state in and out (never pickle).

A version is a ``ProgramSpec`` plus the JSON state DSPy itself writes with
``module.save(path)`` (every predictor's demos, instructions and signature). Rebuilding is
``build_module(spec, ctx)`` then ``module.load_state(state)``, so plain DSPy's
``program.load("x.json")`` on an instance of the same program reads an export, and a state
plain DSPy saved registers as it is. ``ctx`` is the server's: which modules user code may
come from, and its corpora for Retrieve stages.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import dspy
from dspy.utils.saving import get_dependency_versions

from dspyops.errors import shown
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.programs.errors import ProgramError
from dspyops.programs.pipeline import PipelineModule, PipelineSpec
from dspyops.programs.spec import ProgramSpec
from dspyops.programs.stages import StageSpec
from dspyops.programs.tools import build_tools
from dspyops.programs.usermodules import build_user_module
from dspyops.programs.wrappers import build_wrapped


def build_stage(stage: StageSpec, where: str, ctx: ProgramContext) -> dspy.Module:
    if stage.kind == "Retrieve":
        if ctx.retriever is None:
            raise ProgramError(f"{where}.corpus", f"stage {stage.name!r}: this server has no corpora")
        try:
            return ctx.retriever(stage.corpus, stage.effective_k)
        except ProgramError as exc:  # an unknown corpus: name the stage's field, not the lookup's
            raise ProgramError(f"{where}.corpus", f"stage {stage.name!r}: {exc.problem}") from None
    signature = stage.signature_class()
    if stage.kind == "ChainOfThought":
        return dspy.ChainOfThought(signature)
    if stage.kind == "ReAct":
        tools = build_tools(stage.tools, ctx, f"{where}.tools", stage.effective_tool_timeout)
        return dspy.ReAct(signature, tools=tools, max_iters=stage.effective_max_iters)
    return dspy.Predict(signature)


def build_pipeline(pipeline: PipelineSpec, ctx: ProgramContext) -> PipelineModule:
    pipeline.check()  # the wiring, before anything is built (or imported)
    stages = {s.name: build_stage(s, f"pipeline.stages[{i}]", ctx) for i, s in enumerate(pipeline.stages)}
    return PipelineModule(pipeline, stages)


def build_module(spec: ProgramSpec, ctx: ProgramContext = NO_CONTEXT) -> dspy.Module:
    spec.validate()
    if spec.wrapper:  # what KNNFewShot / Ensemble built around the module (empty until loaded)
        return build_wrapped(spec, build_module(replace(spec, wrapper=""), ctx), None)
    if spec.is_pipeline:
        assert spec.pipeline is not None
        return build_pipeline(spec.pipeline, ctx)
    if spec.is_user_module:
        return build_user_module(spec.module, spec.init_kwargs(), ctx)
    sig = spec.signature_class()
    if spec.module == "ChainOfThought":
        return dspy.ChainOfThought(sig)
    return dspy.Predict(sig)


def _strip_lms(state: Any) -> Any:
    """Drop per-predictor LM settings: the LM is recorded as an LMConfig, never with its key."""
    if isinstance(state, dict):
        if "signature" in state and "lm" in state:
            state = {**state, "lm": None}
        return {k: _strip_lms(v) for k, v in state.items()}
    return state


def program_state(module: dspy.Module) -> dict[str, Any]:
    """What ``module.save("x.json")`` writes (state + DSPy's ``metadata``), minus per-predictor LMs.

    Keeping DSPy's own format means plain ``module.load(path)`` reads a saved state without
    this package.
    """
    state: dict[str, Any] = _strip_lms(module.dump_state())
    state["metadata"] = {"dependency_versions": get_dependency_versions()}
    return state


def _describe(spec: ProgramSpec) -> str:
    if spec.is_predictor:
        return f"a {spec.module} with signature {shown(spec.signature)}"
    if spec.is_pipeline:
        return "the pipeline"
    return f"a {shown(spec.module)}"


def load_state(spec: ProgramSpec, module: dspy.Module, state: dict[str, Any]) -> dspy.Module:
    """Load DSPy's JSON state into a built module, every predictor by its name."""
    if not isinstance(state, dict):
        raise ProgramError("state", "must be a JSON object as written by module.save(...json)")
    # `metadata` is save-file bookkeeping; Predict.load_state would set it as an attribute.
    body = {k: v for k, v in state.items() if k != "metadata"}
    names = [name for name, _ in module.named_parameters()]
    if not spec.is_predictor:
        missing, unknown = [n for n in names if n not in body], [k for k in body if k not in names]
        if missing or unknown:
            raise ProgramError(
                "state",
                f"does not fit {_describe(spec)}: its predictors are {shown(names)}"
                + (f"; missing {shown(missing)}" if missing else "")
                + (f"; not predictors of it {shown(unknown)}" if unknown else ""),
            )
    try:
        module.load_state(body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProgramError("state", f"does not fit {_describe(spec)}: {shown(exc)}") from exc
    return module


def load_program(spec: ProgramSpec, state: dict[str, Any], ctx: ProgramContext = NO_CONTEXT) -> dspy.Module:
    """Build the module from its spec, then load DSPy's JSON state into it. Never unpickles."""
    if not isinstance(state, dict):
        raise ProgramError("state", "must be a JSON object as written by module.save(...json)")
    if spec.wrapper:
        return _load_wrapped(spec, state, ctx)
    return load_state(spec, build_module(spec, ctx), state)


def _load_wrapped(spec: ProgramSpec, state: dict[str, Any], ctx: ProgramContext) -> dspy.Module:
    """A KNNFewShot / Ensemble program: the wrapper's state (its examples, its members, each
    in DSPy's JSON state) around fresh builds of the module the spec names."""
    body = {k: v for k, v in state.items() if k != "metadata"}
    inner = build_module(replace(spec, wrapper=""), ctx)
    try:
        return build_wrapped(spec, inner, body)
    except ProgramError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProgramError(
            "state", f"does not fit a {spec.wrapper} of {_describe(spec)}: {shown(exc)}"
        ) from exc


__all__ = ["build_module", "build_pipeline", "build_stage", "load_program", "load_state", "program_state"]
