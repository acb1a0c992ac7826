"""gateway_svc.statistics against references (scipy, statsmodels when present, numerical
integration) and against simulation: A/A runs keep the false-positive rate at alpha, both
at a fixed horizon and with peeking every 100 samples, while naive peeking does not."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats
from statsmodels.stats import proportion

from gateway_svc.statistics.analysis import analyze, holm_adjust
from gateway_svc.statistics.fixed_horizon import two_proportion_z_test, welch_t_test
from gateway_svc.statistics.guardrail import guardrail_worse
from gateway_svc.statistics.msprt import DEFAULT_MIXING_EFFECT_SIZE, msprt_p_value, update_always_valid
from gateway_svc.statistics.srm import srm_p_value
from gateway_svc.statistics.summary import ArmSummary

ALPHA = 0.05


def binom_upper(runs: int, rate: float) -> int:
    """Largest false-positive count still consistent with ``rate`` (one-sided, 0.1% level)."""
    return int(stats.binom.ppf(0.999, runs, rate))


# ----------------------------------------------------------------- fixed references


@pytest.mark.parametrize(
    ("xc", "nc", "xt", "nt"),
    [(480, 1000, 520, 1000), (30, 200, 45, 260), (1, 10, 9, 10), (5000, 10000, 5100, 10050)],
)
def test_z_test_matches_hand_computation_with_scipy_norm(xc: int, nc: int, xt: int, nt: int) -> None:
    pooled = (xc + xt) / (nc + nt)
    z = (xt / nt - xc / nc) / math.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nt))
    expected = 2 * stats.norm.sf(abs(z))
    got = two_proportion_z_test(ArmSummary.from_counts(xc, nc), ArmSummary.from_counts(xt, nt))
    assert got == pytest.approx(expected, rel=1e-12)


def test_z_test_matches_statsmodels_proportions_ztest() -> None:
    for xc, nc, xt, nt in [(480, 1000, 520, 1000), (30, 200, 45, 260), (1, 10, 9, 10)]:
        _, expected = proportion.proportions_ztest([xt, xc], [nt, nc])
        got = two_proportion_z_test(ArmSummary.from_counts(xc, nc), ArmSummary.from_counts(xt, nt))
        assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_welch_matches_scipy_ttest_ind_on_raw_arrays(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(10.0, 1.0, size=int(rng.integers(2, 80)))
    b = rng.gamma(2.0, 5.0, size=int(rng.integers(2, 300)))
    expected = stats.ttest_ind(a, b, equal_var=False).pvalue
    got = welch_t_test(ArmSummary.from_values(a), ArmSummary.from_values(b))
    assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("counts", "weights"),
    [([5200, 4800], [0.5, 0.5]), ([310, 680, 1010], [1, 2, 3]), ([90, 10], [0.9, 0.1]), ([7, 3], [1, 1])],
)
def test_srm_matches_scipy_chisquare(counts: list[int], weights: list[float]) -> None:
    total = sum(counts)
    expected_counts = [w / sum(weights) * total for w in weights]
    expected = stats.chisquare(counts, expected_counts).pvalue
    assert srm_p_value(counts, weights) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("theta", "v", "tau2"), [(0.03, 2.5e-4, 2.5e-3), (0.0, 1e-3, 1e-2), (-0.2, 0.01, 0.05)]
)
def test_msprt_closed_form_equals_the_mixture_integral(theta: float, v: float, tau2: float) -> None:
    """Lambda = integral of the normal likelihood ratio over theta' ~ N(0, tau2)."""

    def integrand(t: float) -> float:
        log_ratio = (-((theta - t) ** 2) + theta**2) / (2 * v)
        return math.exp(log_ratio) * stats.norm.pdf(t, scale=math.sqrt(tau2))

    sd = math.sqrt(tau2)
    lam, _ = integrate.quad(integrand, -12 * sd, 12 * sd, points=[theta], limit=200)
    # Build two continuous arms whose difference of means is theta with variance v.
    n = 1000
    s2 = v * n / 2
    control = ArmSummary(n, 0.0, s2 * (n - 1))
    treatment = ArmSummary(n, theta * n, s2 * (n - 1) + theta * theta * n)
    assert control.variance / n + treatment.variance / n == pytest.approx(v)
    got = msprt_p_value(control, treatment, metric="continuous", tau2=tau2)
    assert got == pytest.approx(min(1.0, 1 / lam), rel=1e-6)


