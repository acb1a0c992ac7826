"""Which version serves a request: a pure function of the deployment's state and the
routing key, so ExplainPrediction can recompute any past decision from the state at its
log position and the recorded hash value."""

from __future__ import annotations

import random
from dataclasses import dataclass

from dspyops.errors import FailedPrecondition
from dspyops.state import DeploymentState
from gateway_svc.assignment import bucket_ranges, choose_variation, gb_hash

ROUTES_HASH_VERSION = 2  # plain weighted routes (no experiment) hash like a v2 experiment


@dataclass(frozen=True, slots=True)
class Decision:
    version: str
    bucket: int
    experiment_id: str  # "" when plain routes (or a key outside the experiment's coverage) decided
    hash_value: float
    hash_version: int
    seed: str
    reason: str


def _seed(deployment: DeploymentState) -> tuple[str, int]:
    if deployment.experiment is not None:
        return deployment.experiment.seed, deployment.experiment.hash_version
    if deployment.canary is not None:  # one seed for the whole canary: a user in the candidate stays there
        return deployment.canary.canary_id, ROUTES_HASH_VERSION
    return deployment.name, ROUTES_HASH_VERSION


def hash_value(deployment: DeploymentState, routing_key: str, rng: random.Random | None = None) -> float:
    """The number in [0, 1) that places this request; a random draw without a routing key."""
    if not routing_key:
        return (rng or random).random()
    seed, version = _seed(deployment)
    value = gb_hash(seed, routing_key, version)
    assert value is not None  # hash versions are validated when experiments start
    return value


def decide_from_hash(deployment: DeploymentState, n: float) -> Decision:
    experiment = deployment.experiment
    if experiment is not None:
        ranges = bucket_ranges(len(experiment.arms), experiment.coverage, experiment.weights)
        index = choose_variation(n, ranges)
        if index >= 0:
            return Decision(
                experiment.arms[index],
                index,
                experiment.experiment_id,
                n,
                experiment.hash_version,
                experiment.seed,
                f"experiment {experiment.experiment_id}: hash {n:.4f} falls in arm {index} "
                f"[{ranges[index][0]:.4f}, {ranges[index][1]:.4f})",
            )
        return Decision(
            experiment.control,
            0,
            "",
            n,
            experiment.hash_version,
            experiment.seed,
            f"hash {n:.4f} is outside experiment {experiment.experiment_id}'s coverage "
            f"{experiment.coverage:g}: control serves, not counted in the experiment",
        )
    canary = deployment.canary
    if canary is not None:
        share = canary.percent / 100
        # the candidate takes the bottom of the hash range, so raising its share only moves
        # users from the baseline to the candidate, never back
        index = 1 if n < share else 0
        return Decision(
            canary.candidate if index else canary.baseline,
            index,
            canary.step_key,
            n,
            ROUTES_HASH_VERSION,
            canary.canary_id,
            f"canary {canary.canary_id} step {canary.step} ({canary.percent:g}% candidate): hash {n:.4f} "
            f"{'<' if index else '>='} {share:g} -> {'candidate' if index else 'baseline'}",
        )
    primary = [r for r in deployment.routes if r.role == "primary"]
    if not primary:
        raise FailedPrecondition(
            "deployment", f"deployment {deployment.name!r} has no routes yet (SetRoutes)"
        )
    ranges = bucket_ranges(len(primary), 1.0, [r.weight for r in primary])
    index = choose_variation(n, ranges)
    if index < 0:  # cumulative float weights can end a hair below 1: the last route takes the rest
        index = len(primary) - 1
    return Decision(
        primary[index].version,
        index,
        "",
        n,
        ROUTES_HASH_VERSION,
        deployment.name,
        f"routes: hash {n:.4f} falls in route {index} "
        f"({primary[index].version}, weight {primary[index].weight:g})",
    )


def decide(deployment: DeploymentState, routing_key: str, rng: random.Random | None = None) -> Decision:
    return decide_from_hash(deployment, hash_value(deployment, routing_key, rng))
