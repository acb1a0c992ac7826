"""ReAct tools: ``package.module:function`` from allowlisted modules, guarded per call.

A tool is the user's function, imported only from a module on the server's allowlist
(``dspyops.programs.allowlist``). Each call runs in a worker thread with a timeout, and
whatever goes wrong (an exception, bad arguments, the timeout) comes back to the agent as
an observation naming the tool and the problem, never as a crash of the prediction and
never with a traceback (it would show the server's paths to the LM and the trace). A text
answer is cut at ``MAX_OBSERVATION_CHARS``: the trajectory goes into every later prompt.

A call past its timeout is abandoned, not stopped (Python cannot kill a thread): its worker
stays busy until the function returns, which is why the pool is bounded and shared.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
from collections.abc import Callable
from typing import Any, Final

import dspy

from dspyops.errors import shown
from dspyops.programs.allowlist import parse_ref, resolve
from dspyops.programs.context import ProgramContext
from dspyops.programs.errors import ProgramError

TOOL_WORKERS: Final = 16
MAX_OBSERVATION_CHARS: Final = 20_000  # what one tool answer adds to the trajectory (and every later prompt)
_POOL: Final = concurrent.futures.ThreadPoolExecutor(TOOL_WORKERS, thread_name_prefix="dspyops-tool")


def _bounded(result: Any) -> Any:
    if isinstance(result, str) and len(result) > MAX_OBSERVATION_CHARS:
        return (
            f"{result[:MAX_OBSERVATION_CHARS]}... [cut: the tool answered {len(result)} characters, "
            f"{MAX_OBSERVATION_CHARS} kept]"
        )
    return result


def _observation(name: str, exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError | concurrent.futures.TimeoutError):
        return f"Tool {name} did not answer within {timeout:g} seconds."
    return f"Tool {name} failed: {type(exc).__name__}: {shown(str(exc))}"


class GuardedTool(dspy.Tool):  # type: ignore[misc]  # dspy is untyped
    """A ``dspy.Tool`` (name, description and arguments from the function) whose calls
    time out and turn every failure into an observation."""

    # pydantic fields (dspy.Tool is a pydantic model)
    ref: str = ""
    timeout: float = 10.0

    def __init__(self, func: Callable[..., Any], ref: str, timeout: float) -> None:
        super().__init__(func)
        self.ref = ref
        self.timeout = timeout

    def _call(self, kwargs: dict[str, Any]) -> Any:
        parsed = self._validate_and_parse_args(**kwargs)
        result = self.func(**parsed)
        if inspect.isawaitable(result):  # an async tool in the sync path: run it to the end here
            result = asyncio.run(_awaited(result))
        return result

    def __call__(self, **kwargs: Any) -> Any:
        context = contextvars.copy_context()  # DSPy's settings hold in the worker too
        future = _POOL.submit(context.run, self._call, kwargs)
        try:
            return _bounded(future.result(timeout=self.timeout))
        except Exception as exc:
            return _observation(self.name, exc, self.timeout)

    async def acall(self, **kwargs: Any) -> Any:
        try:
            if inspect.iscoroutinefunction(self.func):
                parsed = self._validate_and_parse_args(**kwargs)
                return _bounded(await asyncio.wait_for(self.func(**parsed), self.timeout))
            context = contextvars.copy_context()
            loop = asyncio.get_running_loop()
            work = loop.run_in_executor(_POOL, context.run, self._call, kwargs)
            return _bounded(await asyncio.wait_for(work, self.timeout))
        except Exception as exc:
            return _observation(self.name, exc, self.timeout)


async def _awaited(result: Any) -> Any:
    return await result


def build_tool(text: str, ctx: ProgramContext, field: str, timeout: float) -> GuardedTool:
    """The tool ``text`` names, checked: an allowlisted module, an existing plain function."""
    ref = parse_ref(text, field, "function")
    func = resolve(ref, ctx, field)
    if func is None:
        raise ProgramError(field, f"unknown tool: module {ref.module!r} has no {ref.attribute!r}")
    if not inspect.isfunction(func):
        raise ProgramError(field, f"{ref} is not a function (a ReAct tool is a plain def)")
    try:
        return GuardedTool(func, str(ref), timeout)
    except Exception as exc:  # DSPy could not read its arguments (an unresolvable hint)
        raise ProgramError(field, f"{ref}: cannot describe its arguments: {shown(str(exc))}") from None


def build_tools(refs: tuple[str, ...], ctx: ProgramContext, where: str, timeout: float) -> list[GuardedTool]:
    """A ReAct stage's tools (``where``: its ``tools`` field), each named once."""
    tools: list[GuardedTool] = []
    for i, text in enumerate(refs):
        tool = build_tool(text, ctx, f"{where}[{i}]", timeout)
        if tool.name == "finish" or any(t.name == tool.name for t in tools):
            raise ProgramError(f"{where}[{i}]", f"two tools named {tool.name!r} (or 'finish', ReAct's own)")
        tools.append(tool)
    return tools


__all__ = ["MAX_OBSERVATION_CHARS", "TOOL_WORKERS", "GuardedTool", "build_tool", "build_tools"]
