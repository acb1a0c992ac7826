"""`dspyops evaluate` (a version, or a saved state, over a dataset) and `dspyops compare`
(two versions on the same examples)."""

from __future__ import annotations

from pathlib import Path

import click

from dspyops.cli.command import (
    dataset_options,
    json_option,
    lm_config,
    lm_options,
    module_option,
    rpc_command,
)
from dspyops.cli.datasets import rows
from dspyops.cli.session import Session
from dspyops.proto import events_pb2 as pb
from dspyops.render.console import console, print_json
from dspyops.render.evaluation import comparison_line, print_report, progress_line


@rpc_command(None, "evaluate", "Optimizer.Evaluate")
@click.argument("program", default="")
@click.argument("version", default="")
@dataset_options
@click.option("--state", default="", help="a program.save() JSON file to evaluate instead of a version")
@click.option("--signature", default="", help="with --state")
@module_option
@lm_options
@click.option("--threads", type=int, default=0)
@click.option("--results", is_flag=True, help="per-example results in the report")
@json_option
@click.pass_obj
def evaluate(
    session: Session,
    program: str,
    version: str,
    dataset: str,
    dataset_ref: str,
    metric: str,
    state: str,
    signature: str,
    module: str,
    connection: str,
    model: str,
    api_base: str,
    api_key_env: str,
    threads: int,
    results: bool,
    as_json: bool,
) -> int:
    """run a version (PROGRAM VERSION, semver or @alias) or --state over a dataset: progress,
    then a report."""
    spec, state_json = None, b""
    if state:
        if not signature:
            raise SystemExit("evaluate: --state needs --signature")
        spec = pb.ProgramSpec(module=module, signature=signature)
        state_json = Path(state).read_bytes()
    report = None
    with session.optimizer() as opt:
        for event in opt.evaluate(
            program,
            version,
            dataset=rows(session, dataset) if dataset else (),
            dataset_ref=dataset_ref or None,
            spec=spec,
            state_json=state_json,
            lm=lm_config(connection, model, api_base, api_key_env),
            metric=metric,
            num_threads=threads,
            include_results=results,
        ):
            if as_json:
                print_json(event)
            elif event.WhichOneof("kind") == "progress":
                console.print(progress_line(event.progress))
            if event.WhichOneof("kind") == "report":
                report = event.report
    if report is None:
        return 1
    if not as_json:
        print_report(report)
    return 0


@rpc_command(None, "compare", "Optimizer.CompareVersions")
@click.argument("program")
@click.argument("a")
@click.argument("b")
@dataset_options
@json_option
@click.pass_obj
def compare(
    session: Session, program: str, a: str, b: str, dataset: str, dataset_ref: str, metric: str, as_json: bool
) -> int:
    """two versions on the same examples, with a paired test."""
    with session.optimizer() as opt:
        result = opt.compare_versions(
            program,
            a,
            b,
            dataset=rows(session, dataset) if dataset else (),
            dataset_ref=dataset_ref or None,
            metric=metric,
        )
    if as_json:
        print_json(result)
    else:
        console.print(comparison_line(program, result))
    return 0
