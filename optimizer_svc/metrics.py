"""The optimizer's domain metrics, read at scrape time from what the server already keeps:
the folded jobs (by optimizer and state, and their trials), the log's head, the SubscribeLog
streams open. Labels are names the log holds (optimizer names, job states), never user text."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dspyops.caps import Cap
from dspyops.eventlog import EventStore
from dspyops.ledger import Ledger


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


def register(registry: CollectorRegistry, ledger: Ledger, store: EventStore, subscribers: Cap) -> None:
    registry.register(OptimizerCollector(ledger, store, subscribers))
