"""The Ray executor: each job runs as a Ray generator task; the optimizer keeps its record.

``--executor ray --ray-address ADDRESS`` connects the optimizer to a running cluster as a
Ray driver (``ray.init(address=...)``); ``--ray-address local`` starts a small local
cluster with the optimizer (and stops it with the optimizer). A process already connected
to Ray (a test session's cluster) keeps that connection: Ray allows one per process.

The task (optimizer_svc.jobs.ray_task) streams its messages back as it yields them
(``num_returns="streaming"``); the manager's job thread reads them here and hands each
progress event to ``emit``, so they are sequenced, logged and fanned out exactly as the
thread executor's are, and the result is registered in the optimizer. CancelJob (and the
optimizer's shutdown) call ``ray.cancel`` on the task, which raises in it; the task's
budgets trip inside it. The task is never retried by Ray (``max_retries=0``): a worker or
node lost under a job is ``JobLost``, which the manager retries on the record while the
job has attempts left (``[JobRetried, JobClaimed]``; Ray would re-run it without telling the log).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

# Ray starts a cluster of its own on the first call made while disconnected: never here (a job
# thread outliving the connection would start one under /tmp/ray). Read when ray is imported.
os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")

import ray
import structlog
from ray import exceptions as ray_errors

from dspyops.errors import shown
from dspyops.logstart import StartRefused
from optimizer_svc.cancel import CancelToken, JobCancelled
from optimizer_svc.jobs.executor import JobLost, RemoteJobFailed
from optimizer_svc.jobs.ray_task import TaskEnded, TaskEvent, TaskPlaced, stream_job, task_job
from optimizer_svc.jobs.runner import JobResult, JobSpec
from optimizer_svc.progress.events import Emit
from optimizer_svc.progress.usage import SharedUsageTracker

LOCAL = "local"
LOCAL_CPUS = 2  # the local cluster's size: the smallest that runs two jobs at once

_log = structlog.get_logger()


def connect(address: str, temp_dir: str | None = None) -> bool:
    """Connect this process to Ray; True when it started a local cluster (to stop at close).
    StartRefused, naming --ray-address, when no cluster answers there."""
    if ray.is_initialized():
        return False
    if address != LOCAL:
        _check_reachable(address)
    if address == LOCAL:
        ray.init(
            num_cpus=LOCAL_CPUS,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,  # the workers' output stays in Ray's logs: this stderr is the service's
            _temp_dir=temp_dir,
        )
        return True
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except ConnectionError as exc:
        raise StartRefused(
            f"--ray-address {shown(address)}: cannot connect to the Ray cluster ({exc})"
        ) from None
    return False


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A GCS address (HOST:PORT) must accept a connection before ray.init is given it: Ray
    itself retries an unreachable address for minutes, and the optimizer would hang at start."""
    host, sep, port = address.rpartition(":")
    if "://" in address or not sep or not port.isdigit():
        return  # "auto", ray://..., anything Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StartRefused(
            f"--ray-address {shown(address)}: no Ray cluster answers there ({reason}); "
            "start one (`ray start --head`) or give --ray-address local"
        ) from None


class RayExecutor:
    name = "ray"

    def __init__(
        self,
        address: str,
        *,
        artifacts: str,
        corpora: Callable[[], Mapping[str, str]] = dict,
        temp_dir: str | None = None,
        job_cpus: float = 1.0,
    ) -> None:
        self.address = address
        self.artifacts = artifacts  # the artifact store's location, as the tasks reopen it
        self.corpora = corpora  # corpus name -> digest now: what a new job's Retrieve stages search
        self._started = connect(address, temp_dir)
        # max_retries=0: a lost task is the manager's to retry (on the record), never Ray's
        # job_cpus: what Ray reserves per job; a job waiting on a remote LM needs less than a CPU
        self._task: Any = ray.remote(num_returns="streaming", max_retries=0, num_cpus=job_cpus)(stream_job)
        self.placed: dict[str, TaskPlaced] = {}  # job id -> where its task runs (ran)

    def run(self, job: JobSpec, emit: Emit, cancel: CancelToken, usage: SharedUsageTracker) -> JobResult:
        handed = task_job(job, self.artifacts, self.corpora())
        stream = self._task.options(name=f"dspyops-job-{job.job_id}").remote(handed)
        unregister = cancel.on_cancel(lambda: ray.cancel(stream))
        try:
            for ref in stream:
                message = self._read(ref, job.job_id, cancel)
                if isinstance(message, TaskPlaced):
                    self.placed[job.job_id] = message
                    _log.info("job_on_ray", job_id=job.job_id, pid=message.pid, host=message.host)
                elif isinstance(message, TaskEvent):
                    usage.mirror(message.usage)
                    emit(message.event)
                elif isinstance(message, TaskEnded):
                    usage.mirror(message.usage)
                    return _ended(message)
        finally:
            unregister()
        if cancel.cancelled:  # cancelled as the stream closed
            raise JobCancelled(cancel.reason, cancel.budget)
        raise JobLost(f"the Ray task of job {job.job_id} ended without a result")

    def _read(self, ref: Any, job_id: str, cancel: CancelToken) -> object:
        try:
            return ray.get(ref)
        except ray_errors.TaskCancelledError:  # ray.cancel: by CancelJob or the shutdown
            raise JobCancelled(cancel.reason or "the Ray task was cancelled", cancel.budget) from None
        except ray_errors.RayTaskError as exc:  # the task's own code raised outside the job
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            raise RemoteJobFailed(f"{type(cause).__name__}: {cause}") from None
        except ray_errors.RayError as exc:  # its worker or node died, its objects were lost
            where = self.placed.get(job_id)
            on = f" (pid {where.pid} on {where.host})" if where else ""
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            lost = f"the Ray task running the job was lost{on}: {type(exc).__name__}: {first}"
            raise JobLost(lost) from None

    def close(self) -> None:
        if self._started and ray.is_initialized():
            ray.shutdown()


def _ended(message: TaskEnded) -> JobResult:
    if message.result is not None:
        return message.result
    if message.cancelled:
        raise JobCancelled(message.reason, message.budget)
    raise RemoteJobFailed(message.error or "the Ray task reported no result")


__all__ = ["LOCAL", "RayExecutor", "connect"]
