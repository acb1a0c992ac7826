"""The EvaluationReport of a run: score, accuracy, latency percentiles, usage, errors, and
per-class metrics.

Per-class metrics (one output field): labels are compared after collapsing whitespace and
case folding (the same normalisation as ``exact_match``); macro averages are taken over
every label seen as expected or predicted, with 0 for an undefined ratio (scikit-learn's
``average="macro", zero_division=0``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from dspyops.datasets import dataset_digest
from dspyops.proto import events_pb2 as pb
from optimizer_svc.evaluation.plan import EvaluationPlan
from optimizer_svc.evaluation.run import RunResult


def _label(text: str) -> str:
    return " ".join(text.split()).casefold()


def class_metrics(expected: Sequence[str], predicted: Sequence[str | None]) -> list[pb.ClassMetrics]:
    """Per-label precision, recall, F1 and support; a None prediction (an error) only misses."""
    truth = [_label(e) for e in expected]
    guesses = [None if p is None else _label(p) for p in predicted]
    labels = sorted(set(truth) | {g for g in guesses if g is not None})
    result = []
    for label in labels:
        tp = sum(1 for t, g in zip(truth, guesses, strict=True) if t == label and g == label)
        predicted_n = sum(1 for g in guesses if g == label)
        support = sum(1 for t in truth if t == label)
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result.append(
            pb.ClassMetrics(label=label, precision=precision, recall=recall, f1=f1, support=support)
        )
    return result


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def build_report(plan: EvaluationPlan, run: RunResult, *, include_results: bool) -> pb.EvaluationReport:
    outcomes = run.outcomes
    n = len(outcomes)
    scores = [o.score for o in outcomes]
    report = pb.EvaluationReport(
        program=plan.target.program,
        version=plan.target.version,
        metric=plan.metric_name,
        dataset_digest=dataset_digest(plan.dataset),
        examples=n,
        score=sum(scores) / n if n else 0.0,
        accuracy=sum(1 for s in scores if s >= 1.0) / n if n else 0.0,
        latency_p50_ms=percentile([o.latency_ms for o in outcomes], 50),
        latency_p95_ms=percentile([o.latency_ms for o in outcomes], 95),
        usage=run.usage,
        errors=sum(1 for o in outcomes if o.error),
    )
    report.stages.extend(
        pb.StageReport(
            name=name,
            calls=len(stage.latencies_ms),
            latency_p50_ms=percentile(stage.latencies_ms, 50),
            latency_p95_ms=percentile(stage.latencies_ms, 95),
            usage=stage.usage(),
        )
        for name, stage in run.stages
    )
    outputs = plan.target.spec.output_fields()
    if len(outputs) == 1 and n:
        key = outputs[0]
        per_class = class_metrics(
            [o.expected.get(key, "") for o in outcomes], [o.predicted.get(key) for o in outcomes]
        )
        report.per_class.extend(per_class)
        if per_class:
            report.macro_precision = sum(c.precision for c in per_class) / len(per_class)
            report.macro_recall = sum(c.recall for c in per_class) / len(per_class)
            report.macro_f1 = sum(c.f1 for c in per_class) / len(per_class)
    if include_results:
        report.results.extend(
            pb.ExampleResult(
                inputs=o.inputs,
                expected=o.expected,
                predicted=o.predicted,
                score=o.score,
                error=o.error,
                latency_ms=o.latency_ms,
            )
            for o in outcomes
        )
    return report
