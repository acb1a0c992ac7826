"""A handle of a job this process does not run follows the job's log (optimizer_svc.jobs.follow):
events appended by hand to a real store (memory and SQLite) reach the handle's watchers as
they are appended, with their stream versions, lease bookkeeping is not streamed, a
terminal event of a stale fence does not end the watch, the current one does; and an
owner that lost the job hands its handle over to the log with `follow`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from google.protobuf.message import Message

from dspyops.eventlog import open_store
from dspyops.eventlog.store import EventStore
from dspyops.events import new_event
from dspyops.names import job_stream
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.jobs.follow import follow, open_from_log
from optimizer_svc.jobs.handle import JobHandle

JOB = "abc123"
WAIT = 30.0  # a generous bound on each step: the follower is woken by the append, not by polling


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    opened = open_store("memory:" if request.param == "memory" else str(tmp_path / "log.db"))
    yield opened
    opened.close()


def append(store: EventStore, *payloads: Message) -> int:
    return store.append(job_stream(JOB), [new_event(p) for p in payloads], None).stream_version


def accepted(max_attempts: int = 0) -> pb.JobAccepted:
    return pb.JobAccepted(
        job_id=JOB, program="tickets", optimizer="LabeledFewShot", max_attempts=max_attempts
    )


class Watcher:
    """A watch of the handle in a task on the running loop; `seen` fills as events arrive."""

    def __init__(self, handle: JobHandle, after_stream_version: int = 0) -> None:
        self.seen: list[opb.OptimizationEvent] = []
        self.ended = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run(handle.watch(0, after_stream_version)))

    async def _run(self, events: AsyncIterator[opb.OptimizationEvent]) -> None:
        async for event in events:
            self.seen.append(event)
        self.ended.set()

    async def until(self, check: Callable[[list[opb.OptimizationEvent]], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not check(self.seen):
                await asyncio.sleep(0.005)

    def kinds(self) -> list[str | None]:
        return [e.WhichOneof("kind") for e in self.seen]


def test_a_follower_publishes_appended_events_until_the_terminal_one(store: EventStore) -> None:
    async def main() -> None:
        append(store, accepted(), pb.JobStarted(optimizer="LabeledFewShot"))
        handle = open_from_log(store, asyncio.get_running_loop(), JOB)
        assert not handle.done and handle.follower is not None
        watcher = Watcher(handle)
        await watcher.until(lambda seen: len(seen) == 2)
        assert watcher.kinds() == ["accepted", "started"]
        # appended while the watcher waits: it gets each one, in order, with its version
        append(store, pb.BaselineEvaluated(score=0.5, examples=3))
        await watcher.until(lambda seen: len(seen) == 3)
        append(store, pb.TrialCompleted(trial=1, score=0.6, best_score=0.6))
        append(store, pb.JobCompleted(program="tickets", version="1.0.0", final_score=0.6))
        async with asyncio.timeout(WAIT):
            await watcher.ended.wait()
        assert watcher.kinds() == ["accepted", "started", "baseline", "trial", "completed"]
        assert [e.stream_version for e in watcher.seen] == [1, 2, 3, 4, 5]
        assert [e.sequence for e in watcher.seen] == [1, 2, 3, 4, 5]
        assert handle.done and handle.stream_version == 5
        # a resume after version 3 (from another replica) gets only what came later
        again = open_from_log(store, asyncio.get_running_loop(), JOB)
        assert again.done and again.follower is None  # ended: nothing to follow
        assert [e.stream_version async for e in again.watch(0, 3)] == [4, 5]

    asyncio.run(main())


def test_claims_and_retries_are_streamed_and_a_stale_fence_does_not_end_the_watch(store: EventStore) -> None:
    async def main() -> None:
        append(store, accepted(max_attempts=2), pb.JobClaimed(owner="a/1/00000001", attempt=1))  # fence 2
        handle = open_from_log(store, asyncio.get_running_loop(), JOB)
        watcher = Watcher(handle, after_stream_version=1)  # a resume: after JobAccepted
        await watcher.until(lambda seen: len(seen) == 1)
        append(store, pb.JobStarted(optimizer="LabeledFewShot", fence=2), pb.JobLeaseRenewed(fence=2))
        # the lease expired: another replica takes the job over (versions 5, 6: fence 6)
        retried = pb.JobRetried(attempt=2, lost_fence=2, lost_owner="a/1/00000001", reason="lease expired")
        append(store, retried, pb.JobClaimed(owner="b/2/00000002", attempt=2))
        append(store, pb.JobCancelRequested(reason="enough"))
        # the shut-out owner's terminal event (a hand-written log: OCC keeps it out otherwise)
        append(store, pb.JobCompleted(program="tickets", version="1.0.0", fence=2))
        await watcher.until(lambda seen: len(seen) == 6)
        assert not watcher.ended.is_set() and not handle.done
        append(store, pb.JobCancelled(reason="enough", fence=6))
        async with asyncio.timeout(WAIT):
            await watcher.ended.wait()
        assert watcher.kinds() == [
            "claimed", "started", "retried", "claimed", "cancel_requested", "completed", "cancelled",
        ]  # fmt: skip
        # the renewal (version 4) moved the version, and is not streamed
        assert [e.stream_version for e in watcher.seen] == [2, 3, 5, 6, 7, 8, 9]
        assert watcher.seen[2].retried.attempt == 2 and watcher.seen[3].claimed.owner == "b/2/00000002"

    asyncio.run(main())


def test_an_owner_that_lost_the_job_follows_the_log_from_its_last_version(store: EventStore) -> None:
    """`follow`, called from the job thread (as the fenced `_record` does): the handle's
    watchers go on with the new owner's events, without a repeat of the old owner's."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        append(store, accepted(max_attempts=2), pb.JobClaimed(owner="a", attempt=1))
        handle = open_from_log(store, loop, JOB)  # stands in for the owner's own handle ...
        handle.follower = None  # ... which no follower fills while it owns the job
        watcher = Watcher(handle)
        await watcher.until(lambda seen: len(seen) == 2)
        # the takeover: written by another replica; then this owner's append fails (OCC)
        append(
            store, pb.JobRetried(attempt=2, lost_fence=2, lost_owner="a"), pb.JobClaimed(owner="b", attempt=2)
        )
        thread = threading.Thread(target=follow, args=(handle, store, 2))
        thread.start()
        thread.join()
        await watcher.until(lambda seen: len(seen) == 4)
        append(store, pb.JobCompleted(program="tickets", version="1.0.0", fence=4))
        async with asyncio.timeout(WAIT):
            await watcher.ended.wait()
        assert watcher.kinds() == ["accepted", "claimed", "retried", "claimed", "completed"]
        assert [e.sequence for e in watcher.seen] == [1, 2, 3, 4, 5]
        assert [e.stream_version for e in watcher.seen] == [1, 2, 3, 4, 5]

    asyncio.run(main())


