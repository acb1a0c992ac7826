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


def kind_text(e: pb.Evaluator) -> str:
    """What an evaluator scores with, and a judge's budget, in a few words."""
    if e.metric:
        return f"metric {e.metric}"
    budget = [
        text
        for text, value in (
            (f"{e.max_calls_per_hour} calls/h", e.max_calls_per_hour),
            (f"${e.max_cost_per_hour:g}/h", e.max_cost_per_hour),
        )
        if value
    ]
    return f"judge {e.judge_program}@{e.judge_version}" + (f" ({', '.join(budget)})" if budget else "")


def evaluators_table(response: gpb.ListEvaluatorsResponse) -> Table:
    """Per evaluator: its scores (source evaluator:<name>, every gateway's) and this gateway's counters."""
    table = Table(title=f"evaluators of {response.deployment} ({response.queued} queued here)")
    table.add_column("name", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    # scores: recorded ones (every gateway's); the rest: this gateway's counters
    for column in ("share", "scores", "mean", "sampled", "scored", "dropped", "over budget", "failed"):
        table.add_column(column, justify="right")
    table.add_column("judge LM calls", justify="right")
    table.add_column("judge cost", justify="right")
    for s in response.evaluators:
        e = s.evaluator
        judge = bool(e.judge_program)
        table.add_row(
            e.name,
            kind_text(e),
            f"{e.share:.0%}",
            str(s.n),
            f"{s.mean:.4g}" if s.n else "-",
            str(s.sampled),
            str(s.scored),
            str(s.dropped),
            str(s.over_budget),
            str(s.failed),
            str(s.lm_calls) if judge else "-",
            f"${s.cost_usd:.4g}" if judge else "-",
        )
    return table
