"""The top-level names the CLI had before it was grouped (`optimize`, `promote`, `deploy`,
...): each is the grouped command itself under its old name, with the same arguments, so
README lines, scripts and tests keep working. `routes` is the one that is two commands:
without routes it reads them (GetDeployment), with routes it sets them (SetRoutes)."""

from __future__ import annotations

import click

from dspyops.cli import deployments, experiments, jobs, predictions, registry
from dspyops.cli.command import expected_version_option, json_option, reason_option, rpc_command

#: old name -> the grouped command it runs
SHORTCUTS: dict[str, tuple[str, click.Command]] = {
    "optimize": ("jobs start", jobs.start),
    "watch": ("jobs watch", jobs.watch),
    "cancel": ("jobs cancel", jobs.cancel),
    "programs": ("registry programs", registry.programs),
    "versions": ("registry versions", registry.versions),
    "promote": ("registry set-status", registry.set_status),
    "alias": ("registry set-alias", registry.set_alias),
    "import": ("registry import", registry.import_),
    "export": ("registry export", registry.export),
    "deploy": ("deployments create", deployments.create),
    "state": ("deployments state", deployments.state),
    "shadow": ("deployments shadow", deployments.shadow),
    "rollback": ("deployments rollback", deployments.rollback),
    "predict": ("predictions predict", predictions.predict),
    "outcome": ("predictions outcome", predictions.outcome),
    "explain": ("predictions explain", predictions.explain),
    "experiment": ("experiments", experiments.experiments),
}


@rpc_command(None, "routes", "Optimizer.GetDeployment", "Optimizer.SetRoutes", changes=True)
@click.argument("deployment")
@click.argument("routes", nargs=-1)
@expected_version_option
@reason_option
@json_option
@click.pass_context
def routes(
    ctx: click.Context,
    deployment: str,
    routes: tuple[str, ...],
    expected_version: int | None,
    reason: str,
    as_json: bool,
) -> int:
    """show a deployment's routes (deployments get), or set them: VERSION=WEIGHT ...
    (deployments set-routes)."""
    if not routes:
        return int(ctx.invoke(deployments.get, deployment=deployment, as_json=as_json))
    return int(
        ctx.invoke(
            deployments.set_routes,
            deployment=deployment,
            routes=routes,
            shadow=(),
            expected_version=expected_version,
            reason=reason,
            as_json=as_json,
        )
    )


SHORTCUTS["routes"] = ("deployments get | set-routes", routes)
