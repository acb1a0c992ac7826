"""A canary step judged on every guardrail, a pure function: the outcome test against the
baseline arm, and the candidate's error rate, latency p95 and cost per prediction against
their limits.

The outcome guardrail is GrowthBook's comparison with control: a one-sided test of "the
candidate is worse than the baseline" on the step's outcomes (statistics.guardrail). The
other three are absolute limits on the candidate's own predictions in the step, the same
quantities and units as the drift monitor's thresholds (gateway_svc.drift), so one service
level serves both. Absolute rather than relative to the baseline arm because a baseline with
no errors, or the free offline model's cost of 0, leaves a relative limit undefined (any
error, any cost would be "infinitely worse"), and because the CLI's --max-* flags read as
limits; the baseline's value in the same step is still reported beside each one, so the
record shows the comparison. Each guardrail is judged once it has `min_samples_per_step`
observations (the outcome test: in both arms); before that it says why not. A step with a
monitoring period is checked again and again while it lasts, so its outcome test is the
always-valid mSPRT (statistics.msprt); a step that ends on its outcomes is decided at its
first check with enough of them, by the fixed-horizon test as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dspyops.proto import events_pb2 as pb
from dspyops.state import CanaryState
from gateway_svc.drift.window import WindowSummary
from gateway_svc.statistics.guardrail import guardrail_worse
from gateway_svc.statistics.msprt import msprt_p_value
from gateway_svc.statistics.summary import ArmSummary

OUTCOME = "outcome"


def has_thresholds(canary: CanaryState) -> bool:
    return any(limit > 0 for limit in _limits(canary).values())


def judge_step(
    canary: CanaryState,
    baseline: ArmSummary,
    candidate: ArmSummary,
    windows: tuple[WindowSummary, WindowSummary] | None,
) -> list[pb.GuardrailResult]:
    """Every guardrail of the step: the outcome test first (on the arms' outcome summaries),
    then each limit that is set (on the baseline's and the candidate's step `windows`)."""
    need = canary.min_samples_per_step
    outcome = pb.GuardrailResult(
        guardrail=OUTCOME,
        value=candidate.mean,
        threshold=canary.alpha,
        n=candidate.n,
        baseline_value=baseline.mean,
        baseline_n=baseline.n,
        p_value=1.0,
    )
    if min(baseline.n, candidate.n) < need:
        outcome.note = f"{candidate.n} candidate and {baseline.n} baseline outcomes, {need} needed in each"
    elif canary.step_seconds:
        # looked at on every check over the period: the always-valid p-value, so checking
        # often does not inflate false rollbacks (GrowthBook's safe rollouts test
        # sequentially too); worse means significant and below the baseline
        p_value = msprt_p_value(baseline, candidate, metric=canary.metric)  # type: ignore[arg-type]
        outcome.p_value, outcome.judged = p_value, True
        outcome.failed = p_value <= canary.alpha and candidate.mean < baseline.mean
    else:  # decided at the first check with enough outcomes: the fixed-horizon one-sided test
        worse, p_value = guardrail_worse(baseline, candidate, metric=canary.metric, alpha=canary.alpha)  # type: ignore[arg-type]
        outcome.p_value, outcome.judged, outcome.failed = p_value, True, worse
    results = [outcome]
    if windows is None:
        return results
    base_window, cand_window = windows
    for name, limit in _limits(canary).items():
        if limit <= 0:
            continue
        value, n, why = _measure(name, cand_window)
        base_value, base_n, _ = _measure(name, base_window)
        result = pb.GuardrailResult(
            guardrail=name, value=value, threshold=limit, n=n, baseline_value=base_value, baseline_n=base_n
        )
        if n < need:
            result.note = f"{n} of {need} {why}"
        else:
            result.judged, result.failed = True, value > limit
        results.append(result)
    return results


def failed(results: Sequence[pb.GuardrailResult]) -> list[pb.GuardrailResult]:
    return [r for r in results if r.failed]


def unjudged(results: Sequence[pb.GuardrailResult]) -> list[pb.GuardrailResult]:
    return [r for r in results if not r.judged]


def describe(result: pb.GuardrailResult) -> str:
    """One guardrail in words, for reasons and `canary check`."""
    if result.guardrail == OUTCOME:
        value = (
            f"{result.value:.3f} (n={result.n}) vs baseline {result.baseline_value:.3f} "
            f"(n={result.baseline_n}), p={result.p_value:.3g}"
        )
        verdict = f"worse (p < {result.threshold:g})" if result.failed else "not worse"
    else:
        value = (
            f"{result.value:.4g} (n={result.n}, baseline {result.baseline_value:.4g}), "
            f"limit {result.threshold:g}"
        )
        verdict = "over its limit" if result.failed else "within"
    if not result.judged:
        return f"{result.guardrail}: not judged yet ({result.note})"
    return f"{result.guardrail}: {verdict}: {value}"


def _limits(canary: CanaryState) -> dict[str, float]:
    return {
        "error_rate": canary.max_error_rate,
        "latency_p95": canary.max_latency_p95_ms,
        "cost_per_prediction": canary.max_cost_per_prediction,
    }


def _measure(name: str, window: WindowSummary) -> tuple[float, int, str]:
    """(value, observations, what the observations are) of one limit's quantity."""
    if name == "error_rate":
        n = window.predictions
        return (window.errors / n if n else 0.0), n, "predictions"
    if name == "latency_p95":
        n = len(window.latencies_ms)
        return (float(np.quantile(window.latencies_ms, 0.95)) if n else 0.0), n, "answered predictions"
    n = len(window.costs_usd)
    return (float(np.mean(window.costs_usd)) if n else 0.0), n, "predictions with a kept trace"
