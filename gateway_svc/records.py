"""Prediction records and outcomes: append-only, in their own SQLite file (not the log).

Every Predict is written here before it is answered, so an acknowledged prediction is on
disk. Writes from concurrent requests are grouped into one transaction (group commit):
each request waits for the commit that carries its record, and one fsync serves many.
The raw routing key is never stored, only its sha256 and the GrowthBook hash value that
decided the assignment (enough to explain the decision, not to recover the key).
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlite_utils

from dspyops.errors import AlreadyExists, InvalidArgument, NotFound


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    prediction_id: str
    deployment: str
    program: str
    version: str
    bucket: int
    experiment_id: str
    routing_key_sha256: str  # "" for a random draw
    hash_value: float  # GrowthBook hash (or the random draw) that chose the bucket
    hash_version: int
    seed: str
    log_position: int
    latency_ms: float
    error: str
    recorded_at_us: int
    outputs_json: str = "{}"
    shadow_of: str = ""  # the primary prediction this one shadowed


def key_digest(routing_key: str) -> str:
    return hashlib.sha256(routing_key.encode()).hexdigest() if routing_key else ""


@dataclass(frozen=True, slots=True)
class ArmCounts:
    assigned: int
    n: int
    total: float
    total_sq: float


class PredictionStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        db = self._db()
        db.execute("PRAGMA journal_mode=WAL")
        if "predictions" not in db.table_names():
            db["predictions"].create(
                {f: _SQL_TYPES[type(v).__name__] for f, v in asdict(_EXAMPLE).items()},
                pk="prediction_id",
                if_not_exists=True,
            )
            db["predictions"].create_index(["deployment", "experiment_id", "version"], if_not_exists=True)
        if "outcomes" not in db.table_names():
            db["outcomes"].create(
                {"prediction_id": str, "value": float, "recorded_at_us": int},
                pk="prediction_id",
                if_not_exists=True,
            )
        self._pending: list[tuple[PredictionRecord, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    def _db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA synchronous=FULL")  # an acknowledged prediction survives a crash
            conn.execute("PRAGMA busy_timeout=30000")
            db = sqlite_utils.Database(conn)
            self._local.db = db
        return db

    # ------------------------------------------------------------------ writes

    async def record(self, record: PredictionRecord) -> None:
        """Returns once the record is committed (grouped with concurrent ones)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._insert, [r for r, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    def _insert(self, records: list[PredictionRecord]) -> None:
        db = self._db()
        with db.conn:
            db.conn.execute("BEGIN IMMEDIATE")
            db["predictions"].insert_all((asdict(r) for r in records), batch_size=500)

    def add_outcome(self, prediction_id: str, value: float) -> PredictionRecord:
        if not prediction_id:
            raise InvalidArgument("prediction_id", "is required")
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidArgument("value", f"must be a finite number, got {value}")
        record = self.get(prediction_id)
        db = self._db()
        try:
            with db.conn:
                db.conn.execute("BEGIN IMMEDIATE")
                db["outcomes"].insert(
                    {"prediction_id": prediction_id, "value": value, "recorded_at_us": time.time_ns() // 1000}
                )
        except sqlite3.IntegrityError:
            raise AlreadyExists(
                "prediction_id", f"prediction {prediction_id} has an outcome already"
            ) from None
        return record

    # ------------------------------------------------------------------ reads

    def get(self, prediction_id: str) -> PredictionRecord:
        if not prediction_id:
            raise InvalidArgument("prediction_id", "is required")
        rows = list(self._db()["predictions"].rows_where("prediction_id = ?", [prediction_id]))
        if not rows:
            raise NotFound("prediction_id", f"no prediction {prediction_id!r}")
        return PredictionRecord(**rows[0])

    def arm_counts(self, deployment: str, experiment_id: str) -> Mapping[str, ArmCounts]:
        """Per version: predictions assigned by the experiment, and its outcomes' moments."""
        sql = """
            SELECT p.version, COUNT(*) AS assigned, COUNT(o.value) AS n,
                   COALESCE(SUM(o.value), 0.0) AS total, COALESCE(SUM(o.value * o.value), 0.0) AS total_sq
            FROM predictions p LEFT JOIN outcomes o ON o.prediction_id = p.prediction_id
            WHERE p.deployment = ? AND p.experiment_id = ? AND p.shadow_of = '' AND p.error = ''
            GROUP BY p.version
        """
        rows = self._db().execute(sql, [deployment, experiment_id]).fetchall()
        return {
            version: ArmCounts(assigned, n, total, total_sq) for version, assigned, n, total, total_sq in rows
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
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None


_EXAMPLE = PredictionRecord("", "", "", "", 0, "", "", 0.0, 0, "", 0, 0.0, "", 0)
_SQL_TYPES = {"str": str, "int": int, "float": float}
