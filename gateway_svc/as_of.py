"""Which state a read answers from: the replica's (now), or the log's history at a point,
which only a gateway on the log file has."""

from __future__ import annotations

import asyncio

from dspyops.errors import FailedPrecondition
from dspyops.history import History
from dspyops.proto import gateway_pb2 as gpb
from dspyops.state import State
from gateway_svc.replica import Replica


def need_log(history: History | None, field: str) -> History:
    """The log's history, or FAILED_PRECONDITION naming `field` on a gateway that tails a
    remote optimizer (no history, no commands there)."""
    if history is None:
        raise FailedPrecondition(
            field,
            "this gateway tails a remote optimizer: history and commands need a gateway started with --log",
        )
    return history


async def state_as_of(
    replica: Replica, history: History | None, as_of: gpb.AsOf, field: str = "as_of"
) -> State:
    if as_of.WhichOneof("point") is None:
        return replica.state
    log = need_log(history, field)
    position = await asyncio.to_thread(log.position, as_of, field)
    return await asyncio.to_thread(log.state_at, position)
