"""OpenTelemetry spans of one program call: a span per module call and, following the GenAI
semantic conventions, a span per LM call (gen_ai.operation.name "chat", gen_ai.provider.name,
gen_ai.request.model, gen_ai.usage.input_tokens / output_tokens).

Beside `dspyops.tracing` (which keeps module calls as records), through the same DSPy
callbacks and the same usage-tracker hook: DSPy reports an LM call's usage while that call's
id is active, before its end callback, so the tokens land on the open LM span. Prompt and
completion text go on LM spans only with `content` (a server's --trace-content), scrubbed and
cut; by default a span carries no text of a request. Outside `spanned` nothing is installed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

import dspy
from dspy.utils import callback_context
from dspy.utils.callback import BaseCallback
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer

from dspyops.tracing import as_text, cut

CONTENT_CHARS: Final = 4000  # one prompt or completion on a span, with --trace-content
MODULE_SPAN: Final = "dspy.module"
OPERATION: Final = "chat"


class SpanCallback(BaseCallback):  # type: ignore[misc]  # dspy is untyped
    """DSPy callback and usage tracker that turns module and LM calls into spans, parented
    by DSPy's active call id (the enclosing call's span), else the context it was opened in."""

    def __init__(
        self, tracer: Tracer, names: Mapping[int, str], usage_tracker: Any = None, content: bool = False
    ) -> None:
        super().__init__()
        self._tracer = tracer
        self._names = names
        self._usage_tracker = usage_tracker
        self._content = content
        self._root = otel_context.get_current()  # the RPC's span: the parent of the outermost call
        self._lock = threading.Lock()
        self._spans: dict[str, Span] = {}

    def _start(self, call_id: str, name: str, attributes: dict[str, Any]) -> None:
        parent_id = callback_context.ACTIVE_CALL_ID.get()
        with self._lock:
            parent = self._spans.get(parent_id) if parent_id is not None else None
        context = trace.set_span_in_context(parent, self._root) if parent is not None else self._root
        span = self._tracer.start_span(name, context=context, attributes=attributes)
        with self._lock:
            self._spans[call_id] = span

    def _end(self, call_id: str, exception: BaseException | None) -> Span | None:
        with self._lock:
            span = self._spans.pop(call_id, None)
        if span is not None and exception is not None:
            span.set_status(Status(StatusCode.ERROR, cut(as_text(type(exception).__name__), 100)))
        return span

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        name = self._names.get(id(instance), "")
        attributes = {"dspyops.module.name": name, "dspyops.module.class": type(instance).__name__}
        self._start(call_id, f"{MODULE_SPAN} {name}".strip(), attributes)

    def on_module_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        span = self._end(call_id, exception)
        if span is not None:
            span.end()

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        model = str(getattr(instance, "model", "") or "")
        provider = model.split("/", 1)[0] if "/" in model else getattr(instance, "provider_name", "") or model
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.provider.name": str(provider),
            "gen_ai.request.model": model,
        }
        if self._content:
            prompt = inputs.get("messages") or inputs.get("prompt") or ""
            attributes["gen_ai.input.messages"] = as_text(prompt, CONTENT_CHARS)
        self._start(call_id, f"{OPERATION} {model}".strip(), attributes)

    def on_lm_end(self, call_id: str, outputs: Any | None, exception: BaseException | None = None) -> None:
        span = self._end(call_id, exception)
        if span is None:
            return
        if self._content and outputs is not None:
            span.set_attribute("gen_ai.output.messages", as_text(outputs, CONTENT_CHARS))
        span.end()

    def __deepcopy__(self, memo: dict[int, Any]) -> SpanCallback:
        # DSPy's ParallelExecutor deep-copies the context's usage tracker into each worker
        # thread: every worker must report to this one (a copy would also fail on the lock)
        return self

    def add_usage(self, lm: str, usage_entry: dict[str, Any]) -> None:
        """DSPy reports an LM call's usage while that call's id is active: onto its open span."""
        if self._usage_tracker is not None:
            self._usage_tracker.add_usage(lm, usage_entry)
        active = callback_context.ACTIVE_CALL_ID.get()
        with self._lock:
            span = self._spans.get(active) if active is not None else None
        if span is None:
            return
        for key, attribute in (
            ("prompt_tokens", "gen_ai.usage.input_tokens"),
            ("completion_tokens", "gen_ai.usage.output_tokens"),
        ):
            value = usage_entry.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                span.set_attribute(attribute, value)


@contextmanager
def spanned(tracer: Tracer, names: Mapping[int, str], content: bool = False) -> Iterator[None]:
    """Spans for the module and LM calls made inside the block (this task or thread only);
    nothing installed for a no-op tracer (no provider: tracing off)."""
    if isinstance(tracer, trace.NoOpTracer):
        yield
        return
    callback = SpanCallback(tracer, names, dspy.settings.usage_tracker, content)
    with dspy.context(callbacks=[*dspy.settings.callbacks, callback], usage_tracker=callback):
        yield
