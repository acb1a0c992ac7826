"""Real servers for tests: each runs on its own event loop in a background thread,
bound to a free loopback port, and is reached only through real gRPC channels."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "dspyops" / "data"


class ServerThread:
    def __init__(self, start: Callable[[], Awaitable[Any]]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-server", daemon=True)
        self.thread.start()
        self.running = asyncio.run_coroutine_threadsafe(start(), self.loop).result(60)

    @property
    def address(self) -> str:
        return self.running.address

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.running.stop(1.0), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


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
