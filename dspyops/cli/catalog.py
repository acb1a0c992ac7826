"""`dspyops optimizers` and `dspyops connections`: what a server offers."""

from __future__ import annotations

import click

from dspyops.cli.command import json_option, rpc_command
from dspyops.cli.session import Session
from dspyops.render.catalog import connections_table, optimizers_table, presets_table
from dspyops.render.console import console, print_json


@rpc_command(None, "optimizers", "Optimizer.ListOptimizers")
@json_option
@click.pass_obj
def optimizers(session: Session, as_json: bool) -> int:
    """the optimizers, their parameters and the named presets."""
    with session.optimizer() as opt:
        catalog = opt.list_optimizers()
    if as_json:
        print_json(catalog)
    else:
        console.print(optimizers_table(catalog))
        console.print(presets_table(catalog))
    return 0


@rpc_command(None, "connections", "Optimizer.ListConnections", "Gateway.ListConnections")
@click.option("--gateway", "ask_gateway", is_flag=True, help="ask the gateway, not the optimizer")
@json_option
@click.pass_obj
def connections(session: Session, ask_gateway: bool, as_json: bool) -> int:
    """the LM connections a server has (names, models; never keys)."""
    if ask_gateway:
        with session.gateway() as gw:
            listed = gw.list_connections().connections
    else:
        with session.optimizer() as opt:
            listed = opt.list_connections().connections
    if as_json:
        for connection in listed:
            print_json(connection)
    else:
        console.print(connections_table(listed, "gateway" if ask_gateway else "optimizer"))
    return 0
