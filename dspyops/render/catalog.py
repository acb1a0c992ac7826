"""What a server offers, as people read it: optimizers and presets, LM connections."""

from __future__ import annotations

import json
from collections.abc import Iterable

from rich.table import Table

from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.render.console import as_dict


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
        params = "; ".join(p.name for p in o.params)
        table.add_row(o.name, needs, params, o.doc)
    return table


def presets_table(catalog: opb.ListOptimizersResponse) -> Table:
    table = Table(title="presets (dspyops optimize --preset NAME)")
    for column in ("preset", "optimizer", "params", "doc"):
        table.add_column(column, overflow="fold")
    for p in catalog.presets:
        table.add_row(
            p.name, p.optimizer, json.dumps(as_dict(p.params)) if p.HasField("params") else "{}", p.doc
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
