"""The drift check, a pure function: a window of the serving version's predictions, the
monitor and the reference -> one DriftSignal per signal, each judged or saying why not.

Outcome rate: the always-valid mSPRT (gateway_svc.statistics.msprt), one-sample against an
offline score, two-sample against a reference window of live outcomes. It may be read at
every check: by Ville's inequality the chance that any check of a stream with no drift has
p <= alpha is at most alpha. A drift is p <= alpha with the live mean below the reference
(the test is two-sided; requiring the worse direction keeps the false-alarm rate under
alpha). Error rate, latency p95 and cost per prediction are compared with their thresholds
(0: not watched) once `min_outcomes` predictions are in the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dspyops.proto import events_pb2 as pb
from dspyops.state import DriftState
from gateway_svc.drift.window import WindowSummary
from gateway_svc.statistics.msprt import msprt_one_sample_p_value, msprt_p_value
from gateway_svc.statistics.summary import ArmSummary


@dataclass(frozen=True)
class Reference:
    """What the live outcome rate is compared with."""

    kind: str  # offline | window
    mean: float
    n: int  # the window's outcomes (0 for an offline score)
    text: str  # in words, for the event and the status
    summary: ArmSummary | None = None  # the window's outcomes


@dataclass(frozen=True)
class DriftCheck:
    signals: tuple[pb.DriftSignal, ...]

    @property
    def drifted(self) -> tuple[pb.DriftSignal, ...]:
        return tuple(s for s in self.signals if s.drifted)


def check_drift(window: WindowSummary, monitor: DriftState, reference: Reference | None) -> DriftCheck:
    signals = [_outcome_rate(window, monitor, reference)]
    enough = window.predictions >= monitor.min_outcomes
    short = f"{window.predictions} of {monitor.min_outcomes} predictions in the window"
    if monitor.max_error_rate > 0:
        rate = window.errors / window.predictions if window.predictions else 0.0
        limit = monitor.max_error_rate
        signals.append(_threshold("error_rate", rate, limit, window.predictions, enough, short))
    if monitor.max_latency_p95_ms > 0:
        n = len(window.latencies_ms)
        p95 = float(np.quantile(window.latencies_ms, 0.95)) if n else 0.0
        ok = n >= monitor.min_outcomes
        note = f"{n} of {monitor.min_outcomes} answered predictions in the window"
        signals.append(_threshold("latency_p95", p95, monitor.max_latency_p95_ms, n, ok, note))
    if monitor.max_cost_per_prediction > 0:
        n = len(window.costs_usd)
        cost = float(np.mean(window.costs_usd)) if n else 0.0
        ok = n >= monitor.min_outcomes
        note = f"{n} of {monitor.min_outcomes} predictions with a kept trace (capture policy: traces)"
        signals.append(_threshold("cost_per_prediction", cost, monitor.max_cost_per_prediction, n, ok, note))
    return DriftCheck(tuple(signals))


def _outcome_rate(window: WindowSummary, monitor: DriftState, reference: Reference | None) -> pb.DriftSignal:
    live = window.live
    signal = pb.DriftSignal(signal="outcome_rate", value=live.mean, n=live.n, p_value=1.0)
    if reference is None:
        signal.note = (
            "no reference: the serving version has no offline evaluation score, "
            "nor a job's final score (a rate, for binary)"
        )
        return signal
    signal.reference = reference.mean
    signal.reference_n = reference.n
    if reference.kind == "window" and reference.n < monitor.reference_window:
        signal.note = f"reference window: {reference.n} of {monitor.reference_window} outcomes"
        return signal
    if live.n < monitor.min_outcomes:
        signal.note = f"{live.n} of {monitor.min_outcomes} live outcomes"
        return signal
    metric = monitor.metric
    if reference.summary is not None:
        p = msprt_p_value(reference.summary, live, metric=metric)  # type: ignore[arg-type]
    else:
        p = msprt_one_sample_p_value(live, reference.mean, metric=metric)  # type: ignore[arg-type]
    signal.p_value = p
    signal.drifted = p <= monitor.alpha and live.mean < reference.mean
    return signal


def _threshold(name: str, value: float, limit: float, n: int, enough: bool, short: str) -> pb.DriftSignal:
    signal = pb.DriftSignal(signal=name, value=value, reference=limit, n=n)
    if not enough:
        signal.note = short
    else:
        signal.drifted = value > limit
    return signal
