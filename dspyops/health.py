"""grpc.health.v1 for both services: grpc_health's asyncio servicer, with Watch streams
that end at shutdown.

grpc_health's `enter_graceful_shutdown()` sets every service NOT_SERVING, but its Watch
handler loops until the client goes away, so an open Watch stream (a load balancer, a
sidecar) keeps `server.stop(grace)` waiting for the whole grace. Here a watcher is sent
NOT_SERVING and its stream then ends with OK, so the drain waits only for real calls.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2

_SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class HealthServicer(health.aio.HealthServicer):
    # grpc_health's own bookkeeping (set by its __init__), which Watch below shares; its
    # stubs leave these private attributes out
    _server_status: dict[str, int]
    _server_watchers: collections.defaultdict[str, asyncio.Condition]
    _watcher_count_by_service: collections.defaultdict[str, int]
    _gracefully_shutting_down: bool

    @property
    def shutting_down(self) -> bool:
        return self._gracefully_shutting_down

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        # grpc_health's loop (same bookkeeping of its conditions and counts), which also
        # returns once the server is shutting down and the final status has been written
        condition = self._server_watchers[request.service]
        self._watcher_count_by_service[request.service] += 1
        last_status = None
        try:
            async with condition:
                while True:
                    status = self._server_status.get(request.service, _SERVICE_UNKNOWN)
                    if self._gracefully_shutting_down and status != _SERVICE_UNKNOWN:
                        # the last status is NOT_SERVING even before grpc_health has set it:
                        # it raises its flag first and sets each service after, so a watcher
                        # resuming from its write in between would end on SERVING
                        status = health_pb2.HealthCheckResponse.NOT_SERVING
                    if status != last_status:
                        await context.write(health_pb2.HealthCheckResponse(status=status))
                        last_status = status
                    if self._gracefully_shutting_down:
                        return
                    await condition.wait()
        finally:
            self._watcher_count_by_service[request.service] -= 1
            if self._watcher_count_by_service[request.service] == 0:
                del self._server_watchers[request.service]
                del self._watcher_count_by_service[request.service]

    async def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING from now on; every Watch stream gets its last status
        and ends (watchers of a service never registered too: theirs is SERVICE_UNKNOWN)."""
        await super().enter_graceful_shutdown()
        for condition in list(self._server_watchers.values()):
            async with condition:
                condition.notify_all()
