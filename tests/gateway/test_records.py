"""Prediction records, the same contract on every backend (an SQLite file, tables of a
PostgreSQL log's database): a record is committed (readable from another connection) when
`record` returns; concurrent records share commits; a failed commit fails every request it
carried; close() commits what was queued and refuses later records; an outcome is recorded
once (a retried request id answers without recording); statistics, shadow pairs and the
retention sweep read what every store on the same records wrote (gateways on one log)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import psycopg
import pytest

from dspyops.errors import DspyopsError as ServiceError
from dspyops.pgsecret import load_or_create_server_secret
from gateway_svc.records import ArmCounts, DriftRow, PredictionRecord, PredictionStore
from gateway_svc.records.postgres import PostgresPredictionStore
from gateway_svc.records.sqlite import SQLitePredictionStore

SECRET = b"s" * 32


def _record(prediction_id: str, **changes: object) -> PredictionRecord:
    record = PredictionRecord(
        prediction_id=prediction_id,
        deployment="web",
        program="p",
        version="1.0.0",
        bucket=0,
        experiment_id="",
        routing_key_sha256="",
        hash_value=0.25,
        hash_version=2,
        seed="s",
        log_position=3,
        latency_ms=1.5,
        error="",
        recorded_at_us=1,
        outputs_json='{"label": "x"}',
    )
    return replace(record, **changes)  # type: ignore[arg-type]


@dataclass
class Backend:
    """How a test opens stores on one set of records, and reads them behind the store's back."""

    open: Callable[[], PredictionStore]
    count: Callable[[], int]
    duplicate: type[Exception]  # what a record whose id is taken fails with


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "p.db"

        def count_file() -> int:
            with sqlite3.connect(path) as conn:  # another connection: sees committed rows only
                return int(conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])

        yield Backend(lambda: SQLitePredictionStore(path, secret=SECRET), count_file, sqlite3.IntegrityError)
    else:
        url: str = request.getfixturevalue("postgres_url")

        def count_table() -> int:
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT COUNT(*) FROM predictions").fetchone()
                return int(row[0]) if row else 0

        secret = load_or_create_server_secret(url)
        yield Backend(
            lambda: PostgresPredictionStore(url, secret=secret), count_table, psycopg.errors.UniqueViolation
        )


@pytest.fixture
def store(backend: Backend) -> Iterator[PredictionStore]:
    opened = backend.open()
    try:
        yield opened
    finally:
        opened.close()


def _record_all(store: PredictionStore, records: list[PredictionRecord]) -> None:
    async def scenario() -> None:
        await asyncio.gather(*(store.record(r) for r in records))

    asyncio.run(scenario())


def test_an_acknowledged_record_is_committed_and_reads_back(backend: Backend, store: PredictionStore) -> None:
    async def scenario() -> None:
        await store.record(_record("a"))
        assert backend.count() == 1

    asyncio.run(scenario())
    assert store.get("a") == _record("a")


def test_concurrent_records_all_commit(backend: Backend, store: PredictionStore) -> None:
    async def scenario() -> None:
        await asyncio.gather(*(store.record(_record(f"r{i}")) for i in range(500)))
        assert backend.count() == 500

    asyncio.run(scenario())


def test_a_failed_commit_fails_its_requests_and_the_writer_goes_on(
    backend: Backend, store: PredictionStore
) -> None:
    async def scenario() -> None:
        await store.record(_record("dup"))
        with pytest.raises(backend.duplicate):
            await store.record(_record("dup"))
        await store.record(_record("after"))  # the writer survived the failed batch

    asyncio.run(scenario())
    assert store.get("after").prediction_id == "after"


def test_close_commits_the_queue_and_refuses_later_records(backend: Backend) -> None:
    store = backend.open()

    async def scenario() -> None:
        pending = [asyncio.ensure_future(store.record(_record(f"q{i}"))) for i in range(50)]
        await asyncio.sleep(0)  # every request has queued its record
        await asyncio.to_thread(store.close)
        await asyncio.gather(*pending)
        with pytest.raises(RuntimeError, match="closed"):
            await store.record(_record("late"))

    asyncio.run(scenario())
    assert backend.count() == 50


def test_records_from_two_event_loops(backend: Backend, store: PredictionStore) -> None:
    """Each request is woken on its own loop (a store may serve more than one)."""

    async def some(prefix: str) -> None:
        await asyncio.gather(*(store.record(_record(f"{prefix}{i}")) for i in range(20)))

    async def scenario() -> None:
        await asyncio.gather(some("a"), asyncio.to_thread(asyncio.run, some("b")))

    asyncio.run(scenario())
    assert backend.count() == 40


def _code(exc: pytest.ExceptionInfo[ServiceError]) -> grpc.StatusCode:
    return exc.value.code


