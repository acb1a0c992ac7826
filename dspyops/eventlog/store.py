"""The event store interface: value types, errors, and the backend-independent parts.

Backends implement the abstract methods. Subscriptions and ``wait_for`` are written once here
on top of ``read``/``head``; they only rely on the backend contract that a reader never sees
position ``n + 1`` before position ``n`` (positions become visible in order, without gaps).

Reads for the network come in pages bounded by count and by bytes (``read_page``), so a
subscriber holds one page at most and a reply never outgrows a gRPC message.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Final

from dspyops.eventlog.lock import WriterLease
from dspyops.eventlog.wakeup import AppendSignal, ChangeProbe, HeadNotifier

ANY: Final = None
"""``expected_version=ANY`` appends whatever version the stream is at."""

DEFAULT_PAGE_SIZE: Final = 500
# An async subscriber's page: what it holds in memory at most while its consumer is slow.
SUBSCRIBE_PAGE_EVENTS: Final = 64
SUBSCRIBE_PAGE_BYTES: Final = 256 * 1024
_getrandbits = random.getrandbits


def new_event_id() -> str:
    """A UUIDv7 (RFC 9562) string: 48-bit Unix milliseconds, then 74 random bits.

    Time-ordered ids land at the right edge of the unique event_id index instead of on a
    random leaf page each, so a 100-event batch dirties a few index pages rather than ~100
    (about 2x the batch append rate on SQLite, see BENCHMARKS.md). Ids made within the
    same millisecond differ in 74 random bits. They need to be unique, not unguessable:
    the random module's generator (seeded from os.urandom, reseeded in a forked child) is
    2-3x cheaper here than os.urandom, and a batch makes one id per event.
    """
    ms = time.time_ns() // 1_000_000
    rand_b = _getrandbits(62)
    return "%08x-%04x-7%03x-%04x-%012x" % (  # noqa: UP031 (the fastest formatting here)
        ms >> 16,
        ms & 0xFFFF,
        _getrandbits(12),
        0x8000 | (rand_b >> 48),  # variant 0b10, then 14 random bits
        rand_b & 0xFFFF_FFFF_FFFF,
    )


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: str  # full protobuf type name, e.g. "dspyops.v1.VersionRegistered"
    payload: bytes  # serialized protobuf
    event_id: str = field(default_factory=new_event_id)  # time-ordered UUIDv7 unless given


@dataclass(frozen=True, slots=True)
class StoredEvent:
    position: int  # global, gapless, strictly increasing, starts at 1
    stream: str
    version: int  # 1-based index of the event inside its stream
    event_id: str
    type: str
    payload: bytes
    recorded_at: datetime  # UTC, timezone-aware, microsecond precision
    hash: bytes  # 32 bytes: the chain link, see hashchain
    actor: str = ""  # who caused the append ("" = no authenticated caller)
    chain: int = 2  # the link's version: 1 = v1, 2 = v2, 3 = v2 keyed (hashchain.LINK_*)


@dataclass(frozen=True, slots=True)
class EventSize:
    """An event's stored size, without reading its payload."""

    position: int
    payload_bytes: int
    other_bytes: int  # stream, event_id, type, actor and hash

    @property
    def total(self) -> int:
        return self.payload_bytes + self.other_bytes


@dataclass(frozen=True, slots=True)
class AppendResult:
    stream: str
    first_position: int
    last_position: int
    stream_version: int  # the stream's version after the batch (for a retry: as it was then)
    deduplicated: bool  # True: every event was already stored, nothing was appended


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int  # rows whose link was checked and found good
    first_broken_position: int | None
    reason: str
    v1_links: int = 0  # of the checked links: chain v1 ...
    v2_links: int = 0  # ... chain v2, keyed ones included ...
    keyed_links: int = 0  # ... and of those, keyed (HMAC-SHA256)
    after_position: int = 0  # the walk started after this (trusted) position


# The exceptions pass their fields to Exception.__init__ so that they survive pickling by
# multiprocessing or concurrent.futures, which rebuild them as cls(*args).


