"""gateway_svc.statistics never raises on a summary, whatever its totals: an older log can
hold outcomes no metric allows (a binary 5, a continuous 1e300), and one such summary used
to make every later GetExperimentResults, ConcludeExperiment and canary check INTERNAL.

Property tests over arbitrary ArmSummary values: totals outside [0, n], non-finite and
huge moments, n = 0 and 1, huge n; every p-value stays in [0, 1], every interval ordered,
every decision one of the four, and an arm no outcomes could produce is named and never
compared.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_svc.statistics.analysis import analyze
from gateway_svc.statistics.fixed_horizon import fixed_horizon_p_value
from gateway_svc.statistics.guardrail import guardrail_worse
from gateway_svc.statistics.msprt import msprt_p_value
from gateway_svc.statistics.summary import CONTINUOUS_LIMIT, ArmSummary, outcome_in_range, unusable

METRICS = ("binary", "continuous")
DECISIONS = {"keep_running", "treatment_better", "control_better", "srm_alarm"}

any_float = st.floats(allow_nan=True, allow_infinity=True)
counts = st.one_of(st.integers(0, 3), st.integers(0, 10_000), st.integers(0, 2**63))
raw_summaries = st.builds(
    ArmSummary,
    n=counts,
    total=any_float,
    total_sq=st.one_of(st.floats(min_value=0.0, allow_infinity=True), st.just(math.nan)),
)
huge_values = st.lists(
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),  # up to 1.8e308
        st.sampled_from([0.0, 1.0, -1.0, 5.0, -1e9, 1e6, CONTINUOUS_LIMIT, -CONTINUOUS_LIMIT]),
    ),
    max_size=30,
)
from_values = huge_values.map(ArmSummary.from_values)
binary_like = st.integers(0, 5000).flatmap(
    lambda n: st.tuples(st.integers(-3, n + 3), st.just(n)).map(
        lambda t: ArmSummary(t[1], float(t[0]), float(abs(t[0])))
    )
)
summaries = st.one_of(raw_summaries, from_values, binary_like)


def _is_p(p: float) -> bool:
    return 0.0 <= p <= 1.0  # False for NaN


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(METRICS), summaries, summaries, st.floats(0.001, 0.5), st.booleans())
def test_two_arm_functions_never_raise(
    metric: str, control: ArmSummary, treatment: ArmSummary, alpha: float, higher: bool
) -> None:
    assert _is_p(fixed_horizon_p_value(control, treatment, metric=metric))  # type: ignore[arg-type]
    assert _is_p(msprt_p_value(control, treatment, metric=metric))  # type: ignore[arg-type]
    worse, p = guardrail_worse(
        control,
        treatment,
        metric=metric,  # type: ignore[arg-type]
        alpha=alpha,
        higher_is_better=higher,
    )
    assert _is_p(p) and worse == (p < alpha)
    if unusable(control, metric) or unusable(treatment, metric):
        assert (worse, p) == (False, 1.0)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(METRICS),
    st.lists(summaries, min_size=2, max_size=4),
    st.floats(0.001, 0.5),
    st.booleans(),
    st.integers(2, 200),
    st.one_of(st.none(), st.lists(counts, min_size=4, max_size=4)),
    st.one_of(st.none(), st.floats(0.0, 1.0)),
)
def test_analyze_never_raises(
    metric: str,
    arms: list[ArmSummary],
    alpha: float,
    sequential: bool,
    min_samples: int,
    assigned: list[int] | None,
    previous: float | None,
) -> None:
    names = [f"v{i}" for i in range(len(arms))]
    weights = {name: 1.0 / len(names) for name in names}
    result = analyze(
        dict(zip(names, arms, strict=True)),
        names[0],
        weights,
        metric=metric,  # type: ignore[arg-type]
        alpha=alpha,
        min_samples_per_arm=min_samples,
        sequential=sequential,
        previous_sequential_p=None if previous is None else dict.fromkeys(names[1:], previous),
        assignment_counts=None if assigned is None else dict(zip(names, assigned, strict=False)),
    )
    assert result.decision in DECISIONS and isinstance(result.reason, str)
    assert _is_p(result.srm_p_value)
    for arm in result.arms:
        assert not arm.ci_low > arm.ci_high
    for comparison in result.comparisons:
        assert _is_p(comparison.p_value) and _is_p(comparison.sequential_p_value)
        assert _is_p(comparison.adjusted_p_value)
    broken = [name for name, arm in zip(names, arms, strict=True) if unusable(arm, metric)]
    if broken and result.decision != "srm_alarm":
        assert result.decision == "keep_running" and result.winner is None
        assert all(name in result.reason for name in broken)
        assert all(math.isnan(a.mean) for a in result.arms if a.name in broken)


@pytest.mark.parametrize(
    ("metric", "value", "inside"),
    [
        ("binary", 0.0, True),
        ("binary", 1.0, True),
        ("binary", 5.0, False),
        ("binary", -1.0, False),
        ("binary", 0.5, False),
        ("binary", 1e6, False),
        ("binary", math.nan, False),
        ("continuous", -1e9, True),
        ("continuous", CONTINUOUS_LIMIT, True),
        ("continuous", 1e101, False),
        ("continuous", -math.inf, False),
        ("continuous", math.nan, False),
    ],
)
def test_outcome_range(metric: str, value: float, inside: bool) -> None:
    assert outcome_in_range(metric, value) is inside


def test_summaries_of_in_range_outcomes_are_usable() -> None:
    """The exclusion rule and the summary check agree: only what is left out could break it."""
    extreme = ArmSummary.from_values([CONTINUOUS_LIMIT, -CONTINUOUS_LIMIT] * 1000)
    assert unusable(extreme, "continuous") == ""
    assert unusable(ArmSummary.from_values([0, 1, 1, 0]), "binary") == ""
    assert "not a binary result" in unusable(ArmSummary.from_values([0, 1, 5]), "binary")
    assert "not finite" in unusable(ArmSummary.from_values([1e308, 1e308]), "continuous")
    worse, p = guardrail_worse(extreme, extreme.merge(ArmSummary.from_values([0.0])), metric="continuous")
    assert _is_p(p) and not worse
