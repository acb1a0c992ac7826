"""Fixed-horizon tests of ``treatment - control``: the two-proportion z-test for binary
outcomes, Welch's t-test for continuous ones. Valid when read once, at a sample size fixed
in advance (the always-valid alternative: gateway_svc.statistics.msprt)."""

from __future__ import annotations

import math

from gateway_svc.statistics.distributions import two_sided
from gateway_svc.statistics.summary import ArmSummary, Metric, check_metric, unusable


def welch_df(control: ArmSummary, treatment: ArmSummary, vc: float, vt: float) -> float:
    """Welch-Satterthwaite degrees of freedom, written with the shares of the variance so
    no intermediate is squared out of range: (vc + vt)^2 / (vc^2/(nc-1) + vt^2/(nt-1))."""
    total = vc + vt
    if total == 0.0:
        return math.inf
    a, b = vc / total, vt / total
    denom = a * a / (control.n - 1) + b * b / (treatment.n - 1)
    return 1.0 / denom if denom > 0 else math.inf


def difference_statistic(
    control: ArmSummary, treatment: ArmSummary, metric: str
) -> tuple[float, float] | None:
    """``(statistic, df)`` for ``treatment - control``; df is ``inf`` for the z-test.

    None when an arm is too small to estimate its spread (binary: n == 0; continuous:
    n < 2), or unusable (:func:`unusable`). With a zero standard error the statistic is 0
    when the means are equal and +-inf otherwise (a difference measured without noise is
    certain).
    """
    check_metric(metric)
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
        df = welch_df(control, treatment, vc, vt)
    if se == 0.0:
        return (0.0 if diff == 0.0 else math.copysign(math.inf, diff)), math.inf
    return diff / se, df


def two_proportion_z_test(control: ArmSummary, treatment: ArmSummary) -> float:
    """Two-sided p-value of the two-proportion z-test with pooled standard error.

    ``z = (p_t - p_c) / sqrt(p(1-p)(1/n_c + 1/n_t))`` with ``p`` the pooled rate; equals
    ``statsmodels.stats.proportion.proportions_ztest``. Returns 1.0 when an arm is empty
    or when every outcome is identical (pooled rate 0 or 1: both rates are then equal).
    """
    result = difference_statistic(control, treatment, "binary")
    return 1.0 if result is None else two_sided(*result)


def welch_t_test(control: ArmSummary, treatment: ArmSummary) -> float:
    """Two-sided p-value of Welch's t-test, from sufficient statistics.

    Welch (1947) with Welch-Satterthwaite degrees of freedom; equals
    ``scipy.stats.ttest_ind(a, b, equal_var=False)``. Returns 1.0 when an arm has fewer
    than two outcomes. With zero variance in both arms (where scipy returns NaN) it
    returns 1.0 if the means are equal and 0.0 if they differ.
    """
    result = difference_statistic(control, treatment, "continuous")
    return 1.0 if result is None else two_sided(*result)


def fixed_horizon_p_value(control: ArmSummary, treatment: ArmSummary, *, metric: Metric) -> float:
    """The z-test for binary metrics, Welch's t-test for continuous ones."""
    check_metric(metric)
    return (
        two_proportion_z_test(control, treatment) if metric == "binary" else welch_t_test(control, treatment)
    )
