"""`dspyops corpora register|list`: the corpora Retrieve stages search."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from dspyops.cli.command import json_option, rpc_command
from dspyops.cli.session import Session
from dspyops.render.console import console, print_json


@click.group()
def corpora() -> None:
    """Corpora for Retrieve stages: documents searched with BM25, by name and digest."""


@rpc_command(corpora, "register", "Optimizer.RegisterCorpus", changes=True)
@click.argument("corpus")
@click.option("--source", default="", help="a JSONL/CSV file under the optimizer's --datasets-dir")
@click.option(
    "--documents",
    "documents_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help='a local JSONL file of {"id": ..., "text": ...} lines, sent inline',
)
@click.option("--text-field", default="", help="with --source: the column holding the text")
@click.option("--id-field", default="", help="with --source: the column holding the id (default: row number)")
@json_option
@click.pass_obj
def register(
    session: Session,
    corpus: str,
    source: str,
    documents_file: str | None,
    text_field: str,
    id_field: str,
    as_json: bool,
) -> int:
    """register a corpus (or move its name to new documents; versions keep the digest they recorded)."""
    if bool(source) == bool(documents_file):
        raise click.UsageError("give exactly one of --source (on the server) or --documents (a local file)")
    documents: list[dict[str, str]] = []
    if documents_file:
        for line in Path(documents_file).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                documents.append({"id": str(row.get("id", "")), "text": str(row.get("text", ""))})
    with session.optimizer() as opt:
        registered = opt.register_corpus(
            corpus,
            documents,
            source=source or None,
            text_field=text_field,
            id_field=id_field,
            request_id=session.request_id,
        )
    if as_json:
        print_json(registered)
    else:
        console.print(
            f"corpus {registered.corpus}: {registered.count} documents, digest {registered.digest[:12]} "
            f"(log position {registered.registered_position})"
        )
    return 0


@rpc_command(corpora, "list", "Optimizer.ListCorpora")
@json_option
@click.pass_obj
def list_(session: Session, as_json: bool) -> int:
    """every corpus: the digest its name points to and its document count."""
    with session.optimizer() as opt:
        listed = opt.list_corpora().corpora
    if as_json:
        for corpus in listed:
            print_json(corpus)
        return 0
    table = Table("corpus", "documents", "digest", "registered at")
    for corpus in listed:
        table.add_row(corpus.corpus, str(corpus.count), corpus.digest[:12], str(corpus.registered_position))
    console.print(table)
    return 0
