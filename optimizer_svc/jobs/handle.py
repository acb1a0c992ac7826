"""What only the process running a job has of it, and the Job message GetJob returns.

A job's summary (state, scores, trials, version, error) is kept once: in the fold
(``dspyops.state.JobSummary``), which every logged event of the job updates as it is
appended (the job thread appends through ``Ledger.append``, which folds), and which is all
there is of a job of an earlier process. A ``JobHandle`` keeps only what is live: the events
it has streamed (watchers read them; progress ticks are never logged), its cancel token,
and the loop its watchers wait on.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.proto import optimizer_pb2 as opb
from dspyops.scrub import scrub
from dspyops.state import JobSummary
from optimizer_svc.cancel import CancelToken

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
    # This replica's claim, while it runs the job (optimizer_svc.jobs.claims): every append of
    # its events carries `fence` and expects `stream_version`, the version of its last append.
    fence: int = 0
    stream_version: int = 0
    attempt: int = 0
    renewed_at: float = 0.0  # time.monotonic() of the last append that renewed the lease
    fenced: str = ""  # why the lease was lost ("" : it was not): nothing more is appended
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: asyncio.Future[None] | None = None

    def _publish(self) -> None:
        """Runs on the event loop: wake every watcher."""
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    async def watch(self, after_sequence: int = 0) -> AsyncIterator[opb.OptimizationEvent]:
        index = after_sequence
        while True:
            while index < len(self.events):
                yield self.events[index]
                index += 1
            if self.done and index >= len(self.events):
                return
            if self._changed is None:
                self._changed = self.loop.create_future()
            await asyncio.shield(self._changed)


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
    )
