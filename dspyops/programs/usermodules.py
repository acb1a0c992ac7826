"""The user's own ``dspy.Module`` class, ``package.module:Class`` from an allowlisted module.

The module is imported only when it is on the server's allowlist (``--program-modules``);
the class is one attribute of it and must subclass ``dspy.Module``. ``init_args`` (a JSON
object) is passed to the constructor as keyword arguments; a value
``{"$retriever": {"corpus": NAME, "k": K}}`` is replaced by the server's retriever over that
registered corpus (``ProgramContext.retriever``), so a user module searches the same index
the pipelines do; a value ``{"$tool": "package.module:function"}`` (optionally with
``"timeout"`` seconds) becomes that ReAct tool from an allowlisted module, guarded like a
ReAct stage's (``dspyops.programs.tools``). The program's inputs are ``forward``'s named
arguments; its outputs are what the returned ``dspy.Prediction`` carries (the examples'
other fields).
"""

from __future__ import annotations

import inspect
from typing import Any, Final

import dspy

from dspyops.errors import shown
from dspyops.programs.allowlist import parse_ref, resolve
from dspyops.programs.context import ProgramContext
from dspyops.programs.errors import ProgramError
from dspyops.programs.stages import DEFAULT_TOOL_TIMEOUT, MAX_TOOL_TIMEOUT
from dspyops.programs.tools import build_tool

RETRIEVER_KEY: Final = "$retriever"
TOOL_KEY: Final = "$tool"


def user_class(module: str, ctx: ProgramContext) -> type[dspy.Module]:
    """The class ``module`` names (``package.module:Class``), allowlisted and a dspy.Module."""
    ref = parse_ref(module, "module", "class")
    found = resolve(ref, ctx, "module")
    if found is None:
        raise ProgramError("module", f"module {ref.module!r} has no attribute {ref.attribute!r}")
    if not (inspect.isclass(found) and issubclass(found, dspy.Module)):
        raise ProgramError("module", f"{ref} is not a dspy.Module subclass (it is a {type(found).__name__})")
    return found


def tool_refs(value: Any) -> list[str]:
    """The ``$tool`` references in init_args (to record their code), nothing imported."""
    if isinstance(value, dict):
        if TOOL_KEY in value and isinstance(value[TOOL_KEY], str):
            return [value[TOOL_KEY]]
        return [ref for v in value.values() for ref in tool_refs(v)]
    if isinstance(value, list):
        return [ref for v in value for ref in tool_refs(v)]
    return []


def _tool(value: dict[str, Any], ctx: ProgramContext, where: str) -> Any:
    if set(value) - {TOOL_KEY, "timeout"} or not isinstance(value[TOOL_KEY], str):
        raise ProgramError(
            where, f'{TOOL_KEY} takes {{"{TOOL_KEY}": "package.module:function", "timeout": S}}'
        )
    timeout = value.get("timeout", DEFAULT_TOOL_TIMEOUT)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TOOL_TIMEOUT
    ):
        raise ProgramError(
            f"{where}.timeout", f"must be in (0, {MAX_TOOL_TIMEOUT:g}] seconds, got {shown(timeout)}"
        )
    return build_tool(value[TOOL_KEY], ctx, where, float(timeout))


def _with_retrievers(value: Any, ctx: ProgramContext, where: str) -> Any:
    if isinstance(value, dict):
        if TOOL_KEY in value:
            return _tool(value, ctx, where)
        if set(value) == {RETRIEVER_KEY}:
            settings = value[RETRIEVER_KEY]
            if not isinstance(settings, dict) or not isinstance(settings.get("corpus"), str):
                raise ProgramError(where, f'{RETRIEVER_KEY} takes {{"corpus": NAME, "k": K}}')
            k = settings.get("k", 3)
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100:
                raise ProgramError(f"{where}.k", f"must be an integer in [1, 100], got {shown(k)}")
            if ctx.retriever is None:
                raise ProgramError(where, "this server has no corpora for a retriever")
            try:
                return ctx.retriever(settings["corpus"], k)
            except ProgramError as exc:  # an unknown corpus: name the init_args key, not the lookup
                raise ProgramError(f"{where}.corpus", exc.problem) from None
        return {k: _with_retrievers(v, ctx, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_with_retrievers(v, ctx, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def build_user_module(module: str, init_kwargs: dict[str, Any], ctx: ProgramContext) -> dspy.Module:
    cls = user_class(module, ctx)
    kwargs = {k: _with_retrievers(v, ctx, f"init_args.{k}") for k, v in init_kwargs.items()}
    try:
        instance = cls(**kwargs)
    except Exception as exc:  # the user's constructor: its failure is the request's problem
        raise ProgramError(
            "init_args", f"{module} could not be constructed: {type(exc).__name__}: {shown(str(exc))}"
        ) from None
    if not isinstance(instance, dspy.Module):  # a __new__ that returns something else
        raise ProgramError("module", f"{module}() did not return a dspy.Module")
    return instance


def forward_inputs(module: dspy.Module) -> list[str]:
    """``forward``'s named arguments (``self`` and ``*args``/``**kwargs`` aside)."""
    params = inspect.signature(type(module).forward).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.kind in kinds and p.name != "self"]


__all__ = ["RETRIEVER_KEY", "TOOL_KEY", "build_user_module", "forward_inputs", "tool_refs", "user_class"]
