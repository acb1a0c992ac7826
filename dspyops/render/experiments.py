"""Experiments and canaries as people read them: the per-arm results table and decision,
a canary's start and its guardrail check."""

from __future__ import annotations

from rich.table import Table

from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb


def results_table(results: gpb.ExperimentResults) -> Table:
    e = results.experiment
    table = Table(
        title=f"experiment {e.experiment_id} on {results.deployment} "
        f"({pb.MetricKind.Name(e.metric).lower()}, alpha {e.alpha:g})"
    )
    for column in (
        "version",
        "arm",
        "assigned",
        "outcomes",
        "mean",
        "95% CI",
        "lift",
        "lift CI",
        "p",
        "always-valid p",
    ):
        table.add_column(column)
    for arm in results.arms:
        control = arm.control
        table.add_row(
            arm.version,
            "control" if control else "treatment",
            str(arm.assigned),
            f"{arm.n} ({arm.excluded} out of range, left out)" if arm.excluded else str(arm.n),
            f"{arm.mean:.3f}",
            f"[{arm.ci_low:.3f}, {arm.ci_high:.3f}]",
            "-" if control else f"{arm.lift:+.3f}",
            "-" if control else f"[{arm.lift_ci_low:+.3f}, {arm.lift_ci_high:+.3f}]",
            "-" if control else f"{arm.p_value:.3g}",
            "-" if control else f"{arm.sequential_p_value:.3g}",
        )
    return table


def decision_line(results: gpb.ExperimentResults) -> str:
    return f"decision: [bold]{results.decision}[/bold] - {results.reason} (SRM p = {results.srm_p_value:.3g})"


def canary_terms(c: pb.Canary) -> str:
    """A canary's schedule and limits, in words ("" : neither, as before them)."""
    limits = [
        f"{name} <= {value:g}"
        for name, value in (
            ("error rate", c.max_error_rate),
            ("latency p95 ms", c.max_latency_p95_ms),
            ("cost per prediction USD", c.max_cost_per_prediction),
        )
        if value > 0
    ]
    period = f", {c.step_seconds / 60:g} minutes per step" if c.step_seconds else ""
    guarded = f"; guardrails: {', '.join(limits)}" if limits else ""
    return period + guarded


def canary_started_line(state: gpb.DeploymentState) -> str:
    c = state.canary
    return (
        f"  canary {c.canary_id}: {c.candidate} at {c.steps[0]:g}% against {c.baseline}, "
        f"steps {', '.join(f'{x:g}' for x in c.steps)}{canary_terms(c)}"
    )


def guardrails_table(check: pb.GuardrailCheck) -> Table:
    """Every guardrail of a canary check: the candidate's value, the baseline's, the limit."""
    table = Table(title="guardrails of the step")
    for column in ("guardrail", "candidate", "n", "baseline", "n", "limit", "verdict"):
        table.add_column(column)
    for g in check.guardrails:
        outcome = g.guardrail == "outcome"
        verdict = (
            ("worse" if outcome else "failed") if g.failed else "ok" if g.judged else f"not judged: {g.note}"
        )
        if outcome and g.judged:
            verdict += f" (p={g.p_value:.3g})"
        table.add_row(
            g.guardrail,
            f"{g.value:.4g}",
            str(g.n),
            f"{g.baseline_value:.4g}",
            str(g.baseline_n),
            f"alpha {g.threshold:g}" if outcome else f"{g.threshold:g}",
            verdict,
        )
    return table


def canary_status_line(status: gpb.CanaryStatus) -> str:
    return f"{status.deployment}: [bold]{status.action}[/bold] - {status.reason}"
