"""A writer's view of the log: the folded state plus a checked append (both services write).

Every command reads the state as of the log's head, decides, and appends with the stream's
expected version, so two writers (threads or processes) racing on one stream cannot both
win: the loser gets ABORTED and nothing of its batch is written.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from google.protobuf.message import Message

from dspyops.actor import current_actor
from dspyops.errors import Aborted, Unavailable
from dspyops.eventlog import (
    AppendResult,
    EventStore,
    StoreUnavailable,
    WrongExpectedVersion,
)
from dspyops.events import new_event
from dspyops.limits import check_payload
from dspyops.snapshots import SnapshotStore
from dspyops.state import EMPTY, State, fold

_PAGE = 5000
SNAPSHOT_EVERY = 10_000  # events between snapshots written by a Ledger that has a SnapshotStore


class Ledger:
    def __init__(self, store: EventStore, snapshots: SnapshotStore | None = None) -> None:
        self.store = store
        self.snapshots = snapshots
        # start from the newest snapshot that matches this log: only the tail is folded
        self._state = (snapshots.latest(store) if snapshots else None) or EMPTY
        self._snapshot_position = self._state.position
        self._lock = threading.Lock()
        self.refresh()

    @property
    def state(self) -> State:
        return self._state

    def refresh(self) -> State:
        """Fold whatever was appended since the last look (by us or by another process)."""
        with self._lock:
            state = self._state
            while True:
                page = self.store.read(after_position=state.position, limit=_PAGE)
                if not page:
                    break
                state = fold(page, state)
                if self.snapshots and state.position - self._snapshot_position >= SNAPSHOT_EVERY:
                    self.snapshots.save(state, page[-1].hash)
                    self._snapshot_position = state.position
            self._state = state
            return state

    def append(
        self,
        stream: str,
        payloads: Sequence[Message],
        expected_version: int | None,
        *,
        event_ids: Sequence[str] | None = None,
    ) -> AppendResult:
        result = checked_append(self.store, stream, payloads, expected_version, event_ids=event_ids)
        self.refresh()
        return result


def checked_append(
    store: EventStore,
    stream: str,
    payloads: Sequence[Message],
    expected_version: int | None,
    *,
    event_ids: Sequence[str] | None = None,
) -> AppendResult:
    """Append payload messages, turning store errors into statuses that name the problem."""
    events = [new_event(p, event_ids[i] if event_ids else None) for i, p in enumerate(payloads)]
    for event in events:  # the hard per-event limit, before anything is written
        check_payload(event.type, event.payload)
    try:
        return store.append(stream, events, expected_version, actor=current_actor.get())
    except WrongExpectedVersion as exc:
        raise Aborted(
            "expected_version",
            f"stream {stream} is at version {exc.actual}, not {exc.expected}: re-read and retry",
        ) from None
    except StoreUnavailable as exc:
        raise Unavailable(
            "", f"the log cannot be written (disk full, read-only or failing storage): {exc}"
        ) from None
