"""Always-valid p-values: the mixture sequential probability ratio test (mSPRT) with a
normal mixing distribution (Johari, Koomen, Pekelis & Walsh), safe to read at every look."""

from __future__ import annotations

import math

from gateway_svc.statistics.summary import ArmSummary, Metric, check_metric, unusable

# Default mSPRT mixing standard deviation, in units of the per-observation standard
# deviation (a standardized effect size, Cohen's d). Johari et al. recommend choosing the
# mixing variance from the effects seen in past experiments; with no history, 0.1 sd is
# a typical product-experiment effect, and the mixture is most powerful around the sample
# size where such an effect becomes detectable (a few thousand observations per arm).
# Expressing tau in sd units makes the default scale-free: the same setting works for a
# 0/1 accuracy and for a latency in milliseconds.
DEFAULT_MIXING_EFFECT_SIZE = 0.1


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
    check_metric(metric)
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
    return _mixture_p(theta, v, tau2)


def msprt_one_sample_p_value(
    arm: ArmSummary, reference: float, *, metric: Metric, tau2: float | None = None
) -> float:
    """Always-valid p-value for ``mean = reference`` (a known value: a version's offline
    score) at this look, from the same normal-mixture mSPRT as :func:`msprt_p_value` with
    one arm: ``theta = mean - reference`` and ``V = sigma^2 / n``.

    Binary: ``sigma^2 = reference (1 - reference)``, the variance under H0, known exactly
    (a reference of 0 or 1 has no noise: any other rate is a difference). Continuous: the
    sample variance (ddof 1). ``tau2`` as in :func:`msprt_p_value`, in the metric's squared
    units (None: ``(DEFAULT_MIXING_EFFECT_SIZE * sigma)^2``). 1.0 when the arm is too small
    (binary: empty; continuous: fewer than 2) or unusable.
    """
    check_metric(metric)
    if tau2 is not None and not tau2 > 0:
        raise ValueError(f"tau2: must be > 0, got {tau2}")
    if not math.isfinite(reference):
        raise ValueError(f"reference: must be finite, got {reference}")
    if unusable(arm, metric) or arm.n < (1 if metric == "binary" else 2):
        return 1.0
    if metric == "binary" and not 0.0 <= reference <= 1.0:
        raise ValueError(f"reference: a rate in [0, 1], got {reference}")
    sigma2 = reference * (1.0 - reference) if metric == "binary" else arm.variance
    theta = arm.mean - reference
    v = sigma2 / arm.n
    if v == 0.0:
        return 1.0 if theta == 0.0 else 0.0
    return _mixture_p(theta, v, DEFAULT_MIXING_EFFECT_SIZE**2 * sigma2 if tau2 is None else tau2)


def _mixture_p(theta: float, v: float, tau2: float) -> float:
    """``min(1, 1/Lambda)`` for an observed difference ``theta`` of variance ``v > 0``."""
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
