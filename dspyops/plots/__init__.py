"""Plots of what the client API returns, as matplotlib Figures: one module per plot, each a
pure function from reply messages to a Figure, and `save` to write it as a PNG. matplotlib is
an optional extra (`dspyops[plots]`), so this package is imported only by `dspyops plot`."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a screen: works on servers and in CI

from matplotlib.axes import Axes
from matplotlib.figure import Figure


def new_figure(rows: int = 1) -> tuple[Figure, list[Axes]]:
    """A Figure with `rows` stacked axes sharing nothing (no pyplot: no global state)."""
    fig = Figure(figsize=(8, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    return fig, list(axes)


def save(fig: Figure, out: str | Path) -> Path:
    """Write `fig` to `out` (PNG unless the suffix names another format matplotlib knows)."""
    path = Path(out)
    fig.savefig(path, dpi=110)
    return path
