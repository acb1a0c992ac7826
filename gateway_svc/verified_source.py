"""A log source whose every link is checked before the replica folds it.

A gateway folds what it tails into the state it serves, so it checks each event's chain
link first (with the log's chain key when the log is keyed): a remote gateway from the
first event it receives, a gateway on the log from its newest trusted snapshot (the start
walks nothing itself: its replay is the walk, so a broken link refuses the start). A
broken link ends the tail (the gateway then reports NOT_SERVING) unless the gateway was
started with ``--allow-broken-log``: then a warning names the position and folding goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog

from dspyops.eventlog import ChainChecker, StoredEvent
from dspyops.logstart import BrokenChain
from gateway_svc.source import LogSource, TailObserver

_log = structlog.get_logger()


class VerifiedSource:
    def __init__(self, source: LogSource, checker: ChainChecker, *, allow_broken: bool = False) -> None:
        """`checker`: positioned after the last link already checked (0: none yet)."""
        self.source = source
        self.checker = checker
        self.allow_broken = allow_broken
        self.broken: list[int] = []  # positions let through with --allow-broken-log

    async def pages(
        self, after_position: int, observer: TailObserver | None = None
    ) -> AsyncIterator[list[StoredEvent]]:
        checker = self.checker
        async for page in self.source.pages(after_position, observer):
            for event in page:
                if event.position <= checker.position:
                    continue  # at or before the trusted point (the replica re-reads from its snapshot)
                reason = checker.check_event(event)
                if reason is None:
                    continue
                if not self.allow_broken:
                    raise BrokenChain(event.position, reason)
                _log.warning(
                    "log_chain_broken",
                    position=event.position,
                    first_broken_position=self.broken[0] if self.broken else event.position,
                    reason=reason,
                    allowed_by="--allow-broken-log",
                )
                self.broken.append(event.position)
                checker.skip_broken(event.position, event.hash, event.chain)
            yield page

    async def close(self) -> None:
        await self.source.close()
