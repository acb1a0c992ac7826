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


class _Unfrozen:
    """StoredEvent's slots, without its frozen ``__setattr__``.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``: ten
    calls, ~1.9 us per event, the largest cost of a page read after the database's own. An
    event is built here with plain slot stores instead and then given StoredEvent's class,
    which Python allows between classes of the same slot layout (~0.5 us; StoredEvent stays
    frozen for everyone who holds one).
    """

    __slots__ = StoredEvent.__slots__
    position: int
    stream: str
    version: int
    event_id: str
    type: str
    payload: bytes
    recorded_at: datetime
    hash: bytes
    actor: str
    chain: int


def to_events(rows: Iterable[Row]) -> list[StoredEvent]:
    """Rows -> StoredEvents. Replay reads millions of rows, so this is kept lean: no
    per-field call (``_Unfrozen``), and one datetime per distinct recorded_at (a batch shares
    its timestamp)."""
    events: list[StoredEvent] = []
    add = events.append
    new = object.__new__
    unfrozen, frozen = _Unfrozen, StoredEvent
    last_us: int | None = None
    last_at = _EPOCH
    for position, stream, version, event_id, type_, payload, recorded_at, hash_, actor, link in rows:
        if recorded_at != last_us:
            last_us, last_at = recorded_at, _EPOCH + timedelta(microseconds=recorded_at)
        event = new(unfrozen)
        event.position = position
        event.stream = stream
        event.version = version
        event.event_id = event_id
        event.type = type_
        event.payload = payload
        event.recorded_at = last_at
        event.hash = hash_
        event.actor = actor
        event.chain = link
        event.__class__ = frozen  # type: ignore[assignment]
        add(event)  # type: ignore[arg-type]
    return events