def test_an_outcome_is_recorded_once_and_a_retried_request_id_answers_without_recording(
    store: PredictionStore,
) -> None:
    _record_all(store, [_record("a", experiment_id="e"), _record("b", experiment_id="e")])
    assert store.add_outcome("a", 1.0, request_id="req-1").prediction_id == "a"
    assert store.add_outcome("a", 1.0, request_id="req-1").prediction_id == "a"  # a retry
    with pytest.raises(ServiceError) as reused:
        store.add_outcome("b", 1.0, request_id="req-1")  # the id with another prediction
    assert _code(reused) == grpc.StatusCode.ALREADY_EXISTS and "request_id" in str(reused.value)
    with pytest.raises(ServiceError) as again:
        store.add_outcome("a", 0.0)  # a second outcome for the prediction
    assert _code(again) == grpc.StatusCode.ALREADY_EXISTS and "prediction_id" in str(again.value)
    with pytest.raises(ServiceError) as missing:
        store.add_outcome("nope", 1.0)
    assert _code(missing) == grpc.StatusCode.NOT_FOUND
    with pytest.raises(ServiceError) as bad:
        store.add_outcome("b", float("nan"))
    assert _code(bad) == grpc.StatusCode.INVALID_ARGUMENT
    assert store.arm_counts("web", "e")["1.0.0"] == ArmCounts(assigned=2, n=1, total=1.0, total_sq=1.0)


def test_arm_counts_leave_out_shadows_errors_and_values_outside_the_metric(store: PredictionStore) -> None:
    records = [
        _record("a1", experiment_id="e"),
        _record("a2", experiment_id="e"),
        _record("b1", experiment_id="e", version="2.0.0"),
        _record("b2", experiment_id="e", version="2.0.0"),
        _record("err", experiment_id="e", error="boom"),
        _record("shadow", experiment_id="e", version="2.0.0", shadow_of="a1"),
        _record("other", experiment_id="f"),
    ]
    _record_all(store, records)
    store.add_outcome("a1", 1.0)
    store.add_outcome("a2", 0.0)
    store.add_outcome("b1", 3.0)  # a continuous value: outside a binary metric
    store.add_outcome("b2", 1.0)
    store.add_outcome("shadow", 1.0)
    binary = store.arm_counts("web", "e", "binary")
    assert binary == {
        "1.0.0": ArmCounts(assigned=2, n=2, total=1.0, total_sq=1.0),
        "2.0.0": ArmCounts(assigned=2, n=1, total=1.0, total_sq=1.0, excluded=1),
    }
    continuous = store.arm_counts("web", "e")
    assert continuous["2.0.0"] == ArmCounts(assigned=2, n=2, total=4.0, total_sq=10.0)
    assert store.arm_counts("web", "none") == {}
    # the same outcomes one by one, in the order recorded (ids in that order break a tie)
    assert store.arm_outcomes("web", "e", "binary") == [("1.0.0", 1.0), ("1.0.0", 0.0), ("2.0.0", 1.0)]
    assert store.arm_outcomes("web", "e") == [("1.0.0", 1.0), ("1.0.0", 0.0), ("2.0.0", 3.0), ("2.0.0", 1.0)]
    assert store.arm_outcomes("web", "e", source="evaluator:x") == []
    assert store.arm_outcomes("web", "none") == []


def test_drift_rows_are_the_versions_primaries_since_a_position_in_recorded_order(
    store: PredictionStore,
) -> None:
    _record_all(
        store,
        [
            _record("late", recorded_at_us=30, latency_ms=3.0, trace_json='[{"name": "self"}]'),
            _record("first", recorded_at_us=10, latency_ms=1.0),
            _record("failed", recorded_at_us=20, error="boom", latency_ms=2.0),
            _record("before", recorded_at_us=5, log_position=2),  # made on an earlier state
            _record("other", recorded_at_us=11, version="2.0.0"),
            _record("shadow", recorded_at_us=12, shadow_of="first"),
            _record("elsewhere", recorded_at_us=13, deployment="api"),
        ],
    )
    store.add_outcome("first", 1.0)
    store.add_outcome("late", 3.0)  # outside a binary metric: no outcome there
    binary = store.drift_rows("web", "1.0.0", 3, "binary")
    assert binary == [
        DriftRow(10, 1.0, False, 1.0),
        DriftRow(20, 2.0, True, None),
        DriftRow(30, 3.0, False, None),
    ]
    continuous = store.drift_rows("web", "1.0.0", 3, "continuous", traces=True)
    assert [r.outcome for r in continuous] == [1.0, None, 3.0]
    assert continuous[-1].trace_json == '[{"name": "self"}]' and continuous[0].trace_json == ""
    assert store.drift_rows("web", "1.0.0", 2, "binary")[0].recorded_at_us == 5
    assert store.drift_rows("web", "3.0.0", 0, "binary") == []


