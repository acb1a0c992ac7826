"""What only the process running a job has of it, and the Job message GetJob returns.

A job's summary (state, scores, trials, version, error) is kept once: in the fold
(``dspyops.state.JobSummary``), which every logged event of the job updates as it is
appended (the job thread appends through ``Ledger.append``, which folds), and which is all
there is of a job of an earlier process. A ``JobHandle`` keeps only what is live: the events
it has streamed (watchers read them; progress ticks are never logged), its cancel token,
and the loop its watchers wait on. A handle of a job this process does not run (or no
longer owns) is filled from the log by its ``follower`` (optimizer_svc.jobs.follow).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.proto import optimizer_pb2 as opb
from dspyops.scrub import scrub
from dspyops.state import JobSummary
from optimizer_svc.cancel import CancelToken

if TYPE_CHECKING:
    from optimizer_svc.jobs.follow import JobFollower

TERMINAL = {"succeeded", "failed", "cancelled", "interrupted"}
_JOB_STATES = {
    "queued": opb.QUEUED,  # accepted with max_attempts, not claimed yet (dspyops.fold)
    "running": opb.RUNNING,
    "succeeded": opb.SUCCEEDED,
    "failed": opb.FAILED,
    "cancelled": opb.CANCELLED,
    "interrupted": opb.INTERRUPTED,
}


@dataclass
class JobHandle:
    job_id: str
    loop: asyncio.AbstractEventLoop
    cancel: CancelToken = field(default_factory=CancelToken)
    events: list[opb.OptimizationEvent] = field(default_factory=list)
    # Set with the job's terminal event, once that is in `events`: watchers stop at `done`,
    # and must not stop before they have seen the last event (the fold knows the job ended
    # a moment earlier, when the event was appended to the log).
    done: bool = False
    # the job-stream version of the last logged event in `events` (OptimizationEvent.stream_version);
    # while this replica runs the job: the version of its own last append, which the next
    # one expects (optimizer_svc.jobs.claims)
    stream_version: int = 0
    # This replica's claim, while it runs the job: every append of its events carries `fence`
    fence: int = 0
    attempt: int = 0
    lease_ms: int = 0  # the job's lease (its JobAccepted's: the accepting replica's setting)
    renewed_at: float = 0.0  # time.monotonic() of the last append that renewed the lease
    fenced: str = ""  # why the lease was lost ("" : it was not): nothing more is appended
    # set for a job this process does not run: reads the job's log into `events` until it ends
    follower: JobFollower | None = None
    failure: BaseException | None = None  # the follower could not read the log: watchers get it
    watchers: int = 0  # watches in progress (the follower reads only while there are any)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: asyncio.Future[None] | None = None

    def _publish(self) -> None:
        """Runs on the event loop: wake every watcher."""
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    async def watch(
        self, after_sequence: int = 0, after_stream_version: int = 0
    ) -> AsyncIterator[opb.OptimizationEvent]:
        """The events after `after_sequence` (this replica's numbering) whose stream_version
        is above `after_stream_version` (the log's, the same on every replica), then live
        until the job ends."""
        index = after_sequence
        self.watchers += 1
        try:
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if not after_stream_version or event.stream_version > after_stream_version:
                        yield event
                if self.done and index >= len(self.events):
                    return
                if self.failure is not None:
                    raise self.failure
                if self.follower is not None:
                    self.follower.start()  # a job of another replica: read its log while anyone watches
                if self._changed is None:
                    self._changed = self.loop.create_future()
                await asyncio.shield(self._changed)
        finally:
            self.watchers -= 1


def job_view(summary: JobSummary, last_sequence: int) -> opb.Job:
    created = Timestamp()
    created.FromMicroseconds(summary.accepted_at_us)
    return opb.Job(
        job_id=summary.job_id,
        program=summary.program,
        optimizer=summary.optimizer,
        state=_JOB_STATES[summary.state],
        baseline_score=summary.baseline_score,
        final_score=summary.final_score,
        best_score=summary.best_score,
        trials=summary.trials,
        version=summary.version,
        error=scrub(summary.error),  # jobs of earlier processes too
        created_at=created,
        last_sequence=last_sequence,
        owner=summary.owner,
        attempt=summary.attempt,
        max_attempts=summary.max_attempts,
        lm_calls=summary.lm_calls,
        wall_seconds=max(0, summary.ended_at_us - summary.accepted_at_us) / 1e6
        if summary.ended_at_us
        else 0.0,
    )
