"""Prediction records in an SQLite file of their own (by default ``<log>.predictions``):
the store of a gateway on a file log, or tailing a remote optimizer."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Final

import sqlite_utils

from dspyops.keyfiles import load_or_create_secret, secret_path
from gateway_svc.records import (
    FIELDS,
    ArmCounts,
    CaptureDeletion,
    DriftRow,
    FeedbackRow,
    PredictionRecord,
    PredictionStore,
    deletions,
    experiment_params,
    outcome_exists,
    request_reused,
)
from gateway_svc.statistics.summary import CONTINUOUS_LIMIT

_EXAMPLE: Final = PredictionRecord("", "", "", "", 0, "", "", 0.0, 0, "", 0, 0.0, "", 0)
_SQL_TYPES: Final = {"str": str, "int": int, "float": float}
_INSERT: Final = f"INSERT INTO predictions ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))})"


class SQLitePredictionStore(PredictionStore):
    def __init__(self, path: str | Path, *, secret: bytes | None = None) -> None:
        """`secret`: the routing-key HMAC secret (default: `<path>.secret`, created if absent)."""
        self.path = str(path)
        super().__init__(
            self.path, secret=secret if secret is not None else load_or_create_secret(secret_path(self.path))
        )
        self._local = threading.local()
        self._writer_conn: sqlite3.Connection | None = None
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
                {
                    "prediction_id": str,
                    "value": float,
                    "recorded_at_us": int,
                    "request_id": str,
                    "expected_json": str,
                    "source": str,
                },
                pk=("prediction_id", "source"),
                not_null={"request_id", "expected_json", "source"},
                defaults={"request_id": "", "expected_json": "", "source": ""},
                if_not_exists=True,
            )
        else:  # a records file from before request ids, expected outputs or sources: added empty
            columns = db.table("outcomes").columns_dict
            for name in ("request_id", "expected_json", "source"):
                if name not in columns:
                    db.table("outcomes").add_column(name, str, not_null_default="")
            if db.table("outcomes").pks != ["prediction_id", "source"]:
                # a human outcome and each evaluator's score of one prediction: one row each
                # (SQLite changes a primary key only by rebuilding the table: sqlite-utils does)
                db.table("outcomes").transform(pk=("prediction_id", "source"))
        # a request_id answers one outcome: retries find it here (unique, so no two can claim it)
        db.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS outcomes_request_id ON outcomes (request_id) "
            "WHERE request_id != ''"
        )
        if "capture_deletions" not in db.table_names():  # what each retention sweep deleted
            db.table("capture_deletions").create(
                {"swept_at_us": int, "cutoff_us": int, "deployment": str, "records": int}, if_not_exists=True
            )
        # what the feedback export walks: a deployment's labelled outcomes in time order
        db.execute(
            "CREATE INDEX IF NOT EXISTS outcomes_labelled ON outcomes (recorded_at_us, prediction_id) "
            "WHERE expected_json != ''"
        )
        # what an evaluator's statistics read: its scores only (human outcomes are source '')
        db.execute("CREATE INDEX IF NOT EXISTS outcomes_source ON outcomes (source) WHERE source != ''")

    def __repr__(self) -> str:
        return f"SQLitePredictionStore({self.path!r})"

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

    # ------------------------------------------------------------------ writes

    def _commit(self, rows: list[tuple[object, ...]]) -> None:
        if self._writer_conn is None:
            self._writer_conn = self._connect()  # the writer thread's own
        conn = self._writer_conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
        except Exception:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    def _writer_stopped(self) -> None:
        if self._writer_conn is not None:
            self._writer_conn.close()
            self._writer_conn = None

    def _add_outcome(self, prediction_id: str, value: float, request_id: str, expected: str) -> None:
        db = self._db()
        try:
            with db.conn:
                db.conn.execute("BEGIN IMMEDIATE")  # the lookup and the insert in one write transaction
                if request_id:
                    first = db.conn.execute(
                        "SELECT prediction_id, value, expected_json FROM outcomes WHERE request_id = ?",
                        [request_id],
                    ).fetchone()
                    if first is not None:
                        if tuple(first) != (prediction_id, value, expected):
                            raise request_reused()
                        return  # a retry: the first answer, nothing recorded
                db.table("outcomes").insert(
                    {
                        "prediction_id": prediction_id,
                        "value": value,
                        "recorded_at_us": time.time_ns() // 1000,
                        "request_id": request_id,
                        "expected_json": expected,
                    }
                )
        except sqlite3.IntegrityError:
            raise outcome_exists(prediction_id) from None

    def add_scored(self, prediction_id: str, source: str, value: float) -> bool:
        db = self._db()
        try:
            with db.conn:
                db.conn.execute(
                    "INSERT INTO outcomes (prediction_id, value, recorded_at_us, request_id, expected_json, "
                    "source) VALUES (?, ?, ?, '', '', ?)",
                    [prediction_id, value, time.time_ns() // 1000, source],
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def scores_of(self, prediction_id: str) -> dict[str, float]:
        sql = "SELECT source, value FROM outcomes WHERE prediction_id = ? AND source != ''"
        rows = self._db().execute(sql, [prediction_id]).fetchall()
        return {str(source): float(value) for source, value in rows if isinstance(value, int | float)}

    def source_summary(self, deployment: str, source: str) -> tuple[int, float]:
        sql = """
            SELECT COUNT(*), COALESCE(SUM(o.value), 0.0)
            FROM outcomes o JOIN predictions p ON p.prediction_id = o.prediction_id
            WHERE o.source = ? AND p.deployment = ? AND typeof(o.value) IN ('integer', 'real')
        """
        n, total = self._db().execute(sql, [source, deployment]).fetchone()
        return int(n), float(total)

    def purge_expired(self, now_us: int) -> int:
        db = self._db()
        with db.conn:
            db.conn.execute("BEGIN IMMEDIATE")  # the deletion and its record in one transaction
            cleared = db.conn.execute(
                "UPDATE predictions SET inputs_json = '', trace_json = '', capture_expires_at_us = 0 "
                "WHERE capture_expires_at_us > 0 AND capture_expires_at_us <= ? RETURNING deployment",
                [now_us],
            ).fetchall()
            rows = deletions(now_us, [d for (d,) in cleared])
            db.conn.executemany(
                "INSERT INTO capture_deletions (swept_at_us, cutoff_us, deployment, records) "
                "VALUES (?, ?, ?, ?)",
                [(r.swept_at_us, r.cutoff_us, r.deployment, r.records) for r in rows],
            )
        return len(cleared)

    def capture_deletions(self) -> list[CaptureDeletion]:
        sql = (
            "SELECT swept_at_us, cutoff_us, deployment, records FROM capture_deletions "
            "ORDER BY swept_at_us, rowid"
        )
        return [CaptureDeletion(*row) for row in self._db().execute(sql).fetchall()]

    # ------------------------------------------------------------------ reads

    def _get(self, prediction_id: str) -> PredictionRecord | None:
        rows = list(self._db()["predictions"].rows_where("prediction_id = ?", [prediction_id]))
        return PredictionRecord(**rows[0]) if rows else None

    def _with_prefix(self, prefix: str, limit: int) -> list[str]:
        rows = self._db()["predictions"].rows_where(
            "prediction_id LIKE ?", [f"{prefix}%"], select="prediction_id", limit=limit
        )
        return [row["prediction_id"] for row in rows]

    def arm_counts(
        self, deployment: str, experiment_id: str, metric: str = "continuous", source: str = ""
    ) -> Mapping[str, ArmCounts]:
        ok = _in_range(metric)
        sql = f"""
            SELECT p.version, COUNT(*) AS assigned,
                   SUM(CASE WHEN {ok} THEN 1 ELSE 0 END) AS n,
                   COALESCE(SUM(CASE WHEN {ok} THEN o.value END), 0.0) AS total,
                   COALESCE(SUM(CASE WHEN {ok} THEN o.value * o.value END), 0.0) AS total_sq,
                   SUM(CASE WHEN o.prediction_id IS NOT NULL AND NOT {ok} THEN 1 ELSE 0 END) AS excluded
            FROM predictions p
            LEFT JOIN outcomes o ON o.prediction_id = p.prediction_id AND o.source = :source
            WHERE p.deployment = :deployment AND p.experiment_id = :experiment
              AND p.shadow_of = '' AND p.error = ''
            GROUP BY p.version
        """
        params = experiment_params(deployment, experiment_id, source)
        rows = self._db().execute(sql, params).fetchall()
        return {
            version: ArmCounts(assigned, n, float(total), float(total_sq), excluded)
            for version, assigned, n, total, total_sq, excluded in rows
        }

    def arm_outcomes(
        self, deployment: str, experiment_id: str, metric: str = "continuous", source: str = ""
    ) -> list[tuple[str, float]]:
        sql = f"""
            SELECT p.version, o.value
            FROM outcomes o JOIN predictions p ON p.prediction_id = o.prediction_id
            WHERE p.deployment = :deployment AND p.experiment_id = :experiment AND o.source = :source
              AND p.shadow_of = '' AND p.error = '' AND {_in_range(metric)}
            ORDER BY o.recorded_at_us, o.prediction_id
        """
        params = experiment_params(deployment, experiment_id, source)
        rows = self._db().execute(sql, params).fetchall()
        return [(str(version), float(value)) for version, value in rows]

    def feedback(
        self, deployment: str, since_us: int, until_us: int, after: tuple[int, str], limit: int
    ) -> list[FeedbackRow]:
        sql = """
            SELECT o.prediction_id, p.version, o.recorded_at_us, p.inputs_json, o.expected_json, o.value
            FROM outcomes o JOIN predictions p ON p.prediction_id = o.prediction_id
            WHERE o.expected_json != '' AND o.source = '' AND p.deployment = ?
              AND o.recorded_at_us >= ? AND o.recorded_at_us < ?
              AND (o.recorded_at_us, o.prediction_id) > (?, ?)
            ORDER BY o.recorded_at_us, o.prediction_id
            LIMIT ?
        """
        params = [deployment, since_us, until_us, after[0], after[1], limit]
        return [FeedbackRow(*row) for row in self._db().execute(sql, params).fetchall()]

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
        sql = f"""
            SELECT p.recorded_at_us, p.latency_ms, p.error != '',
                   CASE WHEN {_in_range(metric)} THEN o.value END,
                   {"p.trace_json" if traces else "''"}
            FROM predictions p
            LEFT JOIN outcomes o ON o.prediction_id = p.prediction_id AND o.source = :source
            WHERE p.deployment = :deployment AND p.version = :version AND p.log_position >= :position
              AND p.shadow_of = ''
            ORDER BY p.recorded_at_us, p.prediction_id
        """
        params = {"deployment": deployment, "version": version, "position": from_position, "source": source}
        rows = self._db().execute(sql, {**params, "limit": CONTINUOUS_LIMIT}).fetchall()
        return [
            DriftRow(int(t), float(ms), bool(f), None if v is None else float(v), tr)
            for t, ms, f, v, tr in rows
        ]

    def shadow_pairs(self, deployment: str) -> list[tuple[str, str, str, float, float, str]]:
        sql = """
            SELECT s.version, s.outputs_json, p.outputs_json, s.latency_ms, p.latency_ms, s.error
            FROM predictions s JOIN predictions p ON p.prediction_id = s.shadow_of
            WHERE s.deployment = ? AND s.shadow_of != ''
        """
        return [tuple(row) for row in self._db().execute(sql, [deployment]).fetchall()]

    def _close_connections(self) -> None:
        """This thread's connection (each thread that read opened one of its own)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None


def _in_range(metric: str) -> str:
    """SQL true for a stored outcome the statistics may read (summary.outcome_in_range).
    SQLite keeps whatever a hand-edited file holds (text, NULL): typeof tells numbers apart."""
    bound = "o.value IN (0, 1)" if metric == "binary" else "abs(o.value) <= :limit"
    return f"(typeof(o.value) IN ('integer', 'real') AND {bound})"
