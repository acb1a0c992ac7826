"""`dspyops deployments create|set-routes|get|list` (the optimizer's registry of
deployments) and `state|states|shadow|rollback` (what a gateway serves them with)."""

from __future__ import annotations

import click

from dspyops.cli.command import expected_version_option, json_option, reason_option, rpc_command
from dspyops.cli.parsing import parse_point, weights
from dspyops.cli.session import Session
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.render.console import console, print_json
from dspyops.render.deployments import (
    deployment_line,
    deployments_table,
    print_state,
    routes_text,
    shadow_table,
    states_table,
)


@click.group()
def deployments() -> None:
    """Deployments: create, route, read (the registry's view, and a gateway's), roll back."""


def _print_deployment(deployment: opb.Deployment, as_json: bool, line: str) -> None:
    if as_json:
        print_json(deployment)
    else:
        console.print(line)


@rpc_command(deployments, "create", "Optimizer.CreateDeployment", changes=True)
@click.argument("deployment")
@click.argument("program")
@json_option
@click.pass_obj
def create(session: Session, deployment: str, program: str, as_json: bool) -> int:
    """create a deployment of a program (routed to its production version)."""
    with session.optimizer() as opt:
        created = opt.create_deployment(deployment, program, request_id=session.request_id)
    _print_deployment(
        created,
        as_json,
        f"deployment {created.deployment} serves {created.program}; routes: {routes_text(created.routes)}",
    )
    return 0


@rpc_command(deployments, "set-routes", "Optimizer.SetRoutes", changes=True)
@click.argument("deployment")
@click.argument("routes", nargs=-1, required=True)
@click.option(
    "--shadow", multiple=True, help="a shadow route VERSION=SHARE: that share of requests also runs it"
)
@expected_version_option
@reason_option
@json_option
@click.pass_obj
def set_routes(
    session: Session,
    deployment: str,
    routes: tuple[str, ...],
    shadow: tuple[str, ...],
    expected_version: int | None,
    reason: str,
    as_json: bool,
) -> int:
    """set a deployment's routes: VERSION=WEIGHT ... (versions or @aliases)."""
    primary = [pb.Route(version=v, weight=w, role=pb.PRIMARY) for v, w in weights(routes, "routes").items()]
    shadows = [
        pb.Route(version=v, weight=w, role=pb.SHADOW)
        for v, w in weights(shadow, "--shadow", normalise=False).items()
    ]
    with session.optimizer() as opt:
        changed = opt.set_routes(
            deployment,
            primary + shadows,
            expected_version=expected_version,
            reason=reason,
            request_id=session.request_id,
        )
    _print_deployment(changed, as_json, deployment_line(changed))
    return 0


@rpc_command(deployments, "set-capture-policy", "Optimizer.SetCapturePolicy", changes=True)
@click.argument("deployment")
@click.option("--traces", is_flag=True, help="keep every prediction's module calls")
@click.option("--inputs-outputs", is_flag=True, help="keep every prediction's inputs")
@click.option("--field", "fields", multiple=True, help="keep only this field (repeat); default: every field")
@click.option("--retention-days", type=int, default=0, show_default=True, help="delete after (0: keep)")
@expected_version_option
@reason_option
@json_option
@click.pass_obj
def set_capture_policy(
    session: Session,
    deployment: str,
    traces: bool,
    inputs_outputs: bool,
    fields: tuple[str, ...],
    retention_days: int,
    expected_version: int | None,
    reason: str,
    as_json: bool,
) -> int:
    """what a deployment's prediction records keep (off by default: inputs may be personal data)."""
    with session.optimizer() as opt:
        changed = opt.set_capture_policy(
            deployment,
            traces=traces,
            inputs_outputs=inputs_outputs,
            fields=fields,
            retention_days=retention_days,
            expected_version=expected_version,
            reason=reason,
            request_id=session.request_id,
        )
    _print_deployment(changed, as_json, deployment_line(changed))
    return 0


@rpc_command(deployments, "get", "Optimizer.GetDeployment")
@click.argument("deployment")
@json_option
@click.pass_obj
def get(session: Session, deployment: str, as_json: bool) -> int:
    """a deployment's routes and stream version, as the registry has them."""
    with session.optimizer() as opt:
        found = opt.get_deployment(deployment)
    _print_deployment(found, as_json, deployment_line(found))
    return 0


@rpc_command(deployments, "list", "Optimizer.ListDeployments")
@json_option
@click.pass_obj
def list_(session: Session, as_json: bool) -> int:
    """every deployment, with its program and routes."""
    with session.optimizer() as opt:
        listed = opt.list_deployments().deployments
    if as_json:
        for deployment in listed:
            print_json(deployment)
    else:
        console.print(deployments_table(listed))
    return 0


@rpc_command(deployments, "state", "Gateway.GetDeploymentState")
@click.argument("deployment")
@click.option("--as-of", default="", help="log position or ISO time")
@json_option
@click.pass_obj
def state(session: Session, deployment: str, as_of: str, as_json: bool) -> int:
    """a deployment's state on the gateway, now or as of a position or time."""
    with session.gateway() as gw:
        found = gw.get_deployment_state(deployment, as_of=parse_point(as_of) if as_of else None)
    print_state(found, as_json)
    return 0


@rpc_command(deployments, "states", "Gateway.ListDeploymentStates")
@json_option
@click.pass_obj
def states(session: Session, as_json: bool) -> int:
    """every deployment's state on the gateway, and the log position they reflect."""
    with session.gateway() as gw:
        listed = gw.list_deployment_states()
    if as_json:
        for found in listed.deployments:
            print_json(found)
    else:
        console.print(states_table(listed))
    return 0


@rpc_command(deployments, "shadow", "Gateway.GetShadowResults")
@click.argument("deployment")
@json_option
@click.pass_obj
def shadow(session: Session, deployment: str, as_json: bool) -> int:
    """how shadow routes compare with the served answers."""
    with session.gateway() as gw:
        results = gw.get_shadow_results(deployment)
    if as_json:
        print_json(results)
    else:
        console.print(shadow_table(results))
    return 0


@rpc_command(deployments, "rollback", "Gateway.Rollback", changes=True)
@click.argument("deployment")
@click.option("--to", "to", required=True, help="log position or ISO time")
@reason_option
@expected_version_option
@json_option
@click.pass_obj
def rollback(
    session: Session, deployment: str, to: str, reason: str, expected_version: int | None, as_json: bool
) -> int:
    """restore a deployment's routes and experiment as of a position or time."""
    point = parse_point(to)
    with session.gateway() as gw:
        rolled = gw.rollback(
            deployment, point, reason=reason, expected_version=expected_version, request_id=session.request_id
        )
    if as_json:
        print_json(rolled)
    else:
        console.print(
            f"rolled back {rolled.deployment} to {to}: routes now {routes_text(rolled.routes)} "
            f"(log position {rolled.log_position})"
        )
    return 0
