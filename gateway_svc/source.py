"""Where a gateway reads the log from: the SQLite file itself (gateway_svc.file_source), or
the optimizer's SubscribeLog stream for gateways on other machines
(gateway_svc.remote_source). Both yield pages (lists) of StoredEvents in log order from a
given position, replaying first and then live, with no gap and no duplicate. Pages let the
replica fold and wake its waiters once per page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from dspyops.eventlog import StoredEvent

CATCH_UP_PAGE = 10_000  # events per read while behind: few thread hops, one fold per page


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
