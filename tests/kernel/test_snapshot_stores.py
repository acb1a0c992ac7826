"""The snapshot store contract, run against every backend (a file beside a file log, a
table in a PostgreSQL log's database): the newest snapshot at or below a position that
matches the log's hash there, signed when a chain key is set; several handles on the same
snapshots (gateways on one log) see each other's, and saving a position twice is harmless."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dspyops.eventlog import EventStore, open_store
from dspyops.events import new_event
from dspyops.fold import fold
from dspyops.proto import events_pb2 as pb
from dspyops.snapshots import SnapshotStore, take_snapshot
from dspyops.snapshots.backends import open_snapshots
from dspyops.snapshots.postgres import PostgresSnapshotStore
from dspyops.snapshots.sqlite import SQLiteSnapshotStore
from dspyops.state import State

KEY = b"k" * 32


@dataclass
class Log:
    url: str
    store: EventStore

    def snapshots(self, key: bytes | None = None) -> SnapshotStore:
        return open_snapshots(self.url, key)


@pytest.fixture(params=["sqlite", "postgres"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Log]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else str(tmp_path / "log.db")
    store = open_store(url)
    try:
        yield Log(url, store)
    finally:
        store.close()


def _append(store: EventStore, n: int) -> None:
    created = store.stream_version("deployment-web") == 0
    events = [new_event(pb.DeploymentCreated(deployment="web", program="p"))] if created else []
    routes = [pb.Route(version="1.0.0", weight=1.0)]
    more = n - len(events)
    events += [new_event(pb.RoutesSet(deployment="web", routes=routes, reason=f"r{i}")) for i in range(more)]
    store.append("deployment-web", events, None)


def _state_at(store: EventStore, position: int) -> tuple[State, bytes]:
    events = store.read(0, position)
    return fold(events), events[-1].hash


def test_the_backend_is_chosen_by_the_log_url(log: Log) -> None:
    snapshots = log.snapshots()
    try:
        expected = PostgresSnapshotStore if log.url.startswith("postgresql://") else SQLiteSnapshotStore
        assert type(snapshots) is expected
    finally:
        snapshots.close()


def test_the_newest_snapshot_at_or_below_a_position(log: Log) -> None:
    _append(log.store, 30)
    snapshots = log.snapshots()
    try:
        assert snapshots.latest(log.store) is None
        for position in (10, 20):
            state, event_hash = _state_at(log.store, position)
            snapshots.save(state, event_hash)
        assert snapshots.latest(log.store) == _state_at(log.store, 20)[0]
        assert snapshots.latest(log.store, at_most=19) == _state_at(log.store, 10)[0]
        assert snapshots.latest(log.store, at_most=9) is None
        point = snapshots.latest_point(log.store, at_most=15)
        assert point is not None and point[1] == log.store.read(9, 1)[0].hash
        _append(log.store, 5)
        assert take_snapshot(log.store, snapshots).position == 35
        assert snapshots.latest(log.store) == fold(log.store.read(0, 100))
    finally:
        snapshots.close()


def test_a_snapshot_whose_hash_is_not_the_logs_is_ignored(log: Log) -> None:
    _append(log.store, 10)
    snapshots = log.snapshots()
    try:
        state, event_hash = _state_at(log.store, 10)
        snapshots.save(state, b"\x00" * 32)  # another log's (or a rewritten one's) hash there
        assert snapshots.latest(log.store) is None
        older, older_hash = _state_at(log.store, 5)
        snapshots.save(older, older_hash)
        assert snapshots.latest(log.store) == older  # the newest that matches
        snapshots.save(state, event_hash)  # the same position again, now right: replaces it
        assert snapshots.latest(log.store) == state
    finally:
        snapshots.close()


def test_a_snapshot_above_the_head_is_not_used(log: Log) -> None:
    _append(log.store, 10)
    snapshots = log.snapshots()
    try:
        state, event_hash = _state_at(log.store, 10)
        snapshots.save(dataclasses.replace(state, position=11), event_hash)  # the log's head is 10
        assert snapshots.latest(log.store) is None
    finally:
        snapshots.close()


def test_with_a_chain_key_only_signed_snapshots_are_used(log: Log) -> None:
    _append(log.store, 10)
    unkeyed, keyed = log.snapshots(), log.snapshots(KEY)
    try:
        state, event_hash = _state_at(log.store, 10)
        unkeyed.save(state, event_hash)  # written without the key: no MAC
        assert unkeyed.latest(log.store) == state
        assert keyed.latest(log.store) is None
        keyed.save(state, event_hash)
        assert keyed.latest(log.store) == state
        assert log.snapshots(b"o" * 32).latest(log.store) is None  # another key's MAC does not check
    finally:
        unkeyed.close()
        keyed.close()


def test_handles_on_one_log_share_its_snapshots_and_a_second_save_is_harmless(log: Log) -> None:
    _append(log.store, 12)
    first, second = log.snapshots(KEY), log.snapshots(KEY)
    reopened = first.reopen()
    try:
        state, event_hash = _state_at(log.store, 12)
        first.save(state, event_hash)
        assert second.latest(log.store) == state  # another gateway on the same log sees it
        second.save(state, event_hash)  # both wrote the same position: no error, same state
        assert first.latest(log.store) == state and reopened.latest(log.store) == state
        assert reopened.key == KEY
    finally:
        for snapshots in (first, second, reopened):
            snapshots.close()
