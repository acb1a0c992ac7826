"""Traces: every module call of one call of a program, collected through DSPy's callbacks.

`traced(program)` installs a `TraceCollector` for the calls inside its block, through
`dspy.context(callbacks=[...], usage_tracker=...)`: a context variable, so the collector sees
only the calls of the task (or thread) that opened the block, also on the async path
(`acall`), and concurrent requests never share one. Outside such a block DSPy runs with no
callback of ours: a call that asks for no trace pays nothing for tracing.

Per module call (`pb.ModuleCall`): its name in the program (the attribute path DSPy's
`named_sub_modules` gives, without its "self." prefix: `classify`, `analyze.predict`; the
program itself is `self`, as `named_predictors` names a lone Predict), its DSPy class, its
inputs and outputs, latency, LM usage (every LM call made inside it, nested calls included),
a ReAct's trajectory (JSON) and an error. The LM calls are tied to the module calls by DSPy's
active call id: a module call's id is active while its LM calls start, and an LM call's own id
while DSPy reports its usage to the context's usage tracker, which the collector is too
(forwarding to the tracker that was there before, if any).

Values are text (a str as it is, anything else as JSON), scrubbed (`dspyops.scrub`) and cut
so a trace cannot blow up a reply or a record: each value to `VALUE_CHARS`, a trajectory to
`TRAJECTORY_CHARS`, an error to `ERROR_CHARS`, `MAX_FIELDS` fields per side of a call, and
the whole trace to `MAX_CALLS` calls and `TRACE_CHARS` characters of values; a trace cut
short ends with a call named `CUT_NAME` whose error says how many calls were left out.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import dspy
from dspy.utils import callback_context
from dspy.utils.callback import BaseCallback
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError

from dspyops.proto import events_pb2 as pb
from dspyops.scrub import scrub

VALUE_CHARS: Final = 2000  # one input or output value
TRAJECTORY_CHARS: Final = 8000  # a ReAct call's steps, as JSON
ERROR_CHARS: Final = 500
MAX_FIELDS: Final = 32  # per side (inputs, outputs) of one call
MAX_CALLS: Final = 100
TRACE_CHARS: Final = 200_000  # all values of one trace together
CUT_NAME: Final = "(cut)"
ROOT_NAME: Final = "self"
CUT_MARK: Final = "…"

# arguments Predict takes besides its signature's fields: settings, not data
_PREDICT_SETTINGS: Final = frozenset({"signature", "demos", "config", "lm", "new_signature"})


def module_names(program: dspy.Module) -> dict[int, str]:
    """id(module) -> its name in `program` (attribute path; the program itself: "self")."""
    return {
        id(module): ROOT_NAME if name == ROOT_NAME else name.removeprefix(f"{ROOT_NAME}.")
        for name, module in program.named_sub_modules()
    }


def as_text(value: Any, limit: int = VALUE_CHARS) -> str:
    """A value as trace text: a str as it is, anything else as JSON; scrubbed, then cut
    (scrubbing first: a cut could leave half a key the scrubber no longer recognises)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return cut(scrub(text), limit)


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(CUT_MARK)] + CUT_MARK


@dataclass(slots=True)
class _Call:
    """A module call while it runs, and after."""

    name: str
    module: str
    parent: str | None  # the enclosing module call's id (None: the outermost)
    inputs: dict[str, Any]
    started: float
    outputs: dict[str, Any] = field(default_factory=dict)
    trajectory: Any = None
    error: str = ""
    latency_ms: float = 0.0
    lm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class TraceCollector(BaseCallback):  # type: ignore[misc]  # dspy is untyped
    """DSPy callback and usage tracker that records the module calls of one program call.

    Handlers run on whichever thread DSPy calls them from (worker threads of a
    `dspy.Parallel` inside a module too), hence the lock; each does a few dict operations."""

    def __init__(self, names: Mapping[int, str], usage_tracker: Any = None) -> None:
        super().__init__()
        self._names = names
        self._usage_tracker = usage_tracker  # the context's tracker before ours, fed on
        self._lock = threading.Lock()
        self._calls: dict[str, _Call] = {}  # call id -> call, in start order
        self._lm_parents: dict[str, str | None] = {}  # LM call id -> the module call it is in

    # ------------------------------------------------------------------ DSPy callbacks

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        arguments = dict(inputs.get("kwargs") or {})
        for i, value in enumerate(inputs.get("args") or ()):
            arguments[f"args[{i}]"] = value
        if isinstance(instance, dspy.Predict):
            arguments = {k: v for k, v in arguments.items() if k not in _PREDICT_SETTINGS}
        call = _Call(
            name=self._names.get(id(instance), ""),
            module=type(instance).__name__,
            parent=callback_context.ACTIVE_CALL_ID.get(),
            inputs=arguments,
            started=time.perf_counter(),
        )
        with self._lock:
            self._calls[call_id] = call

    def on_module_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        ended = time.perf_counter()
        with self._lock:
            call = self._calls.get(call_id)
        if call is None:
            return
        call.latency_ms = (ended - call.started) * 1000
        if exception is not None:
            call.error = cut(scrub(f"{type(exception).__name__}: {exception}"), ERROR_CHARS)
            return
        values = _output_values(outputs)
        if call.module == "ReAct" and isinstance(values.get("trajectory"), dict):
            call.trajectory = values.pop("trajectory")
        call.outputs = values

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        parent = callback_context.ACTIVE_CALL_ID.get()
        with self._lock:
            self._lm_parents[call_id] = parent
            for call in self._chain(parent):
                call.lm_calls += 1

    # ------------------------------------------------------------------ DSPy usage tracker

    def __deepcopy__(self, memo: dict[int, Any]) -> TraceCollector:
        # DSPy's ParallelExecutor deep-copies the context's usage tracker into each worker
        # thread: every worker must report to this one (a copy would also fail on the lock)
        return self

    def add_usage(self, lm: str, usage_entry: dict[str, Any]) -> None:
        """DSPy reports an LM call's usage while that call's id is active."""
        if self._usage_tracker is not None:
            self._usage_tracker.add_usage(lm, usage_entry)
        active = callback_context.ACTIVE_CALL_ID.get()
        prompt, completion, cost = usage_numbers(usage_entry)
        with self._lock:
            owner = self._lm_parents.get(active, active) if active is not None else None
            for call in self._chain(owner):
                call.input_tokens += prompt
                call.output_tokens += completion
                call.cost_usd += cost

    def _chain(self, call_id: str | None) -> Iterator[_Call]:
        """The module call `call_id` and every call enclosing it (caller holds the lock)."""
        seen = 0
        while call_id is not None and seen <= len(self._calls):
            call = self._calls.get(call_id)
            if call is None:
                return
            yield call
            call_id, seen = call.parent, seen + 1

    # ------------------------------------------------------------------ the trace

    def calls(self) -> list[pb.ModuleCall]:
        """The module calls, in the order they started, as text within the limits."""
        with self._lock:
            recorded = list(self._calls.values())
        out: list[pb.ModuleCall] = []
        budget = TRACE_CHARS
        for index, call in enumerate(recorded):
            if index >= MAX_CALLS or budget <= 0:
                out.append(
                    pb.ModuleCall(
                        name=CUT_NAME,
                        error=f"{len(recorded) - index} more module calls left out (trace limits)",
                    )
                )
                break
            message = _message(call)
            budget -= sum(len(v) for v in (*message.inputs.values(), *message.outputs.values()))
            budget -= len(message.trajectory)
            out.append(message)
        return out


