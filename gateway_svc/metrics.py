"""The gateway's domain metrics: predictions (by deployment, version, arm and outcome) and
their latency, counted as each record is kept; outcomes by source; the LM calls, tokens and
cost of what it serves (gateway_svc.lm_usage); and, read at scrape
time, the replica's position in the log, the head and the lag between them, and how many
programs it holds loaded. Labels are
names the log holds (deployments, versions) and bucket numbers, never request text."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from dspyops.eventlog import EventStore
from gateway_svc.lm_usage import LMUsage
from gateway_svc.loader import ProgramCache
from gateway_svc.records import PredictionRecord, PredictionStore
from gateway_svc.replica import Replica

HUMAN = "human"  # the source of RecordOutcome's outcomes
# seconds: an offline program answers in milliseconds, an LM call in seconds
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class GatewayMetrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        replica: Replica,
        store: EventStore | None,
        records: PredictionStore,
        programs: ProgramCache | None = None,
    ) -> None:
        self.predictions = Counter(
            "dspyops_predictions",
            "Predictions served (shadows included), by deployment, version, arm (the routing "
            "bucket) and outcome (ok: the program answered; error: it raised).",
            ("deployment", "version", "arm", "outcome"),
            registry=registry,
        )
        self.latency = Histogram(
            "dspyops_prediction_latency_seconds",
            "How long a prediction took, from request to record.",
            ("deployment", "version"),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.outcomes = Counter(
            "dspyops_outcomes",
            "Outcomes recorded, by deployment, source (human: RecordOutcome; evaluator:<name>: an "
            "online evaluator's score) and kind (value: a score only; expected: with labelled "
            "outputs; score: an evaluator's).",
            ("deployment", "source", "kind"),
            registry=registry,
        )
        self.lm = LMUsage(registry)  # what predictions, shadows and judges cost
        registry.register(_TailCollector(replica, store, records, programs))

    def predicted(self, record: PredictionRecord) -> None:
        outcome = "error" if record.error else "ok"
        self.predictions.labels(record.deployment, record.version, str(record.bucket), outcome).inc()
        self.latency.labels(record.deployment, record.version).observe(record.latency_ms / 1000)

    def outcome(self, record: PredictionRecord, labelled: bool) -> None:
        self.outcomes.labels(record.deployment, HUMAN, "expected" if labelled else "value").inc()

    def scored(self, deployment: str, source: str) -> None:
        self.outcomes.labels(deployment, source, "score").inc()


class _TailCollector(Collector):
    """Where the replica is: its position, the head it knows of, the lag (a gateway on the log
    reads the head from it; one tailing an optimizer knows the head its stream last announced);
    and the records writer's queue."""

    def __init__(
        self,
        replica: Replica,
        store: EventStore | None,
        records: PredictionStore,
        programs: ProgramCache | None,
    ) -> None:
        self.replica = replica
        self.store = store
        self.records = records
        self.programs = programs

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        position = self.replica.state.position
        head = self.store.head() if self.store is not None else (self.replica.readiness.target or 0)
        head = max(head, position)
        yield GaugeMetricFamily(
            "dspyops_gateway_log_position", "The last log position this gateway folded.", value=position
        )
        yield GaugeMetricFamily(
            "dspyops_log_head_position", "The log's head: the position of its last event.", value=head
        )
        yield GaugeMetricFamily(
            "dspyops_gateway_log_lag",
            "Events in the log this gateway has not folded yet.",
            value=head - position,
        )
        yield GaugeMetricFamily(
            "dspyops_records_queue_depth",
            "Prediction and outcome records waiting for the records writer.",
            value=self.records.queued,
        )
        if self.programs is not None:
            yield GaugeMetricFamily(
                "dspyops_gateway_loaded_programs",
                "Versions' programs this gateway holds loaded (those that can serve or judge now, and the "
                "few that stopped serving last).",
                value=len(self.programs),
            )
            yield CounterMetricFamily(
                "dspyops_gateway_program_loads",
                "Versions' programs loaded since start, again or not (a route back to an unloaded one "
                "loads it).",
                value=self.programs.loads,
            )
