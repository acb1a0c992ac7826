"""rows.to_events builds StoredEvents without the frozen dataclass's __init__ (a class swap
from a twin with the same slots): what it returns must be indistinguishable from events
built the ordinary way."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from dspyops.eventlog.rows import to_events
from dspyops.eventlog.store import StoredEvent


def test_to_events_gives_ordinary_frozen_stored_events() -> None:
    at_us = 1_700_000_000_123_456
    rows = [
        (1, "s", 1, "id-1", "t", b"p1", at_us, b"h" * 32, "alice", 2),
        (2, "s", 2, "id-2", "t", b"", at_us + 1, b"g" * 32, "", 3),
    ]
    events = to_events(rows)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    expected = [
        StoredEvent(
            1, "s", 1, "id-1", "t", b"p1", epoch + timedelta(microseconds=at_us), b"h" * 32, "alice", 2
        ),
        StoredEvent(2, "s", 2, "id-2", "t", b"", epoch + timedelta(microseconds=at_us + 1), b"g" * 32, "", 3),
    ]
    assert events == expected
    assert [type(e) for e in events] == [StoredEvent, StoredEvent]
    assert {hash(e) for e in events} == {hash(e) for e in expected}
    assert dataclasses.asdict(events[0]) == dataclasses.asdict(expected[0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        events[0].position = 5  # type: ignore[misc]
    assert dataclasses.replace(events[1], actor="bob").actor == "bob"
