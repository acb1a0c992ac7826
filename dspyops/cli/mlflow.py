"""`dspyops mlflow sync`: the log mirrored into an MLflow tracking store and model registry
(dspyops.mlflow_sync). A client-side tool, as `log backup` is: it runs here and reads the
log through ReadLog / SubscribeLog and the versions' state through ExportVersion."""

from __future__ import annotations

import signal
import threading
from dataclasses import asdict
from types import FrameType

import click

from dspyops.cli.command import json_option, rpc_command
from dspyops.cli.session import Session
from dspyops.render.console import console, print_json_object


@click.group()
def mlflow() -> None:
    """MLflow: mirror the log into a tracking store and its model registry."""


def _stop_on_sigterm() -> None:
    """SIGTERM ends --follow as Ctrl-C does (only the main thread may set a handler)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)


@rpc_command(mlflow, "sync", "Optimizer.ReadLog", "Optimizer.SubscribeLog", "Optimizer.ExportVersion")
@click.option(
    "--tracking-uri", required=True, help="the MLflow store, e.g. sqlite:///mlflow.db or http://host:5000"
)
@click.option("--experiment", default="dspyops", show_default=True, help="the MLflow experiment of the runs")
@click.option(
    "--artifact-location",
    default="",
    help="where a new experiment keeps artifacts (default with sqlite: mlflow-artifacts/ beside the file)",
)
@click.option(
    "--follow", "-f", "then_follow", is_flag=True, help="then mirror new events as they come (Ctrl-C ends it)"
)
@json_option
@click.pass_obj
def sync(
    session: Session,
    tracking_uri: str,
    experiment: str,
    artifact_location: str,
    then_follow: bool,
    as_json: bool,
) -> int:
    """each job a run, each version a registered model version, aliases and statuses; idempotent."""
    from dspyops.mlflow_sync.sync import follow, sync_once
    from dspyops.mlflow_sync.writer import MlflowMissing, MlflowWriter, Written

    def report(written: Written) -> None:
        if as_json:
            print_json_object(asdict(written))
            return
        console.print(
            f"synced to position {written.position}: {written.runs} runs, {written.metrics} metrics, "
            f"{written.params} params, {written.artifacts} artifacts, {written.versions} model versions, "
            f"{written.aliases} aliases, {written.tags} tags changed, {written.ended} runs ended"
        )

    try:
        writer = MlflowWriter(tracking_uri, experiment, artifact_location or None)
    except MlflowMissing as exc:
        raise SystemExit(str(exc)) from None
    except Exception as exc:  # MLflow's own errors (a bad URI, a store it cannot open): one line
        raise SystemExit(
            f"mlflow sync: --tracking-uri {tracking_uri[:80]}: {str(exc).splitlines()[0][:200]}"
        ) from None
    with session.optimizer() as opt:
        mirror, written = sync_once(opt, writer)
        report(written)
        if then_follow:
            _stop_on_sigterm()
            try:
                follow(opt, writer, mirror, report)
            except KeyboardInterrupt:
                return 0
    return 0
