"""The gateway's decisions are GrowthBook's: an experiment assigns exactly the variation a
GrowthBook SDK computes for the same key, seed, weights and coverage."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from dspyops.state import CanaryState, DeploymentState, ExperimentState, RouteState
from gateway_svc.assignment import run_experiment
from gateway_svc.routing import decide


@pytest.mark.parametrize("hash_version,coverage,weights", [(2, 1.0, (0.5, 0.5)), (1, 0.6, (0.2, 0.3, 0.5))])
def test_experiment_assignment_matches_the_growthbook_run(
    hash_version: int, coverage: float, weights: tuple[float, ...]
) -> None:
    arms = ("1.0.0", "1.1.0", "2.0.0")[: len(weights)]
    experiment = ExperimentState(
        "exp1", arms[0], arms[1:], weights, "binary", 0.05, 100, True, hash_version, "seed-x", coverage
    )
    deployment = DeploymentState("web", "p", (RouteState("1.0.0", 1.0),), experiment=experiment)
    spec = {
        "key": "exp1",
        "variations": list(arms),
        "weights": list(weights),
        "coverage": coverage,
        "seed": "seed-x",
        "hashVersion": hash_version,
    }
    for i in range(300):
        decision = decide(deployment, f"user-{i}")
        value, in_experiment, _ = run_experiment({"id": f"user-{i}"}, spec)
        assert decision.version == value
        assert bool(decision.experiment_id) == in_experiment


def test_canary_moves_users_only_towards_the_candidate() -> None:
    canary = CanaryState("c1", "1.0.0", "1.1.0", (5.0, 25.0, 100.0), 10, "binary", 0.05)
    routes = (RouteState("1.0.0", 1.0),)
    keys = [f"u{i}" for i in range(500)]
    before = {k: decide(DeploymentState("web", "p", routes, canary=canary), k).version for k in keys}
    later = DeploymentState("web", "p", routes, canary=replace(canary, step=1))
    after = {k: decide(later, k).version for k in keys}
    assert all(after[k] == "1.1.0" for k in keys if before[k] == "1.1.0")
    assert 10 <= sum(v == "1.1.0" for v in before.values()) <= 45  # ~5% of 500
    assert sum(v == "1.1.0" for v in after.values()) > sum(v == "1.1.0" for v in before.values())


def test_no_routing_key_draws_at_random() -> None:
    deployment = DeploymentState("web", "p", (RouteState("1.0.0", 0.5), RouteState("1.1.0", 0.5)))
    rng = random.Random(7)
    versions = {decide(deployment, "", rng).version for _ in range(50)}
    assert versions == {"1.0.0", "1.1.0"}
