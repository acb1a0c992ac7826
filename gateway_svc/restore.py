"""A cold start from the newest snapshot of the log: its state, and the artifacts of its
versions taken from their VersionRegistered events, so the replica folds only the tail."""

from __future__ import annotations

import structlog

from dspyops.artifacts import ArtifactCorrupt, artifact_in_event
from dspyops.eventlog import EventStore
from dspyops.snapshots import SnapshotStore
from dspyops.state import EMPTY, State, VersionState


def restore_from_snapshot(store: EventStore, state: State | None) -> tuple[State, dict[str, bytes]]:
    """The snapshot's state (`state`: the one the start's chain check trusted, decoded once;
    EMPTY without one) and its versions' artifacts by digest.

    An artifact that fails its digest is left out rather than stopping the start: like a
    replay (which keeps the bytes for the loader to refuse), the gateway serves the rest and
    refuses that version's Predict (gateway_svc.predict)."""
    if state is None:
        return EMPTY, {}
    structlog.get_logger().info("restored_from_snapshot", position=state.position)
    # one artifact per digest, and their events in one read (a round trip per version took
    # most of a cold start from PostgreSQL: ~5k versions)
    first: dict[str, VersionState] = {}
    for program in state.programs.values():
        for version in program.versions.values():
            first.setdefault(version.artifact_digest, version)
    events = {e.position: e for e in store.read_at(sorted({v.registered_position for v in first.values()}))}
    artifacts: dict[str, bytes] = {}
    for digest, version in first.items():
        try:
            artifacts[digest] = artifact_in_event(version, events.get(version.registered_position))
        except ArtifactCorrupt as exc:
            structlog.get_logger().error(
                "artifact_refused", program=version.program, version=version.version, error=str(exc)[:300]
            )
    return state, artifacts


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
