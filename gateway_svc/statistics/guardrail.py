"""The canary guardrail: is the candidate significantly worse than the control?"""

from __future__ import annotations

from gateway_svc.statistics.distributions import lower_tail
from gateway_svc.statistics.fixed_horizon import difference_statistic
from gateway_svc.statistics.summary import ArmSummary, Metric, check_metric


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
    check_metric(metric)
    result = difference_statistic(control, candidate, metric)
    if result is None:
        return False, 1.0
    stat, df = result
    # The statistic is candidate - control: "worse" is the lower tail when higher is better.
    p = lower_tail(stat, df) if higher_is_better else lower_tail(-stat, df)
    return p < alpha, p
