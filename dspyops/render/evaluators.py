"""A deployment's online evaluators as people read them."""

from __future__ import annotations

from rich.table import Table

from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb


def evaluator_text(e: pb.Evaluator) -> str:
    if not e.enabled:
        return f"{e.name}: removed"
    kind = f"metric {e.metric}" if e.metric else f"judge {e.judge_program}@{e.judge_version}"
    budget = [
        text
        for text, value in (
            (f"{e.max_calls_per_hour} LM calls/h", e.max_calls_per_hour),
            (f"${e.max_cost_per_hour:g}/h", e.max_cost_per_hour),
        )
        if value
    ]
    return f"{e.name}: {kind} on {e.share:.0%} of predictions" + (
        f", budget {', '.join(budget)}" if budget else ""
    )


def evaluators_table(response: gpb.ListEvaluatorsResponse) -> Table:
    table = Table(title=f"evaluators of {response.deployment} ({response.queued} queued here)")
    for column in ("evaluator", "source", "scores", "mean", "sampled", "scored", "dropped", "over budget"):
        table.add_column(column)
    table.add_column("failed")
    table.add_column("judge LM calls / cost")
    for s in response.evaluators:
        table.add_row(
            evaluator_text(s.evaluator),
            s.source,
            str(s.n),
            f"{s.mean:.4g}" if s.n else "-",
            str(s.sampled),
            str(s.scored),
            str(s.dropped),
            str(s.over_budget),
            str(s.failed),
            f"{s.lm_calls} / ${s.cost_usd:.4g}" if s.evaluator.judge_program else "-",
        )
    return table
