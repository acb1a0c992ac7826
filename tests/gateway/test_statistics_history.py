"""The always-valid p over the sample (gateway_svc.statistics.history), against a brute-force
recomputation: every treatment's running minimum of msprt_p_value after each outcome of the
control or that treatment, thinned to evenly spaced points that end at the last outcome."""

from __future__ import annotations

import itertools
import random

import pytest

from gateway_svc.statistics.history import always_valid_history
from gateway_svc.statistics.msprt import msprt_p_value
from gateway_svc.statistics.summary import ArmSummary


def brute_force(outcomes: list[tuple[str, float]], control: str, treatment: str) -> list[tuple[int, float]]:
    values: dict[str, list[float]] = {control: [], treatment: []}
    curve: list[tuple[int, float]] = []
    low = 1.0
    for arm, value in outcomes:
        if arm not in values:
            continue
        values[arm].append(value)
        c, t = (ArmSummary.from_values(values[a]) for a in (control, treatment))
        low = min(low, msprt_p_value(c, t, metric="continuous"))
        curve.append((len(curve) + 1, low))
    return curve


def test_each_treatments_curve_is_its_running_minimum_thinned_to_at_most_the_points_asked() -> None:
    rng = random.Random(7)
    lift = {"c": 0.0, "t1": 1.0, "t2": 0.0, "other": 5.0}
    outcomes = [(arm, rng.gauss(lift[arm], 1.0)) for arm in rng.choices(list(lift), k=600)]
    history = always_valid_history(outcomes, "c", ["t1", "t2"], metric="continuous", max_points=20)
    assert set(history) == {"t1", "t2"}
    for treatment in ("t1", "t2"):
        full = dict(brute_force(outcomes, "c", treatment))
        curve = history[treatment]
        assert len(curve) <= 21 and curve[-1][0] == len(full)  # the last outcome is always a point
        assert [n for n, _ in curve] == sorted({n for n, _ in curve})
        assert [p for _, p in curve] == pytest.approx([full[n] for n, _ in curve])
        assert all(a >= b for (_, a), (_, b) in itertools.pairwise(curve))  # never rises
    assert history["t1"][-1][1] < 0.05 < history["t2"][-1][1]  # the real lift is found, the null not


def test_no_outcomes_no_points() -> None:
    assert always_valid_history([], "c", ["t"], metric="binary") == {"t": []}
