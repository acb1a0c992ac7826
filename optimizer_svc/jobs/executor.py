"""Where a job's optimization runs: the seam between the job manager and the executors.

The manager owns a job's record wherever it runs: it accepts the job, appends every event
the executor reports (through ``emit``, on the manager's job thread or any thread), and
registers the result. An executor only runs ``runner.run_job`` somewhere:

* ``ThreadExecutor`` (the default): in the calling thread, the manager's job thread.
* ``RayExecutor`` (optimizer_svc.jobs.ray_executor): as a Ray task on a cluster; the
  manager's job thread reads the task's stream and hands each event to ``emit``.

``run`` returns the JobResult, or raises ``JobCancelled`` (a cancel or a budget), ``JobLost``
(the place it ran went away: the manager's seam for retrying a job elsewhere) or any other
exception (the job failed). ``usage`` is kept up to date with what the job has spent, so a
cancelled job's record says what it cost.
"""

from __future__ import annotations

from typing import Protocol

from optimizer_svc.cancel import CancelToken
from optimizer_svc.jobs.runner import JobResult, JobSpec, run_job
from optimizer_svc.progress.events import Emit
from optimizer_svc.progress.usage import SharedUsageTracker

EXECUTORS = ("thread", "ray")


class JobLost(Exception):
    """The process or node running the job died under it: nothing the job did is at fault."""


class RemoteJobFailed(Exception):
    """The job failed where it ran; the message is that place's, formatted as the thread
    executor's failures are ("ValueError: ...") and scrubbed there."""


class JobExecutor(Protocol):
    name: str

    def run(self, job: JobSpec, emit: Emit, cancel: CancelToken, usage: SharedUsageTracker) -> JobResult: ...

    def close(self) -> None: ...


class ThreadExecutor:
    """Runs the job in the caller's thread: the optimizer's own process, today's behaviour."""

    name = "thread"

    def run(self, job: JobSpec, emit: Emit, cancel: CancelToken, usage: SharedUsageTracker) -> JobResult:
        return run_job(job, emit, cancel, usage)

    def close(self) -> None:
        pass


__all__ = ["EXECUTORS", "JobExecutor", "JobLost", "RemoteJobFailed", "ThreadExecutor"]
