"""`dspyops drift enable|disable|status DEPLOYMENT`: a deployment's drift monitor."""

from __future__ import annotations

import click

from dspyops.cli.command import (
    expected_version_option,
    json_option,
    metric_kind_option,
    reason_option,
    rpc_command,
)
from dspyops.cli.session import Session
from dspyops.proto import gateway_pb2 as gpb
from dspyops.render.console import console, print_json
from dspyops.render.drift import detection_lines, signals_table, status_lines


@click.group()
def drift() -> None:
    """Drift monitors: watch a deployment's serving version against a reference."""


def _print(status: gpb.DriftStatus, as_json: bool) -> None:
    if as_json:
        print_json(status)
        return
    for line in status_lines(status):
        console.print(line, highlight=False)
    if status.HasField("monitor"):
        console.print(signals_table(status))
        for line in detection_lines(status):
            console.print(line, highlight=False)


@rpc_command(drift, "enable", "Gateway.SetDriftMonitor", changes=True)
@click.argument("deployment")
@metric_kind_option
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option(
    "--reference",
    type=click.Choice(["offline", "window"]),
    default="offline",
    show_default=True,
    help="the serving version's last offline score, or its first --window outcomes",
)
@click.option(
    "--window", "reference_window", type=int, default=0, help="outcomes in the reference window (200)"
)
@click.option("--min-outcomes", type=int, default=0, help="outcomes before a signal is judged (100)")
@click.option(
    "--max-error-rate", type=float, default=0.0, help="alarm above this share of failed predictions"
)
@click.option("--max-latency-p95", type=float, default=0.0, help="alarm above this latency p95, ms")
@click.option("--max-cost", type=float, default=0.0, help="alarm above this mean cost per prediction, USD")
@expected_version_option
@reason_option
@json_option
@click.pass_obj
def drift_enable(
    session: Session,
    deployment: str,
    metric: str,
    alpha: float,
    reference: str,
    reference_window: int,
    min_outcomes: int,
    max_error_rate: float,
    max_latency_p95: float,
    max_cost: float,
    expected_version: int | None,
    reason: str,
    as_json: bool,
) -> int:
    """set the deployment's drift monitor (again: re-armed, its detections start over)."""
    with session.gateway() as gw:
        status = gw.set_drift_monitor(
            deployment,
            metric=metric,
            alpha=alpha,
            reference=reference,
            reference_window=reference_window,
            min_outcomes=min_outcomes,
            max_error_rate=max_error_rate,
            max_latency_p95_ms=max_latency_p95,
            max_cost_per_prediction=max_cost,
            expected_version=expected_version,
            reason=reason,
            request_id=session.request_id,
        )
    _print(status, as_json)
    return 0


@rpc_command(drift, "disable", "Gateway.SetDriftMonitor", changes=True)
@click.argument("deployment")
@expected_version_option
@reason_option
@json_option
@click.pass_obj
def drift_disable(
    session: Session, deployment: str, expected_version: int | None, reason: str, as_json: bool
) -> int:
    """turn the deployment's drift monitor off."""
    with session.gateway() as gw:
        status = gw.set_drift_monitor(
            deployment,
            enabled=False,
            expected_version=expected_version,
            reason=reason,
            request_id=session.request_id,
        )
    _print(status, as_json)
    return 0


@rpc_command(drift, "status", "Gateway.GetDriftStatus")
@click.argument("deployment")
@json_option
@click.pass_obj
def drift_status(session: Session, deployment: str, as_json: bool) -> int:
    """the monitor, the signals of a check run now (nothing appended), its detections."""
    with session.gateway() as gw:
        status = gw.get_drift_status(deployment)
    _print(status, as_json)
    return 0
