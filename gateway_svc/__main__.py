"""`python -m gateway_svc`: run a gateway in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from dspyops.service_main import program_modules, request_endpoints, run_service, security, server_options


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--log", default="", help="the log to tail: a SQLite file (same machine) or a postgresql:// URL ..."
)
@click.option("--from-optimizer", default="", help="... or an optimizer's address, to tail its SubscribeLog")
@click.option(
    "--predictions",
    default="",
    help="prediction records file (default: <log>.predictions; with a postgresql:// log: tables in its "
    "database, shared by its gateways; needed with --from-optimizer)",
)
@click.option(
    "--canary-interval",
    type=float,
    default=1.0,
    show_default=True,
    help="seconds between canary checks (0: off)",
)
@click.option(
    "--drift-interval",
    type=float,
    default=5.0,
    show_default=True,
    help="seconds between drift checks of deployments with a drift monitor (0: off)",
)
@click.option(
    "--capture-purge-interval",
    type=float,
    default=600.0,
    show_default=True,
    help="seconds between deletions of captured inputs and traces past their retention (0: off)",
)
@click.option(
    "--upstream-token",
    envvar="DSPYOPS_UPSTREAM_TOKEN",
    default="",
    help="with --from-optimizer: a reader token for the optimizer (env DSPYOPS_UPSTREAM_TOKEN)",
)
@click.option(
    "--upstream-tls-ca", default="", help="with --from-optimizer: CA of the optimizer's certificate"
)
@click.option(
    "--upstream-tls-cert",
    default="",
    help="with --from-optimizer: client certificate, for an optimizer that requires one",
)
@click.option("--upstream-tls-key", default="", help="with --from-optimizer: key of --upstream-tls-cert")
@click.option(
    "--allow-code-drift",
    is_flag=True,
    help="serve versions whose user code changed since registration (recorded with each prediction)",
)
@click.option(
    "--keep-idle-programs",
    type=click.IntRange(min=0),
    default=4,
    show_default=True,
    help="programs that stopped serving kept loaded (the latest), so a route back does not wait for a load",
)
@click.option(
    "--evaluator-queue",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="online evaluators' queued work; more is dropped and counted, never waited for",
)
@click.option(
    "--evaluator-workers",
    type=click.IntRange(min=0, max=64),
    default=2,
    show_default=True,
    help="tasks running the online evaluators' queued work (0: none run)",
)
@click.option(
    "--learning-interval",
    type=float,
    default=5.0,
    show_default=True,
    help="seconds between learning-loop ticks of deployments with a learning policy (0: off)",
)
@click.option(
    "--learning-optimizer",
    default="",
    help="with --log: the optimizer address retrains run on (none: the learning loop starts no job)",
)
@click.option(
    "--learning-token-file",
    envvar="DSPYOPS_LEARNING_TOKEN_FILE",
    default="",
    help="a file holding an operator token for --learning-optimizer (or env DSPYOPS_LEARNING_TOKEN)",
)
@click.option(
    "--learning-tls-ca", default="", help="CA of the --learning-optimizer's certificate (turns TLS on)"
)
@click.option(
    "--trace-content",
    is_flag=True,
    help="with OTEL_EXPORTER_OTLP_ENDPOINT set: prompts and completions on LM spans (scrubbed)",
)
@server_options
def main(**options: Any) -> None:
    """Run a gateway: predictions from the folded log, outcomes, experiments, canaries, explain."""
    from dspyops.telemetry import provider_from_env
    from gateway_svc.server import GatewayConfig, serve

    if bool(options["log"]) == bool(options["from_optimizer"]):
        raise click.UsageError("give --log PATH or --from-optimizer ADDRESS")
    upstream = {
        k: options[k] for k in ("upstream_token", "upstream_tls_ca", "upstream_tls_cert", "upstream_tls_key")
    }
    given = [f"--{k.replace('_', '-')}" for k, v in upstream.items() if v]
    if given and not options["from_optimizer"]:
        raise click.UsageError(f"{', '.join(given)} only with --from-optimizer ADDRESS")
    if bool(upstream["upstream_tls_cert"]) != bool(upstream["upstream_tls_key"]):
        raise click.UsageError("--upstream-tls-cert and --upstream-tls-key go together")
    if upstream["upstream_tls_cert"] and not upstream["upstream_tls_ca"]:
        raise click.UsageError("a client certificate (--upstream-tls-cert) needs --upstream-tls-ca")
    if options["from_optimizer"] and not options["predictions"]:
        raise click.UsageError("a gateway tailing --from-optimizer needs --predictions FILE (its records)")

    learning = [f"--{k.replace('_', '-')}" for k in ("learning_token_file", "learning_tls_ca") if options[k]]
    if learning and not options["learning_optimizer"]:
        raise click.UsageError(f"{', '.join(learning)} only with --learning-optimizer ADDRESS")
    if options["learning_optimizer"] and not options["log"]:
        raise click.UsageError("--learning-optimizer needs --log (the learning loop appends to the log)")
    # the token from its file (never a flag value: it would show in the process list), else the env
    learning_token = os.environ.get("DSPYOPS_LEARNING_TOKEN", "")
    if options["learning_token_file"]:
        learning_token = Path(options["learning_token_file"]).read_text().strip()

    def config() -> GatewayConfig:
        return GatewayConfig(
            log=options["log"],
            optimizer=options["from_optimizer"],
            host=options["host"],
            port=options["port"],
            port_file=options["port_file"],
            metrics_port=options["metrics_port"],
            metrics_port_file=options["metrics_port_file"],
            predictions=options["predictions"],
            canary_interval=options["canary_interval"],
            capture_purge_interval=options["capture_purge_interval"],
            drift_interval=options["drift_interval"],
            security=security(options),
            **upstream,
            lm_connections=options["lm_connections"],
            allow_request_endpoints=request_endpoints(options["allow_request_endpoints"]),
            chain_key_file=options["chain_key_file"],
            allow_broken_log=options["allow_broken_log"],
            create=options["create"],
            program_modules=program_modules(options["program_modules"]),
            allow_code_drift=options["allow_code_drift"],
            keep_idle_programs=options["keep_idle_programs"],
            evaluator_queue=options["evaluator_queue"],
            evaluator_workers=options["evaluator_workers"],
            learning_interval=options["learning_interval"],
            learning_optimizer=options["learning_optimizer"],
            learning_token=learning_token,
            learning_tls_ca=options["learning_tls_ca"],
            tracer_provider=provider_from_env("gateway"),
            trace_content=options["trace_content"],
        )

    run_service("gateway", lambda: serve(config(), grace=options["grace"]), options["grace"])


if __name__ == "__main__":
    main(prog_name="python -m gateway_svc")
