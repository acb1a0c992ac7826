"""The always-valid p-value over the sample: each treatment's mSPRT p against the control as
the outcomes came in, read after every outcome.

mSPRT's p may be read after every observation (that is what "always valid" buys), so its
running minimum over all of them is a valid p at each point. It is at most the p the
gateway reports, which is the running minimum over the looks a gateway actually made
(each GetExperimentResults): the curve shows what was known when, not what was read.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway_svc.statistics.msprt import msprt_p_value, update_always_valid
from gateway_svc.statistics.summary import ArmSummary, Metric

MAX_POINTS = 200  # a curve per treatment: enough for a plot, bounded whatever the sample


def always_valid_history(
    outcomes: Sequence[tuple[str, float]],
    control: str,
    treatments: Sequence[str],
    *,
    metric: Metric,
    max_points: int = MAX_POINTS,
) -> dict[str, list[tuple[int, float]]]:
    """Per treatment: ``(n, p)`` with ``n`` the outcomes of the control and that treatment so
    far and ``p`` the always-valid p then, at up to ``max_points`` evenly spaced ``n`` (the
    last one always among them). ``outcomes`` are ``(arm, value)`` in the order recorded;
    arms outside ``control`` and ``treatments`` are ignored."""
    summaries = {arm: ArmSummary() for arm in (control, *treatments)}
    totals = dict.fromkeys(treatments, 0)
    ends = {t: sum(1 for arm, _ in outcomes if arm in (control, t)) for t in treatments}
    running: dict[str, float | None] = dict.fromkeys(treatments, None)
    history: dict[str, list[tuple[int, float]]] = {t: [] for t in treatments}
    for arm, value in outcomes:
        if arm not in summaries:
            continue
        summaries[arm] = summaries[arm].add(value)
        for treatment in treatments if arm == control else (arm,):
            p = msprt_p_value(summaries[control], summaries[treatment], metric=metric)
            running[treatment] = low = update_always_valid(running[treatment], p)
            totals[treatment] += 1
            n, end = totals[treatment], ends[treatment]
            step = max(1, -(-end // max(1, max_points)))  # ceil: at most max_points points
            if n % step == 0 or n == end:
                history[treatment].append((n, low))
    return history
