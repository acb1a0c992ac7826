"""The optimizer's domain metrics. Read at scrape time from what the server already keeps:
the folded jobs (by optimizer and state, and their trials), the log's head, the SubscribeLog
streams open. Counted as each job attempt ends: its LM calls, tokens and cost, by the
connection and model of the job's LM (`LMUsageMetrics`). Labels are names the log or the
connections file holds (optimizer names, job states, connections, models), never user text."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dspyops.caps import Cap
from dspyops.eventlog import EventStore
from dspyops.ledger import Ledger
from dspyops.lm import LMConfig
from dspyops.offline.engine import OFFLINE_MODEL
from dspyops.prometheus.lm import LABELS, LMCounters
from optimizer_svc.progress.usage import Usage


class OptimizerCollector(Collector):
    def __init__(self, ledger: Ledger, store: EventStore, subscribers: Cap) -> None:
        self.ledger = ledger
        self.store = store
        self.subscribers = subscribers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # the last folded state: a scrape never folds (nor waits on the ledger's lock)
        jobs = self.ledger.state.jobs.values()
        by_state = GaugeMetricFamily(
            "dspyops_jobs",
            "Optimization jobs in the log, by optimizer and state.",
            labels=["optimizer", "state"],
        )
        for (optimizer, state), count in sorted(Counter((j.optimizer, j.state) for j in jobs).items()):
            by_state.add_metric([optimizer, state], count)
        yield by_state
        trials: Counter[str] = Counter()
        for job in jobs:
            trials[job.optimizer] += job.trials
        family = GaugeMetricFamily(
            "dspyops_job_trials", "Trials the log's jobs recorded, by optimizer.", labels=["optimizer"]
        )
        for optimizer, count in sorted(trials.items()):
            family.add_metric([optimizer], count)
        yield family
        yield GaugeMetricFamily(
            "dspyops_log_head_position",
            "The log's head: the position of its last event.",
            value=self.store.head(),
        )
        yield GaugeMetricFamily(
            "dspyops_log_subscribers", "SubscribeLog streams open.", value=self.subscribers.in_use
        )


class LMUsageMetrics:
    """Jobs' LM usage by connection and model, counted when an attempt ends (a job on Ray
    reports its totals only then). A proposer LM of its own (MIPROv2's prompt_lm) is counted
    under the job's LM: the tracker keeps one tally per job."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counters = LMCounters(registry, "jobs (not the calls their LM cache replayed)")
        self.replayed = prometheus_client.Counter(
            "dspyops_lm_replayed_calls",
            "LM calls jobs' LM cache answered (not paid).",
            LABELS,
            registry=registry,
        )

    def job_ended(self, lm: LMConfig, usage: Usage) -> None:
        key = (lm.connection or "legacy", lm.model or (OFFLINE_MODEL if lm.is_offline else ""))
        self.counters.add(*key, usage.lm_calls, usage.input_tokens, usage.output_tokens, usage.cost_usd)
        self.replayed.labels(*key).inc(usage.replayed_lm_calls)


def register(
    registry: CollectorRegistry, ledger: Ledger, store: EventStore, subscribers: Cap
) -> LMUsageMetrics:
    registry.register(OptimizerCollector(ledger, store, subscribers))
    return LMUsageMetrics(registry)
