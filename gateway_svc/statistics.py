"""The statistics behind A/B experiments and canaries: pure functions, no I/O.

Every arm is reduced to sufficient statistics (:class:`ArmSummary`: count, sum, sum of
squares), so the gateway can keep running totals per variant and analyse at any moment.

Methods, and where they come from:

* Fixed-horizon p-values. Binary outcomes (0/1): the two-proportion z-test with the
  pooled standard error (the textbook test; equals ``statsmodels``' ``proportions_ztest``).
  Continuous outcomes: Welch's unequal-variance t-test with Welch-Satterthwaite degrees
  of freedom (Welch 1947; equals ``scipy.stats.ttest_ind(equal_var=False)``). These are
  valid only when read once, at a sample size fixed in advance.
* Sequential, always-valid p-values: the mixture sequential probability ratio test
  (mSPRT) with a normal mixing distribution, from Johari, Koomen, Pekelis & Walsh,
  "Peeking at A/B Tests: Why it matters, and what to do about it" (KDD 2017) and
  "Always Valid Inference: Continuous Monitoring of A/B Tests" (Operations Research
  2022). The running minimum of ``1 / Lambda_n`` over looks may be read at every look
  without inflating the false-positive rate (Ville's inequality), which is what lets a
  dashboard refresh the result while traffic arrives.
* Intervals: Wilson score intervals for rates (Wilson 1927; unlike Wald they stay inside
  [0, 1] and keep their coverage near 0 and 1), Student-t intervals for means, and a
  Wald interval for the lift from the unpooled standard error of the difference
  (normal critical value for rates, Welch t critical value for means). Intervals are
  fixed-horizon intervals at the ``1 - alpha`` level.
* Sample-ratio mismatch (SRM): Pearson's chi-square goodness-of-fit test of the
  observed arm counts against the configured split (``scipy.stats.chisquare``), as in
  Fabijan et al., "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments"
  (KDD 2019). A mismatch means the assignment or the logging is broken and no other
  number in the experiment can be trusted.
* Several treatments: Holm's step-down correction (Holm 1979) over the treatment-vs-
  control comparisons. It controls the family-wise error rate under any dependence
  between the p-values and is never less powerful than Bonferroni.

Degenerate inputs never raise; they give the documented neutral values (p-value 1.0
when there is not enough data to compare, infinite intervals when a mean's spread is
unknowable). That holds for *any* summary, including ones no outcomes of the metric
could produce (a binary total outside [0, n], non-finite or overflowing moments, as an
older log may hold): such an arm is *unusable* (:func:`unusable`), its interval is the
neutral one, every comparison with it has p-value 1.0, and :func:`analyze` keeps running
and says which arm and why. Outcomes themselves are judged by :func:`outcome_in_range`
(binary: 0 or 1; continuous: finite with ``|v| <= CONTINUOUS_LIMIT``); the gateway leaves
stored outcomes outside the range out of the summaries and counts them. Invalid
configuration (unknown metric kinds, weights that do not match the arms, a bad alpha)
raises ``ValueError``: that is a caller's bug, never stored data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Literal


# scipy.stats costs ~0.9 s to import, most of a gateway's start: load it at the first
# statistics call (GetExperimentResults, a canary check), not before the first Predict.
def _stats() -> ModuleType:
    from scipy import stats

    return stats


def _special() -> ModuleType:
    from scipy import special

    return special


Metric = Literal["binary", "continuous"]
Decision = Literal["keep_running", "treatment_better", "control_better", "srm_alarm"]

METRICS: tuple[str, ...] = ("binary", "continuous")

# Default mSPRT mixing standard deviation, in units of the per-observation standard
# deviation (a standardized effect size, Cohen's d). Johari et al. recommend choosing the
# mixing variance from the effects seen in past experiments; with no history, 0.1 sd is
# a typical product-experiment effect, and the mixture is most powerful around the sample
# size where such an effect becomes detectable (a few thousand observations per arm).
# Expressing tau in sd units makes the default scale-free: the same setting works for a
# 0/1 accuracy and for a latency in milliseconds.
DEFAULT_MIXING_EFFECT_SIZE = 0.1

# The largest magnitude a continuous outcome may have to enter the statistics. The moments
# are running sums of v and v*v: with |v| <= 1e100 a sum of squares stays below 1e308 (the
# largest double) for up to 1e108 outcomes, and every intermediate of the tests (variances,
# their squares in Welch's degrees of freedom, the mSPRT exponent) stays finite. No score,
# rate, latency or cost comes near it; a value beyond it is a bug of the sender.
CONTINUOUS_LIMIT = 1e100
# the bounds on the moments of n outcomes in range, with room for the rounding of the sums
_LIMIT_SUM = CONTINUOUS_LIMIT * (1 + 1e-9)
_LIMIT_SUM_SQ = CONTINUOUS_LIMIT * CONTINUOUS_LIMIT * (1 + 1e-9)
_MAX_N = 2**63  # COUNT(*) in SQLite is a signed 64-bit integer; beyond it n is not a count


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric: must be one of {METRICS}, got {metric!r}")


def outcome_in_range(metric: str, value: float) -> bool:
    """May this outcome enter the statistics of a ``metric`` experiment or canary?

    Binary: exactly 0 or 1. Continuous: finite, with ``|value| <= CONTINUOUS_LIMIT``.
    """
    _check_metric(metric)
    if metric == "binary":
        return value in (0.0, 1.0)
    return math.isfinite(value) and abs(value) <= CONTINUOUS_LIMIT


@dataclass(frozen=True)
class ArmSummary:
    """Sufficient statistics of one arm: count, sum and sum of squares of its outcomes.

    Binary outcomes are recorded as 0/1, so ``total`` is the number of successes and
    ``total_sq == total``. Summaries are immutable; :meth:`add` and :meth:`merge` return
    new ones, so a running summary can be shared between readers without locks.

    The variance is computed from the raw moments, which loses precision when the mean
    is huge compared with the spread (catastrophic cancellation); for scores, rates and
    latencies this is far below any statistical error, and it is clamped at zero.
    """

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.n <= _MAX_N:
            raise ValueError(f"n: must be a count in [0, 2**63], got {self.n}")
        if self.total_sq < 0:
            raise ValueError(f"total_sq: must be >= 0, got {self.total_sq}")

    @classmethod
    def from_values(cls, values: Iterable[float]) -> ArmSummary:
        """The summary of a sequence of outcomes."""
        n, total, total_sq = 0, 0.0, 0.0
        for value in values:
            v = float(value)
            n += 1
            total += v
            total_sq += v * v
        return cls(n, total, total_sq)

    @classmethod
    def from_counts(cls, successes: int, n: int) -> ArmSummary:
        """The summary of ``n`` binary outcomes of which ``successes`` are 1."""
        if not 0 <= successes <= n:
            raise ValueError(f"successes: must be in [0, n={n}], got {successes}")
        return cls(n, float(successes), float(successes))

    def add(self, value: float) -> ArmSummary:
        """This summary with one more outcome."""
        v = float(value)
        return ArmSummary(self.n + 1, self.total + v, self.total_sq + v * v)

    def merge(self, other: ArmSummary) -> ArmSummary:
        """The summary of the union of two disjoint sets of outcomes."""
        return ArmSummary(self.n + other.n, self.total + other.total, self.total_sq + other.total_sq)

    @property
    def mean(self) -> float:
        """Sample mean (the success rate for binary outcomes); 0.0 when ``n == 0``."""
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Sample variance with ``ddof=1``; 0.0 when ``n < 2``."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))


@dataclass(frozen=True)
class ArmResult:
    """One arm's estimate: ``mean`` is the rate for binary metrics, with its interval."""

    name: str
    n: int
    mean: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Comparison:
    """One treatment against the control.

    ``lift`` is the absolute difference ``treatment - control``; ``relative_lift`` is
    ``lift / control mean`` (None when the control mean is 0). ``p_value`` is the
    fixed-horizon two-sided p-value, ``sequential_p_value`` the always-valid one (already
    combined with the previous looks' value when those were given), and
    ``adjusted_p_value`` the Holm-adjusted value of whichever of the two the decision
    used, which is what is compared with alpha.
    """

    treatment: str
    lift: float
    lift_ci_low: float
    lift_ci_high: float
    relative_lift: float | None
    p_value: float
    sequential_p_value: float
    adjusted_p_value: float


