"""The stored row of an event, as every backend keeps it, and rows -> StoredEvents.

A row is the event's columns in one tuple, in the order of ``COLUMNS``: what SQLite's
SELECT returns and what the in-memory backend keeps, so both hand the same values to the
chain check (``ChainChecker.walk``) and to ``to_events``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final

from dspyops.eventlog.store import StoredEvent

COLUMNS: Final = (
    "position",
    "stream",
    "version",
    "event_id",
    "type",
    "payload",
    "recorded_at",
    "hash",
    "actor",
    "chain",
)

# position, stream, version, event_id, type, payload, recorded_at (µs since the epoch), hash, actor, chain
Row = tuple[int, str, int, str, str, bytes, int, bytes, str, int]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def to_events(rows: Iterable[Row]) -> list[StoredEvent]:
    """Rows -> StoredEvents. Replay reads millions of rows, so this is kept lean: positional
    construction, and one datetime per distinct recorded_at (a batch shares its timestamp)."""
    events: list[StoredEvent] = []
    add = events.append
    last_us: int | None = None
    last_at = _EPOCH
    for position, stream, version, event_id, type_, payload, recorded_at, hash_, actor, link in rows:
        if recorded_at != last_us:
            last_us, last_at = recorded_at, _EPOCH + timedelta(microseconds=recorded_at)
        add(StoredEvent(position, stream, version, event_id, type_, payload, last_at, hash_, actor, link))
    return events