def test_default_tau2_is_a_standardized_effect_of_one_tenth_sd() -> None:
    control, treatment = ArmSummary.from_counts(500, 1000), ArmSummary.from_counts(560, 1000)
    pooled = 1060 / 2000
    explicit = msprt_p_value(
        control, treatment, metric="binary", tau2=DEFAULT_MIXING_EFFECT_SIZE**2 * pooled * (1 - pooled)
    )
    assert msprt_p_value(control, treatment, metric="binary") == explicit


def test_always_valid_p_only_goes_down() -> None:
    assert update_always_valid(None, 0.4) == 0.4
    assert update_always_valid(0.2, 0.4) == 0.2
    assert update_always_valid(0.2, 0.1) == 0.1


def test_holm_adjustment() -> None:
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([0.3]) == [0.3]
    assert holm_adjust([]) == []


# ------------------------------------------------------------------- A/A simulation


def test_aa_binary_false_positive_rate_fixed_and_sequential_with_peeking() -> None:
    """Same rate in both arms, a look every 100 samples per arm up to 2000.

    Fixed horizon (one look at the end) and the always-valid p-value (running minimum over
    all 20 looks) stay at or below alpha; reading the fixed-horizon p-value at every look
    ("naive peeking") does not, which shows the simulation can fail.
    """
    rng = np.random.default_rng(20240601)
    runs, batch, looks, rate = 1000, 100, 20, 0.3
    successes = rng.binomial(batch, rate, size=(runs, looks, 2)).cumsum(axis=1)
    fixed = sequential = naive = 0
    for run in range(runs):
        seq_p: float | None = None
        naive_hit = False
        for look in range(looks):
            n = batch * (look + 1)
            c = ArmSummary.from_counts(int(successes[run, look, 0]), n)
            t = ArmSummary.from_counts(int(successes[run, look, 1]), n)
            p_fixed = two_proportion_z_test(c, t)
            seq_p = update_always_valid(seq_p, msprt_p_value(c, t, metric="binary"))
            naive_hit |= p_fixed < ALPHA
        fixed += p_fixed < ALPHA
        sequential += seq_p < ALPHA
        naive += naive_hit
    limit = binom_upper(runs, ALPHA)
    print(
        f"A/A binary: fixed {fixed / runs:.3f}, sequential {sequential / runs:.3f}, naive {naive / runs:.3f}"
    )
    assert fixed <= limit
    assert sequential <= limit
    assert naive > limit


def test_aa_continuous_false_positive_rate_with_skewed_outcomes() -> None:
    """The same check for Welch and the continuous mSPRT on skewed (exponential) data."""
    rng = np.random.default_rng(7)
    runs, batch, looks = 1000, 100, 20
    draws = rng.exponential(2.0, size=(runs, looks, 2, batch))
    sums = draws.sum(axis=3).cumsum(axis=1)
    sums_sq = (draws * draws).sum(axis=3).cumsum(axis=1)
    fixed = sequential = naive = 0
    for run in range(runs):
        seq_p: float | None = None
        naive_hit = False
        for look in range(looks):
            n = batch * (look + 1)
            c = ArmSummary(n, float(sums[run, look, 0]), float(sums_sq[run, look, 0]))
            t = ArmSummary(n, float(sums[run, look, 1]), float(sums_sq[run, look, 1]))
            p_fixed = welch_t_test(c, t)
            seq_p = update_always_valid(seq_p, msprt_p_value(c, t, metric="continuous"))
            naive_hit |= p_fixed < ALPHA
        fixed += p_fixed < ALPHA
        sequential += seq_p < ALPHA
        naive += naive_hit
    limit = binom_upper(runs, ALPHA)
    rates = f"fixed {fixed / runs:.3f}, sequential {sequential / runs:.3f}, naive {naive / runs:.3f}"
    print(f"A/A continuous: {rates}")
    assert fixed <= limit
    assert sequential <= limit
    assert naive > limit


def test_power_a_real_difference_is_detected_by_both() -> None:
    control, treatment = ArmSummary.from_counts(1000, 2000), ArmSummary.from_counts(1200, 2000)
    assert two_proportion_z_test(control, treatment) < 1e-6
    assert msprt_p_value(control, treatment, metric="binary") < 1e-4

    # And in simulation with peeking: 0.50 vs 0.60, looks every 100 up to 2000 per arm.
    rng = np.random.default_rng(11)
    runs, batch, looks = 200, 100, 20
    sc = rng.binomial(batch, 0.5, size=(runs, looks)).cumsum(axis=1)
    st_ = rng.binomial(batch, 0.6, size=(runs, looks)).cumsum(axis=1)
    detected_fixed = detected_seq = 0
    for run in range(runs):
        seq_p: float | None = None
        for look in range(looks):
            n = batch * (look + 1)
            c = ArmSummary.from_counts(int(sc[run, look]), n)
            t = ArmSummary.from_counts(int(st_[run, look]), n)
            seq_p = update_always_valid(seq_p, msprt_p_value(c, t, metric="binary"))
        detected_fixed += two_proportion_z_test(c, t) < ALPHA
        detected_seq += seq_p < ALPHA
    assert detected_fixed / runs >= 0.99
    assert detected_seq / runs >= 0.95


