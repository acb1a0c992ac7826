"""`python -m optimizer_svc`: run the optimizer in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dspyops.service_main import program_modules, request_endpoints, run_service, security, server_options


def _positive(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value < 1:
        raise click.BadParameter(f"must be >= 1, got {value}")
    return value


def _data_dir(log: str, given: str) -> Path | None:
    """An explicit --data-dir wins; without one a file log's artifacts go to dspyops-data and
    a postgresql:// log's to its database."""
    from dspyops.eventlog import is_server_log

    if given:
        return Path(given)
    return None if is_server_log(log) else Path("dspyops-data")


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--log", default="dspyops.db", show_default=True, help="the log: a SQLite file, or a postgresql:// URL"
)
@click.option(
    "--data-dir",
    default="",
    help="the artifact directory (default: dspyops-data; with a postgresql:// log: none, the artifacts "
    "are a table in its database)",
)
@click.option(
    "--datasets-dir",
    default="",
    help="directory of JSONL/CSV files requests may name (trainset_ref); none: references refused",
)
@click.option(
    "--max-jobs", type=int, default=4, show_default=True, callback=_positive, help="jobs running at once"
)
@click.option(
    "--max-evaluations",
    type=int,
    default=4,
    show_default=True,
    callback=_positive,
    help="Evaluate and CompareVersions calls running at once (beyond: RESOURCE_EXHAUSTED)",
)
@click.option(
    "--max-subscribers",
    type=int,
    default=256,
    show_default=True,
    callback=_positive,
    help="SubscribeLog streams at once, server-wide (beyond: RESOURCE_EXHAUSTED)",
)
@click.option(
    "--max-subscribers-per-actor",
    type=int,
    default=64,
    show_default=True,
    callback=_positive,
    help="SubscribeLog streams at once per caller (its token's name; all callers without auth)",
)
@click.option(
    "--executor",
    type=click.Choice(["thread", "ray"]),
    default="thread",
    show_default=True,
    help="where jobs run: threads of this process, or tasks on a Ray cluster",
)
@click.option(
    "--ray-address",
    default="local",
    show_default=True,
    help="with --executor ray: the cluster's address (HOST:PORT, ray://...), or local to start one",
)
@click.option(
    "--ray-job-cpus",
    type=click.FloatRange(min=0.01, max=64),
    default=1.0,
    show_default=True,
    help="with --executor ray: CPUs Ray reserves per job (less than 1 for jobs that mostly wait on an LM)",
)
@click.option(
    "--job-max-attempts",
    type=click.IntRange(1, 10),
    default=1,
    show_default=True,
    help="runs of a job whose optimizer died, when its request leaves max_attempts 0 (1: none retried)",
)
@click.option(
    "--job-lease-seconds",
    type=click.FloatRange(min=0.3, max=3600),
    default=15.0,
    show_default=True,
    help="a running job's lease: another replica takes a job over this long after its owner fell silent",
)
@click.option(
    "--max-queued",
    type=int,
    default=16,
    show_default=True,
    callback=_positive,
    help="jobs waiting for a free replica on the log (beyond: FAILED_PRECONDITION)",
)
@server_options
def main(**options: Any) -> None:
    """Run the optimizer: optimization jobs, the registry, deployments and the log."""
    from dspyops.telemetry import provider_from_env
    from optimizer_svc.server import OptimizerConfig, serve

    def config() -> OptimizerConfig:
        return OptimizerConfig(
            log=options["log"],
            data_dir=_data_dir(options["log"], options["data_dir"]),
            host=options["host"],
            port=options["port"],
            port_file=Path(options["port_file"]) if options["port_file"] else None,
            metrics_port=options["metrics_port"],
            metrics_port_file=Path(options["metrics_port_file"]) if options["metrics_port_file"] else None,
            max_jobs=options["max_jobs"],
            security=security(options),
            datasets_dir=Path(options["datasets_dir"]) if options["datasets_dir"] else None,
            max_evaluations=options["max_evaluations"],
            max_subscribers=options["max_subscribers"],
            max_subscribers_per_actor=options["max_subscribers_per_actor"],
            lm_connections=options["lm_connections"],
            allow_request_endpoints=request_endpoints(options["allow_request_endpoints"]),
            chain_key_file=options["chain_key_file"],
            allow_broken_log=options["allow_broken_log"],
            create=options["create"],
            program_modules=program_modules(options["program_modules"]),
            executor=options["executor"],
            ray_address=options["ray_address"],
            ray_job_cpus=options["ray_job_cpus"],
            job_max_attempts=options["job_max_attempts"],
            job_lease_seconds=options["job_lease_seconds"],
            max_queued=options["max_queued"],
            tracer_provider=provider_from_env("optimizer"),
        )

    run_service("optimizer", lambda: serve(config(), grace=options["grace"]), options["grace"])


if __name__ == "__main__":
    main(prog_name="python -m optimizer_svc")
