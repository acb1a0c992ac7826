"""The log RPCs: ReadLog (pages bounded by count and bytes), SubscribeLog (capped, at most
one page in memory per subscriber) and VerifyLog."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from dspyops.caps import Cap
from dspyops.errors import InvalidArgument
from dspyops.eventlog import EventStore
from dspyops.logwire import envelope, log_filter, read_reply, verify_response
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb

_MAX_READ = 10_000
DEFAULT_MAX_SUBSCRIBERS = 256  # SubscribeLog streams at once (--max-subscribers)
DEFAULT_MAX_SUBSCRIBERS_PER_ACTOR = 64  # ... per caller (--max-subscribers-per-actor)
_MAX_POSITION = 2**63 - 1  # log positions are SQLite INTEGERs (signed 64-bit); the proto says uint64


def subscriber_cap(
    total: int = DEFAULT_MAX_SUBSCRIBERS, per_actor: int = DEFAULT_MAX_SUBSCRIBERS_PER_ACTOR
) -> Cap:
    return Cap("log subscriptions", total, per_actor, flags="--max-subscribers, --max-subscribers-per-actor")


def _check_after(after: int) -> None:
    if after > _MAX_POSITION:
        raise InvalidArgument("after", f"at most {_MAX_POSITION} (a log position), got {after}")


class LogHandlers:
    def __init__(self, store: EventStore, subscribers: Cap | None = None) -> None:
        self.store = store
        self.subscribers = subscribers or subscriber_cap()

    async def read_log(self, request: opb.ReadLogRequest) -> opb.ReadLogResponse:
        limit = request.limit or 100
        if limit > _MAX_READ:
            raise InvalidArgument("limit", f"at most {_MAX_READ}, got {limit}")
        _check_after(request.after)
        wanted = log_filter(request)
        # pages by count and by bytes: the reply stays far under the message limit
        page = await asyncio.to_thread(read_reply, self.store, request.after, limit, wanted)
        head = await asyncio.to_thread(self.store.head)
        return opb.ReadLogResponse(events=page.events, head=head, scanned_to=page.scanned_to)

    async def subscribe_log(self, request: opb.SubscribeLogRequest) -> AsyncIterator[pb.Event]:
        """One page in memory per subscriber: asubscribe reads the next page only once every
        event of this one was yielded, and grpc.aio's yield returns only once the transport
        took the message (HTTP/2 flow control), so a client that stops reading stops us."""
        _check_after(request.after)
        wanted = log_filter(request)
        with self.subscribers.acquire():
            async for event in self.store.asubscribe(request.after):
                if wanted.matches(event):
                    yield envelope(event)

    async def verify_log(self, request: opb.VerifyLogRequest) -> opb.VerifyLogResponse:
        return verify_response(await asyncio.to_thread(self.store.verify))
