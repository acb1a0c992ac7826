"""A deployment's drift monitor: each signal of a check run now against its reference or
limit, and the monitor's detections over time (each at its window's last prediction); from
one GetDriftStatus reply. The reply keeps no history of checks that did not detect, so the
signal between detections is not drawn."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from dspyops.plots import new_figure
from dspyops.proto import gateway_pb2 as gpb


def drift_figure(status: gpb.DriftStatus) -> Figure:
    """Top: the signals now (bars) and their references/limits (markers); bottom: detections."""
    signals = list(status.signals)
    fig, (top, bottom) = new_figure(2)
    names = [s.signal for s in signals]
    top.bar(names, [s.value for s in signals], label="now")
    top.plot(names, [s.reference for s in signals], "_", markersize=30, color="red", gid="references")
    top.set(title=f"drift of {status.deployment} {status.version}", ylabel="value (red: reference / limit)")
    if not signals:
        top.text(0.5, 0.5, "no monitor", transform=top.transAxes, ha="center")
    for name in dict.fromkeys(d.signal for d in status.detections):
        found = [d for d in status.detections if d.signal == name]
        times = np.array([d.window.last_us for d in found], dtype="datetime64[us]")  # UTC
        bottom.plot(times, [d.statistics.value for d in found], "x", label=name, gid=f"detected:{name}")
    bottom.set(ylabel="value when detected", xlabel="time (UTC)")
    if status.detections:
        bottom.legend(loc="upper right")
    else:
        bottom.text(0.5, 0.5, "no detections", transform=bottom.transAxes, ha="center")
    return fig
