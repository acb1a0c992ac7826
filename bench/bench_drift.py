"""Simulation: false alarms and detection delay of the drift monitor's outcome-rate signal.

Many simulated streams of binary outcomes go through the monitor's own check
(gateway_svc.drift.check.check_drift), looked at every `every` outcomes, as the gateway's
loop looks at the records, up to `horizon` live outcomes per stream:

* no drift: the live rate equals the reference; the share of streams with any detection is
  the false-alarm rate, which the always-valid test keeps at or below alpha however often
  it looks;
* a drop of 0.1 and of 0.2 in the rate from the first live outcome: the live outcomes until
  the detection (median, 90th percentile, share detected within the horizon).

Both references: "offline" (a known score: the one-sample mSPRT) and "window" (the first
`reference_window` live outcomes at the reference rate, then the two-sample mSPRT).

    PYTHONPATH=. python -m bench.bench_drift [--runs 2000] [--horizon 5000] [--every 25]
"""

from __future__ import annotations

import argparse

import numpy as np

from dspyops.proto import events_pb2 as pb
from dspyops.state import DriftState
from gateway_svc.drift.check import Reference, check_drift
from gateway_svc.drift.window import WindowSummary
from gateway_svc.statistics.summary import ArmSummary

RATE = 0.8  # the reference outcome rate (an accuracy)


def monitor(reference: str, *, alpha: float = 0.05, min_outcomes: int = 100, window: int = 200) -> DriftState:
    return DriftState.from_proto(
        pb.DriftMonitor(
            enabled=True,
            metric=pb.BINARY,
            alpha=alpha,
            reference=reference,
            reference_window=window,
            min_outcomes=min_outcomes,
        ),
        1,
    )


def first_detection(live: np.ndarray, watched: DriftState, reference: Reference, every: int) -> int | None:
    """Live outcomes seen when the check first detects drift on this stream (None: never)."""
    successes = np.cumsum(live)
    for n in range(every, len(live) + 1, every):
        window = WindowSummary(1, predictions=n, live=ArmSummary.from_counts(int(successes[n - 1]), n))
        if check_drift(window, watched, reference).drifted:
            return n
    return None


def simulate(
    kind: str, drop: float, *, runs: int, horizon: int, every: int, seed: int, alpha: float = 0.05
) -> list[int | None]:
    """The first detection of each of `runs` streams whose live rate is RATE - drop."""
    rng = np.random.default_rng(seed)
    watched = monitor(kind, alpha=alpha)
    found: list[int | None] = []
    for _ in range(runs):
        if kind == "offline":
            reference = Reference("offline", RATE, 0, f"offline score {RATE}")
        else:
            ref = int(rng.binomial(watched.reference_window, RATE))
            summary = ArmSummary.from_counts(ref, watched.reference_window)
            reference = Reference("window", summary.mean, summary.n, "reference window", summary)
        live = rng.random(horizon) < RATE - drop
        found.append(first_detection(live, watched, reference, every))
    return found


def describe(found: list[int | None]) -> str:
    hits = [n for n in found if n is not None]
    share = len(hits) / len(found)
    if not hits:
        return f"detected in {share:.1%} of streams"
    p50, p90 = np.percentile(hits, [50, 90])
    return f"detected in {share:.1%} of streams; outcomes until detection: median {p50:.0f}, p90 {p90:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--horizon", type=int, default=5000)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 streams of up to 2000")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.horizon = 200, 2000
    print(
        f"drift monitor simulation: rate {RATE}, alpha {args.alpha}, {args.runs} streams of up to "
        f"{args.horizon} live outcomes, a check every {args.every} (min 100 outcomes; window reference: 200)"
    )
    for kind in ("offline", "window"):
        for seed, drop in enumerate((0.0, 0.1, 0.2)):
            sizes = {"runs": args.runs, "horizon": args.horizon, "every": args.every}
            found = simulate(kind, drop, **sizes, seed=seed, alpha=args.alpha)
            if drop == 0.0:
                alarms = sum(n is not None for n in found)
                rate = alarms / len(found)
                print(f"  {kind:8} no drift:  false-alarm rate {rate:.4f} ({alarms}/{len(found)})")
            else:
                print(f"  {kind:8} drop {drop:.1f}:  {describe(found)}")


if __name__ == "__main__":
    main()