# -------------------------------------------------------------------------------- SRM


def test_srm_flags_a_broken_split_and_not_a_healthy_one() -> None:
    assert srm_p_value([5200, 4800], [0.5, 0.5]) < 0.001
    assert srm_p_value([5020, 4980], [0.5, 0.5]) > 0.001


def test_srm_edge_cases() -> None:
    assert srm_p_value([0, 0], [0.5, 0.5]) == 1.0
    assert srm_p_value([10, 3], [1.0, 0.0]) == 0.0  # units in an arm that should get none
    assert srm_p_value([10, 0], [1.0, 0.0]) == 1.0
    with pytest.raises(ValueError, match="length"):
        srm_p_value([1, 2], [1.0])
    with pytest.raises(ValueError, match="expected_weights"):
        srm_p_value([1, 2], [0.0, 0.0])


# --------------------------------------------------------------------------- decision


def _binary(**arms: tuple[int, int]) -> dict[str, ArmSummary]:
    return {name: ArmSummary.from_counts(x, n) for name, (x, n) in arms.items()}


HALF = {"a": 0.5, "b": 0.5}


@pytest.mark.parametrize(
    ("arms", "weights", "kwargs", "decision", "winner"),
    [
        # A broken split wins over a significant difference.
        (_binary(a=(2600, 5200), b=(2900, 4800)), HALF, {}, "srm_alarm", None),
        (_binary(a=(30, 50), b=(45, 50)), HALF, {}, "keep_running", None),
        (_binary(a=(1000, 2000), b=(1010, 2000)), HALF, {}, "keep_running", None),
        (_binary(a=(1000, 2000), b=(1200, 2000)), HALF, {}, "treatment_better", "b"),
        (_binary(a=(1200, 2000), b=(1000, 2000)), HALF, {}, "control_better", "a"),
        # Lower is better (say, an error rate): the lower treatment wins.
        (_binary(a=(1200, 2000), b=(1000, 2000)), HALF, {"higher_is_better": False}, "treatment_better", "b"),
        # z = 2.2 (p = 0.027): significant at a fixed horizon, not yet sequentially.
        (_binary(a=(1000, 2000), b=(1070, 2000)), HALF, {}, "keep_running", None),
        (_binary(a=(1000, 2000), b=(1070, 2000)), HALF, {"sequential": False}, "treatment_better", "b"),
        # Holm: the same difference with a second, null treatment is no longer significant.
        (
            _binary(a=(1000, 2000), b=(1070, 2000), c=(1000, 2000)),
            {"a": 1, "b": 1, "c": 1},
            {"sequential": False},
            "keep_running",
            None,
        ),
        # Two significantly better treatments: the larger improvement wins.
        (
            _binary(a=(1000, 2000), b=(1200, 2000), c=(1300, 2000)),
            {"a": 1, "b": 1, "c": 1},
            {},
            "treatment_better",
            "c",
        ),
        # The control is better only when it beats every treatment.
        (
            _binary(a=(1200, 2000), b=(1000, 2000), c=(1200, 2000)),
            {"a": 1, "b": 1, "c": 1},
            {},
            "keep_running",
            None,
        ),
        (
            _binary(a=(1200, 2000), b=(1000, 2000), c=(1000, 2000)),
            {"a": 1, "b": 1, "c": 1},
            {},
            "control_better",
            "a",
        ),
        # An earlier look already crossed the line: the running minimum keeps it.
        (
            _binary(a=(1000, 2000), b=(1070, 2000)),
            HALF,
            {"previous_sequential_p": {"b": 0.01}},
            "treatment_better",
            "b",
        ),
        # SRM is judged on assignment counts when they are given.
        (
            _binary(a=(1000, 2000), b=(1000, 2000)),
            HALF,
            {"assignment_counts": {"a": 5200, "b": 4800}},
            "srm_alarm",
            None,
        ),
    ],
)
def test_decision_table(
    arms: dict[str, ArmSummary], weights: dict[str, float], kwargs: dict, decision: str, winner: str | None
) -> None:
    result = analyze(arms, "a", weights, metric="binary", **kwargs)
    assert result.decision == decision, result.reason
    assert result.winner == winner
    assert result.reason and "\n" not in result.reason
    assert result.arms[0].name == "a"


