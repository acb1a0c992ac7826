"""`dspyops evaluators set|list|remove`: a deployment's online evaluators."""

from __future__ import annotations

import click

from dspyops.cli.command import expected_version_option, json_option, reason_option, rpc_command
from dspyops.cli.session import Session
from dspyops.proto import gateway_pb2 as gpb
from dspyops.render.console import console, print_json
from dspyops.render.evaluators import evaluator_text, evaluators_table


@click.group()
def evaluators() -> None:
    """Online evaluators: a metric or a judge program scoring a share of live predictions."""


def _print_status(status: gpb.EvaluatorStatus, as_json: bool) -> None:
    if as_json:
        print_json(status)
        return
    console.print(
        f"{status.deployment}: {evaluator_text(status.evaluator)} (outcomes of source {status.source})"
    )


@rpc_command(evaluators, "set", "Gateway.SetEvaluator", changes=True)
@click.argument("deployment")
@click.argument("name")
@click.option("--metric", default="", help="a metric name (exact_match, f1, ...): scores outcomes' expected")
@click.option(
    "--judge", default="", metavar="PROGRAM@VERSION", help="a judge program version answering `score`"
)
@click.option("--share", type=float, default=1.0, show_default=True, help="share of predictions sampled")
@click.option("--max-calls-per-hour", type=int, default=0, help="a judge's LM calls per hour per gateway")
@click.option("--max-cost-per-hour", type=float, default=0.0, help="a judge's USD per hour per gateway")
@expected_version_option
@reason_option
@json_option
@click.pass_obj
def evaluators_set(
    session: Session,
    deployment: str,
    name: str,
    metric: str,
    judge: str,
    share: float,
    max_calls_per_hour: int,
    max_cost_per_hour: float,
    expected_version: int | None,
    reason: str,
    as_json: bool,
) -> int:
    """attach (or change) an evaluator; its scores are outcomes of source evaluator:NAME."""
    program, _, version = judge.partition("@")
    if judge and not (program and version):
        raise click.BadParameter("give PROGRAM@VERSION", param_hint="--judge")
    with session.gateway() as gw:
        status = gw.set_evaluator(
            deployment,
            name,
            share=share,
            metric=metric,
            judge_program=program,
            judge_version=version,
            max_calls_per_hour=max_calls_per_hour,
            max_cost_per_hour=max_cost_per_hour,
            expected_version=expected_version,
            reason=reason,
            request_id=session.request_id,
        )
    _print_status(status, as_json)
    return 0


@rpc_command(evaluators, "remove", "Gateway.SetEvaluator", changes=True)
@click.argument("deployment")
@click.argument("name")
@expected_version_option
@reason_option
@json_option
@click.pass_obj
def evaluators_remove(
    session: Session, deployment: str, name: str, expected_version: int | None, reason: str, as_json: bool
) -> int:
    """remove an evaluator (its recorded scores stay)."""
    with session.gateway() as gw:
        status = gw.set_evaluator(
            deployment,
            name,
            enabled=False,
            expected_version=expected_version,
            reason=reason,
            request_id=session.request_id,
        )
    _print_status(status, as_json)
    return 0


@rpc_command(evaluators, "list", "Gateway.ListEvaluators")
@click.argument("deployment")
@json_option
@click.pass_obj
def evaluators_list(session: Session, deployment: str, as_json: bool) -> int:
    """the evaluators, this gateway's counters and the statistics of their scores."""
    with session.gateway() as gw:
        response = gw.list_evaluators(deployment)
    if as_json:
        print_json(response)
    else:
        console.print(evaluators_table(response))
    return 0
