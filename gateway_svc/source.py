"""Where a gateway reads the log from: the SQLite file itself, or the optimizer's
SubscribeLog stream (for gateways on other machines). Both yield pages (lists) of
StoredEvents in log order from a given position, replaying first and then live, with no
gap and no duplicate. Pages let the replica fold and wake its waiters once per page.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import grpc
import structlog

from dspyops.eventlog import EventStore, SQLiteEventStore, StoredEvent, StoreUnavailable
from dspyops.eventlog.store import contiguous_prefix
from dspyops.eventlog.wakeup import DataVersionProbe
from dspyops.events import from_proto
from dspyops.limits import MAX_MESSAGE_BYTES
from dspyops.proto import optimizer_pb2 as opb
from dspyops.proto import optimizer_pb2_grpc

try:  # Linux only; elsewhere the file tail probes on a timer
    from inotify_simple import INotify, flags
except ImportError:  # pragma: no cover - not on Linux
    INotify = None  # type: ignore[assignment,misc]

_log = structlog.get_logger()

CATCH_UP_PAGE = 10_000  # events per read while behind: few thread hops, one fold per page
PROBE_INTERVAL = 0.001  # seconds between change probes while a write is under way
POLL_INTERVAL = 0.005  # seconds between reads for a store without a change probe
# With a file watch: how long to keep probing after the log's files were written (a commit
# is visible only after its fsync, which the write notification precedes) ...
SETTLE = 0.25
# ... and the longest wait without any notification (a net under the watch; also the
# probe interval where there is no watch is PROBE_INTERVAL throughout)
WATCH_TIMEOUT = 0.02
RETRY_DELAY = 0.5  # seconds before a remote source's first retry; doubled per failure ...
MAX_RETRY_DELAY = 5.0  # ... up to this
CONNECT_TIMEOUT = 30.0  # seconds for the ReadLog that opens each (re)connection


class TailObserver(Protocol):
    """Told by a source how following it goes (the gateway's readiness listens)."""

    async def connected(self, head: int) -> None:
        """(Re)connected; the source's head at that moment."""

    async def failed(self, reason: str) -> None:
        """No progress possible for now (the source retries); `reason` says why."""


class LogSource(Protocol):
    def pages(
        self, after_position: int, observer: TailObserver | None = None
    ) -> AsyncIterator[list[StoredEvent]]: ...

    async def close(self) -> None: ...


class FileWatch:
    """Linux inotify (through `inotify_simple`) on the log's directory, filtered to the
    log's own files: tells the tail that some process is writing the log, so an idle
    gateway need not wake up every millisecond to probe (a 1 ms asyncio sleep loop alone
    costs ~8% of a core here). `open` returns None where inotify is unavailable; the tail
    then probes on a timer."""

    def __init__(self, inotify: INotify, names: frozenset[str], loop: asyncio.AbstractEventLoop) -> None:
        self._inotify = inotify
        self._names = names
        self._loop = loop
        self._written = asyncio.Event()
        loop.add_reader(inotify.fileno(), self._on_readable)

    @classmethod
    def open(cls, path: str, loop: asyncio.AbstractEventLoop) -> FileWatch | None:
        if INotify is None:
            return None
        try:
            inotify = INotify(nonblocking=True)
        except OSError:
            return None
        try:
            # DELETE / MOVED_FROM too: a log removed or renamed away must wake the tail, which
            # then notices that its file is gone (FileLogSource._check_file)
            inotify.add_watch(
                os.path.dirname(path),
                flags.MODIFY | flags.MOVED_TO | flags.CREATE | flags.DELETE | flags.MOVED_FROM,
            )
        except OSError:
            inotify.close()
            return None
        base = os.path.basename(path)
        # WAL mode commits write <log>-wal; checkpoints and rollback-journal commits the log
        return cls(inotify, frozenset({base, f"{base}-wal", f"{base}-journal"}), loop)

    def _on_readable(self) -> None:
        try:
            events = self._inotify.read(timeout=0)
        except (BlockingIOError, InterruptedError):
            return
        if any(e.mask & flags.Q_OVERFLOW or e.name in self._names for e in events):
            self._written.set()

    async def wait(self, timeout: float) -> bool:
        """True once the log's files were written since the last call, False on timeout."""
        if not self._written.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._written.wait()
        written = self._written.is_set()
        self._written.clear()  # before the caller's probe, so a later write sets it anew
        return written

    def close(self) -> None:
        if not self._inotify.closed:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._inotify.fileno())
            self._inotify.close()


