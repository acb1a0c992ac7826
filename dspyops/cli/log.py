"""`dspyops log read|follow|verify|backup`: the audit log (`log` alone reads it). Filters
(--stream, --type, --actor, --since, --until) go to the server, which applies them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from click_default_group import DefaultGroup

from dspyops.cli.command import json_option, rpc_command
from dspyops.cli.parsing import parse_time
from dspyops.cli.session import Session
from dspyops.proto import events_pb2 as pb
from dspyops.render.console import console, print_json
from dspyops.render.events import log_line, log_table, print_verified


@click.group(cls=DefaultGroup, default="read", default_if_no_args=True)
def log() -> None:
    """The audit log: read (the default), follow, verify the hash chain, back up."""


def _filter_options(f: Any) -> Any:
    for option in reversed(
        [
            click.option("--from", "from_position", type=int, default=0, help="start after this position"),
            click.option("--stream", default="", help="stream prefix, e.g. program- or job-"),
            click.option(
                "--type",
                "types",
                multiple=True,
                help="event types, comma-separated or repeated, e.g. RoutesSet,RolledBack",
            ),
            click.option("--actor", default="", help="only events caused by this token name (or 'system')"),
            click.option("--since", default="", help="ISO time: only events recorded at or after it"),
            click.option("--until", default="", help="ISO time: only events recorded at or before it"),
        ]
    ):
        f = option(f)
    return f


def _filters(stream: str, types: tuple[str, ...], actor: str, since: str, until: str) -> dict[str, Any]:
    """The filter options as the client's keyword arguments."""
    when: dict[str, datetime | None] = {
        "since": parse_time(since, "--since") if since else None,
        "until": parse_time(until, "--until") if until else None,
    }
    names = [name for text in types for name in text.split(",") if name]
    return {"stream_prefix": stream, "types": names, "actor": actor, **when}


@rpc_command(log, "follow", "Optimizer.SubscribeLog")
@_filter_options
@json_option
@click.pass_obj
def follow(
    session: Session,
    from_position: int,
    stream: str,
    types: tuple[str, ...],
    actor: str,
    since: str,
    until: str,
    as_json: bool,
) -> int:
    """every event after --from that passes the filters, then live ones (Ctrl-C ends it)."""
    with session.optimizer() as opt:
        for event in opt.subscribe_log(from_position, **_filters(stream, types, actor, since, until)):
            if as_json:
                print_json(event)
            else:
                console.print(log_line(event))
    return 0


@rpc_command(log, "read", "Optimizer.ReadLog")
@_filter_options
@click.option("--limit", type=int, default=1000, help="at most this many matching events")
@click.option("--follow", "-f", "then_follow", is_flag=True, help="the same as `log follow`")
@json_option
@click.pass_context
def read(
    ctx: click.Context,
    from_position: int,
    stream: str,
    types: tuple[str, ...],
    actor: str,
    since: str,
    until: str,
    limit: int,
    then_follow: bool,
    as_json: bool,
) -> int:
    """up to --limit events after --from that pass the filters, as a table."""
    if then_follow:
        return int(
            ctx.invoke(
                follow,
                from_position=from_position,
                stream=stream,
                types=types,
                actor=actor,
                since=since,
                until=until,
                as_json=as_json,
            )
        )
    session = ctx.find_object(Session)
    assert session is not None
    filters = _filters(stream, types, actor, since, until)
    events: list[pb.Event] = []
    after = from_position
    with session.optimizer() as opt:
        while True:  # a filtered page may end early: read on from where it scanned to
            page = opt.read_log(after, min(limit - len(events), 10_000), **filters)
            events.extend(page.events)
            if len(events) >= limit or page.scanned_to <= after or page.scanned_to >= page.head:
                break
            after = page.scanned_to
    if as_json:
        for event in events:
            print_json(event)
    else:
        console.print(log_table(events))
    return 0


def _chain_key(chain_key_file: str) -> bytes | None:
    from dspyops.keyfiles import KeyFileError, load_chain_key

    if not chain_key_file:
        return None
    try:
        return load_chain_key(chain_key_file)
    except KeyFileError as exc:
        raise SystemExit(f"log: {exc}") from None


@rpc_command(log, "verify", "Optimizer.VerifyLog")
@click.option(
    "--log",
    "log_path",
    default="",
    help="open this log (a file or a postgresql:// URL) directly instead of asking the optimizer",
)
@click.option("--chain-key-file", default="", help="with --log: the log's chain key")
@json_option
@click.pass_obj
def verify(session: Session, log_path: str, chain_key_file: str, as_json: bool) -> int:
    """walk the hash chain (the optimizer's, with its chain key; or a file's with --log)."""
    if not log_path:
        with session.optimizer() as opt:
            return print_verified(opt.verify_log(), as_json)
    from dspyops.eventlog import SQLiteEventStore, StoreUnavailable, is_server_log, log_file, open_store
    from dspyops.logwire import verify_response

    key = _chain_key(chain_key_file)
    try:
        if is_server_log(log_path):  # read-only: verify never writes (see open_store's mode)
            readonly = log_path + ("&" if "?" in log_path else "?") + "mode=ro"
            store = open_store(readonly, chain_key=key, create=False)
        else:
            store = SQLiteEventStore(log_file(log_path), read_only=True, chain_key=key)
    except StoreUnavailable as exc:
        raise SystemExit(f"log verify: {exc}") from None
    try:
        return print_verified(verify_response(store.verify()), as_json)
    finally:
        store.close()


@rpc_command(log, "backup")
@click.argument("dest", default="")
@click.option("--log", "log_path", default="", help="the live log file (default: dspyops.db)")
@click.option("--chain-key-file", default="", help="the log's chain key")
@click.option("--force", is_flag=True, help="overwrite DEST")
@click.option("--predictions", default="", help="the gateway's records file, if not <log>.predictions")
@json_option
def backup(
    dest: str, log_path: str, chain_key_file: str, force: bool, predictions: str, as_json: bool
) -> int:
    """(offline: no RPC) a consistent copy of the live log to DEST, verified."""
    from dspyops.backup import BackupRefused, backup_log
    from dspyops.eventlog import log_file
    from dspyops.logwire import verify_response

    if not dest:
        raise SystemExit("log backup: give the destination file: dspyops log backup DEST [--log FILE]")
    from dspyops.eventlog import is_server_log

    if is_server_log(log_path):
        raise SystemExit(
            "log backup: a postgresql:// log is backed up by the server's own tools: pg_dump of its "
            "database (events, and beside them the snapshots, artifacts, predictions, outcomes and "
            "routing_secret tables), or a base backup; then `dspyops log verify --log URL` on the "
            "restored copy"
        )
    try:
        report = backup_log(
            log_file(log_path or "dspyops.db"),
            dest,
            force=force,
            chain_key=_chain_key(chain_key_file),
            predictions=predictions or None,
        )
    except BackupRefused as exc:
        raise SystemExit(f"log backup: {exc}") from None
    if not as_json:
        console.print(f"backed up {report.log} to {report.dest}: {report.head} events")
        for src, dst in report.files:
            console.print(f"  and {src} to {dst}")
        console.print("  on the copy: ", end="")
    return print_verified(verify_response(report.verified), as_json)
