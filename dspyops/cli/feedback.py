"""`dspyops feedback export`: a deployment's labelled examples (outcomes with expected
outputs on predictions whose inputs were captured) as a dataset file a trainset_ref reads."""

from __future__ import annotations

from pathlib import Path

import click

from dspyops.cli.command import json_option, rpc_command
from dspyops.cli.parsing import parse_time
from dspyops.cli.session import Session
from dspyops.feedback import FeedbackPages, write_dataset
from dspyops.render.console import console, print_json_object


@click.group()
def feedback() -> None:
    """Feedback from live traffic: the labelled examples a deployment's outcomes carry."""


@rpc_command(feedback, "export", "Gateway.ExportFeedback")
@click.argument("deployment")
@click.option("--since", required=True, help="outcomes recorded at or after this ISO time")
@click.option("--until", default="", help="outcomes recorded before this ISO time (default: now)")
@click.option(
    "--to", "to", required=True, type=click.Path(dir_okay=False, path_type=Path), help="the JSONL file"
)
@json_option
@click.pass_obj
def export(session: Session, deployment: str, since: str, until: str, to: Path, as_json: bool) -> int:
    """write the labelled examples as a dataset file (JSONL: inputs + expected outputs per row)."""
    with session.gateway() as gw:
        pages = FeedbackPages(
            gw, deployment, parse_time(since, "--since"), parse_time(until, "--until") if until else None
        )
        written = write_dataset(pages, to)
    if as_json:
        print_json_object({"written": written, "skipped": pages.skipped, "to": str(to)})
    else:
        console.print(
            f"{written} examples written to {to}; {pages.skipped} skipped (labelled, but no captured inputs)"
        )
    return 0
