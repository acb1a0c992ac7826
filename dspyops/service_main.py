"""What the two services' entry points (`python -m optimizer_svc`, `python -m gateway_svc`)
share: the flags every server takes, and how a service process starts and refuses to.

Each service owns its own entry point and its own flags; this kernel module holds only the
common part, so `dspyops serve X` can start a service by running its entry point without the
kernel ever importing a service.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import click

from dspyops.rpc import Security

F = TypeVar("F", bound=Callable[..., Any])

# (flag, click options) for every server; each service adds its own after these
_COMMON: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--host", {"default": "127.0.0.1", "show_default": True, "help": "address to listen on"}),
    ("--port", {"type": int, "default": 0, "help": "0: any free port (see --port-file)"}),
    ("--port-file", {"default": "", "help": "write the bound port here once serving"}),
    (
        "--metrics-port",
        {
            "type": click.IntRange(min=0, max=65535),
            "default": None,
            "help": "serve Prometheus /metrics over HTTP on --host at this port (0: any free port, "
            "see --metrics-port-file); none: no metrics server",
        },
    ),
    ("--metrics-port-file", {"default": "", "help": "write the bound metrics port here once serving"}),
    ("--tokens-file", {"default": "", "help": "token hashes with roles (see dspyops.auth); none: no auth"}),
    ("--tls-cert", {"default": "", "help": "the server's certificate (turns TLS on)"}),
    ("--tls-key", {"default": "", "help": "the private key of --tls-cert"}),
    ("--tls-client-ca", {"default": "", "help": "require client certificates signed by this CA"}),
    (
        "--grace",
        {
            "type": float,
            "default": 5.0,
            "show_default": True,
            "help": "on SIGTERM: seconds that calls in flight (and running jobs) get to finish",
        },
    ),
    (
        "--lm-connections",
        {
            "default": "",
            "help": "TOML file of LM connections (the same file for both services); none: offline only",
        },
    ),
    (
        "--allow-request-endpoints",
        {
            "multiple": True,
            "metavar": "HOST[:PORT],...",
            "help": "hosts a request's lm.api_base may name (with a key variable the connections file "
            "names); none: requests name no endpoint",
        },
    ),
    (
        "--chain-key-file",
        {"default": "", "help": "file holding the log's chain key: new links are HMAC-SHA256"},
    ),
    (
        "--allow-broken-log",
        {"is_flag": True, "help": "start even if the log's hash chain is broken (a warning names it)"},
    ),
    (
        "--create",
        {
            "is_flag": True,
            "help": "create the log if it is missing, even beside files of an earlier one",
        },
    ),
    (
        "--program-modules",
        {
            "multiple": True,
            "metavar": "MODULE,...",
            "help": "modules whose classes (package.module:Class) and ReAct tools programs may use "
            "(the same list for both services); none: no user code is ever imported",
        },
    ),
)


def server_options(command: F) -> F:
    """The flags every server takes, as click options (in this order in --help)."""
    for flag, options in reversed(_COMMON):
        command = click.option(flag, **options)(command)
    return command


def security(options: dict[str, Any]) -> Security:
    return Security(
        tokens_file=options["tokens_file"],
        tls_cert=options["tls_cert"],
        tls_key=options["tls_key"],
        tls_client_ca=options["tls_client_ca"],
    )


def request_endpoints(values: Sequence[str]) -> tuple[str, ...]:
    from dspyops.connections import parse_endpoint_allowlist

    return tuple(sorted(parse_endpoint_allowlist(list(values))))


def program_modules(values: Sequence[str]) -> frozenset[str]:
    from dspyops.programs.context import parse_program_modules

    try:
        return parse_program_modules(values)
    except ValueError as exc:
        raise click.UsageError(f"--program-modules: {exc}") from None


def run_service(name: str, serve: Callable[[], Coroutine[Any, Any, None]], grace: float) -> None:
    """Run `serve()` until it returns (SIGTERM): the process's stdout/stderr scrubbed, and a
    refused start (a broken chain, a held log, a bad connections file) a one-line message
    with exit status 1 instead of a traceback."""
    from dspyops.connections import ConnectionsFileError
    from dspyops.logs import guard_streams
    from dspyops.logstart import StartRefused

    if not grace >= 0:  # also refuses NaN
        raise click.UsageError(f"--grace must be a number of seconds >= 0, got {grace}")
    guard_streams()  # a service process: whatever reaches stdout/stderr is scrubbed
    try:
        asyncio.run(serve())
    except (StartRefused, ConnectionsFileError) as exc:
        sys.stderr.write(f"serve {name}: {exc}\n")
        sys.exit(1)
