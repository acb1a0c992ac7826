"""`dspyops`: a thin command-line face over dspyops.client, one command per RPC, grouped by
area (jobs, registry, deployments, predictions, experiments, canary, log), with the old
top-level names as shortcuts.

Addresses come from --optimizer / --gateway or the DSPYOPS_OPTIMIZER / DSPYOPS_GATEWAY
environment variables. `--json` prints protobuf messages as one JSON object per line.
"""

from __future__ import annotations

from collections.abc import Sequence

import click
import grpc

from dspyops.cli import (
    catalog,
    corpora,
    deployments,
    drift,
    evaluation,
    evaluators,
    experiments,
    feedback,
    jobs,
    learning,
    log,
    mlflow,
    plots,
    predictions,
    registry,
    services,
)
from dspyops.cli.command import RpcCommand
from dspyops.cli.session import DEFAULT_GATEWAY, DEFAULT_OPTIMIZER, Session
from dspyops.cli.shortcuts import SHORTCUTS
from dspyops.client import new_request_id
from dspyops.render.console import console

_RETRYABLE = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED")


class RootGroup(click.Group):
    """Lists the commands by area, then the shortcuts with what each one runs."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows, shortcuts = [], []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            if name in SHORTCUTS:
                shortcuts.append((name, f"= {SHORTCUTS[name][0]}"))
            else:
                rows.append((name, command.get_short_help_str(formatter.width - 6 - len(name))))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
        with formatter.section("Shortcuts (the same commands under their old names)"):
            formatter.write_dl(shortcuts)


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--optimizer",
    "optimizer_address",
    envvar="DSPYOPS_OPTIMIZER",
    multiple=True,
    default=(DEFAULT_OPTIMIZER,),
    help="optimizer_svc address (env DSPYOPS_OPTIMIZER, space-separated); repeated: replicas on one "
    "log, the first is asked, and `jobs watch` goes on at the next when one goes away",
)
@click.option(
    "--gateway",
    "gateway_address",
    envvar="DSPYOPS_GATEWAY",
    default=DEFAULT_GATEWAY,
    help="gateway_svc address (env DSPYOPS_GATEWAY)",
)
@click.option("--token", envvar="DSPYOPS_TOKEN", default="", help="bearer token (env DSPYOPS_TOKEN)")
@click.option("--tls-ca", default="", help="CA bundle to verify the servers (turns TLS on)")
@click.option("--tls-cert", default="", help="certificate: the client's, or with serve the server's")
@click.option("--tls-key", default="", help="private key of --tls-cert")
@click.option(
    "--request-id",
    default="",
    help="the request id a command that changes something sends (default: a fresh one); "
    "after a timeout, rerun with the id the error shows: the server carries it out once",
)
@click.pass_context
def cli(
    ctx: click.Context,
    optimizer_address: tuple[str, ...],
    gateway_address: str,
    token: str,
    tls_ca: str,
    tls_cert: str,
    tls_key: str,
    request_id: str,
) -> None:
    """A thin command-line face over dspyops.client: one command per RPC, grouped by area."""
    session = ctx.ensure_object(Session)
    session.optimizer_address = optimizer_address[0] if optimizer_address else DEFAULT_OPTIMIZER
    session.optimizer_replicas = optimizer_address[1:]
    session.gateway_address = gateway_address
    session.token, session.tls_ca, session.tls_cert, session.tls_key = token, tls_ca, tls_cert, tls_key
    # one id for the call this command makes, so the hint after a timeout can name it
    session.request_id = request_id or new_request_id()


for group in (
    jobs.jobs,
    registry.registry,
    corpora.corpora,
    deployments.deployments,
    predictions.predictions,
    feedback.feedback,
    experiments.experiments,
    experiments.canary,
    drift.drift,
    evaluators.evaluators,
    learning.learn,
    log.log,
    mlflow.mlflow,
    plots.plot,
):
    cli.add_command(group)
for command in (
    catalog.optimizers,
    catalog.connections,
    evaluation.evaluate,
    evaluation.compare,
    services.serve,
    services.demo,
):
    cli.add_command(command)
for name, (_, target) in SHORTCUTS.items():
    cli.add_command(target, name)


def main(argv: Sequence[str] | None = None) -> int:
    session = Session()
    try:
        return int(
            cli.main(list(argv) if argv is not None else None, "dspyops", standalone_mode=False, obj=session)
            or 0
        )
    except grpc.RpcError as exc:
        code = exc.code().name if hasattr(exc, "code") else "UNKNOWN"
        details = exc.details() if hasattr(exc, "details") else str(exc)
        console.print(f"[red]error[/red] {code}: {details}")
        command = session.command
        if isinstance(command, RpcCommand) and command.changes and code in _RETRYABLE:
            console.print(
                f"  it may have been carried out: rerun with --request-id {session.request_id} to retry "
                "safely (the server answers a repeat with the first result)"
            )
        return 1
    except click.ClickException as exc:  # usage errors: the message, and argparse's exit code
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except (KeyboardInterrupt, click.Abort):
        return 130
