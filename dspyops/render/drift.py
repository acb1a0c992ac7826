"""A deployment's drift monitor as people read it: its settings, the signals of a check run
now, and its detections."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.table import Table

from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb


def monitor_text(m: pb.DriftMonitor) -> str:
    if not m.enabled:
        return "off"
    reference = f"window of {m.reference_window} outcomes" if m.reference == "window" else "offline score"
    watched = [
        f"{name} > {value:g}"
        for name, value in (
            ("error rate", m.max_error_rate),
            ("latency p95 ms", m.max_latency_p95_ms),
            ("cost per prediction", m.max_cost_per_prediction),
        )
        if value > 0
    ]
    return (
        f"{pb.MetricKind.Name(m.metric).lower()} outcomes vs the {reference}, alpha {m.alpha:g}, "
        f"min {m.min_outcomes} outcomes" + (f"; alarms at {', '.join(watched)}" if watched else "")
    )


def _when(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S") if us else "-"


def status_lines(status: gpb.DriftStatus) -> list[str]:
    if not status.HasField("monitor"):
        return [f"{status.deployment}: no drift monitor (off)"]
    w = status.window
    lines = [
        f"{status.deployment}: drift monitor on {status.version or '(no serving version)'}: "
        f"{monitor_text(status.monitor)} (armed at position {status.armed_position})",
        f"  window: {w.n} predictions, {w.outcomes} outcomes, {_when(w.first_us)} .. {_when(w.last_us)}",
        f"  reference: {status.reference or '(none)'}",
    ]
    if status.check:
        lines.append(f"  last check here: {status.check}")
    return lines


def signals_table(status: gpb.DriftStatus) -> Table:
    table = Table(title="signals (a check run now)")
    for column in ("signal", "value", "reference / threshold", "n", "p", "drifted", "note"):
        table.add_column(column)
    for s in status.signals:
        table.add_row(
            s.signal,
            f"{s.value:.4g}",
            f"{s.reference:.4g}",
            str(s.n),
            f"{s.p_value:.3g}" if s.signal == "outcome_rate" else "-",
            "yes" if s.drifted else "no",
            s.note,
        )
    return table


def detection_lines(status: gpb.DriftStatus) -> list[str]:
    if not status.detections:
        return ["  detections: none"]
    return ["  detections:"] + [
        f"    {d.version} {d.signal}: {d.statistics.value:.4g} vs {d.statistics.reference:.4g} "
        f"(n={d.statistics.n}" + (f", p={d.statistics.p_value:.3g})" if d.signal == "outcome_rate" else ")")
        for d in status.detections
    ]


def detected_text(p: pb.DriftDetected) -> str:
    return p.reason or f"drift of {p.version} on {p.deployment}: {p.signal}"
