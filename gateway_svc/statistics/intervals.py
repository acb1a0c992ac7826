"""Fixed-horizon intervals at the ``1 - alpha`` level: Wilson score intervals for rates,
Student t for means, and a Wald interval for the lift (unpooled standard error)."""

from __future__ import annotations

import math

from gateway_svc.statistics.distributions import scipy_stats
from gateway_svc.statistics.fixed_horizon import welch_df
from gateway_svc.statistics.summary import ArmSummary, unusable


def arm_interval(arm: ArmSummary, metric: str, alpha: float) -> tuple[float, float]:
    if unusable(arm, metric):
        return (0.0, 1.0) if metric == "binary" else (-math.inf, math.inf)
    if metric == "binary":
        if arm.n == 0:
            return 0.0, 1.0
        # Wilson score interval.
        z = float(scipy_stats().norm.isf(alpha / 2))
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
    half = float(scipy_stats().t.isf(alpha / 2, arm.n - 1)) * math.sqrt(arm.variance / arm.n)
    return arm.mean - half, arm.mean + half


def lift_interval(
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
        half = float(scipy_stats().norm.isf(alpha / 2)) * se
        return max(-1.0, diff - half), min(1.0, diff + half)
    if control.n < 2 or treatment.n < 2:
        return -math.inf, math.inf
    vc, vt = control.variance / control.n, treatment.variance / treatment.n
    se = math.sqrt(vc + vt)
    if se == 0.0:
        return diff, diff
    df = welch_df(control, treatment, vc, vt)
    half = float(scipy_stats().t.isf(alpha / 2, df)) * se
    return diff - half, diff + half