def test_the_follower_stops_reading_when_nobody_watches(store: EventStore) -> None:
    async def main() -> None:
        append(store, accepted())
        handle = open_from_log(store, asyncio.get_running_loop(), JOB)
        watcher = Watcher(handle)
        await watcher.until(lambda seen: len(seen) == 1)
        assert handle.follower is not None and handle.follower._task is not None
        watcher.task.cancel()  # the client hung up
        append(store, pb.JobStarted(optimizer="LabeledFewShot"))  # the next wake-up ends the reading
        async with asyncio.timeout(WAIT):
            while not handle.follower._task.done():
                await asyncio.sleep(0.005)
        assert handle.watchers == 0 and not handle.done
        again = Watcher(handle)  # a new watcher starts it again, from where it was
        append(store, pb.JobFailed(error="boom"))
        async with asyncio.timeout(WAIT):
            await again.ended.wait()
        assert again.kinds() == ["accepted", "started", "failed"]

    asyncio.run(main())


def test_a_job_that_is_not_in_the_log_is_not_found(store: EventStore) -> None:
    async def main() -> None:
        from dspyops.errors import NotFound

        for job_id in ("nope", "x" * 65):
            with pytest.raises(NotFound, match="job_id"):
                open_from_log(store, asyncio.get_running_loop(), job_id)

    asyncio.run(main())