class WrongExpectedVersion(Exception):
    """The stream is not at the version the caller expected; nothing was appended."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(stream, expected, actual)
        self.stream = stream
        self.expected = expected
        self.actual = actual

    def __str__(self) -> str:
        return f"stream {self.stream!r} is at version {self.actual}, expected version {self.expected}"


class DuplicateEventId(Exception):
    """Some, but not all, event ids of the batch are already stored (or all are, but in another
    stream, so this is no retry); nothing was appended."""

    def __init__(self, stream: str, event_ids: Sequence[str]) -> None:
        super().__init__(stream, tuple(event_ids))
        self.stream = stream
        self.event_ids = tuple(event_ids)

    def __str__(self) -> str:
        shown = ", ".join(self.event_ids[:5]) + (" ..." if len(self.event_ids) > 5 else "")
        return (
            f"append to stream {self.stream!r}: {len(self.event_ids)} event id(s) already stored "
            f"({shown}); a retry must resend exactly the original batch"
        )


class StoreUnavailable(Exception):
    """The store could not be read or written (I/O error, disk full, read-only, closed).

    For an append this means nothing was written: the batch may be retried as is.
    """


class LogMissing(StoreUnavailable):
    """The log does not exist and the store was told not to create it."""


class LogReplaced(StoreUnavailable):
    """The log this store opened was removed or replaced by another file: appends would go
    to a file nobody reads (or mix two logs), so the store refuses them."""


class ChainKeyRequired(StoreUnavailable):
    """The log has keyed chain links and this store has no chain key: an unkeyed link after
    keyed ones would be a downgrade, so it refuses to append."""


MAX_ACTOR_CHARS: Final = 256


def validate_read(after_position: int, limit: int) -> None:
    if after_position < 0:
        raise ValueError(f"after_position must be >= 0, got {after_position}")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")


class EventStore(ABC):
    """An append-only log of events in streams, with optimistic concurrency per stream."""

    chain_key: bytes | None = None  # backends that take a chain key keep it here
    # a database server keeps the log (PostgreSQL): while it cannot be reached, nobody can
    # append to it, so a reader's last state is the newest there is (readers serve it)
    server: bool = False

    def __init__(self) -> None:
        # Backends call notify() after every committed append that wrote something.
        self._appended = AppendSignal()
        self._closed = False
        self._notifiers: dict[asyncio.AbstractEventLoop, HeadNotifier] = {}

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def appended(self) -> AppendSignal:
        """Fired after every append this store commits and, for a server log, by its
        listener for every other process's (LISTEN/NOTIFY): a single tail waits on it
        between reads instead of going through the HeadNotifier's head read."""
        return self._appended

    # -- what a backend implements ----------------------------------------------------------

    @abstractmethod
    def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: int | None, *, actor: str = ""
    ) -> AppendResult:
        """Atomically append ``events`` to ``stream``, recorded as caused by ``actor``.

        ``expected_version``: 0 = the stream must not exist yet, n = it must be at version n,
        ANY = no check. All events or none are written, at consecutive positions and versions.
        If every event_id is already stored in this stream (a retry), nothing is written and the
        original positions come back with ``deduplicated=True`` (expected_version unchecked).
        Raises WrongExpectedVersion, DuplicateEventId, StoreUnavailable, ValueError.
        """

    @abstractmethod
    def read(
        self, after_position: int = 0, limit: int = 1000, stream_prefix: str | None = None
    ) -> list[StoredEvent]:
        """Up to ``limit`` events with position > ``after_position``, in position order."""

    @abstractmethod
    def read_stream(self, stream: str, after_version: int = 0) -> list[StoredEvent]:
        """All events of ``stream`` with version > ``after_version``, in order."""

    @abstractmethod
    def stream_version(self, stream: str) -> int:
        """The stream's last version, 0 if it has no events."""

    @abstractmethod
    def head(self) -> int:
        """The last position, 0 if the log is empty."""

    @abstractmethod
    def verify(self, after_position: int = 0) -> VerifyResult:
        """Walk the hash chain and name the first position that does not check.

        From position 1, or after ``after_position``, trusting the link stored there (the
        position of a snapshot whose hash matches the log). Keyed links are checked with the
        store's chain key; without one they do not verify.
        """

    @abstractmethod
    def keyed(self) -> bool:
        """Whether the log's newest link is keyed (then appending needs the chain key)."""

    @abstractmethod
    def clock_us(self) -> int:
        """The log's clock: "now" in integer microseconds since the epoch, read from the same
        clock that stamps ``recorded_at`` (the database server's where the log is shared), so
        comparing a reading with a stored ``recorded_at`` never involves two machines' clocks.
        An append made after a reading is recorded at or after it."""

    @abstractmethod
    def writer_lock(self) -> WriterLease:
        """Take the log's single-writer lease (see eventlog.lock); raises WriterLocked,
        naming the holder, when another process has it."""

    @abstractmethod
    def close(self) -> None:
        """Release resources; running subscriptions end. Idempotent."""

    # -- what a backend may do better -------------------------------------------------------

    def event_sizes(
        self, after_position: int = 0, limit: int = 1000, stream_prefix: str | None = None
    ) -> list[EventSize]:
        """The sizes of the events ``read`` would return. This version reads them; a backend
        that can size a row without loading it (SQLite's ``length()``) overrides it."""
        return [
            EventSize(e.position, len(e.payload), _other_bytes(e))
            for e in self.read(after_position, limit, stream_prefix)
        ]

    def read_at(self, positions: Sequence[int]) -> list[StoredEvent]:
        """The events at ``positions`` (those the log has), in position order. This version
        reads them one by one; a server backend overrides it with one query."""
        found: list[StoredEvent] = []
        for position in sorted(set(positions)):
            if position > 0:
                found.extend(e for e in self.read(position - 1, 1) if e.position == position)
        return found

    def change_probe(self) -> ChangeProbe | None:
        """A new cheap probe for commits by other processes (None: the notifier re-reads the
        head on a timer while subscribers wait)."""
        return None

    # -- built on the above -----------------------------------------------------------------

    def read_page(
        self,
        after_position: int = 0,
        *,
        max_events: int,
        max_bytes: int,
        stream_prefix: str | None = None,
        cost: Callable[[EventSize], int] | None = None,
    ) -> list[StoredEvent]:
        """Up to ``max_events`` events after ``after_position`` (as ``read``), stopping before
        their ``cost`` (default: stored bytes) would pass ``max_bytes``; the first event comes
        back whatever its size, so a reader always makes progress."""
        validate_read(after_position, max_events)
        sizes = self.event_sizes(after_position, max_events, stream_prefix)
        measure: Callable[[EventSize], int] = cost or attrgetter("total")
        count, used = 0, 0
        for size in sizes:
            used += measure(size)
            if count and used > max_bytes:
                break
            count += 1
        return self.read(after_position, count, stream_prefix) if count else []

    def subscribe(
        self,
        after_position: int = 0,
        *,
        stop: threading.Event | None = None,
        poll_interval: float = 0.01,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[StoredEvent]:
        """Catch-up subscription: every event after ``after_position``, then live ones.

        Never skips or repeats a position. Ends when ``stop`` is set or the store is closed.
        Local appends wake it at once; other processes' appends are seen within
        ``poll_interval``.
        """
        validate_read(after_position, page_size)
        last = after_position
        while not self._should_stop(stop):
            seen = self._appended.seq
            try:
                page = self.read(after_position=last, limit=page_size)
            except StoreUnavailable:
                if self._closed:
                    return
                raise
            fresh = contiguous_prefix(page, last)
            for event in fresh:
                if self._should_stop(stop):
                    return
                yield event
                last = event.position
            if len(fresh) < page_size:  # caught up (or hit a not-yet-visible position)
                self._appended.wait(seen, poll_interval)

    async def asubscribe(
        self,
        after_position: int = 0,
        *,
        page_size: int = SUBSCRIBE_PAGE_EVENTS,
        page_bytes: int = SUBSCRIBE_PAGE_BYTES,
    ) -> AsyncIterator[StoredEvent]:
        """``subscribe`` for asyncio: reads run in a worker thread, never on the event loop.

        It holds one page (``page_size`` events, ``page_bytes`` stored bytes; at least one
        event) and reads the next only once the consumer has taken every event of this one,
        so a consumer that stops taking (a gRPC stream whose client does not read: grpc.aio's
        ``yield`` waits for HTTP/2 flow control) costs one page of memory, not the log.
        Caught up, it waits on the store's shared HeadNotifier instead of polling.
        Cancelling the consuming task ends the subscription; so does closing the store.
        """
        validate_read(after_position, page_size)
        notifier = self.head_notifier()
        last = after_position
        while not self._closed:
            try:
                page = await asyncio.to_thread(
                    self.read_page, last, max_events=page_size, max_bytes=page_bytes
                )
            except StoreUnavailable:
                if self._closed:
                    return
                raise
            fresh = contiguous_prefix(page, last)
            if fresh:
                del page
                last = fresh[-1].position
                # hand the events over one by one, dropping each from the page as it goes
                fresh.reverse()
                while fresh:
                    yield fresh.pop()
            elif page:  # the next position is not visible yet: the head is past it already
                del page
                await asyncio.sleep(notifier.probe_interval)
            else:
                await notifier.wait_past(last)

    def head_notifier(self) -> HeadNotifier:
        """The store's one HeadNotifier for the running event loop."""
        loop = asyncio.get_running_loop()
        notifier = self._notifiers.get(loop)
        if notifier is None:
            for other in [other for other in self._notifiers if other.is_closed()]:
                del self._notifiers[other]
            notifier = self._notifiers[loop] = HeadNotifier(
                self._appended, self.head, lambda: self._closed, self.change_probe
            )
        return notifier

    def wait_for(self, position: int, timeout: float, *, poll_interval: float = 0.01) -> bool:
        """Block until ``head() >= position``; False if ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self._appended.seq
            if self.head() >= position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed:
                return False
            self._appended.wait(seen, min(poll_interval, remaining))

    def _should_stop(self, stop: threading.Event | None) -> bool:
        return self._closed or (stop is not None and stop.is_set())

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _other_bytes(event: StoredEvent) -> int:
    return len(event.stream) + len(event.event_id) + len(event.type) + len(event.actor) + len(event.hash)


def contiguous_prefix(page: list[StoredEvent], last: int) -> list[StoredEvent]:
    """The prefix of ``page`` that continues exactly from ``last``.

    A backend whose positions could become visible out of order (a server database with
    concurrent writers) would show a gap here; stopping at it and re-reading later is what
    keeps a subscription gapless.
    """
    if not page or (page[0].position == last + 1 and page[-1].position == last + len(page)):
        # positions in a page ascend strictly, so these two ends mean no gap in between
        return page
    for i, event in enumerate(page):
        if event.position != last + 1 + i:
            return page[:i]
    return page
