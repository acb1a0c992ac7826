"""`dspyops experiments start|results|conclude|stop` (A/B tests on live traffic) and
`dspyops canary start|check` (gradual rollouts with guardrails)."""

from __future__ import annotations

import click

from dspyops.cli.command import (
    expected_version_option,
    json_option,
    metric_kind_option,
    reason_option,
    rpc_command,
)
from dspyops.cli.parsing import numbers
from dspyops.cli.session import Session
from dspyops.render.console import console, print_json
from dspyops.render.deployments import print_state
from dspyops.render.experiments import (
    canary_started_line,
    canary_status_line,
    decision_line,
    guardrails_table,
    results_table,
)


@click.group()
def experiments() -> None:
    """A/B experiments: start one, read its results, conclude or stop it."""


@rpc_command(experiments, "start", "Gateway.StartExperiment", changes=True)
@click.argument("deployment")
@click.option("--control", default="", help="version or @alias")
@click.option("--treatment", "treatments", multiple=True, help="version or @alias (repeat for more arms)")
@click.option("--weights", default="", help="comma-separated, control first (default: equal)")
@metric_kind_option
@click.option("--alpha", type=float, default=0.05)
@click.option("--min-samples", type=int, default=100, help="outcomes per arm before deciding")
@click.option("--fixed-horizon", is_flag=True, help="decide on the fixed-horizon p-value")
@click.option("--hash-version", type=int, default=2)
@click.option("--seed", default="", help="hash seed (default: the experiment id)")
@click.option("--coverage", type=float, default=1.0, help="share of traffic in the experiment")
@expected_version_option
@reason_option
@json_option
@click.pass_obj
def start(
    session: Session,
    deployment: str,
    control: str,
    treatments: tuple[str, ...],
    weights: str,
    metric: str,
    alpha: float,
    min_samples: int,
    fixed_horizon: bool,
    hash_version: int,
    seed: str,
    coverage: float,
    expected_version: int | None,
    reason: str,
    as_json: bool,
) -> int:
    """start an A/B experiment on a deployment."""
    with session.gateway() as gw:
        state = gw.start_experiment(
            deployment,
            control,
            treatments,
            metric=metric,
            weights=numbers(weights, "--weights"),
            alpha=alpha,
            min_samples_per_arm=min_samples,
            sequential=not fixed_horizon,
            hash_version=hash_version,
            seed=seed,
            coverage=coverage,
            expected_version=expected_version,
            reason=reason,
            request_id=session.request_id,
        )
    print_state(state, as_json)
    return 0


@rpc_command(experiments, "results", "Gateway.GetExperimentResults")
@click.argument("deployment")
@click.option(
    "--source",
    default="",
    help="whose outcomes: human (the default) or evaluator:NAME (an online evaluator's)",
)
@json_option
@click.pass_obj
def results(session: Session, deployment: str, source: str, as_json: bool) -> int:
    """per-arm statistics and the decision so far."""
    with session.gateway() as gw:
        found = gw.get_experiment_results(deployment, source=source)
    if as_json:
        print_json(found)
    else:
        console.print(results_table(found))
        console.print(decision_line(found))
    return 0


@rpc_command(experiments, "conclude", "Gateway.ConcludeExperiment", changes=True)
@click.argument("deployment")
@click.option("--keep-control", is_flag=True, help="route everything to the control, not the winner")
@reason_option
@json_option
@click.pass_obj
def conclude(session: Session, deployment: str, keep_control: bool, reason: str, as_json: bool) -> int:
    """end the experiment, routing everything to the winner (or the control)."""
    with session.gateway() as gw:
        state = gw.conclude_experiment(
            deployment, promote_winner=not keep_control, reason=reason, request_id=session.request_id
        )
    print_state(state, as_json)
    return 0


@rpc_command(experiments, "stop", "Gateway.StopExperiment", changes=True)
@click.argument("deployment")
@reason_option
@json_option
@click.pass_obj
def stop(session: Session, deployment: str, reason: str, as_json: bool) -> int:
    """end the experiment without a decision."""
    with session.gateway() as gw:
        state = gw.stop_experiment(deployment, reason, request_id=session.request_id)
    print_state(state, as_json)
    return 0


@click.group()
def canary() -> None:
    """Canary rollouts: start one, check its guardrail now."""


@rpc_command(canary, "start", "Gateway.StartCanary", changes=True)
@click.argument("deployment")
@click.option("--candidate", default="", help="version or @alias")
@click.option(
    "--steps",
    "--schedule",
    "steps",
    default="",
    help="percents, comma-separated (default 1,5,25,50,100; a schedule: 10,25,50,75,100)",
)
@click.option(
    "--min-samples",
    type=int,
    default=100,
    help="observations each guardrail needs per step before it is judged",
)
@metric_kind_option
@click.option("--alpha", type=float, default=0.05)
@click.option(
    "--max-error-rate", type=float, default=0.0, help="the candidate's error share per step (0: not judged)"
)
@click.option(
    "--max-latency-p95", type=float, default=0.0, help="the candidate's latency p95 in ms (0: not judged)"
)
@click.option(
    "--max-cost",
    type=float,
    default=0.0,
    help="the candidate's mean cost per prediction in USD, from kept traces (0: not judged)",
)
@click.option(
    "--step-minutes",
    type=click.FloatRange(min=0),
    default=0.0,
    help="monitoring period: each step lasts this long, then advances unless a guardrail failed "
    "(0: a step ends once every guardrail is judged)",
)
@expected_version_option
@reason_option
@json_option
@click.pass_obj
def canary_start(
    session: Session,
    deployment: str,
    candidate: str,
    steps: str,
    min_samples: int,
    metric: str,
    alpha: float,
    max_error_rate: float,
    max_latency_p95: float,
    max_cost: float,
    step_minutes: float,
    expected_version: int | None,
    reason: str,
    as_json: bool,
) -> int:
    """start a canary rollout of a candidate version."""
    with session.gateway() as gw:
        state = gw.start_canary(
            deployment,
            candidate,
            steps=numbers(steps, "--steps"),
            metric=metric,
            min_samples_per_step=min_samples,
            alpha=alpha,
            max_error_rate=max_error_rate,
            max_latency_p95_ms=max_latency_p95,
            max_cost_per_prediction=max_cost,
            step_seconds=round(step_minutes * 60),
            expected_version=expected_version,
            reason=reason,
            request_id=session.request_id,
        )
    print_state(state, as_json)
    if not as_json:
        console.print(canary_started_line(state))
    return 0


@rpc_command(canary, "check", "Gateway.EvaluateCanary")
@click.argument("deployment")
@json_option
@click.pass_obj
def canary_check(session: Session, deployment: str, as_json: bool) -> int:
    """run the canary's guardrail check now: wait, advance, promote or roll back."""
    with session.gateway() as gw:
        status = gw.evaluate_canary(deployment)
    if as_json:
        print_json(status)
    else:
        console.print(canary_status_line(status))
        if status.check.guardrails:
            console.print(guardrails_table(status.check))
    return 0
