"""History (dspyops/history.py): the state at a position equals the fold of the log up to
it, whichever start it folds from: nothing, a cached state, the caller's state, or a
snapshot at or below the position (never one above it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dspyops import history as history_module
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.fold import fold, state_hash
from dspyops.history import History
from dspyops.proto import events_pb2 as pb
from dspyops.snapshots import take_snapshot
from dspyops.snapshots.sqlite import SQLiteSnapshotStore


def test_state_at_any_position_from_any_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history_module, "_SNAPSHOT_GAIN", 1)  # use a snapshot whenever one helps
    store = open_store(str(tmp_path / "log.db"))
    store.append("deployment-web", [new_event(pb.DeploymentCreated(deployment="web", program="p"))], 0)
    for i in range(1, 40):
        routes = [pb.Route(version=f"1.{i}.0", weight=1.0)]
        store.append("deployment-web", [new_event(pb.RoutesSet(deployment="web", routes=routes))], i)
        if i == 20:
            take_snapshot(store, SQLiteSnapshotStore(tmp_path / "snapshots.db"))
    events = store.read(0, 100)
    snapshots = SQLiteSnapshotStore(tmp_path / "snapshots.db")
    for start in ("nothing", "snapshot", "near"):
        history = History(store, snapshots=snapshots if start == "snapshot" else None)
        near = fold(events[:30]) if start == "near" else None
        for position in (0, 5, 21, 20, 35, 30, 40):
            expected = fold(events[:position])
            got = history.state_at(position, near=near)
            assert got == expected and state_hash(got) == state_hash(expected), (start, position)
    snapshots.close()
    store.close()