@dataclass(frozen=True)
class ExperimentResult:
    """Everything a dashboard or a rollout controller needs from one analysis.

    ``arms`` lists the control first. ``decision`` is one of ``keep_running``,
    ``treatment_better``, ``control_better``, ``srm_alarm``; ``winner`` names the arm
    that won (the treatment, or the control), None otherwise; ``reason`` explains the
    decision in one line, with the numbers.
    """

    arms: list[ArmResult]
    comparisons: list[Comparison]
    srm_p_value: float
    decision: Decision
    reason: str
    winner: str | None = None


# --------------------------------------------------------------------------- tests


def unusable(arm: ArmSummary, metric: str) -> str:
    """Why no outcomes of ``metric`` could have produced this summary ("" when they could).

    Such an arm is never compared (p-value 1.0, neutral intervals), so a bad summary can
    neither raise nor tip a decision: binary totals outside [0, n] would make the
    Bernoulli variance p(1-p) negative; non-finite or overflowing moments make every test
    meaningless.
    """
    _check_metric(metric)
    if not (math.isfinite(arm.total) and math.isfinite(arm.total_sq)):
        return f"its totals are not finite (total={arm.total:g}, total_sq={arm.total_sq:g})"
    if metric == "binary":
        if not 0.0 <= arm.total <= arm.n:
            return f"{arm.total:g} successes of {arm.n} outcomes is not a binary result"
    elif abs(arm.total) > arm.n * _LIMIT_SUM or arm.total_sq > arm.n * _LIMIT_SUM_SQ:
        return f"its totals exceed {CONTINUOUS_LIMIT:g} per outcome (total={arm.total:g}, n={arm.n})"
    return ""