def test_analyze_reports_estimates_intervals_and_p_values() -> None:
    result = analyze(_binary(a=(1000, 2000), b=(1200, 2000)), "a", HALF, metric="binary")
    a, b = result.arms
    assert (a.n, a.mean, b.mean) == (2000, 0.5, 0.6)
    assert a.ci_low < 0.5 < a.ci_high and b.ci_low < 0.6 < b.ci_high
    (cmp,) = result.comparisons
    assert cmp.lift == pytest.approx(0.1)
    assert cmp.relative_lift == pytest.approx(0.2)
    se = math.sqrt(0.25 / 2000 + 0.24 / 2000)
    assert cmp.lift_ci_low == pytest.approx(0.1 - 1.959964 * se, rel=1e-5)
    assert cmp.lift_ci_high == pytest.approx(0.1 + 1.959964 * se, rel=1e-5)
    assert cmp.p_value == two_proportion_z_test(*_binary(a=(1000, 2000), b=(1200, 2000)).values())
    assert cmp.adjusted_p_value == cmp.sequential_p_value
    assert result.srm_p_value == 1.0
    assert "0.6" in result.reason and "0.5" in result.reason


def test_arm_intervals_are_wilson_for_rates_and_t_for_means() -> None:
    result = analyze(_binary(a=(0, 20), b=(20, 20)), "a", HALF, metric="binary", min_samples_per_arm=1)
    a, b = result.arms
    # Wilson stays inside [0, 1] and is not degenerate at 0 or 1 (Wald would be [0, 0]).
    assert a.ci_low == 0.0 and 0.1 < a.ci_high < 0.2
    assert b.ci_high == 1.0 and 0.8 < b.ci_low < 0.9

    values = np.array([1.0, 2.0, 4.0, 7.0, 11.0])
    summary = ArmSummary.from_values(values)
    result = analyze({"a": summary, "b": summary}, "a", HALF, metric="continuous")
    expected = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert (result.arms[0].ci_low, result.arms[0].ci_high) == pytest.approx(expected)


def test_analyze_rejects_invalid_configuration() -> None:
    arms = _binary(a=(1, 2), b=(1, 2))
    with pytest.raises(ValueError, match="control"):
        analyze(arms, "z", HALF, metric="binary")
    with pytest.raises(ValueError, match="no weight"):
        analyze({**arms, "c": ArmSummary()}, "a", HALF, metric="binary")
    with pytest.raises(ValueError, match="metric"):
        analyze(arms, "a", HALF, metric="ordinal")  # type: ignore[arg-type]
    # Non-0/1 outcomes are stored data, not configuration: neutral, never an exception
    # (tests/gateway/test_stored_outcomes.py); this used to raise ValueError.
    assert two_proportion_z_test(ArmSummary.from_values([0.5, 3.0]), ArmSummary.from_counts(1, 2)) == 1.0


# -------------------------------------------------------------------------- guardrail


def test_guardrail_is_one_sided() -> None:
    control, worse = ArmSummary.from_counts(1200, 2000), ArmSummary.from_counts(1100, 2000)
    is_worse, p = guardrail_worse(control, worse, metric="binary")
    assert is_worse
    assert p == pytest.approx(two_proportion_z_test(control, worse) / 2)
    # The same gap in the other direction is an improvement: never "worse".
    is_worse, p = guardrail_worse(worse, control, metric="binary")
    assert not is_worse and p > 0.99
    # Lower is better (latency): a higher candidate is the worse one.
    assert guardrail_worse(worse, control, metric="binary", higher_is_better=False)[0]
    assert not guardrail_worse(control, worse, metric="binary", higher_is_better=False)[0]


def test_guardrail_continuous_matches_scipy_one_sided_welch() -> None:
    rng = np.random.default_rng(3)
    control, candidate = rng.normal(100, 10, 300), rng.normal(102, 15, 250)
    expected = stats.ttest_ind(candidate, control, equal_var=False, alternative="greater").pvalue
    is_worse, p = guardrail_worse(
        ArmSummary.from_values(control),
        ArmSummary.from_values(candidate),
        metric="continuous",
        higher_is_better=False,
    )
    assert p == pytest.approx(expected, rel=1e-9)
    assert is_worse == (expected < ALPHA)


# ------------------------------------------------------------------------- edge cases


