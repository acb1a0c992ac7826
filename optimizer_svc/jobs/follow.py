"""Watching a job this replica does not run: its events come from the log, live.

Any replica serves WatchJob. One that does not run the job (another replica owns it, or
this one lost it to a takeover) fills the job's handle from the job's stream instead: a
``JobFollower`` reads ``store.read_stream("job-<id>", after_version)`` each time the
store's head moves (``store.head_notifier()``: LISTEN/NOTIFY on PostgreSQL, the file's
data version on SQLite, the append signal in memory) and publishes what it read into the
handle, until a terminal event applies. Watchers therefore see JobClaimed, JobRetried and
a new attempt's events as the owner appends them; progress ticks never reach the log, so a
follower has none.

"Applies" is the fold's word (dspyops.fold): the follower folds the job's own stream, so a
terminal event with a stale fence (a shut-out owner's, only possible in a hand-written log:
appends are fenced by optimistic concurrency) does not end the watch, and a job whose log
says it ended is done however its events are ordered.

Two ways in: ``open_from_log`` (WatchJob / GetJob of a job not in this process: the log
read once; the live following runs while a watcher waits, so ListJobs over many running
jobs starts nothing, and a watcher that hangs up leaves nothing reading) and ``follow``
(the owner's handle lost its lease: keep publishing into the same handle from the version
it had reached, starting at once, since its watchers are waiting already).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.errors import NotFound, shown
from dspyops.eventlog.store import EventStore, StoredEvent, StoreUnavailable
from dspyops.events import decode
from dspyops.fold import fold
from dspyops.names import job_stream
from dspyops.proto import optimizer_pb2 as opb
from dspyops.scrub import scrub_message
from dspyops.state import EMPTY, State
from optimizer_svc.jobs.handle import TERMINAL, JobHandle

_log = structlog.get_logger()

# payload type -> OptimizationEvent kind; the lease bookkeeping (JobLeaseRenewed,
# JobLeaseReleased) is logged but not streamed: it moves the stream version only
KIND_OF = {
    "JobAccepted": "accepted",
    "JobStarted": "started",
    "BaselineEvaluated": "baseline",
    "JobProgress": "progress",
    "TrialCompleted": "trial",
    "JobCompleted": "completed",
    "JobFailed": "failed",
    "JobCancelled": "cancelled",
    "JobInterrupted": "interrupted",
    "GateEvaluated": "gate",
    "JobClaimed": "claimed",
    "JobRetried": "retried",
    "JobCancelRequested": "cancel_requested",
}
_TERMINAL_KINDS = {"completed", "failed", "cancelled", "interrupted"}
RETRY_SECONDS = 1.0  # after the log could not be read (PostgreSQL down): look again this often
MAX_JOB_ID = 64  # longer ids name no job (and are not sent to the store)


class JobFollower:
    """Publishes the job's logged events after ``after_version`` into ``handle``."""

    def __init__(self, handle: JobHandle, store: EventStore, after_version: int) -> None:
        self.handle = handle
        self.store = store
        self.stream = job_stream(handle.job_id)
        self.after_version = after_version  # the last version read (published or not)
        self._state: State = EMPTY  # the job's own stream, folded: says when the job has ended
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ reading

    def take(self, records: Sequence[StoredEvent]) -> None:
        """Fold and publish records read from the job's stream (in order, any after the
        last taken are new). On the handle's loop, or before any watcher has it."""
        fresh = [r for r in records if r.version > self.after_version]
        if not records:
            return
        # fold everything not folded yet (a follower that starts at version N for a lost
        # owner folds from 1, so it knows the current fence)
        unfolded = [r for r in records if r.position > self._state.position]
        if unfolded:
            self._state = fold(unfolded, self._state)
        handle = self.handle
        with handle._lock:
            for record in fresh:
                payload = decode(record)
                kind = KIND_OF.get(type(payload).__name__)
                handle.stream_version = record.version
                self.after_version = record.version
                if kind is None:
                    continue  # lease renewals and releases
                stamp = Timestamp()
                stamp.FromDatetime(record.recorded_at)
                event = opb.OptimizationEvent(
                    job_id=handle.job_id,
                    sequence=len(handle.events) + 1,
                    at=stamp,
                    stream_version=record.version,
                )
                getattr(event, kind).CopyFrom(scrub_message(payload))  # logs written before the scrubber
                handle.events.append(event)
            if self.ended(records):
                handle.done = True

    def ended(self, records: Sequence[StoredEvent]) -> bool:
        summary = self._state.jobs.get(self.handle.job_id)
        if summary is not None:
            return summary.state in TERMINAL
        # a stream without JobAccepted (a log written by hand): its last event says
        last = KIND_OF.get(type(decode(records[-1])).__name__) if records else None
        return last in _TERMINAL_KINDS

    # ------------------------------------------------------------------ following

    def start(self) -> None:
        """Follow the log until the job ends (idempotent). On the handle's loop."""
        if self.handle.done or (self._task is not None and not self._task.done()):
            return
        self._task = self.handle.loop.create_task(self._follow(), name=f"follow-{self.stream}")

    async def _follow(self) -> None:
        handle = self.handle
        notifier = self.store.head_notifier()
        try:
            while not handle.done and handle.watchers:  # a later watcher starts it again
                try:
                    # the head first: whatever commits after it wakes the wait below
                    head = await asyncio.to_thread(self.store.head)
                    # the whole stream once, to fold it from the start; then what is new
                    after = self.after_version if self._state.position else 0
                    records = await asyncio.to_thread(self.store.read_stream, self.stream, after)
                except StoreUnavailable as exc:
                    if self.store.closed:
                        raise
                    _log.warning("job_follow_unavailable", job_id=handle.job_id, error=str(exc)[:200])
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                self.take(records)
                handle._publish()
                if handle.done:
                    return
                await notifier.wait_past(head)
                if self.store.closed:
                    raise StoreUnavailable("the log is closed (the optimizer is shutting down)")
        except Exception as exc:
            handle.failure = exc
            handle._publish()


def open_from_log(store: EventStore, loop: asyncio.AbstractEventLoop, job_id: str) -> JobHandle:
    """A handle of a job this process does not run: its logged events so far (blocking
    read), and a follower that goes on reading once a watcher waits for more."""
    records = store.read_stream(job_stream(job_id)) if len(job_id) <= MAX_JOB_ID else []
    if not records:
        raise NotFound("job_id", f"no job {shown(job_id)}")
    handle = JobHandle(job_id=job_id, loop=loop)
    follower = JobFollower(handle, store, 0)
    follower.take(records)
    if not handle.done:
        handle.follower = follower
    return handle


def follow(handle: JobHandle, store: EventStore, from_version: int) -> JobFollower:
    """The owner lost the job (its lease was taken): from now on the handle is filled from
    the log, after `from_version` (the last version the owner appended or published), so
    its watchers go on with the new owner's events. Any thread; returns at once. The job
    thread must not publish into the handle after this, nor set it done."""
    follower = JobFollower(handle, store, from_version)
    handle.follower = follower
    if _running_loop() is handle.loop:
        follower.start()
    else:
        handle.loop.call_soon_threadsafe(follower.start)
    return follower


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
