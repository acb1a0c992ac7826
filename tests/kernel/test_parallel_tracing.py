"""A program that fans out with DSPy's own parallelism (dspy.Parallel: ParallelExecutor
deep-copies the context's usage tracker into each worker thread) under the trace collector
and under OpenTelemetry spans: both see every call in every worker, and the usage of each."""

from __future__ import annotations

import dspy
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dspyops.connections import OFFLINE_ONLY
from dspyops.lm import LMConfig, lm_from_resolved
from dspyops.spans import spanned
from dspyops.tracing import ROOT_NAME, module_names, traced

TEXTS = ("I was charged twice", "my parcel never arrived", "I cannot log in")


class FanOut(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.label = dspy.Predict("text -> label")

    def forward(self, texts: str) -> dspy.Prediction:
        jobs = [(self.label, dspy.Example(text=t).with_inputs("text")) for t in texts.split("|")]
        answers = dspy.Parallel(num_threads=3, disable_progress_bar=True)(jobs)
        return dspy.Prediction(answers="|".join(a.label for a in answers))


def fan_out() -> FanOut:
    program = FanOut()
    program.set_lm(lm_from_resolved(OFFLINE_ONLY.resolve_stored(LMConfig(), "test")))
    return program


def test_the_trace_collector_sees_every_parallel_call_and_its_usage() -> None:
    program = fan_out()
    with traced(program) as collector:
        result = program(texts="|".join(TEXTS))
    assert len(result.answers.split("|")) == len(TEXTS)
    calls = collector.calls()
    labels = [c for c in calls if c.name == "label"]
    assert len(labels) == len(TEXTS) and all(c.usage.lm_calls == 1 for c in labels)
    root = next(c for c in calls if c.name == ROOT_NAME)
    assert root.usage.lm_calls == len(TEXTS)
    assert root.usage.input_tokens == sum(c.usage.input_tokens for c in labels) > 0


def test_spans_cover_every_parallel_call_with_its_tokens() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    program = fan_out()
    with spanned(provider.get_tracer("test"), module_names(program)):
        program(texts="|".join(TEXTS))
    spans = exporter.get_finished_spans()
    lm = [s for s in spans if (s.attributes or {}).get("gen_ai.operation.name") == "chat"]
    assert len(lm) == len(TEXTS)
    tokens = [(s.attributes or {}).get("gen_ai.usage.input_tokens") for s in lm]
    assert all(isinstance(n, int) and n > 0 for n in tokens), tokens
    modules = {s.context.span_id: s for s in spans if s.name == "dspy.module label"}
    assert len(modules) == len(TEXTS)
    assert all(s.parent is not None and s.parent.span_id in modules for s in lm)
