"""Tailing the optimizer's SubscribeLog (a gateway on another machine)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import structlog
from opentelemetry.trace import TracerProvider

from dspyops.eventlog import StoredEvent
from dspyops.events import from_proto
from dspyops.limits import MAX_MESSAGE_BYTES
from dspyops.proto import optimizer_pb2 as opb
from dspyops.proto import optimizer_pb2_grpc
from dspyops.telemetry import rpc_client_interceptors
from gateway_svc.source import CATCH_UP_PAGE, TailObserver

_log = structlog.get_logger()

RETRY_DELAY = 0.5  # seconds before a remote source's first retry; doubled per failure ...
MAX_RETRY_DELAY = 5.0  # ... up to this
CONNECT_TIMEOUT = 30.0  # seconds for the ReadLog that opens each (re)connection


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
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        """`token`: a bearer token with at least the reader role; `tls_ca`: the CA that
        signed the optimizer's certificate (turns TLS on); `tls_cert`/`tls_key`: the client
        certificate, for an optimizer that requires one. `tracer_provider`: a client span
        per call, its context sent to the optimizer as W3C traceparent (dspyops.telemetry)."""
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
        interceptors = rpc_client_interceptors(tracer_provider)
        if tls_ca:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=Path(tls_ca).read_bytes(),
                private_key=Path(tls_key).read_bytes() if tls_key else None,
                certificate_chain=Path(tls_cert).read_bytes() if tls_cert else None,
            )
            self._channel = grpc.aio.secure_channel(
                address, credentials, options=options, interceptors=interceptors
            )
        else:
            self._channel = grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
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
