"""Jobs as people read them: a job's event stream as a progress bar with a line per result
(or JSON lines), the jobs table, one job's summary."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.render.console import console, print_json
from dspyops.render.usage import lm_calls


def job_state(value: int) -> str:
    return opb.JobState.Name(value).lower()


def render_job_events(events: Iterable[opb.OptimizationEvent], as_json: bool) -> opb.OptimizationEvent | None:
    """Print a job's event stream: JSON lines, or a rich progress bar with a line per result.
    Returns the last event (Completed / Failed / Cancelled / Interrupted), None if none came."""
    last = None
    if as_json:
        for event in events:
            print_json(event)
            last = event
        return last
    # the first event before the bar: an error (NOT_FOUND for an unknown job) is raised by
    # the stream's first read, and must not print after an empty bar
    stream = iter(events)
    first = next(stream, None)
    if first is None:
        return None
    events = chain([first], stream)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("queued", total=None, note="")
        for event in events:
            last = event
            kind = event.WhichOneof("kind")
            if kind is None:
                continue
            p: Any = getattr(event, kind)  # the oneof's message, whichever kind it is
            if kind == "accepted":
                bar.update(task, description=f"job {p.job_id}")
            elif kind == "started":
                bar.update(task, total=p.planned_trials or None, note=p.optimizer)
            elif kind == "baseline":
                bar.console.print(f"  baseline score: {p.score:.3f} on {p.examples} examples")
            elif kind == "progress":
                bar.update(task, note=p.message[:60])
            elif kind == "trial":
                bar.update(task, completed=p.trial, note=f"best {p.best_score:.3f}")
                bar.console.print(
                    f"  trial {p.trial}: score {p.score:.3f}  best {p.best_score:.3f}  {p.candidate[:70]}"
                )
            elif kind == "completed":
                bar.update(task, completed=bar.tasks[0].total or p.usage.lm_calls, note="done")
                same = "  (the same artifact as this existing version: nothing new registered)"
                bar.console.print(
                    f"  [green]completed[/green]: {p.program} {p.version}"
                    f"{same if p.existing_version else ''}  score {p.final_score:.3f} "
                    f"(baseline {p.baseline_score:.3f}, {p.improvement:+.3f})  gate: {p.gate_reason}  "
                    f"{lm_calls(p.usage)}, {p.wall_seconds:.1f}s"
                )
            elif kind == "claimed":
                bar.console.print(f"  claimed by {escape(p.owner or '?')} (attempt {p.attempt})")
            elif kind == "retried":  # the next attempt starts from nothing: so does the bar
                why = p.reason or f"the lease of {p.lost_owner or '?'} expired"
                bar.update(task, completed=0, note=f"attempt {p.attempt}")
                bar.console.print(f"  [yellow]retry[/yellow], attempt {p.attempt}: {escape(why)}")
            elif kind == "cancel_requested":
                bar.console.print("  cancel requested" + (f": {escape(p.reason)}" if p.reason else ""))
            elif kind in ("failed", "cancelled", "interrupted"):
                spent = f" ({lm_calls(p.usage)})" if kind == "cancelled" and p.HasField("usage") else ""
                bar.console.print(
                    f"  [red]{kind}[/red]: {getattr(p, 'error', '') or getattr(p, 'reason', '')}{spent}"
                )
    return last


def final_text(job: opb.Job) -> str:
    """A final score only for a job that has one: 0.000 for a job that failed or is still
    running reads as a real score."""
    return f"{job.final_score:.3f}" if job.state == opb.SUCCEEDED or job.final_score else "-"


_ENDED = (opb.SUCCEEDED, opb.FAILED, opb.CANCELLED, opb.INTERRUPTED)


def jobs_table(jobs: Iterable[opb.Job]) -> Table:
    table = Table(title="jobs")
    columns = (
        "job",
        "program",
        "optimizer",
        "state",
        "baseline",
        "final",
        "trials",
        "LM calls",
        "wall",
        "version",
    )
    for column in columns:
        table.add_column(column)
    for job in jobs:
        table.add_row(
            job.job_id,
            job.program,
            job.optimizer,
            job_state(job.state),
            f"{job.baseline_score:.3f}",
            final_text(job),
            str(job.trials),
            ended_text(job, str(job.lm_calls)),
            ended_text(job, f"{job.wall_seconds:.1f}s"),
            job.version or "-",
        )
    return table


def ended_text(job: opb.Job, text: str) -> str:
    """What only an ended job has (its LM calls, its wall time): "-" before it ends."""
    return text if job.state in _ENDED else "-"


def job_line(job: opb.Job) -> str:
    """One job in a line (`dspyops jobs get`)."""
    line = (
        f"job {job.job_id}: {job.optimizer} on {job.program}, {job_state(job.state)}; "
        f"baseline {job.baseline_score:.3f}, final {final_text(job)} (best {job.best_score:.3f}), "
        f"{job.trials} trials"
    )
    if job.wall_seconds:
        line += f"; {job.lm_calls} LM calls, {job.wall_seconds:.1f}s wall"
    if job.owner:
        line += f"; run by {job.owner}"
    if job.attempt > 1 or job.max_attempts > 1:
        line += f"; attempt {job.attempt} of {job.max_attempts}"
    if job.version:
        line += f"; registered {job.version}"
    if job.error:
        line += f"; error: {job.error[:200]}"
    return line


def scores_table(title: str, results: Sequence[tuple[str, pb.JobCompleted]]) -> Table:
    """Completed jobs side by side: (optimizer, JobCompleted) -> baseline, optimized, cost."""
    table = Table(title=title)
    columns = ("optimizer", "version", "baseline", "optimized", "improvement", "LM calls", "replayed")
    for column in (*columns, "seconds"):
        table.add_column(column)
    for name, done in results:
        table.add_row(
            name,
            done.version,
            f"{done.baseline_score:.3f}",
            f"{done.final_score:.3f}",
            f"{done.improvement:+.3f}",
            str(done.usage.lm_calls),
            str(done.usage.replayed_lm_calls),
            f"{done.wall_seconds:.1f}",
        )
    return table
