"""Log events on the wire: ReadLog replies and SubscribeLog messages that fit one gRPC message.

An ``Event`` envelope carries its payload twice (decoded, for readers, and raw, so a
remote replica can verify the hash chain), so its size is about twice the payload's.
ReadLog pages by count and by bytes: it stops before the reply would pass
``READ_PAGE_BYTES`` (well under the message limit), always returning the first event, and
``head`` tells the client to read on. An event whose envelope alone would not fit a
message (one written before payloads had a limit, e.g. a 30 MB ``reason``) goes out with
its raw payload only: readers decode it from ``raw_payload``, replicas need nothing else.
One that does not fit even so cannot travel over gRPC at all; it is refused with a status
naming its position, instead of a RESOURCE_EXHAUSTED on the client's side that hides why.

Both calls filter on the server (``LogFilter``: stream prefix, event types, actor, recorded
time), so a reader looking for the few ``RolledBack`` events of a long log does not pull the
whole log over the wire. A filtered ReadLog page scans at most ``SCAN_EVENTS`` events and
says how far it got (``scanned_to``), so one call stays bounded however rare the matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.errors import FailedPrecondition, InvalidArgument, shown
from dspyops.eventlog import EventStore, StoredEvent, VerifyResult
from dspyops.eventlog.store import EventSize
from dspyops.events import PAYLOAD_TYPES, to_proto
from dspyops.limits import MAX_MESSAGE_BYTES
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb

READ_PAGE_BYTES: Final = 4 * 1024 * 1024  # a ReadLog reply's budget: far under the message limit
SCAN_EVENTS: Final = 10_000  # events one filtered ReadLog call looks at, matching or not
_SCAN_PAGE: Final = 1_000  # events read from the store at a time while a filter skips most
# short name ("RoutesSet") -> full name ("dspyops.v1.RoutesSet") of every payload type
_SHORT_TYPES: Final = {name.rsplit(".", 1)[-1]: name for name in PAYLOAD_TYPES}
_ENVELOPE_EXTRA: Final = 96  # position, version, timestamp, chain, tags and lengths of one Event
_MESSAGE_ROOM: Final = MAX_MESSAGE_BYTES - 1024  # what one Event may take of a message


def envelope_cost(size: EventSize) -> int:
    """An event's envelope size, estimated from its stored size without loading it."""
    return 2 * size.payload_bytes + size.other_bytes + _ENVELOPE_EXTRA


def envelope(event: StoredEvent) -> pb.Event:
    """The wire envelope, with its raw payload only when the full one would not fit a message."""
    message = to_proto(event)
    if message.ByteSize() <= _MESSAGE_ROOM:
        return message
    message.ClearField("payload")
    if message.ByteSize() <= _MESSAGE_ROOM:
        return message
    raise FailedPrecondition(
        "after",
        f"the event at position {event.position} is {len(event.payload):,} bytes, more than a gRPC "
        f"message ({MAX_MESSAGE_BYTES:,} bytes) can carry: read it from the log file",
    )


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which events a ReadLog or SubscribeLog caller wants; empty fields filter nothing."""

    stream_prefix: str = ""
    types: frozenset[str] = frozenset()  # full type names
    actor: str = ""
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # inclusive

    @property
    def narrows(self) -> bool:
        """Whether it drops events the store's own read (by stream prefix) would return."""
        return bool(self.types or self.actor or self.since or self.until)

    def matches(self, event: StoredEvent) -> bool:
        if self.stream_prefix and not event.stream.startswith(self.stream_prefix):
            return False
        if self.types and event.type not in self.types:
            return False
        if self.actor and event.actor != self.actor:
            return False
        if self.since is not None and event.recorded_at < self.since:
            return False
        return self.until is None or event.recorded_at <= self.until


def _time(request: opb.ReadLogRequest | opb.SubscribeLogRequest, field: str) -> datetime | None:
    if not request.HasField(field):  # "since" or "until"
        return None
    stamp: Timestamp = getattr(request, field)
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except ValueError as exc:  # out of the Timestamp range: a bad request, not a server error
        raise InvalidArgument(field, str(exc)) from None


def log_filter(request: opb.ReadLogRequest | opb.SubscribeLogRequest) -> LogFilter:
    """The request's filters, checked: an unknown type name or since after until is
    INVALID_ARGUMENT (a typo would otherwise match nothing, silently)."""
    types = set()
    for name in request.types:
        full = _SHORT_TYPES.get(name, name)
        if full not in PAYLOAD_TYPES:
            raise InvalidArgument(
                "types",
                f"unknown event type {shown(name)}; known: {', '.join(sorted(_SHORT_TYPES))} "
                "(short names, or full ones such as dspyops.v1.RoutesSet)",
            )
        types.add(full)
    since, until = _time(request, "since"), _time(request, "until")
    if since is not None and until is not None and since > until:
        raise InvalidArgument("since", f"{since.isoformat()} is after until ({until.isoformat()})")
    return LogFilter(request.stream_prefix, frozenset(types), request.actor, since, until)


@dataclass(frozen=True, slots=True)
class LogPage:
    events: list[pb.Event]
    scanned_to: int  # the last position looked at (``after`` when none was): read on from here


def read_reply(
    store: EventStore, after: int, limit: int, wanted: LogFilter, budget: int = READ_PAGE_BYTES
) -> LogPage:
    """Envelopes for ReadLog: up to ``limit`` matching events after ``after`` within
    ``budget`` bytes (the first one whatever its size), looking at no more than
    ``SCAN_EVENTS`` events. Blocking: call it from a worker thread.

    The store reads by stream prefix itself; types, actor and time are checked here, on the
    events it returns (the store's read has no such filters)."""
    replies: list[pb.Event] = []
    used = scanned = 0
    position = after
    while len(replies) < limit and scanned < SCAN_EVENTS:
        wanted_now = min(_SCAN_PAGE, SCAN_EVENTS - scanned) if wanted.narrows else limit - len(replies)
        page = store.read_page(
            position,
            max_events=wanted_now,
            max_bytes=budget,
            stream_prefix=wanted.stream_prefix or None,
            cost=envelope_cost,
        )
        if not page:
            break
        for event in page:
            if wanted.matches(event):
                message = envelope(event)
                used += message.ByteSize() + 8  # the repeated field's tag and length
                if replies and used > budget:  # full (or the estimate was low): stop before it
                    return LogPage(replies, position)
                replies.append(message)
            scanned += 1
            position = event.position
            if len(replies) == limit:
                break
    return LogPage(replies, position)


def verify_response(result: VerifyResult) -> opb.VerifyLogResponse:
    """A chain walk's result as VerifyLog answers it (the server's and `log verify --log`'s)."""
    return opb.VerifyLogResponse(
        ok=result.ok,
        checked=result.checked,
        first_broken_position=result.first_broken_position or 0,
        reason=result.reason,
        v1_links=result.v1_links,
        v2_links=result.v2_links,
        keyed_links=result.keyed_links,
    )