def _welch_df(control: ArmSummary, treatment: ArmSummary, vc: float, vt: float) -> float:
    """Welch-Satterthwaite degrees of freedom, written with the shares of the variance so
    no intermediate is squared out of range: (vc + vt)^2 / (vc^2/(nc-1) + vt^2/(nt-1))."""
    total = vc + vt
    if total == 0.0:
        return math.inf
    a, b = vc / total, vt / total
    denom = a * a / (control.n - 1) + b * b / (treatment.n - 1)
    return 1.0 / denom if denom > 0 else math.inf


def _difference_statistic(
    control: ArmSummary, treatment: ArmSummary, metric: str
) -> tuple[float, float] | None:
    """``(statistic, df)`` for ``treatment - control``; df is ``inf`` for the z-test.

    None when an arm is too small to estimate its spread (binary: n == 0; continuous:
    n < 2), or unusable (:func:`unusable`). With a zero standard error the statistic is 0
    when the means are equal and +-inf otherwise (a difference measured without noise is
    certain).
    """
    _check_metric(metric)
    if unusable(control, metric) or unusable(treatment, metric):
        return None
    diff = treatment.mean - control.mean
    if metric == "binary":
        if control.n == 0 or treatment.n == 0:
            return None
        # Pooled under H0 (equal rates): the standard two-proportion z-test.
        pooled = (control.total + treatment.total) / (control.n + treatment.n)
        se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / control.n + 1.0 / treatment.n))
        df = math.inf
    else:
        if control.n < 2 or treatment.n < 2:
            return None
        vc = control.variance / control.n
        vt = treatment.variance / treatment.n
        se = math.sqrt(vc + vt)
        df = _welch_df(control, treatment, vc, vt)
    if se == 0.0:
        return (0.0 if diff == 0.0 else math.copysign(math.inf, diff)), math.inf
    return diff / se, df


def _lower_tail(stat: float, df: float) -> float:
    """``P(T <= stat)`` under H0: standard normal when ``df`` is infinite, else Student t.

    ``scipy.special`` holds the same CDFs that ``scipy.stats.norm``/``t`` call, without
    the per-call overhead of the distribution objects (which dominated the simulations).
    """
    return float(_special().ndtr(stat) if math.isinf(df) else _special().stdtr(df, stat))


def _two_sided(stat: float, df: float) -> float:
    return min(1.0, 2.0 * _lower_tail(-abs(stat), df))


