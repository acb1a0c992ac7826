"""The drift check as a pure function (gateway_svc.drift.check), its window
(gateway_svc.drift.window), the one-sample mSPRT behind an offline reference, and the
simulation like the A/A ones: no drift keeps the false-alarm rate at alpha however often
the monitor looks, a drop of 0.2 is found, and peeking at a fixed-horizon test does not keep
the bound (so the simulation can fail)."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

from dspyops.commands import Commands
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.fold import fold
from dspyops.history import History
from dspyops.proto import events_pb2 as pb
from dspyops.state import DriftState
from gateway_svc.drift.check import Reference, check_drift
from gateway_svc.drift.monitor import DriftMonitors
from gateway_svc.drift.window import WindowSummary, summarize, trace_cost
from gateway_svc.records import DriftRow, PredictionRecord
from gateway_svc.records.sqlite import SQLitePredictionStore
from gateway_svc.statistics.msprt import msprt_one_sample_p_value, msprt_p_value
from gateway_svc.statistics.summary import ArmSummary

ALPHA = 0.05
RATE = 0.8


def binom_upper(runs: int, rate: float) -> int:
    """Largest false-alarm count still consistent with ``rate`` (one-sided, 0.1% level)."""
    return int(stats.binom.ppf(0.999, runs, rate))


def monitor(**fields: object) -> DriftState:
    base: dict[str, object] = {
        "enabled": True,
        "metric": pb.BINARY,
        "alpha": ALPHA,
        "reference": "offline",
        "reference_window": 200,
        "min_outcomes": 100,
    }
    return DriftState.from_proto(pb.DriftMonitor(**{**base, **fields}), 7)  # type: ignore[arg-type]


OFFLINE = Reference("offline", RATE, 0, "offline score 0.8")
OFFLINE_2 = Reference("offline", 2.0, 0, "offline score 2.0")  # a continuous one


def signal(check: object, name: str) -> pb.DriftSignal:
    return next(s for s in check.signals if s.signal == name)  # type: ignore[attr-defined]


# ----------------------------------------------------------------- the one-sample mSPRT


def test_one_sample_msprt_is_the_two_sample_one_against_a_reference_known_exactly() -> None:
    """With the reference arm's variance gone (n -> infinity) the two-sample p-value tends to
    the one-sample one; equal means give 1; a clear drop gives a tiny p; too few give 1."""
    live = ArmSummary.from_counts(700, 1000)
    huge = ArmSummary.from_counts(80_000_000, 100_000_000)
    one = msprt_one_sample_p_value(live, RATE, metric="binary")
    # the pooled variance of the two-sample form is about the reference's: close, not equal
    assert one == pytest.approx(msprt_p_value(huge, live, metric="binary"), rel=0.2)
    assert one < 1e-6
    assert msprt_one_sample_p_value(ArmSummary.from_counts(80, 100), RATE, metric="binary") == 1.0
    assert msprt_one_sample_p_value(ArmSummary(), RATE, metric="binary") == 1.0
    cont = ArmSummary.from_values([1.0, 2.0, 3.0, 2.5, 1.5] * 40)
    assert msprt_one_sample_p_value(cont, cont.mean, metric="continuous") == 1.0
    assert msprt_one_sample_p_value(cont, 5.0, metric="continuous") < 1e-6
    with pytest.raises(ValueError, match="reference"):
        msprt_one_sample_p_value(live, 1.5, metric="binary")


# ----------------------------------------------------------------- the check


def test_outcome_rate_drifts_only_downwards_and_only_with_enough_outcomes() -> None:
    worse = WindowSummary(1, predictions=400, live=ArmSummary.from_counts(260, 400))
    better = WindowSummary(1, predictions=400, live=ArmSummary.from_counts(390, 400))
    few = WindowSummary(1, predictions=50, live=ArmSummary.from_counts(10, 50))
    s = signal(check_drift(worse, monitor(), OFFLINE), "outcome_rate")
    assert s.drifted and s.p_value <= ALPHA and s.value == pytest.approx(0.65) and s.reference == RATE
    assert s.n == 400
    s = signal(check_drift(better, monitor(), OFFLINE), "outcome_rate")
    assert not s.drifted and s.p_value <= ALPHA  # significant, but better: no drift
    s = signal(check_drift(few, monitor(), OFFLINE), "outcome_rate")
    assert not s.drifted and "50 of 100 live outcomes" in s.note
    s = signal(check_drift(worse, monitor(), None), "outcome_rate")
    assert not s.drifted and "no reference" in s.note


def test_a_window_reference_waits_for_its_window_then_compares_two_samples() -> None:
    ref = ArmSummary.from_counts(160, 200)
    partial = Reference("window", 0.8, 150, "first outcomes", ArmSummary.from_counts(120, 150))
    full = Reference("window", ref.mean, 200, "first 200 outcomes", ref)
    window = WindowSummary(1, predictions=800, live=ArmSummary.from_counts(300, 600))
    s = signal(check_drift(window, monitor(reference="window"), partial), "outcome_rate")
    assert not s.drifted and "150 of 200" in s.note
    s = signal(check_drift(window, monitor(reference="window"), full), "outcome_rate")
    assert s.drifted and s.reference_n == 200
    assert s.p_value == msprt_p_value(ref, window.live, metric="binary")


def test_thresholds_error_rate_latency_p95_and_cost() -> None:
    latencies = tuple(float(x) for x in range(1, 201))  # p95 of 1..200 (numpy's linear): 190.05
    window = WindowSummary(
        1,
        predictions=220,
        errors=20,
        live=ArmSummary.from_counts(176, 220),
        latencies_ms=latencies,
        costs_usd=(0.002,) * 150,
    )
    watched = monitor(max_error_rate=0.05, max_latency_p95_ms=190.0, max_cost_per_prediction=0.001)
    check = check_drift(window, watched, OFFLINE)
    assert [s.signal for s in check.drifted] == ["error_rate", "latency_p95", "cost_per_prediction"]
    assert signal(check, "error_rate").value == pytest.approx(20 / 220)
    assert signal(check, "latency_p95").value == pytest.approx(float(np.quantile(latencies, 0.95)))
    assert signal(check, "cost_per_prediction").value == pytest.approx(0.002)
    relaxed = monitor(max_error_rate=0.1, max_latency_p95_ms=191.0, max_cost_per_prediction=0.01)
    assert check_drift(window, relaxed, OFFLINE).drifted == ()
    # unwatched (0) signals are not reported; too few predictions are not judged
    assert [s.signal for s in check_drift(window, monitor(), OFFLINE).signals] == ["outcome_rate"]
    small = WindowSummary(1, predictions=20, errors=20)
    s = signal(check_drift(small, watched, OFFLINE), "error_rate")
    assert not s.drifted and "20 of 100 predictions" in s.note


def test_the_window_splits_reference_and_live_outcomes_and_reads_costs_from_kept_traces() -> None:
    trace = json.dumps([{"name": "self", "usage": {"cost_usd": 0.25}}, {"name": "classify"}])
    rows = [
        DriftRow(10, 5.0, False, 1.0, trace),
        DriftRow(11, 7.0, True, None),
        DriftRow(12, 6.0, False, 0.0, json.dumps([{"name": "self"}])),
        DriftRow(13, 9.0, False, 1.0, "not json"),
        DriftRow(14, 8.0, False, None),
    ]
    window = summarize(rows, 3, reference_window=2)
    assert (window.predictions, window.errors, window.first_us, window.last_us) == (5, 1, 10, 14)
    assert window.reference == ArmSummary.from_values([1.0, 0.0])
    assert window.live == ArmSummary.from_values([1.0])
    assert window.latencies_ms == (5.0, 6.0, 9.0, 8.0)
    assert window.costs_usd == (0.25, 0.0)
    assert trace_cost("{}") is None and trace_cost("[]") is None


# ----------------------------------------------------------------- simulation (like the A/A ones)


def _streams(rng: np.random.Generator, runs: int, horizon: int, rate: float) -> np.ndarray:
    return np.cumsum(rng.random((runs, horizon)) < rate, axis=1)


@pytest.mark.parametrize("kind", ["offline", "window"])
def test_no_drift_false_alarm_rate_stays_at_alpha_with_a_look_every_50_outcomes(kind: str) -> None:
    """1000 streams at the reference rate, checked every 50 live outcomes up to 2000: the
    share with any detection is at most alpha (within the binomial margin). Reading a
    fixed-horizon z-test at the same looks ("naive peeking") goes over it: the simulation
    can fail."""
    rng = np.random.default_rng(20261201)
    runs, horizon, every = 1000, 2000, 50
    watched = monitor(reference=kind)
    successes = _streams(rng, runs, horizon, RATE)
    alarms = naive = 0
    for run in range(runs):
        if kind == "offline":
            reference = OFFLINE
        else:
            ref = ArmSummary.from_counts(int(rng.binomial(200, RATE)), 200)
            reference = Reference("window", ref.mean, 200, "first 200", ref)
        hit = naive_hit = False
        for n in range(every, horizon + 1, every):
            live = ArmSummary.from_counts(int(successes[run, n - 1]), n)
            window = WindowSummary(1, predictions=n, live=live)
            hit = hit or bool(check_drift(window, watched, reference).drifted)
            if n >= watched.min_outcomes:  # a one-sided z-test against the offline rate
                z = (live.mean - RATE) / np.sqrt(RATE * (1 - RATE) / n)
                naive_hit = naive_hit or float(special.ndtr(z)) < ALPHA
        alarms += hit
        naive += naive_hit
    limit = binom_upper(runs, ALPHA)
    print(f"drift {kind}: false alarms {alarms / runs:.3f}, naive peeking {naive / runs:.3f}")
    assert alarms <= limit
    assert naive > limit


@pytest.mark.parametrize("kind", ["offline", "window"])
def test_no_drift_on_skewed_continuous_scores_stays_at_alpha(kind: str) -> None:
    """The same for a continuous metric (exponential scores, mean 2): the sample variance
    stands in for the known one, against the true mean or a reference window of 200."""
    rng = np.random.default_rng(11)
    runs, horizon, every = 500, 2000, 50
    watched = monitor(metric=pb.CONTINUOUS, reference=kind)
    alarms = 0
    for _ in range(runs):
        ref_draws = rng.exponential(2.0, 200)
        ref = ArmSummary.from_values(ref_draws)
        reference = OFFLINE_2 if kind == "offline" else Reference("window", ref.mean, 200, "first 200", ref)
        draws = rng.exponential(2.0, horizon)
        sums, sums_sq = np.cumsum(draws), np.cumsum(draws * draws)
        for n in range(every, horizon + 1, every):
            live = ArmSummary(n, float(sums[n - 1]), float(sums_sq[n - 1]))
            if check_drift(WindowSummary(1, predictions=n, live=live), watched, reference).drifted:
                alarms += 1
                break
    print(f"drift continuous {kind}: false alarms {alarms / runs:.3f}")
    assert alarms <= binom_upper(runs, ALPHA)


def test_a_drop_of_0_2_is_detected_in_nearly_every_stream_within_600_outcomes() -> None:
    rng = np.random.default_rng(5)
    runs, horizon, every = 200, 600, 50
    successes = _streams(rng, runs, horizon, RATE - 0.2)
    found = 0
    for run in range(runs):
        for n in range(every, horizon + 1, every):
            window = WindowSummary(
                1, predictions=n, live=ArmSummary.from_counts(int(successes[run, n - 1]), n)
            )
            if check_drift(window, monitor(), OFFLINE).drifted:
                found += 1
                break
    assert found >= 0.95 * runs


# ----------------------------------------------------------------- decided once


def test_two_checkers_on_the_same_state_append_one_detection(tmp_path: Path) -> None:
    """Two gateways' monitors (each its own connection to one SQLite log, one records file)
    check the same state at once: one DriftDetected is appended, the other check is ABORTED
    and says so; re-checking on the new state appends nothing (once per version and signal)."""
    log = str(tmp_path / "log.db")
    records = SQLitePredictionStore(tmp_path / "log.db.predictions")
    stores = [open_store(log), open_store(log, create=False)]
    try:
        stores[0].append(
            "deployment-web", [new_event(pb.DeploymentCreated(deployment="web", program="p"))], 0
        )
        routes = [pb.Route(version="1.0.0", weight=1.0, role=pb.PRIMARY)]
        stores[0].append("deployment-web", [new_event(pb.RoutesSet(deployment="web", routes=routes))], 1)
        watch = pb.DriftMonitor(enabled=True, reference="window", reference_window=50, min_outcomes=50)
        stores[0].append(
            "deployment-web", [new_event(pb.DriftMonitorSet(deployment="web", monitor=watch))], 2
        )
        state = fold(stores[0].read(0, 100))
        for i in range(150):  # 50 at 0.9 (the reference), then 100 at 0.2
            asyncio.run(records.record(_record(f"p{i:03d}", i, state.position)))
            records.add_outcome(f"p{i:03d}", float(i % 10 != 0) if i < 50 else float(i % 5 == 0))
        monitors = [
            DriftMonitors(Commands(store, lambda: state, History(store)), records) for store in stores
        ]
        barrier = threading.Barrier(2)

        def check(monitor: DriftMonitors) -> object:
            barrier.wait()
            return monitor.evaluate(state, "web")

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(check, monitors))
        appended = [r for r in results if r.appended is not None]  # type: ignore[attr-defined]
        aborted = [r for r in results if r.appended is None]  # type: ignore[attr-defined]
        assert len(appended) == 1 and len(aborted) == 1
        assert "another writer" in aborted[0].reason  # type: ignore[attr-defined]
        events = stores[1].read(0, 100)
        assert [e.type.rsplit(".", 1)[-1] for e in events].count("DriftDetected") == 1
        fresh = fold(events)
        assert fresh.deployments["web"].drift.detected("1.0.0", "outcome_rate")  # type: ignore[union-attr]
        again = [m.evaluate(fresh, "web") for m in monitors]
        assert all(r is not None and r.appended is None and r.check.drifted for r in again)
        assert [e.type for e in stores[1].read(0, 100)] == [e.type for e in events]
    finally:
        records.close()
        for store in stores:
            store.close()


def _record(prediction_id: str, i: int, position: int) -> PredictionRecord:
    return PredictionRecord(
        prediction_id, "web", "p", "1.0.0", 0, "", "", 0.5, 2, "", position, 5.0, "", 1_000_000 + i
    )