class FileLogSource:
    """Tails the SQLite log directly (same machine).

    Behind the head it reads pages of CATCH_UP_PAGE back to back. Caught up, it reads only
    when the file's data version (DataVersionProbe) changed: it probes every PROBE_INTERVAL
    while the log's files are being written (FileWatch) and otherwise sleeps until they
    are, so another process's append is seen about a millisecond after its commit while an
    idle gateway costs next to nothing (formerly: a worker-thread read every 5 ms).

    Each read and each wake-up first checks (one stat) that the path still names the file
    the store opened: a log removed or replaced under the gateway ends the tail with
    LogReplaced instead of serving the deleted file's state forever.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        page_size: int = CATCH_UP_PAGE,
        probe_interval: float = PROBE_INTERVAL,
    ) -> None:
        self.store = store
        self.page_size = page_size
        self.probe_interval = probe_interval
        self._probe: DataVersionProbe | None = None
        self._watch: FileWatch | None = None
        self._check_file = store.check_file if isinstance(store, SQLiteEventStore) else _no_check
        if isinstance(store, SQLiteEventStore):
            try:
                self._probe = DataVersionProbe(store.path)
            except sqlite3.Error as exc:  # e.g. no -shm access: fall back to polling reads
                _log.warning("log_probe_unavailable", path=store.path, error=str(exc))

    async def pages(
        self, after_position: int, observer: TailObserver | None = None
    ) -> AsyncIterator[list[StoredEvent]]:
        last = after_position
        probe = self._probe
        watch = FileWatch.open(self.store.path, asyncio.get_running_loop()) if probe else None
        self._watch = watch
        try:
            if observer is not None:
                await observer.connected(await asyncio.to_thread(self.store.head))
            while not self.store.closed:
                # taken before the read: a commit racing with the read changes it, so the
                # wait below returns at once and nothing committed is ever waited out
                seen = probe.version() if probe else None
                self._check_file()
                try:
                    page = await asyncio.to_thread(self.store.read, last, self.page_size)
                except StoreUnavailable:
                    if self.store.closed:
                        return
                    raise
                fresh = contiguous_prefix(page, last)
                if fresh:
                    last = fresh[-1].position
                    yield fresh
                if len(fresh) == self.page_size:
                    continue  # behind the head: read on at once
                if probe is None or seen is None:
                    await asyncio.sleep(POLL_INTERVAL)
                else:
                    await self._changed(probe, seen, watch)
        finally:
            if watch is not None:
                watch.close()

    async def _changed(self, probe: DataVersionProbe, seen: int, watch: FileWatch | None) -> None:
        """Return once the data version differs from `seen` (or the store closed)."""
        loop = asyncio.get_running_loop()
        probing_until = 0.0
        while not self.store.closed:
            if watch is not None and loop.time() >= probing_until:
                if await watch.wait(WATCH_TIMEOUT):
                    probing_until = loop.time() + SETTLE
            else:
                await asyncio.sleep(self.probe_interval)
            if probe.version() != seen:
                return
            self._check_file()

    async def close(self) -> None:
        self.store.close()
        if self._watch is not None:
            self._watch.close()
        if self._probe is not None:
            self._probe.close()


def _no_check() -> None:
    pass


class SourceProblem(Exception):
    """The optimizer answers, but not with a log this gateway can follow on from."""


class StreamGap(SourceProblem):
    """The stream skipped or repeated a position: nothing from it is folded."""


class LogBehind(SourceProblem):
    """The optimizer's head is before this gateway's position: a truncated or different log."""


class RemoteLogSource:
    """Tails the optimizer's SubscribeLog; reconnects from the last position it saw.

    Each (re)connection first asks ReadLog for the optimizer's head, which tells the
    observer how far the first catch-up (or the catch-up after a failure) must go; a
    failure of either call (UNAUTHENTICATED, UNAVAILABLE, RESOURCE_EXHAUSTED, a message over
    the limit, a gap in the stream, a head before the gateway's position) is reported with
    its reason, then retried with a growing delay. The channel takes the servers' message
    limits (dspyops.rpc), so any event the optimizer can send, the gateway can receive.

    A pump task moves the stream's messages into a queue; a page is whatever has arrived by
    the time the replica asks (up to `page_size`), so a catch-up over the network is folded
    in pages while a single live event is passed on at once.
    """

    def __init__(
        self,
        address: str,
        retry_delay: float = RETRY_DELAY,
        *,
        token: str = "",
        tls_ca: str = "",
        tls_cert: str = "",
        tls_key: str = "",
        page_size: int = CATCH_UP_PAGE,
    ) -> None:
        """`token`: a bearer token with at least the reader role; `tls_ca`: the CA that
        signed the optimizer's certificate (turns TLS on); `tls_cert`/`tls_key`: the client
        certificate, for an optimizer that requires one."""
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("upstream_tls_cert and upstream_tls_key: give both or neither")
        if tls_cert and not tls_ca:
            raise ValueError("upstream_tls_cert: a client certificate needs TLS (upstream_tls_ca)")
        self.address = address
        self._tls_without_cert = bool(tls_ca) and not tls_cert
        self.retry_delay = retry_delay
        self.page_size = page_size
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if tls_ca:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=Path(tls_ca).read_bytes(),
                private_key=Path(tls_key).read_bytes() if tls_key else None,
                certificate_chain=Path(tls_cert).read_bytes() if tls_cert else None,
            )
            self._channel = grpc.aio.secure_channel(address, credentials, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(address, options=options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._stub = optimizer_pb2_grpc.OptimizerStub(self._channel)

    async def pages(
        self, after_position: int, observer: TailObserver | None = None
    ) -> AsyncIterator[list[StoredEvent]]:
        position = after_position
        delay = self.retry_delay
        while True:
            # bounded: a slow fold holds the pump back instead of buffering without limit
            queue: asyncio.Queue[StoredEvent | BaseException | None] = asyncio.Queue(self.page_size)
            pump: asyncio.Task[None] | None = None
            try:
                head = await self._head(position)
                if head < position:
                    raise LogBehind(
                        f"its log ends at position {head}, before this gateway's {position}: "
                        "not the log this gateway has folded (restored from a backup? another file?)"
                    )
                if observer is not None:
                    await observer.connected(head)
                pump = asyncio.create_task(self._pump(position, queue), name="log-source-pump")
                while True:
                    items = [await queue.get()]
                    while len(items) < self.page_size and not queue.empty():
                        items.append(queue.get_nowait())
                    page: list[StoredEvent] = []
                    end: BaseException | None = None
                    ended = False
                    for item in items:
                        if item is None or isinstance(item, BaseException):
                            end, ended = item, True
                            break
                        if item.position != position + 1:  # would be a gap or a duplicate: never fold it
                            end, ended = (
                                StreamGap(f"the stream jumped from {position} to {item.position}"),
                                True,
                            )
                            break
                        position = item.position
                        page.append(item)
                    if page:
                        yield page
                        delay = self.retry_delay  # progress: the next failure retries quickly again
                    if end is not None:
                        raise end
                    if ended:
                        break  # the server ended the stream: subscribe again from where we are
            except (grpc.aio.AioRpcError, SourceProblem) as exc:
                reason = self._reason(exc)
                _log.debug("log_source_retry", address=self.address, position=position, reason=reason)
                if observer is not None:
                    await observer.failed(reason)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
            finally:
                if pump is not None:
                    pump.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await pump

    async def _head(self, position: int) -> int:
        """The optimizer's head now (one ReadLog call; it also proves credentials and TLS)."""
        request = opb.ReadLogRequest(after=position, limit=1)
        response = await self._stub.ReadLog(request, metadata=self._metadata, timeout=CONNECT_TIMEOUT)
        return response.head

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, grpc.aio.AioRpcError):
            details = (exc.details() or "")[:300]
            reason = f"{exc.code().name} from the optimizer at {self.address}: {details}"
            # an optimizer that requires client certificates closes the TLS handshake of a
            # client without one; the client sees only a closed socket, so name the likely cause
            if self._tls_without_cert and any(w in details.lower() for w in ("socket closed", "handshake")):
                reason += (
                    " (does it require a client certificate? give --upstream-tls-cert/--upstream-tls-key)"
                )
            return reason
        return f"from the optimizer at {self.address}: {exc}"

    async def _pump(
        self, after_position: int, queue: asyncio.Queue[StoredEvent | BaseException | None]
    ) -> None:
        try:
            request = opb.SubscribeLogRequest(after=after_position)
            async for envelope in self._stub.SubscribeLog(request, metadata=self._metadata):
                await queue.put(from_proto(envelope))
            await queue.put(None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to pages(), which reconnects or fails the tail
            await queue.put(exc)

    async def close(self) -> None:
        await self._channel.close()
