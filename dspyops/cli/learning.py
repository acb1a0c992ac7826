"""`dspyops learn enable|status|pause|resume|disable DEPLOYMENT`: a deployment's learning
loop (retrain on drift or new labelled feedback, gate, canary)."""

from __future__ import annotations

import click

from dspyops.cli.command import expected_version_option, json_option, reason_option, rpc_command
from dspyops.cli.parsing import numbers, pairs, param_value
from dspyops.cli.session import Session
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.render.console import console, print_json
from dspyops.render.learning import status_lines


@click.group()
def learn() -> None:
    """The learning loop: retrain a deployment's serving version from its feedback, gate it, canary it."""


def _print(status: gpb.LearningStatus, as_json: bool) -> None:
    if as_json:
        print_json(status)
        return
    for line in status_lines(status):
        console.print(line, highlight=False, markup=False)


@rpc_command(learn, "enable", "Gateway.SetLearningPolicy", changes=True)
@click.argument("deployment")
@click.option("--optimizer", default="", help="the optimizer a retrain runs (or --preset)")
@click.option("--preset", default="", help="a named optimizer preset (dspyops optimizers)")
@click.option(
    "--param", "params", multiple=True, help="an optimizer parameter KEY=VALUE (JSON value), repeatable"
)
@click.option(
    "--min-new-examples", type=int, default=0, help="retrain once this many new labelled examples arrived"
)
@click.option("--on-drift/--no-drift", default=True, show_default=True, help="retrain on a drift detection")
@click.option("--holdout", type=float, default=0.3, show_default=True, help="the most recent share held out")
@click.option(
    "--min-improvement", type=float, default=None, help="gate: beat the serving version by this much"
)
@click.option("--canary-steps", default="10,25,50,75,100", show_default=True, help="canary percents")
@click.option("--step-minutes", type=float, default=0.0, help="the monitoring period of each canary step")
@click.option(
    "--min-samples", type=int, default=0, help="observations a canary guardrail needs per step (100)"
)
@click.option(
    "--max-error-rate", type=float, default=0.0, help="canary guardrail: share of failed predictions"
)
@click.option("--max-latency-p95", type=float, default=0.0, help="canary guardrail: latency p95, ms")
@click.option("--max-cost", type=float, default=0.0, help="canary guardrail: mean cost per prediction, USD")
@click.option("--min-interval-minutes", type=float, default=0.0, help="between two retrains' starts")
@click.option("--max-lm-calls", type=int, default=0, help="budget of each retrain: LM calls")
@click.option("--max-cost-per-retrain", type=float, default=0.0, help="budget of each retrain: USD")
@expected_version_option
@reason_option
@json_option
@click.pass_obj
def learn_enable(
    session: Session,
    deployment: str,
    optimizer: str,
    preset: str,
    params: tuple[str, ...],
    min_new_examples: int,
    on_drift: bool,
    holdout: float,
    min_improvement: float | None,
    canary_steps: str,
    step_minutes: float,
    min_samples: int,
    max_error_rate: float,
    max_latency_p95: float,
    max_cost: float,
    min_interval_minutes: float,
    max_lm_calls: int,
    max_cost_per_retrain: float,
    expected_version: int | None,
    reason: str,
    as_json: bool,
) -> int:
    """set the deployment's learning policy (replacing any): retrain, gate, canary."""
    with session.gateway() as gw:
        status = gw.set_learning_policy(
            deployment,
            optimizer=optimizer,
            preset=preset,
            params={k: param_value(v) for k, v in pairs(params, "--param").items()},
            min_new_examples=min_new_examples,
            on_drift=on_drift,
            holdout_fraction=holdout,
            min_improvement=min_improvement,
            canary_steps=numbers(canary_steps, "--canary-steps"),
            step_seconds=round(step_minutes * 60),
            min_samples_per_step=min_samples,
            max_error_rate=max_error_rate,
            max_latency_p95_ms=max_latency_p95,
            max_cost_per_prediction=max_cost,
            min_interval_seconds=round(min_interval_minutes * 60),
            budget=pb.Budget(max_lm_calls=max_lm_calls, max_cost_usd=max_cost_per_retrain),
            expected_version=expected_version,
            reason=reason,
            request_id=session.request_id,
        )
    _print(status, as_json)
    return 0


@rpc_command(learn, "disable", "Gateway.SetLearningPolicy", changes=True)
@click.argument("deployment")
@expected_version_option
@reason_option
@json_option
@click.pass_obj
def learn_disable(
    session: Session, deployment: str, expected_version: int | None, reason: str, as_json: bool
) -> int:
    """turn the deployment's learning policy off (a running retrain's canary goes on)."""
    with session.gateway() as gw:
        status = gw.set_learning_policy(
            deployment,
            enabled=False,
            expected_version=expected_version,
            reason=reason,
            request_id=session.request_id,
        )
    _print(status, as_json)
    return 0


def _pause(session: Session, deployment: str, paused: bool, reason: str, as_json: bool) -> int:
    with session.gateway() as gw:
        status = gw.pause_learning(deployment, paused=paused, reason=reason, request_id=session.request_id)
    _print(status, as_json)
    return 0


@rpc_command(learn, "pause", "Gateway.PauseLearning", changes=True)
@click.argument("deployment")
@reason_option
@json_option
@click.pass_obj
def learn_pause(session: Session, deployment: str, reason: str, as_json: bool) -> int:
    """trigger no retrain until resumed (the policy and a running retrain are kept)."""
    return _pause(session, deployment, True, reason, as_json)


@rpc_command(learn, "resume", "Gateway.PauseLearning", changes=True)
@click.argument("deployment")
@reason_option
@json_option
@click.pass_obj
def learn_resume(session: Session, deployment: str, reason: str, as_json: bool) -> int:
    """trigger retrains again."""
    return _pause(session, deployment, False, reason, as_json)


@rpc_command(learn, "status", "Gateway.GetLearningStatus")
@click.argument("deployment")
@json_option
@click.pass_obj
def learn_status(session: Session, deployment: str, as_json: bool) -> int:
    """the loop as it stands: policy, drift monitor, last detection, running job, gate verdict, canary."""
    with session.gateway() as gw:
        status = gw.get_learning_status(deployment)
    _print(status, as_json)
    return 0
