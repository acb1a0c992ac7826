"""The snapshot a gateway on a PostgreSQL log leaves when it stops, so the next one folds
only the tail. (A start from a snapshot reads only the artifacts of the versions that serve;
any other version's are read from its VersionRegistered event when it is first loaded,
gateway_svc.replica.)"""

from __future__ import annotations

import structlog

from dspyops.eventlog import EventStore
from dspyops.snapshots import SnapshotStore
from dspyops.state import State


def snapshot_at_stop(store: EventStore, snapshots: SnapshotStore, state: State, started_at: int) -> bool:
    """Save the replica's state as the newest snapshot when it folded anything since it
    started (at the snapshot it restored, `started_at`), so the next gateway on the log
    starts there. True when it saved one; a failure is logged, never raised (a stop must
    finish: the snapshot only saves a later start some folding)."""
    if state.position <= started_at:
        return False
    try:
        event = store.read(after_position=state.position - 1, limit=1)
        if not event or event[0].position != state.position:
            return False
        snapshots.save(state, event[0].hash)
    except Exception as exc:
        structlog.get_logger().warning(
            "snapshot_at_stop_failed", position=state.position, error=str(exc)[:300]
        )
        return False
    structlog.get_logger().info("snapshot_saved", position=state.position, snapshots=repr(snapshots))
    return True
