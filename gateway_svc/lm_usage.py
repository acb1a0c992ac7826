"""The LM usage of what a gateway serves, by connection and model: the calls, tokens and cost
of predictions, shadows and judges, under the optimizer's metric names (one dashboard
panel sums both services).

Counted through DSPy's usage-tracker hook: DSPy reports every LM call that is not a cache
hit to the context's tracker, and a gateway's LMs never use DSPy's cache
(dspyops.lm.lm_from_resolved), so one report is one call paid for. A call that raised
reports nothing and is not counted. Cost is what the provider reported, else the
connection's prices, as a job's (optimizer_svc.progress.usage). Labels are the
connection and model this gateway resolved for the version: names from its connections
file, never request text.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from dspyops.offline.engine import OFFLINE_MODEL
from dspyops.prometheus.lm import LMCounters
from dspyops.tracing import usage_numbers
from gateway_svc.loader import LoadedProgram


class LMUsage:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.counters = LMCounters(registry, "this gateway's predictions, shadows and judges")

    def add(self, loaded: LoadedProgram, usage_entry: dict[str, Any]) -> None:
        prompt, completion, cost = usage_numbers(usage_entry)
        if not cost:
            cost = loaded.prices.cost(prompt, completion)
        model = loaded.model or (OFFLINE_MODEL if loaded.lm_config.is_offline else "")
        self.counters.add(loaded.connection, model, 1, prompt, completion, cost)


class UsageTracker:
    """The context's usage tracker while one program runs: counts, then hands the report on
    to the tracker it replaced (a trace collector or a span callback opened outside)."""

    def __init__(self, usage: LMUsage, loaded: LoadedProgram, parent: Any) -> None:
        self.usage = usage
        self.loaded = loaded
        self.parent = parent

    def add_usage(self, lm: str, usage_entry: dict[str, Any]) -> None:
        self.usage.add(self.loaded, usage_entry)
        if self.parent is not None:
            self.parent.add_usage(lm, usage_entry)

    def __deepcopy__(self, memo: dict[int, Any]) -> UsageTracker:
        return self  # DSPy's parallel workers copy the tracker: keep counting into this one
