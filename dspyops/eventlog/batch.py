"""What every backend's append does besides storing: the argument checks, the retry rule,
and the stamping of a batch (positions, versions, recorded_at, chain links).

A backend runs these inside its own atomic section (SQLite: ``BEGIN IMMEDIATE``; memory:
the log's lock), so they see the head and the stream version that the batch is written
after.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from dspyops.eventlog.hashchain import LINK_V2_KEYED, LinkHasher
from dspyops.eventlog.store import (
    ANY,
    MAX_ACTOR_CHARS,
    AppendResult,
    ChainKeyRequired,
    DuplicateEventId,
    NewEvent,
    WrongExpectedVersion,
)

# position, stream, version, event_id, type, payload, recorded_at, hash, actor: a row
# without its link version, which is the hasher's for the whole batch
StampedRow = tuple[int, str, int, str, str, bytes, int, bytes, str]


def validate_append(
    stream: str, events: Sequence[NewEvent], expected_version: int | None, actor: str = ""
) -> None:
    """Argument checks shared by every backend, done before touching storage."""
    if not isinstance(stream, str) or not stream:
        raise ValueError("stream must be a non-empty string")
    if not isinstance(actor, str) or len(actor) > MAX_ACTOR_CHARS or not actor.isprintable():
        raise ValueError(f"actor must be a printable string of at most {MAX_ACTOR_CHARS} characters")
    if not events:
        raise ValueError(f"append to stream {stream!r}: the batch is empty")
    if expected_version is not ANY and (
        isinstance(expected_version, bool) or not isinstance(expected_version, int) or expected_version < 0
    ):
        raise ValueError(f"expected_version must be ANY (None) or an int >= 0, got {expected_version!r}")
    seen: set[str] = set()
    for i, event in enumerate(events):
        if not isinstance(event, NewEvent):
            raise TypeError(f"events[{i}] is {type(event).__name__}, not NewEvent")
        if not event.type:
            raise ValueError(f"events[{i}]: type must be a non-empty string")
        if not isinstance(event.payload, bytes):
            raise TypeError(f"events[{i}]: payload must be bytes, got {type(event.payload).__name__}")
        if not event.event_id:
            raise ValueError(f"events[{i}]: event_id must be a non-empty string")
        if event.event_id in seen:
            raise ValueError(f"events[{i}]: event_id {event.event_id!r} appears twice in the batch")
        seen.add(event.event_id)


def retried(
    stream: str, ids: Sequence[str], stored: Mapping[str, tuple[str, int, int]]
) -> AppendResult | None:
    """The retry rule: ``stored`` maps the batch's ids already in the log to their (stream,
    position, version). None when there are none (a new batch); the original positions
    when every id is stored in this stream (a retry: nothing is written); else
    DuplicateEventId (ids stored elsewhere mean a collision or a bug)."""
    if not stored:
        return None
    if len(stored) < len(ids) or any(s != stream for s, _, _ in stored.values()):
        raise DuplicateEventId(stream, [i for i in ids if i in stored])
    last_stream, last_pos, last_ver = max(stored.values(), key=lambda row: row[1])
    return AppendResult(
        stream=last_stream,
        first_position=min(pos for _, pos, _ in stored.values()),
        last_position=last_pos,
        stream_version=last_ver,
        deduplicated=True,
    )


def check_expected(stream: str, expected_version: int | None, current: int) -> None:
    if expected_version is not ANY and expected_version != current:
        raise WrongExpectedVersion(stream, expected_version, current)


def stamp(
    hasher: LinkHasher,
    log: str,
    stream: str,
    current: int,
    actor: str,
    events: Sequence[NewEvent],
    head: tuple[int, bytes, int, int],
    *,
    now_us: int | None = None,
) -> list[StampedRow]:
    """The rows of a batch appended after ``head`` (the last row's position, hash,
    recorded_at and link version; ``(0, GENESIS, 0, LINK_V1)`` for an empty log) to a
    stream at version ``current``, recorded at ``now_us`` (the log's clock; default this
    machine's). Raises ChainKeyRequired after keyed links without a key."""
    position, prev_hash, prev_at, prev_link = head
    if prev_link == LINK_V2_KEYED and hasher.key is None:
        raise ChainKeyRequired(
            f"the log {log} has keyed chain links: appending needs its chain key (--chain-key-file)"
        )
    # recorded_at never goes backwards along positions (even if the wall clock does), so
    # "the state at time T" is always a prefix of the log.
    recorded_at = max(time.time_ns() // 1000 if now_us is None else now_us, prev_at)
    links = hasher.chain(prev_hash, position + 1, stream, current + 1, recorded_at, actor, events)
    return [
        (position + i, stream, current + i, e.event_id, e.type, e.payload, recorded_at, link, actor)
        for i, (e, link) in enumerate(zip(events, links, strict=True), start=1)
    ]


def appended(stream: str, rows: Sequence[StampedRow]) -> AppendResult:
    return AppendResult(
        stream=stream,
        first_position=rows[0][0],
        last_position=rows[-1][0],
        stream_version=rows[-1][2],
        deduplicated=False,
    )
