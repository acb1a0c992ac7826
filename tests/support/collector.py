"""A WatchJob stream read in a thread of its own, so a test can kill a replica meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from dspyops.proto import optimizer_pb2 as opb


class Collector:
    """Reads a stream of events in a thread of its own."""

    def __init__(self, events: Iterable[opb.OptimizationEvent]) -> None:
        self.seen: list[opb.OptimizationEvent] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(events,), daemon=True)
        self.thread.start()

    def _run(self, events: Iterable[opb.OptimizationEvent]) -> None:
        try:
            for event in events:
                self.seen.append(event)
        except BaseException as exc:  # the test reports it
            self.error = exc

    def kinds(self) -> list[str | None]:
        return [e.WhichOneof("kind") for e in self.seen]

    def logged(self) -> list[tuple[int, str | None]]:
        """(stream version, kind) of what reached the log: progress ticks never do."""
        return [
            (e.stream_version, e.WhichOneof("kind")) for e in self.seen if e.WhichOneof("kind") != "progress"
        ]

    def finish(self, timeout: float) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the watch did not end; seen {self.kinds()}"
        assert self.error is None, self.error