def two_proportion_z_test(control: ArmSummary, treatment: ArmSummary) -> float:
    """Two-sided p-value of the two-proportion z-test with pooled standard error.

    ``z = (p_t - p_c) / sqrt(p(1-p)(1/n_c + 1/n_t))`` with ``p`` the pooled rate; equals
    ``statsmodels.stats.proportion.proportions_ztest``. Returns 1.0 when an arm is empty
    or when every outcome is identical (pooled rate 0 or 1: both rates are then equal).
    """
    result = _difference_statistic(control, treatment, "binary")
    return 1.0 if result is None else _two_sided(*result)


def welch_t_test(control: ArmSummary, treatment: ArmSummary) -> float:
    """Two-sided p-value of Welch's t-test, from sufficient statistics.

    Welch (1947) with Welch-Satterthwaite degrees of freedom; equals
    ``scipy.stats.ttest_ind(a, b, equal_var=False)``. Returns 1.0 when an arm has fewer
    than two outcomes. With zero variance in both arms (where scipy returns NaN) it
    returns 1.0 if the means are equal and 0.0 if they differ.
    """
    result = _difference_statistic(control, treatment, "continuous")
    return 1.0 if result is None else _two_sided(*result)


def fixed_horizon_p_value(control: ArmSummary, treatment: ArmSummary, *, metric: Metric) -> float:
    """The z-test for binary metrics, Welch's t-test for continuous ones."""
    _check_metric(metric)
    return (
        two_proportion_z_test(control, treatment) if metric == "binary" else welch_t_test(control, treatment)
    )


def msprt_p_value(
    control: ArmSummary, treatment: ArmSummary, *, metric: Metric, tau2: float | None = None
) -> float:
    """Always-valid p-value for ``mean_t - mean_c = 0`` at this look: ``min(1, 1/Lambda)``.

    The normal-mixture mSPRT of Johari, Koomen, Pekelis & Walsh (KDD 2017; Operations
    Research 2022). With ``theta`` the observed difference of means and ``V`` its
    variance, mixing the likelihood ratio over ``theta ~ N(0, tau2)`` gives::

        Lambda = sqrt(V / (V + tau2)) * exp(tau2 * theta**2 / (2 * V * (V + tau2)))

    Under H0, ``Lambda`` is a nonnegative martingale, so by Ville's inequality
    ``P(sup_n Lambda_n >= 1/alpha) <= alpha``: the running minimum of the returned value
    over all looks (see :func:`update_always_valid`) is a p-value that may be read at any
    time, as often as wanted.

    Variance plug-in (as in the papers, which rely on the central limit theorem for
    non-normal data): for binary metrics the pooled rate ``p`` gives
    ``V = p(1-p)(1/n_c + 1/n_t)`` (the variance under H0, as in the z-test, and defined
    even when one arm has no successes yet); for continuous metrics
    ``V = s_c^2/n_c + s_t^2/n_t`` (Welch's unpooled variance).

    ``tau2`` is the mixing variance in the metric's squared units. None uses
    ``(DEFAULT_MIXING_EFFECT_SIZE * sigma)^2`` with ``sigma^2`` the pooled per-observation
    variance (``p(1-p)`` for binary), i.e. a prior on the standardized effect with sd 0.1.

    Returns 1.0 when an arm is too small (binary: empty; continuous: fewer than 2) and,
    when there is no noise at all, 1.0 for equal means and 0.0 for different ones.
    """
    _check_metric(metric)
    if tau2 is not None and not tau2 > 0:
        raise ValueError(f"tau2: must be > 0, got {tau2}")
    if unusable(control, metric) or unusable(treatment, metric):
        return 1.0
    theta = treatment.mean - control.mean
    if metric == "binary":
        if control.n == 0 or treatment.n == 0:
            return 1.0
        pooled = (control.total + treatment.total) / (control.n + treatment.n)
        sigma2 = pooled * (1.0 - pooled)
        v = sigma2 * (1.0 / control.n + 1.0 / treatment.n)
    else:
        if control.n < 2 or treatment.n < 2:
            return 1.0
        sigma2 = ((control.n - 1) * control.variance + (treatment.n - 1) * treatment.variance) / (
            control.n + treatment.n - 2
        )
        v = control.variance / control.n + treatment.variance / treatment.n
    if v == 0.0:
        return 1.0 if theta == 0.0 else 0.0
    if tau2 is None:
        # v > 0 implies sigma2 > 0, so this is positive.
        tau2 = DEFAULT_MIXING_EFFECT_SIZE**2 * sigma2
    # Work with log(Lambda): the exponent reaches the thousands for clear differences.
    # The products are arranged so that a subnormal v cannot underflow a denominator to 0
    # (hypothesis found v ~ 1e-290 with theta ~ 1e-145).
    ratio = v / (v + tau2)
    if ratio == 0.0:  # v is negligible next to tau2: the data are noiseless for all purposes
        return 1.0 if theta == 0.0 else 0.0
    log_lambda = 0.5 * math.log(ratio) + (tau2 / (v + tau2)) * (theta * theta / (2.0 * v))
    return 1.0 if log_lambda <= 0.0 else math.exp(-log_lambda)


