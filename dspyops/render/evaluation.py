"""Evaluations as people read them: a report (per class, per example), a comparison."""

from __future__ import annotations

import json

from rich.table import Table

from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.render.console import console


def print_report(r: pb.EvaluationReport) -> None:
    what = f"{r.program} {r.version}" if r.program else "spec + state"
    console.print(
        f"{what}: {r.metric} {r.score:.4f} on {r.examples} examples (accuracy {r.accuracy:.4f}, "
        f"{r.errors} errors), latency p50 {r.latency_p50_ms:.1f} ms p95 {r.latency_p95_ms:.1f} ms, "
        f"{r.usage.lm_calls} LM calls, {r.usage.input_tokens + r.usage.output_tokens} tokens"
        + (f", ${r.usage.cost_usd:.4f}" if r.usage.cost_usd else "")
    )
    if r.per_class:
        table = Table(
            title=f"per class (macro P {r.macro_precision:.3f} R {r.macro_recall:.3f} F1 {r.macro_f1:.3f})"
        )
        for column in ("label", "precision", "recall", "f1", "support"):
            table.add_column(column)
        for c in r.per_class:
            table.add_row(c.label, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", str(c.support))
        console.print(table)
    if r.results:
        table = Table(title="examples")
        for column in ("inputs", "expected", "predicted", "score", "error"):
            table.add_column(column)
        for x in r.results:
            table.add_row(
                json.dumps(dict(x.inputs)),
                json.dumps(dict(x.expected)),
                json.dumps(dict(x.predicted)),
                f"{x.score:.3f}",
                x.error,
            )
        console.print(table)


def progress_line(p: opb.EvaluationProgress) -> str:
    return f"{p.done}/{p.total} running score {p.running_score:.3f}"


def comparison_line(program: str, result: opb.VersionComparison) -> str:
    return (
        f"{program} {result.a}: {result.score_a:.4f}  vs  {result.b}: {result.score_b:.4f} on "
        f"{result.examples} examples; {result.test} p = {result.p_value:.4g} "
        f"(only a: {result.a_only}, only b: {result.b_only}) -> {result.verdict}"
    )
