"""LM usage counters by connection and model, one set per server under the same names
(`dspyops_lm_calls`, `dspyops_lm_tokens{direction}`, `dspyops_lm_cost_usd`), so one
dashboard panel sums the optimizer's jobs and the gateways' predictions. Labels are the
connection and model a server resolved: names from its connections file, never request text."""

from __future__ import annotations

import prometheus_client
from prometheus_client import CollectorRegistry

LABELS = ("connection", "model")


class LMCounters:
    def __init__(self, registry: CollectorRegistry, whose: str) -> None:
        """``whose``: whose calls they are, for the help texts, e.g. "jobs"."""
        self.calls = prometheus_client.Counter(
            "dspyops_lm_calls", f"LM calls paid for: {whose}.", LABELS, registry=registry
        )
        self.tokens = prometheus_client.Counter(
            "dspyops_lm_tokens",
            f"LM tokens by direction (input, output): {whose}.",
            (*LABELS, "direction"),
            registry=registry,
        )
        self.cost = prometheus_client.Counter(
            "dspyops_lm_cost_usd",
            f"LM cost in USD (reported, or from the connection's prices): {whose}.",
            LABELS,
            registry=registry,
        )

    def add(
        self, connection: str, model: str, calls: int, input_tokens: int, output_tokens: int, cost: float
    ) -> None:
        self.calls.labels(connection, model).inc(calls)
        self.tokens.labels(connection, model, "input").inc(input_tokens)
        self.tokens.labels(connection, model, "output").inc(output_tokens)
        self.cost.labels(connection, model).inc(cost)
