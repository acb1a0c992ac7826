"""The one serve loop of both services: run until SIGTERM/SIGINT, then drain.

1. health goes NOT_SERVING for every service, and Watch streams end (dspyops.health), so
   load balancers stop routing here before anything is refused;
2. settle: keep serving until no new call has started for a moment, so calls already on
   the wire but still queued for a handler are picked up rather than cancelled;
3. `stop(grace)`: new calls are refused, calls in flight get the rest of the grace.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Protocol

import structlog

from dspyops.health import HealthServicer

SETTLE_QUIET = 0.1  # seconds without a new call that mean the queue is empty
SETTLE_LIMIT = 1.0  # at most this long (and at most half the grace)


class Running(Protocol):
    health: HealthServicer

    async def stop(self, grace: float = ...) -> None: ...


async def serve_until_signalled(running: Running, name: str, grace: float) -> None:
    """Run `running` (a started service) until SIGTERM/SIGINT, then drain it within
    `grace` seconds. `name` prefixes the drain's log line (`<name>_draining`)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    structlog.get_logger().info(f"{name}_draining", grace_seconds=grace)
    await running.health.enter_graceful_shutdown()
    settled = await settle(quiet=SETTLE_QUIET, limit=min(SETTLE_LIMIT, grace / 2))
    await running.stop(max(0.0, grace - settled))


async def settle(quiet: float, limit: float) -> float:
    """Keep serving until no new task has started for `quiet` seconds (at most `limit`).

    grpc's stop() cancels at once the calls that have reached the server but are still
    queued for a handler (the client sees CANCELLED), so a burst sent just before SIGTERM
    would lose its tail. Each call the server picks up starts a task; once they stop
    appearing, the queue is empty and stop() can refuse new calls and drain the rest.
    Returns the seconds spent."""
    loop = asyncio.get_running_loop()
    started = last_new = loop.time()
    seen = asyncio.all_tasks()
    while loop.time() - last_new < quiet and loop.time() - started < limit:
        await asyncio.sleep(0.01)
        now = asyncio.all_tasks()
        if now - seen:
            last_new = loop.time()
        seen = now
    return loop.time() - started