def test_shadow_pairs_join_each_shadow_to_its_primary(store: PredictionStore) -> None:
    _record_all(
        store,
        [
            _record("p", outputs_json='{"label": "a"}', latency_ms=2.0),
            _record("s", version="2.0.0", shadow_of="p", outputs_json='{"label": "b"}', latency_ms=3.0),
        ],
    )
    assert store.shadow_pairs("web") == [("2.0.0", '{"label": "b"}', '{"label": "a"}', 3.0, 2.0, "")]
    assert store.shadow_pairs("other") == []


def test_the_retention_sweep_clears_what_expired_and_keeps_the_decision(store: PredictionStore) -> None:
    kept = {"inputs_json": '{"text": "hi"}', "trace_json": "[]"}
    _record_all(
        store,
        [
            _record("old", capture_expires_at_us=100, **kept),
            _record("new", capture_expires_at_us=300, **kept),
            _record("forever", **kept),
        ],
    )
    assert store.purge_expired(200) == 1
    assert store.get("old").inputs_json == "" and store.get("old").trace_json == ""
    assert store.get("old").version == "1.0.0"  # the decision stays
    assert store.get("new").inputs_json == kept["inputs_json"]
    assert store.get("forever").trace_json == "[]"
    assert store.purge_expired(200) == 0


def test_the_routing_key_hmac_is_keyed_and_matches_only_its_key(store: PredictionStore) -> None:
    digest = store.key_hmac("user-1")
    assert len(digest) == 64 and digest != store.key_hmac("user-2") and store.key_hmac("") == ""
    record = _record("k", routing_key_hmac=digest)
    assert store.key_matches(record, "user-1") and not store.key_matches(record, "user-2")


def test_two_stores_on_the_same_records_see_each_others_predictions_and_outcomes(backend: Backend) -> None:
    """Two gateways on one log: predicted on one, the outcome reported to the other, both count it."""
    first, second = backend.open(), backend.open()
    try:
        _record_all(first, [_record("a", experiment_id="e")])
        assert second.get("a") == _record("a", experiment_id="e")
        second.add_outcome("a", 1.0, request_id="req")
        first.add_outcome("a", 1.0, request_id="req")  # the client's retry reached the first one
        with pytest.raises(ServiceError):
            first.add_outcome("a", 0.0)
        for store in (first, second):
            assert store.arm_counts("web", "e")["1.0.0"] == ArmCounts(
                assigned=1, n=1, total=1.0, total_sq=1.0
            )
        assert first.key_hmac("user-1") == second.key_hmac("user-1")
    finally:
        first.close()
        second.close()


def test_a_records_file_from_before_trace_ids_gains_the_column_empty(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    store = SQLitePredictionStore(path, secret=b"s" * 32)
    _record_all(store, [_record("old")])
    store.close()
    with sqlite3.connect(path) as db:  # the file as an earlier gateway left it
        db.execute("ALTER TABLE predictions DROP COLUMN trace_id")
    store = SQLitePredictionStore(path, secret=b"s" * 32)
    try:
        _record_all(store, [_record("new", trace_id="4bf92f3577b34da6a3ce929d0e0e4736")])
        assert store.get("old").trace_id == ""
        assert store.get("new").trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    finally:
        store.close()


def test_a_prediction_is_found_by_a_unique_prefix_of_its_id_on_either_backend(store: PredictionStore) -> None:
    ids = ["abcd" + "1" * 28, "abcd" + "2" * 28, "abce" + "3" * 28]
    _record_all(store, [_record(i) for i in ids])
    assert store.get(ids[2]).prediction_id == ids[2]  # the whole id
    assert store.get("abce").prediction_id == ids[2]  # a unique prefix of the minimum length
    assert store.get("abcd2").prediction_id == ids[1]
    with pytest.raises(ServiceError) as ambiguous:
        store.get("abcd")
    assert _code(ambiguous) == grpc.StatusCode.INVALID_ARGUMENT
    assert "ambiguous: 2 predictions match" in str(ambiguous.value)
    with pytest.raises(ServiceError) as short:
        store.get("abc")
    assert _code(short) == grpc.StatusCode.INVALID_ARGUMENT and "at least 4" in str(short.value)
    with pytest.raises(ServiceError) as missing:
        store.get("ffff")
    assert _code(missing) == grpc.StatusCode.NOT_FOUND
    with pytest.raises(ServiceError) as wildcard:  # not hex: no prefix search (LIKE sees no %)
        store.get("abc%")
    assert _code(wildcard) == grpc.StatusCode.NOT_FOUND
