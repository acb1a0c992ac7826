"""What a server offers, as people read it: optimizers and presets, LM connections."""

from __future__ import annotations

import json
from collections.abc import Iterable

from google.protobuf.json_format import MessageToDict
from rich.table import Table

from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb


def optimizers_table(catalog: opb.ListOptimizersResponse) -> Table:
    table = Table(title="optimizers")
    for column in ("optimizer", "needs", "parameters", "what it does"):
        table.add_column(column, overflow="fold")
    for o in catalog.optimizers:
        needs = (
            ", ".join(
                n
                for n, on in (
                    ("valset", o.needs_valset),
                    ("teacher", o.needs_teacher),
                    (f"prompt LM ({o.prompt_lm_role})", o.uses_prompt_lm),
                )
                if on
            )
            or "-"
        )
        params = "\n".join(_param(p) for p in o.params)
        table.add_row(o.name, needs, params, o.doc)
    return table


def _param(p: opb.OptimizerParam) -> str:
    """``name: type = default, range``: what a user needs to write a --param."""
    default = json.dumps(_whole(MessageToDict(p.default))) if p.HasField("default") else "required"
    if p.allowed:
        limits = p.allowed
    elif p.choices:
        limits = "one of " + ", ".join(p.choices)
    elif p.HasField("minimum") or p.HasField("maximum"):
        low = f"{_whole(p.minimum)}" if p.HasField("minimum") else "-inf"
        high = f"{_whole(p.maximum)}" if p.HasField("maximum") else "inf"
        limits = f"[{low}, {high}]"
    else:
        limits = ""
    return f"{p.name}: {p.type} = {default}" + (f", {limits}" if limits else "")


def _whole(value: object) -> object:
    """Struct and Value hold every number as a double: 2.0 reads as 2 again."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return value


def presets_table(catalog: opb.ListOptimizersResponse) -> Table:
    table = Table(title="presets (dspyops optimize --preset NAME)")
    for column in ("preset", "optimizer", "params", "doc"):
        table.add_column(column, overflow="fold")
    for p in catalog.presets:
        table.add_row(
            p.name,
            p.optimizer,
            json.dumps(_whole(MessageToDict(p.params))) if p.HasField("params") else "{}",
            p.doc,
        )
    return table


def connections_table(connections: Iterable[pb.ConnectionInfo], service: str) -> Table:
    table = Table(title=f"LM connections of the {service}")
    for column in (
        "name",
        "provider",
        "endpoint",
        "models",
        "key",
        "max_tokens",
        "temperature",
        "USD/1M in/out",
    ):
        table.add_column(column)
    for c in connections:
        cap = f" (cap {c.max_tokens_cap})" if c.max_tokens_cap else ""
        prices = (
            f"{c.input_usd_per_mtok:g} / {c.output_usd_per_mtok:g}"
            if c.input_usd_per_mtok or c.output_usd_per_mtok
            else "-"
        )
        table.add_row(
            c.name,
            c.provider,
            c.endpoint or "-",
            ", ".join(c.models),
            "set" if c.has_key else "-",
            f"{c.default_max_tokens}{cap}",
            f"{c.min_temperature:g}-{c.max_temperature:g}",
            prices,
        )
    return table