def update_always_valid(previous_p: float | None, new_p: float) -> float:
    """Combine the always-valid p-value of a new look with the previous looks' one.

    The always-valid p-value is the running minimum over looks (Johari et al., Def. 2),
    so it never goes up. None means there was no previous look.
    """
    return new_p if previous_p is None else min(previous_p, new_p)


def srm_p_value(observed_counts: Sequence[int], expected_weights: Sequence[float]) -> float:
    """Sample-ratio-mismatch p-value: Pearson's chi-square test of counts vs the split.

    ``expected_weights`` need not sum to 1. Returns 1.0 when nothing was observed, or
    when only one arm has weight; 0.0 when an arm with weight 0 received units (that
    cannot happen with a working assignment).
    """
    if len(observed_counts) != len(expected_weights):
        raise ValueError(
            f"observed_counts: length {len(observed_counts)} differs from "
            f"expected_weights length {len(expected_weights)}"
        )
    if any(c < 0 for c in observed_counts):
        raise ValueError("observed_counts: must be >= 0")
    if any(not w >= 0 for w in expected_weights) or not sum(expected_weights) > 0:
        raise ValueError("expected_weights: must be >= 0 with a positive sum")
    total = sum(observed_counts)
    if total == 0:
        return 1.0
    if any(c > 0 and w == 0 for c, w in zip(observed_counts, expected_weights, strict=True)):
        return 0.0
    pairs = [(c, w) for c, w in zip(observed_counts, expected_weights, strict=True) if w > 0]
    if len(pairs) < 2:
        return 1.0
    weight_sum = sum(w for _, w in pairs)
    expected = [w / weight_sum * total for _, w in pairs]
    # floats: counts near 2**63 would otherwise make numpy fall back to object arrays
    return float(_stats().chisquare([float(c) for c, _ in pairs], expected).pvalue)


# ----------------------------------------------------------------------- intervals


def _arm_interval(arm: ArmSummary, metric: str, alpha: float) -> tuple[float, float]:
    if unusable(arm, metric):
        return (0.0, 1.0) if metric == "binary" else (-math.inf, math.inf)
    if metric == "binary":
        if arm.n == 0:
            return 0.0, 1.0
        # Wilson score interval.
        z = float(_stats().norm.isf(alpha / 2))
        p, n = arm.mean, arm.n
        denom = 1.0 + z * z / n
        center = (p + z * z / (2 * n)) / denom
        half = z / denom * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n))
        # At p = 0 (or 1) the lower (upper) bound is exactly 0 (1); say so rather than
        # leave it to rounding.
        low = 0.0 if arm.total == 0 else max(0.0, center - half)
        high = 1.0 if arm.total == arm.n else min(1.0, center + half)
        return low, high
    if arm.n < 2:
        return -math.inf, math.inf
    half = float(_stats().t.isf(alpha / 2, arm.n - 1)) * math.sqrt(arm.variance / arm.n)
    return arm.mean - half, arm.mean + half


def _lift_interval(
    control: ArmSummary, treatment: ArmSummary, metric: str, alpha: float
) -> tuple[float, float]:
    if unusable(control, metric) or unusable(treatment, metric):
        return (-1.0, 1.0) if metric == "binary" else (-math.inf, math.inf)
    diff = treatment.mean - control.mean
    if metric == "binary":
        if control.n == 0 or treatment.n == 0:
            return -1.0, 1.0
        pc, pt = control.mean, treatment.mean
        # Unpooled: the interval estimates the difference, it does not assume it is 0.
        se = math.sqrt(pc * (1 - pc) / control.n + pt * (1 - pt) / treatment.n)
        half = float(_stats().norm.isf(alpha / 2)) * se
        return max(-1.0, diff - half), min(1.0, diff + half)
    if control.n < 2 or treatment.n < 2:
        return -math.inf, math.inf
    vc, vt = control.variance / control.n, treatment.variance / treatment.n
    se = math.sqrt(vc + vt)
    if se == 0.0:
        return diff, diff
    df = _welch_df(control, treatment, vc, vt)
    half = float(_stats().t.isf(alpha / 2, df)) * se
    return diff - half, diff + half


