"""The state as it was: fold the log up to a position, or up to the last event recorded at
or before a time. Positions and timestamps only grow, so "as of time T" is a prefix of the
log found by binary search. Folded states are cached by position (the fold is pure, so a
cached state is exactly what a fresh replay would give).

Both services use it: the gateway for as-of reads, rollback and ExplainPrediction, and the
one writer path (dspyops.commands) to answer a retried command with the state right after
its first append. A state is folded from the nearest start below the position: a cached
state, a state the caller has at hand (`near`), or a snapshot; with none of these, from the
beginning of the log (bench/bench_replay.py measures that rate).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import UTC, datetime

from dspyops.errors import InvalidArgument
from dspyops.eventlog import EventStore
from dspyops.fold import fold
from dspyops.proto import gateway_pb2 as gpb
from dspyops.snapshots import SnapshotStore
from dspyops.state import EMPTY, State

_PAGE = 5000
# a snapshot is looked for only when the best start at hand is this many events short:
# below that, folding the gap costs less than reading and decoding a snapshot
_SNAPSHOT_GAIN = 20_000


class History:
    def __init__(
        self, store: EventStore, cache_size: int = 64, snapshots: SnapshotStore | None = None
    ) -> None:
        self.store = store
        self.snapshots = snapshots
        self._cache: OrderedDict[int, State] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._snapshot_lock = threading.Lock()  # one SQLite connection: one reader at a time

    def position_at(self, when: datetime) -> int:
        """The last position recorded at or before `when` (0: before the first event)."""
        low, high = 0, self.store.head()
        while low < high:  # invariant: events <= low are at or before `when`
            mid = (low + high + 1) // 2
            event = self.store.read(after_position=mid - 1, limit=1)[0]
            if event.recorded_at <= when:
                low = mid
            else:
                high = mid - 1
        return low

    def position(self, point: gpb.AsOf, field: str) -> int:
        """The log position an AsOf names: a position, or the last event at or before a time."""
        which = point.WhichOneof("point")
        if which is None:
            raise InvalidArgument(field, "give a log position or a time")
        if which == "position":
            return point.position
        try:
            when = point.time.ToDatetime(tzinfo=UTC)
        except ValueError as exc:  # out of the Timestamp range: a bad request, not a server error
            raise InvalidArgument(f"{field}.time", str(exc)) from None
        return self.position_at(when)

    def state_at(self, position: int, near: State | None = None) -> State:
        """The state right after `position`. `near`: a state of this log the caller has (at
        any position); it is folded forward from when it is the closest start."""
        head = self.store.head()
        if position > head:
            raise InvalidArgument("as_of.position", f"position {position} is beyond the log's head {head}")
        if near is not None and near.position == position:
            return near
        with self._lock:
            if position in self._cache:
                self._cache.move_to_end(position)
                return self._cache[position]
            base = max((p for p in self._cache if p <= position), default=0)
            state = self._cache[base] if base else EMPTY
        if near is not None and state.position < near.position <= position:
            state = near
        if self.snapshots is not None and position - state.position >= _SNAPSHOT_GAIN:
            with self._snapshot_lock:
                snapshot = self.snapshots.latest(self.store, at_most=position)
            if snapshot is not None and snapshot.position > state.position:
                state = snapshot
        while state.position < position:
            page = self.store.read(after_position=state.position, limit=min(_PAGE, position - state.position))
            if not page:
                break
            state = fold(page, state)
        self.remember(state)
        return state

    def remember(self, state: State) -> None:
        """Keep a state of this log the caller folded anyway (e.g. right after a command's
        append), so a question about that position soon after costs no replay."""
        with self._lock:
            self._cache[state.position] = state
            self._cache.move_to_end(state.position)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
