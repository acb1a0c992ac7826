"""Prediction records and outcomes: append-only, in their own SQLite file (not the log).

Every Predict is written here before it is answered, so an acknowledged prediction is on
disk. One writer thread owns the write connection and drains a queue: whatever arrived
while it committed goes into the next transaction (group commit), so one fsync serves
many requests, and each request waits for the commit that carries its record. A record
costs one hand-off to the writer and one wake-up of the event loop per commit, with no
executor, task or per-call SQL generation in between.
The raw routing key is never stored, only its HMAC-SHA256 under a per-log secret and the
GrowthBook hash value that decided the assignment (enough to explain the decision, not to
recover the key). The secret (32 random bytes, 0600, `<log>.secret`, see dspyops.keyfiles)
never enters the log or the records, so a reader of either cannot test guesses of a user
id against the stored value; `explain --key` recomputes the HMAC to check a key. Records
written before the HMAC hold an unsalted sha256 (`routing_key_sha256`), still checked by
recomputing that.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import operator
import queue
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import sqlite_utils

from dspyops.errors import AlreadyExists, InvalidArgument, NotFound, shown
from dspyops.keyfiles import load_or_create_secret, secret_path
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


class PredictionStore:
    def __init__(self, path: str | Path, *, secret: bytes | None = None) -> None:
        """`secret`: the routing-key HMAC secret (default: `<path>.secret`, created if absent)."""
        self.path = str(path)
        self._secret = secret if secret is not None else load_or_create_secret(secret_path(self.path))
        self._local = threading.local()
        db = self._db()
        db.execute("PRAGMA journal_mode=WAL")
        if "predictions" not in db.table_names():
            db.table("predictions").create(
                {f: _SQL_TYPES[type(v).__name__] for f, v in asdict(_EXAMPLE).items()},
                pk="prediction_id",
                if_not_exists=True,
            )
            db.table("predictions").create_index(
                ["deployment", "experiment_id", "version"], if_not_exists=True
            )
        else:  # a records file from before some columns (the HMAC, captures): added empty
            columns = db.table("predictions").columns_dict
            for name, value in asdict(_EXAMPLE).items():
                if name not in columns:
                    db.table("predictions").add_column(name, type(value), not_null_default=value)
        # what the retention sweep looks for: few rows ever have an expiry
        db.execute(
            "CREATE INDEX IF NOT EXISTS predictions_capture_expiry ON predictions (capture_expires_at_us) "
            "WHERE capture_expires_at_us > 0"
        )
        if "outcomes" not in db.table_names():
            db.table("outcomes").create(
                {"prediction_id": str, "value": float, "recorded_at_us": int, "request_id": str},
                pk="prediction_id",
                not_null={"request_id"},
                defaults={"request_id": ""},
                if_not_exists=True,
            )
        elif "request_id" not in db.table("outcomes").columns_dict:  # a records file from before request ids
            db.table("outcomes").add_column("request_id", str, not_null_default="")
        # a request_id answers one outcome: retries find it here (unique, so no two can claim it)
        db.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS outcomes_request_id ON outcomes (request_id) "
            "WHERE request_id != ''"
        )
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA synchronous=FULL")  # an acknowledged prediction survives a crash
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite_utils.Database(self._connect())
            self._local.db = db
        return db

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

    # ------------------------------------------------------------------ writes

    async def record(self, record: PredictionRecord) -> None:
        """Returns once the record is committed (grouped with concurrent ones)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._writer_lock:  # nothing is queued behind close()'s stop marker
            if self._closed:
                raise RuntimeError(f"prediction store {self.path} is closed")
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_loop, name="prediction-writer", daemon=True
                )
                self._writer.start()
            self._queue.put((record, future, loop))
        await future

    def _write_loop(self) -> None:
        conn = self._connect()
        try:
            stopping = False
            while not stopping:
                item = self._queue.get()
                if item is None:
                    break
                batch = [item]
                while len(batch) < _MAX_BATCH:  # everything that queued up meanwhile
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                error = self._commit(conn, [_row(r) for r, _, _ in batch])
                waiters: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
                for _, future, loop in batch:
                    waiters.setdefault(loop, []).append(future)
                for loop, futures in waiters.items():  # one wake-up per loop and commit
                    with contextlib.suppress(RuntimeError):  # that loop has closed meanwhile
                        loop.call_soon_threadsafe(_resolve, futures, error)
        finally:
            conn.close()

    @staticmethod
    def _commit(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> Exception | None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            return exc
        return None

    def add_outcome(self, prediction_id: str, value: float, *, request_id: str = "") -> PredictionRecord:
        """Record a prediction's one outcome. With a `request_id`, a repeat of the same
        request (same prediction, same value) returns the first answer and records nothing;
        the id with another prediction or value is ALREADY_EXISTS naming request_id. Without
        one, a second outcome for the prediction is ALREADY_EXISTS naming prediction_id."""
        if not prediction_id:
            raise InvalidArgument("prediction_id", "is required")
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidArgument("value", f"must be a finite number, got {value}")
        record = self.get(prediction_id)
        db = self._db()
        try:
            with db.conn:
                db.conn.execute("BEGIN IMMEDIATE")  # the lookup and the insert in one write transaction
                if request_id:
                    first = db.conn.execute(
                        "SELECT prediction_id, value FROM outcomes WHERE request_id = ?", [request_id]
                    ).fetchone()
                    if first is not None:
                        if tuple(first) != (prediction_id, value):
                            raise AlreadyExists(
                                "request_id",
                                "was first used for the outcome of another prediction or value: "
                                "a retry must resend the same request, a new outcome needs a new request_id",
                            )
                        return record  # a retry: the first answer, nothing recorded
                db.table("outcomes").insert(
                    {
                        "prediction_id": prediction_id,
                        "value": value,
                        "recorded_at_us": time.time_ns() // 1000,
                        "request_id": request_id,
                    }
                )
        except sqlite3.IntegrityError:
            raise AlreadyExists(
                "prediction_id", f"prediction {prediction_id} has an outcome already"
            ) from None
        return record

    def purge_expired(self, now_us: int) -> int:
        """Deletes what capture policies kept (inputs, traces) of every record whose retention
        ended by `now_us`; the decision itself stays (experiments count it). Returns how many
        records it cleared. `now_us` is the caller's clock (gateway_svc.retention), so a test
        moves time instead of waiting days."""
        db = self._db()
        with db.conn:
            cursor = db.conn.execute(
                "UPDATE predictions SET inputs_json = '', trace_json = '', capture_expires_at_us = 0 "
                "WHERE capture_expires_at_us > 0 AND capture_expires_at_us <= ?",
                [now_us],
            )
        return cursor.rowcount

    # ------------------------------------------------------------------ reads

    def get(self, prediction_id: str) -> PredictionRecord:
        if not prediction_id:
            raise InvalidArgument("prediction_id", "is required")
        rows = list(self._db()["predictions"].rows_where("prediction_id = ?", [prediction_id]))
        if not rows:
            raise NotFound("prediction_id", f"no prediction {shown(prediction_id)}")
        return PredictionRecord(**rows[0])

    def arm_counts(
        self, deployment: str, experiment_id: str, metric: str = "continuous"
    ) -> Mapping[str, ArmCounts]:
        """Per version: predictions assigned by the experiment, and the moments of its outcomes
        in the metric's range (statistics.summary.outcome_in_range: binary 0 or 1, continuous finite
        with |v| <= CONTINUOUS_LIMIT). Stored outcomes outside it (an older server took any
        finite value; a hand-edited file may hold text or NULL) are left out of n and the
        sums and counted in ``excluded``, so the statistics never see them."""
        in_range = "o.value IN (0, 1)" if metric == "binary" else "abs(o.value) <= :limit"
        ok = f"(typeof(o.value) IN ('integer', 'real') AND {in_range})"
        sql = f"""
            SELECT p.version, COUNT(*) AS assigned,
                   SUM(CASE WHEN {ok} THEN 1 ELSE 0 END) AS n,
                   COALESCE(SUM(CASE WHEN {ok} THEN o.value END), 0.0) AS total,
                   COALESCE(SUM(CASE WHEN {ok} THEN o.value * o.value END), 0.0) AS total_sq,
                   SUM(CASE WHEN o.prediction_id IS NOT NULL AND NOT {ok} THEN 1 ELSE 0 END) AS excluded
            FROM predictions p LEFT JOIN outcomes o ON o.prediction_id = p.prediction_id
            WHERE p.deployment = :deployment AND p.experiment_id = :experiment
              AND p.shadow_of = '' AND p.error = ''
            GROUP BY p.version
        """
        params = {"deployment": deployment, "experiment": experiment_id, "limit": CONTINUOUS_LIMIT}
        rows = self._db().execute(sql, params).fetchall()
        return {
            version: ArmCounts(assigned, n, float(total), float(total_sq), excluded)
            for version, assigned, n, total, total_sq, excluded in rows
        }

    def shadow_pairs(self, deployment: str) -> list[tuple[str, str, str, float, float, str]]:
        """(shadow version, shadow outputs, primary outputs, shadow latency, primary latency,
        shadow error) for every shadow record of the deployment."""
        sql = """
            SELECT s.version, s.outputs_json, p.outputs_json, s.latency_ms, p.latency_ms, s.error
            FROM predictions s JOIN predictions p ON p.prediction_id = s.shadow_of
            WHERE s.deployment = ? AND s.shadow_of != ''
        """
        return [tuple(row) for row in self._db().execute(sql, [deployment]).fetchall()]

    def close(self) -> None:
        """Commits what is queued, then stops the writer and closes this thread's connection."""
        with self._writer_lock:
            self._closed = True
            writer, self._writer = self._writer, None
            if writer is not None:
                self._queue.put(None)
        if writer is not None:
            writer.join(30)
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None


_EXAMPLE = PredictionRecord("", "", "", "", 0, "", "", 0.0, 0, "", 0, 0.0, "", 0)
_SQL_TYPES = {"str": str, "int": int, "float": float}
_FIELDS = [f.name for f in fields(PredictionRecord)]
_INSERT = f"INSERT INTO predictions ({', '.join(_FIELDS)}) VALUES ({', '.join('?' * len(_FIELDS))})"
_row = operator.attrgetter(*_FIELDS)  # record -> tuple in _FIELDS order
_MAX_BATCH = 1000  # records per transaction
_Pending = tuple[PredictionRecord, "asyncio.Future[None]", asyncio.AbstractEventLoop]


def _resolve(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    """On the requests' loop: wake every request whose record the commit carried."""
    for future in futures:
        if not future.done():  # a cancelled request (deadline) has gone; its record stays
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
