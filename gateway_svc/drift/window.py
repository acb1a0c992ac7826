"""What a drift check looks at: the serving version's predictions since the monitor was armed,
reduced to the outcomes (split into the reference window and the live ones), error count,
latencies and costs, with the window's first and last prediction time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from dspyops.proto import events_pb2 as pb
from dspyops.tracing import ROOT_NAME
from gateway_svc.records import DriftRow
from gateway_svc.statistics.summary import ArmSummary


@dataclass(frozen=True)
class WindowSummary:
    from_position: int
    predictions: int = 0
    errors: int = 0
    first_us: int = 0
    last_us: int = 0
    reference: ArmSummary = field(
        default_factory=ArmSummary
    )  # the first `reference_window` outcomes (window reference)
    live: ArmSummary = field(
        default_factory=ArmSummary
    )  # the outcomes after them (all of them with an offline reference)
    latencies_ms: tuple[float, ...] = ()  # of the predictions that answered
    costs_usd: tuple[float, ...] = ()  # of the predictions whose trace was kept

    @property
    def outcomes(self) -> int:
        return self.reference.n + self.live.n

    def to_proto(self) -> pb.DriftWindow:
        return pb.DriftWindow(
            from_position=self.from_position,
            n=self.predictions,
            first_us=self.first_us,
            last_us=self.last_us,
            outcomes=self.outcomes,
        )


def summarize(rows: Sequence[DriftRow], from_position: int, *, reference_window: int = 0) -> WindowSummary:
    """The window of `rows` (in recorded order): the first `reference_window` outcomes go to
    the reference, the rest to the live summary."""
    reference: list[float] = []
    live: list[float] = []
    latencies: list[float] = []
    costs: list[float] = []
    errors = 0
    for row in rows:
        if row.failed:
            errors += 1
        else:
            latencies.append(row.latency_ms)
        if row.outcome is not None:
            (reference if len(reference) < reference_window else live).append(row.outcome)
        if row.trace_json:
            cost = trace_cost(row.trace_json)
            if cost is not None:
                costs.append(cost)
    return WindowSummary(
        from_position=from_position,
        predictions=len(rows),
        errors=errors,
        first_us=rows[0].recorded_at_us if rows else 0,
        last_us=rows[-1].recorded_at_us if rows else 0,
        reference=ArmSummary.from_values(reference),
        live=ArmSummary.from_values(live),
        latencies_ms=tuple(latencies),
        costs_usd=tuple(costs),
    )


def trace_cost(text: str) -> float | None:
    """A kept trace's cost: its root call's (which includes every nested LM call); None when
    the text holds no root call with a cost."""
    try:
        calls = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(calls, list):
        return None
    for call in calls:
        if isinstance(call, dict) and call.get("name") == ROOT_NAME:
            usage = call.get("usage", {})  # the proto's JSON mapping leaves a zero cost out
            cost = usage.get("cost_usd", 0.0) if isinstance(usage, dict) else None
            return float(cost) if isinstance(cost, int | float) else None
    return None