# ------------------------------------------------------------------------ analysis


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm (1979) step-down adjusted p-values, in the input order.

    Reject hypothesis i at family-wise level alpha iff its adjusted p-value is below
    alpha. Valid under arbitrary dependence, uniformly at least as powerful as
    Bonferroni; with one p-value it is the identity.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _fmt_p(p: float) -> str:
    return f"{p:.3g}"


def analyze(
    arms: Mapping[str, ArmSummary],
    control: str,
    weights: Mapping[str, float],
    *,
    metric: Metric,
    alpha: float = 0.05,
    min_samples_per_arm: int = 100,
    sequential: bool = True,
    srm_alpha: float = 0.001,
    previous_sequential_p: Mapping[str, float] | None = None,
    higher_is_better: bool = True,
    assignment_counts: Mapping[str, int] | None = None,
) -> ExperimentResult:
    """Per-arm estimates, treatment-vs-control comparisons and a decision.

    ``weights`` is the configured split (it names every arm; an arm missing from
    ``arms`` has no outcomes yet). The SRM check uses ``assignment_counts`` (units routed
    to each arm) when given, else each arm's ``n``.

    The decision, in order of precedence:

    1. ``srm_alarm`` when the SRM p-value is below ``srm_alpha``: the split is broken, so
       no comparison is trustworthy.
    2. ``keep_running`` when an arm is unusable (:func:`unusable`; its mean is NaN).
    3. ``keep_running`` while any arm has fewer than ``min_samples_per_arm`` outcomes
       (the normal approximations behind every test need some data).
    4. Each treatment is compared with the control using the always-valid p-value when
       ``sequential`` (safe to call after every new outcome; pass the previous call's
       ``sequential_p_value`` values as ``previous_sequential_p`` to keep the running
       minimum), else the fixed-horizon p-value (valid only if this is the one planned
       look). With several treatments the p-values are Holm-adjusted.
       ``treatment_better`` when some treatment is significantly better than the control
       (the winner is the significant one with the largest improvement);
       ``control_better`` when every treatment is significantly worse; otherwise
       ``keep_running``. "Better" means a higher mean, or a lower one when
       ``higher_is_better`` is False (latency, cost).
    """
    _check_metric(metric)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha}")
    if control not in weights:
        raise ValueError(f"control: {control!r} is not one of the arms {sorted(weights)}")
    unknown = set(arms) - set(weights)
    if unknown:
        raise ValueError(f"arms: {sorted(unknown)} have no weight in the split")
    if len(weights) < 2:
        raise ValueError("weights: an experiment needs a control and at least one treatment")

    names = [control, *[name for name in weights if name != control]]
    summaries = {name: arms.get(name, ArmSummary()) for name in names}
    previous = previous_sequential_p or {}

    arm_results = []
    for name in names:
        arm = summaries[name]
        low, high = _arm_interval(arm, metric, alpha)
        mean = math.nan if unusable(arm, metric) else arm.mean  # no estimate from impossible totals
        arm_results.append(ArmResult(name, arm.n, mean, low, high))

    ctrl = summaries[control]
    treatments = names[1:]
    fixed_ps = [fixed_horizon_p_value(ctrl, summaries[t], metric=metric) for t in treatments]
    seq_ps = [
        update_always_valid(previous.get(t), msprt_p_value(ctrl, summaries[t], metric=metric))
        for t in treatments
    ]
    adjusted = holm_adjust(seq_ps if sequential else fixed_ps)

    comparisons = []
    for t, p_fixed, p_seq, p_adj in zip(treatments, fixed_ps, seq_ps, adjusted, strict=True):
        lift = summaries[t].mean - ctrl.mean
        low, high = _lift_interval(ctrl, summaries[t], metric, alpha)
        relative = lift / ctrl.mean if ctrl.mean != 0 else None
        comparisons.append(Comparison(t, lift, low, high, relative, p_fixed, p_seq, p_adj))

    counts = [
        (assignment_counts.get(name, 0) if assignment_counts is not None else summaries[name].n)
        for name in names
    ]
    srm = srm_p_value(counts, [weights[name] for name in names])

    def result(decision: Decision, reason: str, winner: str | None = None) -> ExperimentResult:
        return ExperimentResult(arm_results, comparisons, srm, decision, reason, winner)

    if srm < srm_alpha:
        split = ", ".join(f"{name}={count}" for name, count in zip(names, counts, strict=True))
        planned = ", ".join(f"{name}={weights[name]:g}" for name in names)
        return result(
            "srm_alarm",
            f"sample ratio mismatch: observed {split} for weights {planned} "
            f"(chi-square p={_fmt_p(srm)} < {srm_alpha:g}); results are not trustworthy",
        )

    reasons = {name: unusable(summaries[name], metric) for name in names}
    broken = [(name, why) for name, why in reasons.items() if why]
    if broken:
        detail = "; ".join(f"{name}: {why}" for name, why in broken)
        return result("keep_running", f"cannot compare, an arm's outcomes are out of range ({detail})")

    small = [name for name in names if summaries[name].n < min_samples_per_arm]
    if small:
        detail = ", ".join(f"{name} has {summaries[name].n}" for name in small)
        return result(
            "keep_running", f"too few outcomes: {detail} of the {min_samples_per_arm} needed per arm"
        )

    kind = "sequential" if sequential else "fixed-horizon"
    correction = f" (Holm over {len(treatments)} comparisons)" if len(treatments) > 1 else ""
    sign = 1.0 if higher_is_better else -1.0
    significant = [c for c in comparisons if c.adjusted_p_value < alpha]
    better = [c for c in significant if sign * c.lift > 0]
    worse = [c for c in significant if sign * c.lift < 0]

    def describe(c: Comparison) -> str:
        return (
            f"{c.treatment} vs {control}: mean {summaries[c.treatment].mean:.4g} vs {ctrl.mean:.4g}, "
            f"lift {c.lift:+.4g} [{c.lift_ci_low:.4g}, {c.lift_ci_high:.4g}], "
            f"{kind} p={_fmt_p(c.adjusted_p_value)} < {alpha:g}{correction}"
        )

    if better:
        best = max(better, key=lambda c: sign * c.lift)
        return result("treatment_better", f"treatment better: {describe(best)}", best.treatment)
    if len(worse) == len(comparisons):
        return result("control_better", "control better: " + "; ".join(describe(c) for c in worse), control)
    best_p = min(comparisons, key=lambda c: c.adjusted_p_value)
    return result(
        "keep_running",
        f"no significant difference yet: smallest {kind} p={_fmt_p(best_p.adjusted_p_value)} "
        f"({best_p.treatment}, lift {best_p.lift:+.4g}) is not below {alpha:g}{correction}",
    )


def guardrail_worse(
    control: ArmSummary,
    candidate: ArmSummary,
    *,
    metric: Metric,
    alpha: float = 0.05,
    higher_is_better: bool = True,
) -> tuple[bool, float]:
    """Is the canary candidate significantly worse than the control? ``(worse, p)``.

    A one-sided fixed-horizon test (z-test for binary, Welch's t for continuous) of
    H0 "the candidate is not worse" against H1 "the candidate is worse", so an
    improvement never trips it. ``p`` is the one-sided p-value. Not enough data
    (binary: an empty arm; continuous: fewer than 2 outcomes) gives ``(False, 1.0)``.

    Checking at every canary step is repeated looking; that inflates false alarms
    (rolling back a good candidate), the safe direction for a guardrail. Divide alpha by
    the number of steps if false rollbacks matter.
    """
    _check_metric(metric)
    result = _difference_statistic(control, candidate, metric)
    if result is None:
        return False, 1.0
    stat, df = result
    # The statistic is candidate - control: "worse" is the lower tail when higher is better.
    p = _lower_tail(stat, df) if higher_is_better else _lower_tail(-stat, df)
    return p < alpha, p
