"""The CLI against the contract: every RPC of both services has a command, every command
names RPCs that exist (first in its help), and commands that change something are exactly
those whose RPC takes a request id (so the rerun hint and the retries agree)."""

from __future__ import annotations

from collections.abc import Iterator

import click

from dspyops.cli.command import RpcCommand
from dspyops.cli.main import cli
from dspyops.cli.shortcuts import SHORTCUTS
from dspyops.client.channel import MUTATING
from dspyops.proto import gateway_pb2, optimizer_pb2

SERVICES = {
    "Optimizer": optimizer_pb2.DESCRIPTOR.services_by_name["Optimizer"],
    "Gateway": gateway_pb2.DESCRIPTOR.services_by_name["Gateway"],
}
OFFLINE = {"serve", "demo", "log backup"}  # they run here and call no RPC


def walk(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """(path, command) of every command under `group`, each once, by its grouped name."""
    for name, command in sorted(group.commands.items()):
        if not prefix and name in SHORTCUTS:
            continue  # the same objects as the grouped commands, under their old names
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from walk(command, f"{path} ")
        else:
            yield path, command


COMMANDS = dict(walk(cli))


def test_every_command_records_the_rpcs_it_calls_and_they_exist() -> None:
    assert len(COMMANDS) > 30
    for path, command in COMMANDS.items():
        assert isinstance(command, RpcCommand), f"{path} is not an RpcCommand: it records no RPC"
        if path in OFFLINE:
            assert command.rpcs == (), path
            continue
        assert command.rpcs, f"{path} claims no RPC"
        for name in command.rpcs:
            service, _, method = name.partition(".")
            assert method in SERVICES[service].methods_by_name, f"{path} claims {name}, which does not exist"
        methods = " / ".join(dict.fromkeys(name.partition(".")[2] for name in command.rpcs))
        assert (command.help or "").startswith(f"{methods}: "), f"{path}'s help does not start with its RPC"


def test_every_rpc_of_both_services_has_a_command() -> None:
    claimed = {name for command in COMMANDS.values() for name in command.rpcs}  # type: ignore[attr-defined]
    missing = [
        f"{service}.{method}"
        for service, descriptor in SERVICES.items()
        for method in descriptor.methods_by_name
        if f"{service}.{method}" not in claimed
    ]
    assert missing == []


def test_commands_that_change_something_are_those_whose_rpc_takes_a_request_id() -> None:
    mutating = {
        f"{service.rsplit('.', 1)[-1]}.{method}"
        for service, methods in MUTATING.items()
        for method in methods
    }
    for service, descriptor in SERVICES.items():  # MUTATING itself: the RPCs with a request_id
        for method in descriptor.methods:
            has_id = "request_id" in method.input_type.fields_by_name
            assert has_id == (f"{service}.{method.name}" in mutating), method.full_name
    for path, command in {**COMMANDS, "routes": SHORTCUTS["routes"][1]}.items():
        assert isinstance(command, RpcCommand)
        assert command.changes == any(name in mutating for name in command.rpcs), path


def test_every_command_that_prints_a_reply_takes_json() -> None:
    for path, command in COMMANDS.items():
        if path in ("serve", "demo"):
            continue
        assert "--json" in {opt for param in command.params for opt in getattr(param, "opts", ())}, path


def test_each_shortcut_is_its_grouped_command_under_the_old_name() -> None:
    old = (
        "optimize jobs watch cancel programs versions promote alias deploy routes predict log outcome "
        "experiment rollback state explain canary shadow optimizers evaluate compare import export "
        "connections serve demo"
    ).split()
    assert set(old) <= set(cli.commands), set(old) - set(cli.commands)
    for name, (target, command) in SHORTCUTS.items():
        assert cli.commands[name] is command
        if name != "routes":  # `routes` reads or sets: it runs one of two grouped commands
            group, _, sub = target.partition(" ")
            found = cli.commands[group]
            if sub:
                assert isinstance(found, click.Group)
                found = found.commands[sub]
            assert found is command, name
