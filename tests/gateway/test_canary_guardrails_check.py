"""judge_step, the pure part of a canary check: which guardrails a step has, when each is
judged, and what fails it (the servers' side is tests/gateway/test_canary_guardrails.py)."""

from __future__ import annotations

import pytest

from dspyops.state import CanaryState
from gateway_svc.canary_guardrails import describe, failed, judge_step, unjudged
from gateway_svc.drift.window import WindowSummary
from gateway_svc.statistics.guardrail import guardrail_worse
from gateway_svc.statistics.msprt import msprt_p_value
from gateway_svc.statistics.summary import ArmSummary


def canary(**limits: float) -> CanaryState:
    return CanaryState("c", "1.0.0", "1.1.0", (50.0, 100.0), 10, "binary", 0.05, **limits)  # type: ignore[arg-type]


def window(predictions: int, errors: int = 0, latency: float = 10.0, costs: int = 0) -> WindowSummary:
    answered = predictions - errors
    return WindowSummary(
        1,
        predictions=predictions,
        errors=errors,
        latencies_ms=tuple(latency + i % 5 for i in range(answered)),
        costs_usd=(0.002,) * costs,
    )


GOOD = ArmSummary.from_values([1.0] * 8 + [0.0] * 4)
BASE = ArmSummary.from_values([1.0] * 6 + [0.0] * 6)


def test_without_limits_only_the_outcome_test_is_judged_as_before() -> None:
    results = judge_step(canary(), BASE, GOOD, None)
    assert [r.guardrail for r in results] == ["outcome"]
    assert results[0].judged and not results[0].failed and results[0].n == 12 and results[0].baseline_n == 12
    short = judge_step(canary(), BASE, ArmSummary.from_values([1.0] * 9), None)
    assert unjudged(short) == short and "9 candidate and 12 baseline outcomes, 10 needed" in short[0].note


def test_each_limit_is_judged_once_it_has_enough_observations_and_fails_above_it() -> None:
    c = canary(max_error_rate=0.1, max_latency_p95_ms=50.0, max_cost_per_prediction=0.001)
    results = judge_step(c, BASE, GOOD, (window(20), window(20, errors=3, latency=60.0, costs=4)))
    by = {r.guardrail: r for r in results}
    assert list(by) == ["outcome", "error_rate", "latency_p95", "cost_per_prediction"]
    errors, latency, cost = by["error_rate"], by["latency_p95"], by["cost_per_prediction"]
    assert errors.judged and errors.failed and errors.value == pytest.approx(0.15) and errors.n == 20
    assert errors.baseline_value == 0.0 and errors.baseline_n == 20
    assert latency.judged and latency.failed and latency.value > 60.0 and latency.n == 17
    assert not cost.judged and "4 of 10 predictions with a kept trace" in cost.note
    assert [r.guardrail for r in failed(results)] == ["error_rate", "latency_p95"]
    assert "over its limit" in describe(errors) and "not judged yet" in describe(cost)


def test_a_value_at_its_limit_passes() -> None:
    c = canary(max_error_rate=0.1)
    at = judge_step(c, BASE, GOOD, (window(10), window(10, errors=1)))
    assert at[1].judged and not at[1].failed and at[1].value == pytest.approx(0.1)


def test_with_a_monitoring_period_the_outcome_test_is_the_always_valid_one() -> None:
    """Checked at every tick of the period: the mSPRT p-value, and worse only below the baseline."""
    worse = ArmSummary.from_values([1.0] * 20 + [0.0] * 80)
    base = ArmSummary.from_values([1.0] * 80 + [0.0] * 20)
    timed = canary(step_seconds=3600)
    results = judge_step(timed, base, worse, None)
    assert results[0].p_value == msprt_p_value(base, worse, metric="binary") <= 0.05
    assert results[0].failed
    # the same difference the other way round is significant too, and not a failure
    assert not judge_step(timed, worse, base, None)[0].failed
    # without a period, the fixed-horizon one-sided test, as before
    assert (
        judge_step(canary(), base, worse, None)[0].p_value == guardrail_worse(base, worse, metric="binary")[1]
    )
