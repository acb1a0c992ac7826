"""Simulation: how often a canary step with a monitoring period rolls back a candidate that
is exactly as good as its baseline, when the step is checked again and again while it lasts.

A step with a period is looked at on every check of the gateway's loop (every second by
default) until the period is over, so its outcome test is read many times. Many simulated
steps of binary outcomes (the same rate in both arms, the candidate's share of traffic as in
a 10% step) go through the canary's own judge (gateway_svc.canary_guardrails.judge_step),
looked at every `every` candidate outcomes up to `horizon`:

* with a period (the always-valid mSPRT, what such a step uses): the share of steps rolled
  back at any look stays at or below alpha;
* the fixed-horizon one-sided test read at every look instead (what a step that ends on its
  outcomes uses, read once): the share it would have rolled back.

    PYTHONPATH=. python -m bench.bench_canary_peeking [--runs 2000] [--horizon 2000] [--every 20] [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np

from dspyops.state import CanaryState
from gateway_svc.canary_guardrails import judge_step
from gateway_svc.statistics.summary import ArmSummary

RATE = 0.8
SHARE = 0.1  # the candidate's share of the step's traffic


def rolled_back(rng: np.random.Generator, canary: CanaryState, horizon: int, every: int) -> bool:
    cand = rng.random(horizon) < RATE
    base = rng.random(int(horizon * (1 - SHARE) / SHARE)) < RATE
    ratio = len(base) // horizon
    for n in range(every, horizon + 1, every):
        c = cand[:n]
        b = base[: n * ratio]
        results = judge_step(
            canary,
            ArmSummary(len(b), float(b.sum()), float(b.sum())),
            ArmSummary(len(c), float(c.sum()), float(c.sum())),
            None,
        )
        if results[0].failed:
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--horizon", type=int, default=2000)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 steps")
    args = parser.parse_args()
    if args.quick:
        args.runs = 200
    for label, seconds in (("with a period (mSPRT)", 3600), ("fixed-horizon test at every look", 0)):
        canary = CanaryState("c", "b", "t", (10.0, 100.0), 20, "binary", args.alpha, step_seconds=seconds)
        rng = np.random.default_rng(15)
        hits = sum(rolled_back(rng, canary, args.horizon, args.every) for _ in range(args.runs))
        print(
            f"{label}: {hits}/{args.runs} equal candidates rolled back = {hits / args.runs:.3f} "
            f"(alpha {args.alpha:g}, a look every {args.every} candidate outcomes up to {args.horizon})"
        )


if __name__ == "__main__":
    main()
