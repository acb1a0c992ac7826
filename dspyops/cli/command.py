"""What every command is made of: the RPC it calls (recorded, so a test can hold the CLI to
the contract, and shown first in its help), whether it changes something (it then sends
--request-id, and a timeout gets the rerun hint), and the options several commands share."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import click

from dspyops.cli.datasets import HELP as DATASET_HELP
from dspyops.cli.session import Session
from dspyops.proto import events_pb2 as pb

F = TypeVar("F", bound=Callable[..., Any])
SERVICES = ("Optimizer", "Gateway")


class RpcCommand(click.Command):
    """A command that is a thin layer over one client call. `rpcs`: "Service.Method" names
    (two only where one command asks either service, e.g. ListConnections); none for the
    offline commands (`log backup`, `serve`, `demo`)."""

    def __init__(self, *args: Any, rpcs: tuple[str, ...] = (), changes: bool = False, **kwargs: Any) -> None:
        for name in rpcs:
            service, _, method = name.partition(".")
            if service not in SERVICES or not method:
                raise ValueError(f"rpcs: expected Service.Method, got {name!r}")
        methods = list(dict.fromkeys(name.partition(".")[2] for name in rpcs))
        text = inspect.cleandoc(kwargs.get("help") or "")
        kwargs["help"] = f"{' / '.join(methods)}: {text}" if methods else text[:1].upper() + text[1:]
        super().__init__(*args, **kwargs)
        self.rpcs = rpcs
        self.changes = changes

    def invoke(self, ctx: click.Context) -> Any:
        session = ctx.find_object(Session)
        if session is not None:  # for the error hint: did this command change something?
            session.command = self
        return super().invoke(ctx)


def rpc_command(
    group: click.Group | None, name: str, *rpcs: str, changes: bool = False, **settings: Any
) -> Callable[[Callable[..., Any]], RpcCommand]:
    """`@rpc_command(jobs, "get", "Optimizer.GetJob")` above a command's body: registers it
    in `group` (None: the top level adds it) under `name`; its docstring, after the RPC's
    name, is its help."""

    def make(f: Callable[..., Any]) -> RpcCommand:
        command = click.command(name, cls=RpcCommand, rpcs=rpcs, changes=changes, **settings)(f)
        if group is not None:
            group.add_command(command)
        return command

    return make


def json_option(f: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="print the reply as JSON (a line per object)"
    )(f)


def reason_option(f: F) -> F:
    return click.option("--reason", default="", help="why, for the log")(f)


def expected_version_option(f: F) -> F:
    return click.option(
        "--expected-version",
        type=int,
        default=None,
        help="the deployment's stream version: refused (ABORTED) if another change came first",
    )(f)


def module_option(f: F) -> F:
    return click.option("--module", default="Predict", type=click.Choice(["Predict", "ChainOfThought"]))(f)


def spec_option(f: F) -> F:
    """``--spec FILE``: the program as a ProgramSpec in protobuf's JSON (a pipeline, or a user
    module ``package.module:Class`` with ``init_args``), instead of --signature/--module."""
    return click.option(
        "--spec",
        "spec_file",
        default="",
        type=click.Path(dir_okay=False),
        help='a ProgramSpec as JSON: {"module": "Pipeline", "pipeline": {...}} or '
        '{"module": "pkg.mod:Class", "init_args": "{...}"}; instead of --signature',
    )(f)


def read_spec(spec_file: str, signature: str, command: str) -> pb.ProgramSpec | None:
    """The --spec file's ProgramSpec (None without one); exactly one of --spec, --signature."""
    from google.protobuf import json_format

    if bool(spec_file) == bool(signature):
        raise SystemExit(f"{command}: give --signature TEXT or --spec FILE (one of them)")
    if not spec_file:
        return None
    try:
        with open(spec_file, encoding="utf-8") as f:
            return json_format.Parse(f.read(), pb.ProgramSpec())
    except (OSError, json_format.ParseError) as exc:
        raise SystemExit(f"{command}: --spec {spec_file}: {exc}") from None


def metric_kind_option(f: F) -> F:
    return click.option("--metric", default="binary", type=click.Choice(["binary", "continuous"]))(f)


def lm_options(f: F) -> F:
    """--connection, --model, --api-base, --api-key-env (see lm_config)."""
    for option in reversed(
        [
            click.option(
                "--connection",
                default="",
                help="an LM connection of the server (`dspyops connections`); default: offline",
            ),
            click.option("--model", default="", help="a model the connection allows, e.g. gpt-4o-mini"),
            click.option(
                "--api-base",
                default="",
                help="refused unless the server allows request endpoints (--allow-request-endpoints)",
            ),
            click.option(
                "--api-key-env",
                default="",
                help="with --api-base: a key variable the server's connections file names "
                "(refused otherwise)",
            ),
        ]
    ):
        f = option(f)
    return f


def lm_config(connection: str, model: str, api_base: str, api_key_env: str) -> pb.LMConfig | None:
    """The LM options as an LMConfig, None when none was given (the server's default)."""
    if not (connection or model or api_base or api_key_env):
        return None
    return pb.LMConfig(connection=connection, model=model, api_base=api_base, api_key_env=api_key_env)


def dataset_options(f: F) -> F:
    """--dataset, --dataset-ref, --metric, as evaluate and compare take them."""
    for option in reversed(
        [
            click.option("--dataset", default="", help=DATASET_HELP),
            click.option(
                "--dataset-ref", default="", help="a file under the server's --datasets-dir instead"
            ),
            click.option(
                "--metric", default="", help="exact_match (default), f1, contains, rouge_l, module:function"
            ),
        ]
    ):
        f = option(f)
    return f
