"""Helpers shared by the tests. Real servers come from dspyops.launch (ServerThread: its
own event loop in a background thread, a free loopback port, real gRPC channels)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from dspyops.launch import ServerThread

__all__ = ["DATA", "ServerThread", "ticket_rows", "wait_until"]

DATA = Path(__file__).resolve().parent.parent / "dspyops" / "data"


def ticket_rows() -> list[dict[str, str]]:
    path = DATA / "support_tickets.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
