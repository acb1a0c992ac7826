"""`dspyops plot job|...`: PNG plots of what the client API returns (dspyops.plots), one
`--out FILE` each. matplotlib is optional (`dspyops[plots]`): imported only here, on use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dspyops.cli.command import json_option, rpc_command
from dspyops.cli.session import Session
from dspyops.names import deployment_stream, job_stream
from dspyops.proto import events_pb2 as pb
from dspyops.render.console import console, print_json

_MISSING = "plot: matplotlib is not installed: pip install 'dspyops[plots]'"


@click.group()
def plot() -> None:
    """Plots as PNG files (matplotlib, the `plots` extra): job, ..."""


def _out_option(f: Any) -> Any:
    return click.option(
        "--out", required=True, type=click.Path(dir_okay=False, writable=True), help="the PNG file to write"
    )(f)


def _plots() -> Any:
    """dspyops.plots, or a one-line error naming the extra when matplotlib is missing."""
    try:
        import dspyops.plots as plots
    except ImportError:
        raise SystemExit(_MISSING) from None
    return plots


def _write(plots: Any, fig: Any, out: str) -> None:
    try:
        path = plots.save(fig, out)
    except (OSError, ValueError) as exc:  # an unwritable path, a format matplotlib lacks
        raise SystemExit(f"plot: --out {out}: {exc}") from None
    console.print(f"wrote {Path(path)}", highlight=False)


@rpc_command(plot, "job", "Optimizer.ReadLog")
@click.argument("job_id")
@_out_option
@json_option
@click.pass_obj
def plot_job(session: Session, job_id: str, out: str, as_json: bool) -> int:
    """a job's trial scores and best so far by trial, its baseline as a line (its stream;
    GetJob first resolves the id and answers NOT_FOUND)."""
    plots = _plots()
    from dspyops.plots.job import job_figure

    with session.optimizer() as opt:
        job = opt.get_job(job_id)  # NOT_FOUND for an unknown id, before anything is drawn
        events: list[pb.Event] = []
        after = 0
        while True:  # the whole stream, page by page
            page = opt.read_log(after, 1000, job_stream(job.job_id))
            events.extend(e for e in page.events if e.stream == job_stream(job.job_id))
            if page.scanned_to <= after or page.scanned_to >= page.head:
                break
            after = page.scanned_to
    if as_json:
        for event in events:
            print_json(event)
    _write(plots, job_figure(job.job_id, events), out)
    return 0


@rpc_command(plot, "experiment", "Gateway.GetExperimentResults")
@click.argument("deployment")
@click.option("--source", default="", help='whose outcomes: "" human ones, or "evaluator:<name>"')
@_out_option
@json_option
@click.pass_obj
def plot_experiment(session: Session, deployment: str, source: str, out: str, as_json: bool) -> int:
    """the arms' means with intervals, each treatment's always-valid p over the sample against alpha."""
    plots = _plots()
    from dspyops.plots.experiment import experiment_figure

    with session.gateway() as gw:
        results = gw.get_experiment_results(deployment, source, include_history=True)
    if as_json:
        print_json(results)
    _write(plots, experiment_figure(results), out)
    return 0


@rpc_command(plot, "drift", "Gateway.GetDriftStatus")
@click.argument("deployment")
@_out_option
@json_option
@click.pass_obj
def plot_drift(session: Session, deployment: str, out: str, as_json: bool) -> int:
    """the drift monitor's signals now against their references, and its detections."""
    plots = _plots()
    from dspyops.plots.drift import drift_figure

    with session.gateway() as gw:
        status = gw.get_drift_status(deployment)
    if as_json:
        print_json(status)
    _write(plots, drift_figure(status), out)
    return 0


@rpc_command(plot, "canary", "Optimizer.ReadLog")
@click.argument("deployment")
@_out_option
@json_option
@click.pass_obj
def plot_canary(session: Session, deployment: str, out: str, as_json: bool) -> int:
    """the canary's traffic percent over time, its guardrails against their limits (the
    deployment's stream; GetDeploymentState first answers NOT_FOUND for an unknown one)."""
    plots = _plots()
    from dspyops.plots.canary import canary_figure

    with session.gateway() as gw:
        gw.get_deployment_state(deployment)  # NOT_FOUND for an unknown deployment, before drawing
    stream = deployment_stream(deployment)
    with session.optimizer() as opt:
        events: list[pb.Event] = []
        after = 0
        while True:
            page = opt.read_log(after, 1000, stream, types=["CanaryStarted", "CanaryAdvanced", "CanaryEnded"])
            events.extend(e for e in page.events if e.stream == stream)
            if page.scanned_to <= after or page.scanned_to >= page.head:
                break
            after = page.scanned_to
    if as_json:
        for event in events:
            print_json(event)
    _write(plots, canary_figure(deployment, events), out)
    return 0