def test_edge_cases_never_raise_and_give_documented_values() -> None:
    empty = ArmSummary()
    assert (empty.mean, empty.variance) == (0.0, 0.0)
    assert two_proportion_z_test(empty, empty) == 1.0
    assert welch_t_test(empty, empty) == 1.0
    assert msprt_p_value(empty, empty, metric="binary") == 1.0
    assert msprt_p_value(empty, empty, metric="continuous") == 1.0
    assert guardrail_worse(empty, empty, metric="binary") == (False, 1.0)
    one = ArmSummary.from_values([3.0])
    assert welch_t_test(one, one) == 1.0 and guardrail_worse(one, one, metric="continuous") == (False, 1.0)

    # Zero variance: scipy gives NaN; equal means give 1.0, different means 0.0.
    fives, sixes = ArmSummary.from_values([5.0] * 10), ArmSummary.from_values([6.0] * 10)
    assert welch_t_test(fives, fives) == 1.0
    assert welch_t_test(fives, sixes) == 0.0
    assert msprt_p_value(fives, fives, metric="continuous") == 1.0
    assert msprt_p_value(fives, sixes, metric="continuous") == 0.0
    assert guardrail_worse(sixes, fives, metric="continuous") == (True, 0.0)

    # All successes in both arms (pooled rate 1): nothing to tell apart.
    full = ArmSummary.from_counts(50, 50)
    assert two_proportion_z_test(full, full) == 1.0
    assert msprt_p_value(full, full, metric="binary") == 1.0
    assert 0.0 < two_proportion_z_test(ArmSummary.from_counts(0, 50), full) < 1e-10

    empty_result = analyze({}, "a", HALF, metric="continuous")
    assert empty_result.decision == "keep_running" and empty_result.srm_p_value == 1.0
    assert (empty_result.arms[0].ci_low, empty_result.arms[0].ci_high) == (-math.inf, math.inf)
    assert empty_result.comparisons[0].relative_lift is None
    assert analyze({}, "a", HALF, metric="binary").arms[0].ci_low == 0.0


# ------------------------------------------------------------------------- properties

counts = st.integers(0, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))
samples = st.lists(st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False), max_size=60)


@settings(max_examples=200, deadline=None)
@given(counts, counts)
def test_binary_p_values_are_in_unit_interval(c: tuple[int, int], t: tuple[int, int]) -> None:
    control, treatment = ArmSummary.from_counts(*c), ArmSummary.from_counts(*t)
    for p in (
        two_proportion_z_test(control, treatment),
        msprt_p_value(control, treatment, metric="binary"),
        guardrail_worse(control, treatment, metric="binary")[1],
    ):
        assert 0.0 <= p <= 1.0


@settings(max_examples=200, deadline=None)
@given(samples, samples)
def test_continuous_p_values_are_in_unit_interval(a: list[float], b: list[float]) -> None:
    control, treatment = ArmSummary.from_values(a), ArmSummary.from_values(b)
    for p in (
        welch_t_test(control, treatment),
        msprt_p_value(control, treatment, metric="continuous"),
        guardrail_worse(control, treatment, metric="continuous")[1],
    ):
        assert 0.0 <= p <= 1.0


@settings(max_examples=200, deadline=None)
@given(samples)
def test_add_then_mean_and_variance_equal_numpy(values: list[float]) -> None:
    summary = ArmSummary()
    for v in values:
        summary = summary.add(v)
    assert summary == ArmSummary.from_values(values)
    if values:
        assert summary.mean == pytest.approx(float(np.mean(values)), rel=1e-9, abs=1e-9)
    if len(values) >= 2:
        assert summary.variance == pytest.approx(float(np.var(values, ddof=1)), rel=1e-6, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), max_size=8))
def test_holm_adjusted_p_values_are_valid_and_at_least_raw(ps: list[float]) -> None:
    adjusted = holm_adjust(ps)
    assert all(raw <= adj <= 1.0 for raw, adj in zip(ps, adjusted, strict=True))
    assert all(adj <= min(1.0, len(ps) * raw) for raw, adj in zip(ps, adjusted, strict=True))


def test_a_gateway_start_does_not_import_scipy() -> None:
    """scipy.stats is most of a gateway's import time; it loads at the first statistics call."""
    code = (
        "import sys, gateway_svc.server\n"
        "assert not [m for m in sys.modules if m.startswith('scipy')], 'scipy imported at start'\n"
        "from gateway_svc.statistics.distributions import scipy_stats\n"
        "assert round(float(scipy_stats().norm.isf(0.025)), 2) == 1.96\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