def _message(call: _Call) -> pb.ModuleCall:
    message = pb.ModuleCall(
        name=call.name,
        module=call.module,
        inputs=_texts(call.inputs),
        outputs=_texts(call.outputs),
        latency_ms=call.latency_ms,
        usage=pb.Usage(
            lm_calls=call.lm_calls,
            input_tokens=call.input_tokens,
            output_tokens=call.output_tokens,
            cost_usd=call.cost_usd,
        ),
        error=call.error,
    )
    if call.trajectory is not None:
        message.trajectory = as_text(call.trajectory, TRAJECTORY_CHARS)
    return message


def _texts(values: Mapping[str, Any]) -> dict[str, str]:
    return {cut(str(k), 100): as_text(v) for k, v in list(values.items())[:MAX_FIELDS]}


def _output_values(outputs: Any) -> dict[str, Any]:
    if isinstance(outputs, dspy.Prediction):
        return dict(outputs.items())
    if isinstance(outputs, dict):
        return dict(outputs)
    return {} if outputs is None else {"output": outputs}


def usage_numbers(usage_entry: Mapping[str, Any]) -> tuple[int, int, float]:
    """(input tokens, output tokens, reported cost in USD) of one DSPy usage entry; a field
    that is missing or no number counts as 0."""
    return (
        _count(usage_entry.get("prompt_tokens")),
        _count(usage_entry.get("completion_tokens")),
        _cost(usage_entry.get("cost")),
    )


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _cost(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value and value >= 0:
        return float(value)
    return 0.0


@contextmanager
def traced(program: dspy.Module, names: Mapping[int, str] | None = None) -> Iterator[TraceCollector]:
    """Collect the module calls of `program` made inside the block (this task or thread
    only). `names`: `module_names(program)`, when the caller keeps it."""
    collector = TraceCollector(
        names if names is not None else module_names(program), dspy.settings.usage_tracker
    )
    with dspy.context(callbacks=[*dspy.settings.callbacks, collector], usage_tracker=collector):
        yield collector


def keep_fields(calls: Iterable[pb.ModuleCall], fields: Iterable[str]) -> list[pb.ModuleCall]:
    """The trace with only `fields`' values (a capture policy's allowlist): other inputs and
    outputs are left out, and so are trajectories (a ReAct's steps are no field)."""
    allowed = frozenset(fields)
    kept: list[pb.ModuleCall] = []
    for call in calls:
        copy = pb.ModuleCall()
        copy.CopyFrom(call)
        copy.trajectory = ""
        for side in (copy.inputs, copy.outputs):
            for key in [k for k in side if k not in allowed]:
                del side[key]
        kept.append(copy)
    return kept


def trace_json(calls: Iterable[pb.ModuleCall]) -> str:
    """A trace as a prediction record keeps it: a JSON array of ModuleCall objects (the
    proto's JSON mapping, field names as in the .proto)."""
    return json.dumps([MessageToDict(c, preserving_proto_field_name=True) for c in calls], ensure_ascii=False)


def trace_from_json(text: str) -> list[pb.ModuleCall]:
    """A kept trace back as messages ([] for none); ValueError for text that is not one."""
    if not text:
        return []
    try:
        items = json.loads(text)
        if not isinstance(items, list):
            raise ValueError("a kept trace is a JSON array")
        return [ParseDict(item, pb.ModuleCall()) for item in items]
    except (TypeError, ParseError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a kept trace: {exc}") from None
