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
"""

from __future__ import annotations

from typing import Final

from dspyops.errors import FailedPrecondition
from dspyops.eventlog import EventStore, StoredEvent, VerifyResult
from dspyops.eventlog.store import EventSize
from dspyops.events import to_proto
from dspyops.limits import MAX_MESSAGE_BYTES
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb

READ_PAGE_BYTES: Final = 4 * 1024 * 1024  # a ReadLog reply's budget: far under the message limit
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


def read_reply(
    store: EventStore, after: int, limit: int, stream_prefix: str | None, budget: int = READ_PAGE_BYTES
) -> list[pb.Event]:
    """Envelopes for ReadLog: up to ``limit`` events after ``after`` within ``budget`` bytes
    (the first one whatever its size). Blocking: call it from a worker thread."""
    page = store.read_page(
        after, max_events=limit, max_bytes=budget, stream_prefix=stream_prefix, cost=envelope_cost
    )
    replies: list[pb.Event] = []
    used = 0
    for event in page:
        message = envelope(event)
        used += message.ByteSize() + 8  # the repeated field's tag and length
        if replies and used > budget:  # the estimate was low (long text columns): stop here
            break
        replies.append(message)
    return replies


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
