"""Prediction records and outcomes: append-only, kept apart from the log.

This module is the interface and what every backend shares; ``sqlite`` keeps them in a file
of their own (a file log's gateways, the default), ``postgres`` in tables of a PostgreSQL
log's database, shared by every gateway on that log (an outcome may be reported to any of
them, and the statistics count every gateway's traffic).

Every Predict is written before it is answered, so an acknowledged prediction is durable.
One writer thread drains a queue: whatever arrived while it committed goes into the next
transaction (group commit), so one fsync serves many requests, and each request waits for
the commit that carries its record. A record costs one hand-off to the writer and one
wake-up of the event loop per commit, with no executor, task or per-call SQL generation in
between.
The raw routing key is never stored, only its HMAC-SHA256 under a per-log secret and the
GrowthBook hash value that decided the assignment (enough to explain the decision, not to
recover the key). The secret (32 random bytes: a file log's `<log>.secret`, 0600, see
dspyops.keyfiles; a PostgreSQL log's in its database, dspyops.pgsecret) never enters the
log or the records, so a reader of either cannot test guesses of a user id against the
stored value; `explain --key` recomputes the HMAC to check a key. Records written before
the HMAC hold an unsalted sha256 (`routing_key_sha256`), still checked by recomputing that.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import hashlib
import hmac
import json
import operator
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Final

from dspyops.errors import AlreadyExists, InvalidArgument, NotFound, shown
from dspyops.ids import HEX as _HEX
from dspyops.ids import MIN_PREFIX
from gateway_svc.statistics.summary import CONTINUOUS_LIMIT


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    prediction_id: str
    deployment: str
    program: str
    version: str
    bucket: int
    experiment_id: str
    routing_key_sha256: str  # records written before the HMAC: sha256 hex of the key ("" otherwise)
    hash_value: float  # GrowthBook hash (or the random draw) that chose the bucket
    hash_version: int
    seed: str
    log_position: int
    latency_ms: float
    error: str
    recorded_at_us: int
    outputs_json: str = "{}"
    shadow_of: str = ""  # the primary prediction this one shadowed
    routing_key_hmac: str = ""  # HMAC-SHA256 hex of the key under the log's secret ("" for a random draw)
    # what the deployment's capture policy kept (dspyops.capture), scrubbed; "" when it kept none
    inputs_json: str = ""  # the allowlisted inputs, a JSON object
    trace_json: str = ""  # the module calls, dspyops.tracing.trace_json
    capture_expires_at_us: int = 0  # when the two above are deleted (0: never, or nothing kept)
    # served with user code other than the version's (--allow-code-drift): module -> both digests, JSON
    code_drift: str = ""
    trace_id: str = ""  # the OpenTelemetry trace of the Predict call, 32 hex digits ("" : not traced)

    @property
    def has_routing_key(self) -> bool:
        return bool(self.routing_key_hmac or self.routing_key_sha256)


def key_digest(routing_key: str) -> str:
    """The unsalted sha256 that records held before the HMAC (checked for those only)."""
    return hashlib.sha256(routing_key.encode()).hexdigest() if routing_key else ""


@dataclass(frozen=True, slots=True)
class ArmCounts:
    assigned: int
    n: int
    total: float
    total_sq: float
    excluded: int = 0  # stored outcomes outside the metric's range, left out of n and the sums


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    """A labelled outcome (one with `expected`) and what its prediction kept: a training
    example when `inputs_json` is set, skipped by the export when it is "" (nothing
    captured, or deleted by the retention)."""

    prediction_id: str
    version: str
    recorded_at_us: int  # the outcome's
    inputs_json: str
    expected_json: str
    value: float


@dataclass(frozen=True, slots=True)
class CaptureDeletion:
    """One sweep's deletion of a deployment's captured data: how many records it cleared of
    their inputs and traces, the cutoff (records whose retention ended by it), and when."""

    swept_at_us: int  # wall time of the sweep
    cutoff_us: int  # the sweep's clock (GatewayConfig.clock): what had expired by then
    deployment: str
    records: int


def deletions(cutoff_us: int, deployments: list[str]) -> list[CaptureDeletion]:
    """The rows a sweep records, per deployment, from the deployments of the cleared records."""
    swept_at_us = time.time_ns() // 1000
    counts = collections.Counter(deployments)
    return [CaptureDeletion(swept_at_us, cutoff_us, d, n) for d, n in sorted(counts.items())]


def expected_json(expected: Mapping[str, str]) -> str:
    """How an outcome stores its expected outputs: canonical JSON ("" for none), so a retry's
    comparison is a string comparison."""
    return json.dumps(dict(expected), sort_keys=True, ensure_ascii=False) if expected else ""


class PredictionStore(abc.ABC):
    """What the gateway records predictions and outcomes in; a backend supplies the SQL."""

    def __init__(self, where: str, *, secret: bytes) -> None:
        """`where`: names the store in messages; `secret`: the routing-key HMAC secret."""
        self.where = where
        self._secret = secret
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._closed = False

    # ------------------------------------------------------------------ routing keys

    def key_hmac(self, routing_key: str) -> str:
        """What a record stores for a routing key ("" for none: a random draw)."""
        if not routing_key:
            return ""
        return hmac.new(self._secret, routing_key.encode("utf-8"), hashlib.sha256).hexdigest()

    def key_matches(self, record: PredictionRecord, routing_key: str) -> bool:
        """Whether `routing_key` is the key the record was assigned by (recomputed: the
        HMAC for new records, the old sha256 for records written before it)."""
        if record.routing_key_hmac:
            return hmac.compare_digest(self.key_hmac(routing_key), record.routing_key_hmac)
        if record.routing_key_sha256:
            return hmac.compare_digest(key_digest(routing_key), record.routing_key_sha256)
        return False

    @property
    def queued(self) -> int:
        """Records waiting for the writer thread (approximate: read without its lock)."""
        return self._queue.qsize()

    # ------------------------------------------------------------------ writes

    async def record(self, record: PredictionRecord) -> None:
        """Returns once the record is committed (grouped with concurrent ones)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._writer_lock:  # nothing is queued behind close()'s stop marker
            if self._closed:
                raise RuntimeError(f"prediction store {self.where} is closed")
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_loop, name="prediction-writer", daemon=True
                )
                self._writer.start()
            self._queue.put((record, future, loop))
        await future

    def _write_loop(self) -> None:
        try:
            stopping = False
            while not stopping:
                item = self._queue.get()
                if item is None:
                    break
                batch = [item]
                while len(batch) < MAX_BATCH:  # everything that queued up meanwhile
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                try:
                    self._commit([row(r) for r, _, _ in batch])
                    error: Exception | None = None
                except Exception as exc:  # fails every request of the batch; the writer goes on
                    error = exc
                waiters: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
                for _, future, loop in batch:
                    waiters.setdefault(loop, []).append(future)
                for loop, futures in waiters.items():  # one wake-up per loop and commit
                    with contextlib.suppress(RuntimeError):  # that loop has closed meanwhile
                        loop.call_soon_threadsafe(_resolve, futures, error)
        finally:
            self._writer_stopped()

    @abc.abstractmethod
    def _commit(self, rows: list[tuple[object, ...]]) -> None:
        """On the writer thread: insert the rows (FIELDS order) in one transaction, or none."""

    @abc.abstractmethod
    def _writer_stopped(self) -> None:
        """On the writer thread, as it ends: release what it holds."""

    def add_outcome(
        self,
        prediction_id: str,
        value: float,
        *,
        request_id: str = "",
        expected: Mapping[str, str] | None = None,
    ) -> PredictionRecord:
        """Record a prediction's one outcome, with the correct outputs when given (`expected`).
        With a `request_id`, a repeat of the same request (same prediction, value and
        expected) returns the first answer and records nothing;
        the id with another prediction or value is ALREADY_EXISTS naming request_id. Without
        one, a second outcome for the prediction is ALREADY_EXISTS naming prediction_id."""
        if not prediction_id:
            raise InvalidArgument("prediction_id", "is required")
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidArgument("value", f"must be a finite number, got {value}")
        record = self.get(prediction_id)  # a unique prefix names the whole id
        self._add_outcome(record.prediction_id, value, request_id, expected_json(expected or {}))
        return record

    @abc.abstractmethod
    def _add_outcome(self, prediction_id: str, value: float, request_id: str, expected: str) -> None:
        """Insert the outcome unless `request_id` answered it already (then nothing), raising
        request_reused() or outcome_exists() as add_outcome says; atomic against every other
        writer of the store (another thread, another gateway)."""

    @abc.abstractmethod
    def add_scored(self, prediction_id: str, source: str, value: float) -> bool:
        """Record an online evaluator's score of a prediction as an outcome with `source`
        ("evaluator:<name>", never "": that is a human's). False when that source scored the
        prediction already (nothing recorded): an evaluator scores a prediction once."""

    @abc.abstractmethod
    def scores_of(self, prediction_id: str) -> dict[str, float]:
        """The evaluators' scores of a prediction, by source (its human outcome left out)."""

    @abc.abstractmethod
    def source_summary(self, deployment: str, source: str) -> tuple[int, float]:
        """(count, sum) of the outcomes with `source` of the deployment's predictions."""

    @abc.abstractmethod
    def purge_expired(self, now_us: int) -> int:
        """Deletes what capture policies kept (inputs, traces) of every record whose retention
        ended by `now_us`; the decision itself stays (experiments count it). Returns how many
        records it cleared. `now_us` is the caller's clock (gateway_svc.retention), so a test
        moves time instead of waiting days. The deletion is recorded in the same transaction
        (capture_deletions: per deployment, the count and the cutoff), so no deletion goes
        unrecorded and no record claims one that did not happen."""

    @abc.abstractmethod
    def capture_deletions(self) -> list[CaptureDeletion]:
        """Every recorded deletion, oldest first (by sweep, then deployment)."""

    # ------------------------------------------------------------------ reads

    def get(self, prediction_id: str) -> PredictionRecord:
        if not prediction_id:
            raise InvalidArgument("prediction_id", "is required")
        found = self._get(prediction_id)
        if found is None and _HEX.fullmatch(prediction_id):
            # as git does: a unique prefix of an id (ids are hex, so LIKE sees no wildcard)
            if len(prediction_id) < MIN_PREFIX:
                raise InvalidArgument(
                    "prediction_id",
                    f"a prefix needs at least {MIN_PREFIX} characters, got {shown(prediction_id)}",
                )
            candidates = self._with_prefix(prediction_id, 11)
            if len(candidates) > 1:
                many = "more than 10" if len(candidates) > 10 else str(len(candidates))
                raise InvalidArgument(
                    "prediction_id", f"prefix {shown(prediction_id)} is ambiguous: {many} predictions match"
                )
            found = self._get(candidates[0]) if candidates else None
        if found is None:
            raise NotFound("prediction_id", f"no prediction {shown(prediction_id)}")
        return found

    @abc.abstractmethod
    def _get(self, prediction_id: str) -> PredictionRecord | None: ...

    @abc.abstractmethod
    def _with_prefix(self, prefix: str, limit: int) -> list[str]:
        """Up to `limit` prediction ids starting with `prefix` (lowercase hex)."""

    @abc.abstractmethod
    def arm_counts(
        self, deployment: str, experiment_id: str, metric: str = "continuous", source: str = ""
    ) -> Mapping[str, ArmCounts]:
        """Per version: predictions assigned by the experiment (shadows and errors left out),
        and the moments of its outcomes in the metric's range (statistics.summary.outcome_in_range:
        binary 0 or 1, continuous finite with |v| <= CONTINUOUS_LIMIT). Stored outcomes
        outside it (an older server took any finite value; a hand-edited file may hold text
        or NULL) are left out of n and the sums and counted in ``excluded``, so the
        statistics never see them. Outcomes of `source` only: "" (the default) is the human
        ones, "evaluator:<name>" an online evaluator's: they never mix."""

    @abc.abstractmethod
    def arm_outcomes(
        self, deployment: str, experiment_id: str, metric: str = "continuous", source: str = ""
    ) -> list[tuple[str, float]]:
        """(version, value) of the experiment's outcomes that ``arm_counts`` counts (the same
        predictions, source and range), in the order they were recorded (outcome time, then
        prediction id): the sample as it grew, for the always-valid p's history."""

    @abc.abstractmethod
    def feedback(
        self, deployment: str, since_us: int, until_us: int, after: tuple[int, str], limit: int
    ) -> list[FeedbackRow]:
        """Up to `limit` labelled outcomes (non-empty expected) of the deployment recorded in
        [since_us, until_us), ordered by (outcome time, prediction id) and strictly after
        `after` in that order (the page cursor; (0, "") for the first page). Human outcomes
        only: an evaluator's score is no label."""

    @abc.abstractmethod
    def drift_rows(
        self,
        deployment: str,
        version: str,
        from_position: int,
        metric: str,
        *,
        traces: bool = False,
        source: str = "",
    ) -> list[DriftRow]:
        """The primary predictions of `version` made on states at or after `from_position`, in
        the order they were recorded: what a drift check (gateway_svc.drift) looks at. An
        outcome outside the metric's range (as in arm_counts) is None; the kept trace only with
        `traces` (the cost of a prediction is in it), else "". Outcomes of `source` only, as
        in arm_counts (human ones by default)."""

    @abc.abstractmethod
    def shadow_pairs(self, deployment: str) -> list[tuple[str, str, str, float, float, str]]:
        """(shadow version, shadow outputs, primary outputs, shadow latency, primary latency,
        shadow error) for every shadow record of the deployment."""

    def close(self) -> None:
        """Commits what is queued, then stops the writer and closes the store's connections."""
        with self._writer_lock:
            self._closed = True
            writer, self._writer = self._writer, None
            if writer is not None:
                self._queue.put(None)
        if writer is not None:
            writer.join(30)
        self._close_connections()

    @abc.abstractmethod
    def _close_connections(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DriftRow:
    recorded_at_us: int
    latency_ms: float
    failed: bool
    outcome: float | None  # None: no outcome (or one outside the metric's range)
    trace_json: str = ""


def request_reused() -> AlreadyExists:
    return AlreadyExists(
        "request_id",
        "was first used for the outcome of another prediction or value: "
        "a retry must resend the same request, a new outcome needs a new request_id",
    )


def outcome_exists(prediction_id: str) -> AlreadyExists:
    return AlreadyExists("prediction_id", f"prediction {prediction_id} has an outcome already")


FIELDS: Final = tuple(f.name for f in fields(PredictionRecord))
row = operator.attrgetter(*FIELDS)  # record -> tuple in FIELDS order
MAX_BATCH: Final = 1000  # records per transaction
_Pending = tuple[PredictionRecord, "asyncio.Future[None]", asyncio.AbstractEventLoop]


def _resolve(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    """On the requests' loop: wake every request whose record the commit carried."""
    for future in futures:
        if not future.done():  # a cancelled request (deadline) has gone; its record stays
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


def experiment_params(deployment: str, experiment_id: str, source: str) -> dict[str, object]:
    """The named parameters of an experiment's queries (arm_counts, arm_outcomes) in either
    backend; ``limit`` bounds a continuous outcome (statistics.summary.CONTINUOUS_LIMIT)."""
    return {
        "deployment": deployment,
        "experiment": experiment_id,
        "limit": CONTINUOUS_LIMIT,
        "source": source,
    }
