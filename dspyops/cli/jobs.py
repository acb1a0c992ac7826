"""`dspyops jobs start|watch|cancel|get|list`: optimization jobs (`jobs` alone lists them)."""

from __future__ import annotations

import click
from click_default_group import DefaultGroup

from dspyops.cli import datasets
from dspyops.cli.command import json_option, lm_options, module_option, read_spec, rpc_command, spec_option
from dspyops.cli.datasets import rows
from dspyops.cli.parsing import pairs, param_value
from dspyops.cli.session import Session
from dspyops.proto import events_pb2 as pb
from dspyops.render.console import console, print_json
from dspyops.render.jobs import job_line, job_state, jobs_table, render_job_events


@click.group(cls=DefaultGroup, default="list", default_if_no_args=True)
def jobs() -> None:
    """Optimization jobs: start one, watch, cancel, get, list (the default)."""


@rpc_command(jobs, "start", "Optimizer.StartOptimization", changes=True)
@click.argument("program")
@click.option("--signature", default="", help='e.g. "text -> label" (or --spec)')
@spec_option
@click.option("--trainset", "--dataset", "dataset", default="", help=datasets.HELP)
@click.option(
    "--trainset-ref",
    "--dataset-ref",
    "dataset_ref",
    default="",
    help="instead of --trainset: a file under the server's --datasets-dir",
)
@click.option("--valset", default="", help="a validation JSONL/CSV file (no split then)")
@click.option("--valset-ref", default="", help="a validation file under --datasets-dir (no split then)")
@click.option("--input-key", "input_keys", multiple=True, help="an input field (default: the signature's)")
@click.option("--optimizer-name", "-O", default=None, help="default: BootstrapFewShot, or the preset's")
@click.option("--preset", default="", help="a named optimizer + params (see `dspyops optimizers`)")
@click.option("--param", "-p", "params", multiple=True, help="optimizer parameter key=value (JSON value)")
@click.option("--metric", default="exact_match")
@module_option
@click.option("--instructions", default="", help="the signature's instructions")
@click.option(
    "--val-fraction",
    type=float,
    default=0.3,
    help="the server splits this share off the dataset for validation (0: none)",
)
@click.option("--seed", type=int, default=0, help="the split's seed (same seed, same split)")
@lm_options
@click.option("--temperature", type=float, default=0.0)
@click.option("--max-tokens", type=int, default=0, help="0: the connection's default")
@click.option("--prompt-connection", default="", help="a separate prompt LM's connection (MIPROv2, COPRO)")
@click.option("--prompt-model", default="", help="the prompt LM's model")
@click.option("--min-score", type=float, default=None, help="gate: below it the version stays development")
@click.option("--must-beat", default="", help="gate: a version or @alias to beat on the same valset")
@click.option("--min-improvement", type=float, default=None, help="gate: over the baseline (or --must-beat)")
@click.option("--budget-seconds", type=float, default=0.0, help="budget: wall time (0: none)")
@click.option("--budget-lm-calls", type=int, default=0, help="budget: LM calls (0: none)")
@click.option("--budget-tokens", type=int, default=0, help="budget: input + output tokens (0: none)")
@click.option("--budget-usd", type=float, default=0.0, help="budget: cost in USD (0: none)")
@click.option("--auto-promote", is_flag=True, help="gate passed: straight to production")
@click.option(
    "--max-attempts",
    type=click.IntRange(0, 10),
    default=0,
    help="runs of the job when the optimizer running it dies (0: the server's --job-max-attempts)",
)
@json_option
@click.pass_obj
def start(
    session: Session,
    program: str,
    signature: str,
    spec_file: str,
    dataset: str,
    dataset_ref: str,
    valset: str,
    valset_ref: str,
    input_keys: tuple[str, ...],
    optimizer_name: str | None,
    preset: str,
    params: tuple[str, ...],
    metric: str,
    module: str,
    instructions: str,
    val_fraction: float,
    seed: int,
    connection: str,
    model: str,
    api_base: str,
    api_key_env: str,
    temperature: float,
    max_tokens: int,
    prompt_connection: str,
    prompt_model: str,
    min_score: float | None,
    must_beat: str,
    min_improvement: float | None,
    budget_seconds: float,
    budget_lm_calls: int,
    budget_tokens: int,
    budget_usd: float,
    auto_promote: bool,
    max_attempts: int,
    as_json: bool,
) -> int:
    """run an optimizer as a job and stream its progress (the server splits the dataset)."""
    if bool(dataset) == bool(dataset_ref):
        raise SystemExit("optimize: give --trainset FILE or --trainset-ref FILE (one of them)")
    if valset and valset_ref:
        raise SystemExit("optimize: give --valset FILE or --valset-ref FILE (not both)")
    budget = pb.Budget(
        timeout_seconds=budget_seconds,
        max_lm_calls=budget_lm_calls,
        max_tokens=budget_tokens,
        max_cost_usd=budget_usd,
    )
    prompt_lm = pb.LMConfig(connection=prompt_connection, model=prompt_model)
    spec = read_spec(spec_file, signature, "optimize")
    with session.optimizer() as opt:
        events = opt.start_optimization(
            program,
            signature,
            module=module,
            instructions=instructions,
            lm=pb.LMConfig(
                connection=connection,
                model=model,
                api_base=api_base,
                api_key_env=api_key_env,
                temperature=temperature,
                max_tokens=max_tokens,
            ),
            # without -O, a preset picks the optimizer; with neither, BootstrapFewShot
            optimizer=optimizer_name or ("" if preset else "BootstrapFewShot"),
            preset=preset,
            params={k: param_value(v) for k, v in pairs(params, "--param").items()},
            metric=metric,
            trainset=rows(session, dataset) if dataset else (),
            valset=rows(session, valset) if valset else (),
            trainset_ref=dataset_ref or None,
            valset_ref=valset_ref or None,
            val_fraction=0.0 if valset or valset_ref else val_fraction,
            split_seed=seed,
            input_keys=input_keys,
            prompt_lm=prompt_lm if prompt_connection or prompt_model else None,
            min_score=min_score,
            must_beat=must_beat,
            min_improvement=min_improvement,
            budget=budget if budget.ByteSize() else None,
            auto_promote=auto_promote,
            request_id=session.request_id,
            spec=spec,
            max_attempts=max_attempts,
        )
        last = render_job_events(events, as_json)
    return 0 if last is not None and last.WhichOneof("kind") == "completed" else 1


