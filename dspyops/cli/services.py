"""`dspyops serve optimizer|gateway ...` and `dspyops demo`: run things on this machine."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from dspyops.cli.command import rpc_command
from dspyops.cli.session import Session
from dspyops.launch import SERVICE_MODULES


@rpc_command(
    None,
    "serve",
    add_help_option=False,  # `serve optimizer --help` is the service's help
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("service", type=click.Choice(sorted(SERVICE_MODULES)))
@click.argument("service_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def serve(session: Session, service: str, service_args: tuple[str, ...]) -> int:
    """run a service in the foreground (python -m optimizer_svc / gateway_svc; --help after the name).

    It execs the service's own entry point (same pid, same signals), so the kernel never
    imports a service. The global --tls-cert and --tls-key name the server's certificate
    here and are passed on."""
    if session.tls_ca:  # it used to double as the gateway's upstream CA: say where that went
        raise SystemExit(
            "serve: --tls-ca verifies servers for client commands; a server takes --tls-client-ca, "
            "a gateway's optimizer is verified with --upstream-tls-ca"
        )
    forwarded = ["--tls-cert", session.tls_cert] if session.tls_cert else []
    forwarded += ["--tls-key", session.tls_key] if session.tls_key else []
    argv = [sys.executable, "-m", SERVICE_MODULES[service], *forwarded, *service_args]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
    return 0  # pragma: no cover - execv does not return


@rpc_command(None, "demo")
@click.option("--workdir", default="", help="keep the log and artifacts here (default: a temp dir)")
def demo(workdir: str) -> int:
    """run the whole loop on a fresh log with the offline LM."""
    from dspyops.demo import run_demo

    return run_demo(Path(workdir) if workdir else None)
