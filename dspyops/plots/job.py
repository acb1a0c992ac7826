"""A job's trials: each trial's score and the best so far, by trial, with the baseline as a
horizontal line; from the job's stream as ReadLog returns it (`job-<id>` events)."""

from __future__ import annotations

from collections.abc import Iterable

from matplotlib.figure import Figure

from dspyops.plots import new_figure
from dspyops.proto import events_pb2 as pb


def job_figure(job_id: str, events: Iterable[pb.Event]) -> Figure:
    """Trial scores (dots), best so far (steps) and the baseline (dashed) of job `job_id`."""
    trials, scores, best = [], [], []
    baseline: float | None = None
    final: float | None = None
    for event in events:
        kind = event.payload.WhichOneof("kind")
        if kind == "baseline_evaluated":
            baseline = event.payload.baseline_evaluated.score
        elif kind == "trial_completed":
            trial = event.payload.trial_completed
            trials.append(trial.trial)
            scores.append(trial.score)
            best.append(trial.best_score)
        elif kind == "job_completed":
            final = event.payload.job_completed.final_score
    fig, (ax,) = new_figure()
    ax.plot(trials, scores, "o", label="trial score", gid="trials")
    ax.step(trials, best, where="post", label="best so far", gid="best")
    if baseline is not None:
        ax.axhline(baseline, linestyle="--", color="grey", label=f"baseline {baseline:.3f}", gid="baseline")
    title = f"job {job_id}"
    if final is not None:
        title += f": final {final:.3f}"
    ax.set(title=title, xlabel="trial", ylabel="score")
    if not trials:
        ax.text(0.5, 0.5, "no trials recorded", transform=ax.transAxes, ha="center")
    ax.legend(loc="lower right")
    return fig