@rpc_command(jobs, "watch", "Optimizer.WatchJob")
@click.argument("job_id")
@click.option("--after", type=int, default=0, help="skip events up to this sequence number")
@click.option(
    "--after-version",
    type=click.IntRange(min=0),
    default=0,
    help="skip events up to this stream_version (the log's position: the same on every replica)",
)
@json_option
@click.pass_obj
def watch(session: Session, job_id: str, after: int, after_version: int, as_json: bool) -> int:
    """re-attach to a job's event stream.

    With several --optimizer replicas (one log), it goes on at the next when one goes away."""
    with session.optimizer() as opt:
        events = opt.watch_job(
            job_id, after, after_stream_version=after_version, targets=session.optimizer_replicas
        )
        last = render_job_events(events, as_json)
    return 0 if last is not None else 1


@rpc_command(jobs, "cancel", "Optimizer.CancelJob")
@click.argument("job_id")
@click.option("--reason", default="cancelled from the CLI", help="why, for the log")
@json_option
@click.pass_obj
def cancel(session: Session, job_id: str, reason: str, as_json: bool) -> int:
    """cancel a running job."""
    with session.optimizer() as opt:
        job = opt.cancel_job(job_id, reason)
    if as_json:
        print_json(job)
    else:
        console.print(f"cancel requested for job {job.job_id} (state {job_state(job.state)})")
    return 0


@rpc_command(jobs, "get", "Optimizer.GetJob")
@click.argument("job_id")
@json_option
@click.pass_obj
def get(session: Session, job_id: str, as_json: bool) -> int:
    """a job's state, scores and registered version."""
    with session.optimizer() as opt:
        job = opt.get_job(job_id)
    if as_json:
        print_json(job)
    else:
        console.print(job_line(job))
    return 0


@rpc_command(jobs, "list", "Optimizer.ListJobs")
@click.option("--program", default="", help="only this program's jobs")
@json_option
@click.pass_obj
def list_(session: Session, program: str, as_json: bool) -> int:
    """list jobs."""
    with session.optimizer() as opt:
        listed = opt.list_jobs(program).jobs
    if as_json:
        for job in listed:
            print_json(job)
    else:
        console.print(jobs_table(listed))
    return 0
