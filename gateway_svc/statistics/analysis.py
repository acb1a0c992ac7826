"""An experiment's analysis: per-arm estimates, treatment-vs-control comparisons (Holm over
several treatments) and the decision a dashboard or a rollout controller acts on."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from gateway_svc.statistics.fixed_horizon import fixed_horizon_p_value
from gateway_svc.statistics.intervals import arm_interval, lift_interval
from gateway_svc.statistics.msprt import msprt_p_value, update_always_valid
from gateway_svc.statistics.srm import srm_p_value
from gateway_svc.statistics.summary import ArmSummary, Metric, check_metric, unusable

Decision = Literal["keep_running", "treatment_better", "control_better", "srm_alarm"]


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
    check_metric(metric)
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
        low, high = arm_interval(arm, metric, alpha)
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
        low, high = lift_interval(ctrl, summaries[t], metric, alpha)
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
