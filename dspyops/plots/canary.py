"""A deployment's canaries: the candidate's traffic percent over time (steps), and at each
decision every guardrail's value against its limit; from the deployment's stream as ReadLog
returns it (CanaryStarted, CanaryAdvanced, CanaryEnded)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from matplotlib.figure import Figure

from dspyops.plots import new_figure
from dspyops.proto import events_pb2 as pb


def canary_figure(deployment: str, events: Iterable[pb.Event]) -> Figure:
    """Top: the candidate's percent at each canary event; bottom: guardrail values at each
    decision (solid) and their limits (dotted); the outcome guardrail's is its p-value vs alpha."""
    times: list[int] = []
    percents: list[float] = []
    checks: dict[str, tuple[list[int], list[float], list[float]]] = {}
    for event in events:
        kind = event.payload.WhichOneof("kind")
        at = event.recorded_at.ToMicroseconds()
        check: pb.GuardrailCheck | None = None
        if kind == "canary_started":
            steps = event.payload.canary_started.canary.steps
            percents.append(steps[0] if steps else 0.0)
        elif kind == "canary_advanced":
            percents.append(event.payload.canary_advanced.percent)
            check = event.payload.canary_advanced.check
        elif kind == "canary_ended":
            percents.append(100.0 if event.payload.canary_ended.promoted else 0.0)
            check = event.payload.canary_ended.check
        else:
            continue
        times.append(at)
        for result in check.guardrails if check is not None else ():
            # the outcome guardrail's limit is alpha, so its p-value is what is compared
            value = result.p_value if result.guardrail == "outcome" else result.value
            series = checks.setdefault(result.guardrail, ([], [], []))
            series[0].append(at)
            series[1].append(value)
            series[2].append(result.threshold)
    fig, (top, bottom) = new_figure(2)
    top.step(np.array(times, dtype="datetime64[us]"), percents, "o-", where="post", gid="percent")
    top.set(title=f"canary on {deployment}", ylabel="candidate traffic %", ylim=(0, 105))
    if not times:
        top.text(0.5, 0.5, "no canary in the log", transform=top.transAxes, ha="center")
    for name, (at_us, values, limits) in checks.items():
        when = np.array(at_us, dtype="datetime64[us]")
        (line,) = bottom.plot(when, values, "o-", label=name, gid=f"value:{name}")
        bottom.plot(when, limits, ":", color=line.get_color(), gid=f"limit:{name}")
    bottom.set(ylabel="guardrail (outcome: p)", xlabel="time (UTC)")
    if checks:
        bottom.legend(loc="upper right")
    return fig
