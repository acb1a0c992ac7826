"""Whether a gateway may serve, and why not: health and Predict answer from here.

A gateway serves once its first catch-up is done: it has folded the log up to the head its
source reported when it connected (a file gateway: the file's head at start; a remote one:
the optimizer's head from ReadLog). Whenever it cannot make progress on its source
(UNAUTHENTICATED, UNAVAILABLE or RESOURCE_EXHAUSTED from the optimizer, a message over the
limit, a gap, a read that fails) it stops serving, with the reason, until it has caught up
again with the head reported at the next successful connection.

While not serving, health says NOT_SERVING (the server and the Gateway service) and
Predict answers UNAVAILABLE naming the reason, rather than answering from a replica that
may be empty or stale. Each change is one structured log line, not one per retry.

One failure does not stop a gateway that serves: its log's database server (PostgreSQL)
cannot be reached (``through_outage``). Then nobody can append to the log either, so the
state folded so far is the newest there is, and the gateway keeps serving it, as a cache
(a gateway cut off from a server others still reach serves what it had: the price of
serving through an outage). An optimizer that cannot be reached is no such thing: others
may append to the log behind it.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from dspyops import rpc
from dspyops.health import HealthServicer

_log = structlog.get_logger()


class Readiness:
    """A `TailObserver` (gateway_svc.source) that the replica also tells its position."""

    def __init__(
        self,
        source: str,
        health: HealthServicer | None = None,
        services: Sequence[str] = (),
        position: int = 0,
        *,
        through_outage: bool = False,
    ) -> None:
        """`source` names the log source in reasons ("the optimizer at host:port");
        `through_outage`: the source is the log's own database server (see above)."""
        self.source = source
        self.position = position
        self.ready = False
        self.through_outage = through_outage
        self.problem = ""  # why the source cannot be followed now ("" when it can)
        self.outage = ""  # why the log's server cannot be reached, while serving through it
        self.target: int | None = None  # the head to reach before serving (None: not connected)
        self._health = health
        self._services = tuple(services)
        self._published: tuple[bool, str] = (False, "")  # start() publishes NOT_SERVING first

    @property
    def reason(self) -> str:
        """Why this gateway is not serving ("" when it is)."""
        if self.ready:
            return ""
        if self.problem:
            return f"cannot follow the log: {self.problem}"
        if self.target is None:
            return f"connecting to {self.source}"
        return f"catching up with {self.source}: at log position {self.position} of {self.target}"

    async def connected(self, head: int) -> None:
        self.problem = ""
        if self.outage:
            _log.info("gateway_outage_over", source=self.source, position=self.position)
            self.outage = ""
        if not self.ready:  # a reconnect while serving (the stream ended) does not stop serving
            self.target = head
        await self._check()

    async def failed(self, reason: str, *, unreachable: bool = False) -> None:
        """`unreachable`: the source could not be reached (rather than refusing or breaking)."""
        if unreachable and self.through_outage and self.ready:
            if not self.outage:
                _log.warning("gateway_serving_through_outage", source=self.source, reason=reason)
            self.outage = reason
            return
        self.problem = reason
        self.ready = False
        self.target = None
        await self._publish()

    async def advanced(self, position: int) -> None:
        self.position = position
        if not self.ready:
            await self._check()

    async def _check(self) -> None:
        if not self.ready and not self.problem and self.target is not None and self.position >= self.target:
            self.ready = True
        await self._publish()

    async def _publish(self) -> None:
        state = (self.ready, self.problem)
        if state == self._published:
            return
        self._published = state
        if self.ready:
            _log.info("gateway_serving", source=self.source, position=self.position)
        else:
            _log.warning("gateway_not_serving", source=self.source, reason=self.reason)
        if self._health is not None:
            await rpc.set_serving(self._health, self._services, self.ready)
