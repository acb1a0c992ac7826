"""Prediction records in tables of a PostgreSQL log's database (``predictions``,
``outcomes``), shared by every gateway on that log: a prediction served by one gateway
takes its outcome from any other, and experiment statistics and shadow results count
every gateway's traffic. The tables are this module's (the log store knows no payloads);
they are created on first open, beside ``events``.

The group commit of the interface holds: one transaction per batch (``executemany`` in
pipeline mode, one round trip), committed before any request of the batch is answered.
An outcome's request-id check and insert are one transaction; two gateways racing the same
request id are told apart by the unique index (the loser re-reads the winner's row).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import fields
from typing import Final

import psycopg
from psycopg import errors as pg_errors

from dspyops.pgtables import Tables
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

_PG_TYPES: Final = {"str": "text", "int": "bigint", "float": "double precision"}
_COLUMNS: Final = ",\n".join(
    f"{f.name} {_PG_TYPES[str(f.type)]} NOT NULL" + (" PRIMARY KEY" if f.name == "prediction_id" else "")
    for f in fields(PredictionRecord)
)
DDL: Final = (
    f"CREATE TABLE IF NOT EXISTS predictions ({_COLUMNS})",
    "CREATE INDEX IF NOT EXISTS predictions_experiment ON predictions (deployment, experiment_id, version)",
    # what the retention sweep and the shadow results look for: few rows of either
    "CREATE INDEX IF NOT EXISTS predictions_capture_expiry ON predictions (capture_expires_at_us) "
    "WHERE capture_expires_at_us > 0",
    "CREATE INDEX IF NOT EXISTS predictions_shadows ON predictions (deployment) WHERE shadow_of <> ''",
    """
    CREATE TABLE IF NOT EXISTS outcomes (
        prediction_id text NOT NULL,
        value double precision NOT NULL,
        recorded_at_us bigint NOT NULL,
        request_id text NOT NULL DEFAULT '',
        expected_json text NOT NULL DEFAULT '',
        source text NOT NULL DEFAULT '',
        PRIMARY KEY (prediction_id, source)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS capture_deletions (
        id bigserial PRIMARY KEY,
        swept_at_us bigint NOT NULL,
        cutoff_us bigint NOT NULL,
        deployment text NOT NULL,
        records bigint NOT NULL
    )
    """,
    # a table from before trace ids (dspyops.telemetry): added empty
    "ALTER TABLE predictions ADD COLUMN IF NOT EXISTS trace_id text NOT NULL DEFAULT ''",
    # a table from before expected outputs: added empty
    "ALTER TABLE outcomes ADD COLUMN IF NOT EXISTS expected_json text NOT NULL DEFAULT ''",
    # a table from before sources (human outcomes: ''; an evaluator's: 'evaluator:<name>'): the
    # column added empty, the key widened so a prediction takes one outcome per source
    "ALTER TABLE outcomes ADD COLUMN IF NOT EXISTS source text NOT NULL DEFAULT ''",
    """
    DO $$ BEGIN
      IF (SELECT array_length(indkey, 1) FROM pg_index
          WHERE indrelid = 'outcomes'::regclass AND indisprimary) = 1 THEN
        ALTER TABLE outcomes DROP CONSTRAINT outcomes_pkey;
        ALTER TABLE outcomes ADD PRIMARY KEY (prediction_id, source);
      END IF;
    END $$
    """,
    "CREATE INDEX IF NOT EXISTS outcomes_source ON outcomes (source) WHERE source <> ''",
    # what the feedback export walks: labelled outcomes in time order
    "CREATE INDEX IF NOT EXISTS outcomes_labelled ON outcomes (recorded_at_us, prediction_id) "
    "WHERE expected_json <> ''",
    # a request_id answers one outcome: retries find it here (unique, so no two can claim it)
    "CREATE UNIQUE INDEX IF NOT EXISTS outcomes_request_id ON outcomes (request_id) WHERE request_id <> ''",
)
_INSERT: Final = f"INSERT INTO predictions ({', '.join(FIELDS)}) VALUES ({', '.join(['%s'] * len(FIELDS))})"
_SELECT: Final = f"SELECT {', '.join(FIELDS)} FROM predictions WHERE prediction_id = %s"
_FIRST: Final = "SELECT prediction_id, value, expected_json FROM outcomes WHERE request_id = %s"
_OUTCOME: Final = (
    "INSERT INTO outcomes (prediction_id, value, recorded_at_us, request_id, expected_json) "
    "VALUES (%s, %s, %s, %s, %s)"
)
_FEEDBACK: Final = """
    SELECT o.prediction_id, p.version, o.recorded_at_us, p.inputs_json, o.expected_json, o.value
    FROM outcomes o JOIN predictions p ON p.prediction_id = o.prediction_id
    WHERE o.expected_json <> '' AND o.source = '' AND p.deployment = %s
      AND o.recorded_at_us >= %s AND o.recorded_at_us < %s
      AND (o.recorded_at_us, o.prediction_id) > (%s, %s)
    ORDER BY o.recorded_at_us, o.prediction_id
    LIMIT %s
"""


class PostgresPredictionStore(PredictionStore):
    def __init__(self, conninfo: str, *, secret: bytes, pool_size: int = 4, timeout: float = 10.0) -> None:
        """`secret`: the log's routing-key secret (dspyops.pgsecret), the same for every gateway."""
        self._tables = Tables(conninfo, "the prediction records of", DDL, max_size=pool_size, timeout=timeout)
        super().__init__(f"in {self._tables.url}", secret=secret)

    def __repr__(self) -> str:
        return f"PostgresPredictionStore({self._tables.url!r})"

    # ------------------------------------------------------------------ writes

    def _commit(self, rows: list[tuple[object, ...]]) -> None:
        with self._tables.connection("record") as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(_INSERT, rows)

    def _add_outcome(self, prediction_id: str, value: float, request_id: str, expected: str) -> None:
        with self._tables.connection("record an outcome in") as conn:
            try:
                with conn.transaction():
                    if request_id and self._retried(conn, prediction_id, value, request_id, expected):
                        return
                    now_us = time.time_ns() // 1000
                    conn.execute(_OUTCOME, (prediction_id, value, now_us, request_id, expected))
            except pg_errors.UniqueViolation as exc:
                if exc.diag.constraint_name == "outcomes_request_id":
                    # another gateway committed this request id first: answer as its retry
                    if self._retried(conn, prediction_id, value, request_id, expected):
                        return
                raise outcome_exists(prediction_id) from None

    @staticmethod
    def _retried(
        conn: psycopg.Connection[tuple[object, ...]],
        prediction_id: str,
        value: float,
        request_id: str,
        expected: str,
    ) -> bool:
        """True when `request_id` recorded this very outcome already; request_reused() when it
        recorded another; False when it recorded none."""
        first = conn.execute(_FIRST, (request_id,)).fetchone()
        if first is None:
            return False
        if (first[0], first[1], first[2]) != (prediction_id, value, expected):
            raise request_reused()
        return True

    def add_scored(self, prediction_id: str, source: str, value: float) -> bool:
        sql = (
            "INSERT INTO outcomes (prediction_id, value, recorded_at_us, source) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (prediction_id, source) DO NOTHING"
        )
        with self._tables.connection("record a score in") as conn, conn.transaction():
            cursor = conn.execute(sql, (prediction_id, value, time.time_ns() // 1000, source))
            return cursor.rowcount == 1

    def scores_of(self, prediction_id: str) -> dict[str, float]:
        sql = "SELECT source, value FROM outcomes WHERE prediction_id = %s AND source <> ''"
        with self._tables.connection("read") as conn:
            rows = conn.execute(sql, (prediction_id,)).fetchall()
        return {str(source): float(value) for source, value in rows}

    def source_summary(self, deployment: str, source: str) -> tuple[int, float]:
        sql = """
            SELECT COUNT(*), COALESCE(SUM(o.value), 0.0)
            FROM outcomes o JOIN predictions p ON p.prediction_id = o.prediction_id
            WHERE o.source = %s AND p.deployment = %s
        """
        with self._tables.connection("read") as conn:
            found = conn.execute(sql, (source, deployment)).fetchone()
        return (int(found[0]), float(found[1])) if found else (0, 0.0)

    def purge_expired(self, now_us: int) -> int:
        # RETURNING counts what this transaction cleared: a gateway sweeping the same rows at
        # once waits on their locks, then finds them cleared and records nothing for them
        with self._tables.connection("purge") as conn, conn.transaction():
            cleared = conn.execute(
                "UPDATE predictions SET inputs_json = '', trace_json = '', capture_expires_at_us = 0 "
                "WHERE capture_expires_at_us > 0 AND capture_expires_at_us <= %s RETURNING deployment",
                (now_us,),
            ).fetchall()
            rows = deletions(now_us, [str(d) for (d,) in cleared])
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO capture_deletions (swept_at_us, cutoff_us, deployment, records) "
                    "VALUES (%s, %s, %s, %s)",
                    [(r.swept_at_us, r.cutoff_us, r.deployment, r.records) for r in rows],
                )
        return len(cleared)

    def capture_deletions(self) -> list[CaptureDeletion]:
        sql = "SELECT swept_at_us, cutoff_us, deployment, records FROM capture_deletions ORDER BY id"
        with self._tables.connection("read") as conn:
            rows = conn.execute(sql).fetchall()
        return [CaptureDeletion(int(s), int(c), str(d), int(n)) for s, c, d, n in rows]

    # ------------------------------------------------------------------ reads

    def _get(self, prediction_id: str) -> PredictionRecord | None:
        with self._tables.connection("read") as conn:
            found = conn.execute(_SELECT, (prediction_id,)).fetchone()
        return PredictionRecord(*found) if found else None

    def _with_prefix(self, prefix: str, limit: int) -> list[str]:
        with self._tables.connection("read") as conn:
            rows = conn.execute(
                "SELECT prediction_id FROM predictions WHERE prediction_id LIKE %s LIMIT %s",
                (f"{prefix}%", limit),
            ).fetchall()
        return [row[0] for row in rows]

    def arm_counts(
        self, deployment: str, experiment_id: str, metric: str = "continuous", source: str = ""
    ) -> Mapping[str, ArmCounts]:
        ok = _in_range(metric)
        sql = f"""
            SELECT p.version, COUNT(*) AS assigned,
                   COUNT(*) FILTER (WHERE {ok}) AS n,
                   COALESCE(SUM(o.value) FILTER (WHERE {ok}), 0.0) AS total,
                   COALESCE(SUM(o.value * o.value) FILTER (WHERE {ok}), 0.0) AS total_sq,
                   COUNT(*) FILTER (WHERE o.prediction_id IS NOT NULL AND NOT ({ok})) AS excluded
            FROM predictions p
            LEFT JOIN outcomes o ON o.prediction_id = p.prediction_id AND o.source = %(source)s
            WHERE p.deployment = %(deployment)s AND p.experiment_id = %(experiment)s
              AND p.shadow_of = '' AND p.error = ''
            GROUP BY p.version
        """
        params = experiment_params(deployment, experiment_id, source)
        with self._tables.connection("read") as conn:
            rows = conn.execute(sql, params).fetchall()
        return {
            str(version): ArmCounts(int(assigned), int(n), float(total), float(total_sq), int(excluded))
            for version, assigned, n, total, total_sq, excluded in rows
        }

    def arm_outcomes(
        self, deployment: str, experiment_id: str, metric: str = "continuous", source: str = ""
    ) -> list[tuple[str, float]]:
        ok = _in_range(metric)
        sql = f"""
            SELECT p.version, o.value
            FROM outcomes o JOIN predictions p ON p.prediction_id = o.prediction_id
            WHERE p.deployment = %(deployment)s AND p.experiment_id = %(experiment)s
              AND o.source = %(source)s AND p.shadow_of = '' AND p.error = '' AND {ok}
            ORDER BY o.recorded_at_us, o.prediction_id
        """
        params = experiment_params(deployment, experiment_id, source)
        with self._tables.connection("read") as conn:
            rows = conn.execute(sql, params).fetchall()
        return [(str(version), float(value)) for version, value in rows]

    def feedback(
        self, deployment: str, since_us: int, until_us: int, after: tuple[int, str], limit: int
    ) -> list[FeedbackRow]:
        params = (deployment, since_us, until_us, after[0], after[1], limit)
        with self._tables.connection("read") as conn:
            rows = conn.execute(_FEEDBACK, params).fetchall()
        return [FeedbackRow(str(p), str(v), int(t), str(i), str(e), float(x)) for p, v, t, i, e, x in rows]

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
        ok = _in_range(metric)
        sql = f"""
            SELECT p.recorded_at_us, p.latency_ms, p.error <> '',
                   CASE WHEN {ok} THEN o.value END, {"p.trace_json" if traces else "''"}
            FROM predictions p
            LEFT JOIN outcomes o ON o.prediction_id = p.prediction_id AND o.source = %(source)s
            WHERE p.deployment = %(deployment)s AND p.version = %(version)s
              AND p.log_position >= %(position)s AND p.shadow_of = ''
            ORDER BY p.recorded_at_us, p.prediction_id
        """
        params = {"deployment": deployment, "version": version, "position": from_position, "source": source}
        with self._tables.connection("read") as conn:
            rows = conn.execute(sql, {**params, "limit": CONTINUOUS_LIMIT}).fetchall()
        return [
            DriftRow(int(t), float(ms), bool(f), None if v is None else float(v), str(tr))
            for t, ms, f, v, tr in rows
        ]

    def shadow_pairs(self, deployment: str) -> list[tuple[str, str, str, float, float, str]]:
        sql = """
            SELECT s.version, s.outputs_json, p.outputs_json, s.latency_ms, p.latency_ms, s.error
            FROM predictions s JOIN predictions p ON p.prediction_id = s.shadow_of
            WHERE s.deployment = %s AND s.shadow_of <> ''
        """
        with self._tables.connection("read") as conn:
            return [tuple(row) for row in conn.execute(sql, (deployment,)).fetchall()]

    def _writer_stopped(self) -> None:
        pass  # the writer takes a pooled connection per batch

    def _close_connections(self) -> None:
        self._tables.close()


def _in_range(metric: str) -> str:
    """SQL true for a stored outcome the statistics may read (summary.outcome_in_range): the
    column is a NOT NULL double and add_outcome takes finite values only; NaN (none should be
    there) compares above every number in PostgreSQL, so it falls outside too."""
    return "o.value IN (0, 1)" if metric == "binary" else "abs(o.value) <= %(limit)s"
