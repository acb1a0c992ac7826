"""Where a gateway reads the log from: the SQLite file itself, or the optimizer's
SubscribeLog stream (for gateways on other machines). Both yield StoredEvents in log order
from a given position, replaying first and then live, with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import grpc
import structlog

from dspyops.eventlog import EventStore, StoredEvent
from dspyops.events import from_proto
from dspyops.proto import optimizer_pb2 as opb
from dspyops.proto import optimizer_pb2_grpc

_log = structlog.get_logger()


class LogSource(Protocol):
    def events(self, after_position: int) -> AsyncIterator[StoredEvent]: ...

    async def close(self) -> None: ...


class FileLogSource:
    """Tails the SQLite log directly (same machine)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def events(self, after_position: int) -> AsyncIterator[StoredEvent]:
        async for event in self.store.asubscribe(after_position, poll_interval=0.005):
            yield event

    async def close(self) -> None:
        self.store.close()


class RemoteLogSource:
    """Tails the optimizer's SubscribeLog; reconnects from the last position it saw."""

    def __init__(self, address: str, retry_delay: float = 0.5, *, token: str = "", tls_ca: str = "") -> None:
        """`token`: a bearer token with at least the reader role; `tls_ca`: the CA that
        signed the optimizer's certificate (turns TLS on)."""
        self.address = address
        self.retry_delay = retry_delay
        if tls_ca:
            credentials = grpc.ssl_channel_credentials(root_certificates=Path(tls_ca).read_bytes())
            self._channel = grpc.aio.secure_channel(address, credentials)
        else:
            self._channel = grpc.aio.insecure_channel(address)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._stub = optimizer_pb2_grpc.OptimizerStub(self._channel)

    async def events(self, after_position: int) -> AsyncIterator[StoredEvent]:
        position = after_position
        while True:
            try:
                request = opb.SubscribeLogRequest(after=position)
                async for envelope in self._stub.SubscribeLog(request, metadata=self._metadata):
                    event = from_proto(envelope)
                    if event.position != position + 1:  # would be a gap or a duplicate: never fold it
                        raise RuntimeError(f"log stream jumped from {position} to {event.position}")
                    position = event.position
                    yield event
            except grpc.aio.AioRpcError as exc:
                _log.warning(
                    "log_source_reconnect", address=self.address, code=exc.code().name, position=position
                )
                await asyncio.sleep(self.retry_delay)

    async def close(self) -> None:
        await self._channel.close()
