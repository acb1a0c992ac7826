"""The gateway's read model: the fold of the log, kept current by tailing it.

Folding is pure, so a request that has taken a reference to `state` keeps a consistent
view while the tail task swaps in the next one. Artifacts (the bytes inside
VersionRegistered events) are kept by digest beside the state: the state holds only the
digest, which keeps it small and its hash cheap.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from dspyops.events import decode
from dspyops.proto import events_pb2 as pb
from dspyops.state import EMPTY, State, fold
from gateway_svc.source import LogSource

_log = structlog.get_logger()


class Replica:
    def __init__(
        self, source: LogSource, initial: State = EMPTY, artifacts: dict[str, bytes] | None = None
    ) -> None:
        """`initial`: a snapshot's state to start from (then `artifacts` must hold its versions')."""
        self.source = source
        self.state: State = initial
        self.artifacts: dict[str, bytes] = dict(artifacts or {})
        self.folded = 0  # events folded by this replica (not counting the snapshot)
        self._advanced = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def start(self, head: int | None = None) -> None:
        """Start tailing; when `head` is given, return once the replica has reached it."""
        self._task = asyncio.create_task(self._tail(), name="log-tail")
        if head is not None:
            await self.wait_for(head)

    async def wait_for(self, position: int, timeout: float | None = None) -> bool:
        async def reached() -> None:
            async with self._advanced:
                await self._advanced.wait_for(lambda: self.state.position >= position)

        try:
            await asyncio.wait_for(reached(), timeout)
        except TimeoutError:
            return False
        return True

    async def _tail(self) -> None:
        async for event in self.source.events(self.state.position):
            if event.type == "dspyops.v1.VersionRegistered":
                registered = decode(event)
                assert isinstance(registered, pb.VersionRegistered)
                self.artifacts[registered.artifact_digest] = registered.artifact
            self.state = fold([event], self.state)
            self.folded += 1
            async with self._advanced:
                self._advanced.notify_all()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.source.close()
