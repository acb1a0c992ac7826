"""The retention sweep: what capture policies kept (inputs, traces) is deleted from the
prediction records once its retention ends.

Each record carries its own expiry (`capture_expires_at_us`, set from the policy in force
when it was written), so the sweep needs no policy and no log: one indexed UPDATE over the
few records whose expiry has passed. The deletion is itself recorded, in the records and
in the UPDATE's own transaction (a `capture_deletions` row per deployment: how many
records, the cutoff, when): there rather than in the log because it is then atomic with the
deletion, and a gateway tailing a remote optimizer has no writer path to the log. It runs
once at start and then every `interval` seconds; `clock` is the gateway's
(GatewayConfig.clock), which tests move forward instead of waiting days.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from gateway_svc.records import PredictionStore


async def sweep(records: PredictionStore, clock: Callable[[], float]) -> int:
    cleared = await asyncio.to_thread(records.purge_expired, int(clock() * 1_000_000))
    if cleared:
        structlog.get_logger().info("capture_retention_purged", records=cleared)
    return cleared


async def retention_loop(records: PredictionStore, interval: float, clock: Callable[[], float]) -> None:
    while True:
        try:
            await sweep(records, clock)
        except Exception:  # a busy or failing records file: the next round tries again
            structlog.get_logger().exception("capture_retention_failed")
        await asyncio.sleep(interval)
