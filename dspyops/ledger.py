"""A writer's view of the log: the folded state, the one writer path for commands, and a
plain checked append for what is no command (a job's own progress events).

Every command reads the state as of the log's head, decides, and appends with the stream's
expected version (through `run`, see dspyops.commands), so two writers (threads or
processes) racing on one stream cannot both win: the loser gets ABORTED and nothing of its
batch is written, and a retried request is answered from the log instead of carried out
twice.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from google.protobuf.message import Message

from dspyops.commands import Commands, Decide, Outcome
from dspyops.commands import append as checked_append
from dspyops.eventlog import AppendResult, EventStore, StoreUnavailable
from dspyops.fold import fold
from dspyops.history import History
from dspyops.snapshots import SnapshotStore
from dspyops.state import EMPTY, State

__all__ = ["SNAPSHOT_EVERY", "Ledger", "checked_append"]

_PAGE = 5000
SNAPSHOT_EVERY = 10_000  # events between snapshots written by a Ledger that has a SnapshotStore


class Ledger:
    def __init__(
        self, store: EventStore, snapshots: SnapshotStore | None = None, *, initial: State | None = None
    ) -> None:
        """`initial`: the newest snapshot, when the caller has decoded it already (the start's
        chain check has); else the newest that matches this log is read from `snapshots`."""
        self.store = store
        self.snapshots = snapshots
        # start from the newest snapshot that matches this log: only the tail is folded
        if initial is None and snapshots is not None:
            initial = snapshots.latest(store)
        self._state = initial or EMPTY
        self._snapshot_position = self._state.position
        self._lock = threading.Lock()
        # answers to retried commands start from a snapshot too (its own connection: the
        # ledger writes snapshots on its thread while a command reads one on another)
        self.history = History(store, snapshots=snapshots.reopen() if snapshots else None)
        self.commands = Commands(store, self.refresh, self.history)
        self.refresh()

    @property
    def state(self) -> State:
        return self._state

    def read_state(self) -> State:
        """The state a read answers from: refreshed, or, when the log's database server
        cannot be reached, the last state folded (nobody can append meanwhile: reads keep
        serving through an outage, from this cache). A file log's failures still raise:
        there they mean the file is gone or replaced, not that writers are stopped too."""
        try:
            return self.refresh()
        except StoreUnavailable:
            if not self.store.server:
                raise
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

    def run(self, method: str, request: Message | None, decide: Decide, *, attempts: int = 1) -> Outcome:
        """A command through the one writer path (dspyops.commands.Commands.run)."""
        return self.commands.run(method, request, decide, attempts=attempts)

    def append(
        self,
        stream: str,
        payloads: Sequence[Message],
        expected_version: int | None,
        *,
        event_ids: Sequence[str] | None = None,
    ) -> AppendResult:
        """A plain append, for events that answer no command (a job's progress)."""
        result = checked_append(self.store, stream, payloads, expected_version, list(event_ids or []) or None)
        self.refresh()
        return result
