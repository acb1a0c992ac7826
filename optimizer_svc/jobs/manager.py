"""Optimization jobs: each runs in its own thread; its events are logged and fanned out.

The job thread runs the optimization itself, or drives the Ray task that does (the
executor: optimizer_svc.jobs.executor); either way the events and the result come back
here, and this process appends them.

A job's events get a per-job sequence number. Lifecycle and trial events are appended to
stream `job-<id>` as they happen (progress ticks are too chatty for the log and live only
in memory). Subscribers (StartOptimization, WatchJob) read from an in-memory list and wait
on a future that the event loop resolves at each new event, so any number of watchers can
attach, detach and re-attach without ever blocking the job thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import structlog
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.actor import SYSTEM, acting_as
from dspyops.artifacts import ArtifactStore
from dspyops.commands import Decision
from dspyops.connections import OFFLINE_ONLY, Connections
from dspyops.errors import FailedPrecondition, InvalidArgument
from dspyops.ledger import Ledger
from dspyops.metrics import allowed_metric_modules
from dspyops.names import job_stream
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.scrub import scrub, scrub_message
from dspyops.state import JobSummary
from optimizer_svc.cancel import JobCancelled
from optimizer_svc.jobs.executor import JobExecutor, JobLost, RemoteJobFailed, ThreadExecutor
from optimizer_svc.jobs.follow import open_from_log
from optimizer_svc.jobs.gates import resolve_must_beat
from optimizer_svc.jobs.handle import JobHandle, job_view
from optimizer_svc.jobs.registration import params_struct, register_result
from optimizer_svc.jobs.requests import ValidatedJob, resolve_datasets
from optimizer_svc.jobs.runner import JobSpec
from optimizer_svc.progress.events import BaselineEvaluated, JobEvent, Progress, Started, TrialCompleted
from optimizer_svc.progress.usage import SharedUsageTracker
from optimizer_svc.registry.commands import Registry
from optimizer_svc.wire import lm_to_proto, spec_to_proto

_log = structlog.get_logger()

_LOG_KINDS = {
    "accepted",
    "started",
    "baseline",
    "trial",
    "gate",
    "completed",
    "failed",
    "cancelled",
    "interrupted",
}


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


class JobManager:
    def __init__(
        self,
        ledger: Ledger,
        registry: Registry,
        artifacts: ArtifactStore,
        loop: asyncio.AbstractEventLoop,
        *,
        max_running: int = 4,
        datasets_dir: Path | None = None,
        connections: Connections | None = None,
        programs: ProgramContext = NO_CONTEXT,
        executor: JobExecutor | None = None,
    ) -> None:
        # where each job's optimization runs (the manager keeps its record either way)
        self.executor: JobExecutor = executor or ThreadExecutor()
        self.datasets_dir = datasets_dir  # where trainset_ref/valset_ref files live (None: refused)
        self.connections = connections or OFFLINE_ONLY  # the LM connections jobs may name
        self.programs = programs  # the user code and corpora programs may use (--program-modules)
        self.ledger = ledger
        self.registry = registry
        self.artifacts = artifacts
        self.loop = loop
        self.max_running = max_running
        self.jobs: dict[str, JobHandle] = {}  # the jobs this process runs (or ran)
        self._threads: dict[str, threading.Thread] = {}
        self._shutting_down = False
        self._submit_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def interrupt_orphans(self) -> list[str]:
        """Jobs the log says are running but no thread of ours runs: the process that ran
        them died. Record that, so nobody waits for them forever."""
        orphans = [
            j.job_id
            for j in self.ledger.refresh().jobs.values()
            if j.state == "running" and j.job_id not in self.jobs
        ]
        interrupted = pb.JobInterrupted(reason="optimizer restarted while the job ran")
        with acting_as(SYSTEM):
            for job_id in orphans:
                self.ledger.append(job_stream(job_id), [interrupted], None)
        return orphans

    def running(self) -> list[JobHandle]:
        return [j for j in self.jobs.values() if not j.done]

    def prepare(self, job: ValidatedJob) -> ValidatedJob:
        """What needs the server: referenced datasets, the split, the must_beat version.
        Raises naming the field, before any LM call or append."""
        job = resolve_datasets(job, self.datasets_dir)
        if job.must_beat:
            must_beat = resolve_must_beat(
                self.registry, self.artifacts, job.program, job.must_beat, job.spec, self.programs
            )
            job = replace(job, must_beat_program=must_beat)
        return job

    def submit(self, job: ValidatedJob, request: opb.StartOptimizationRequest | None = None) -> JobHandle:
        """Accept a job: JobAccepted through the one writer path, then its thread. `request`
        (with a request_id) makes a retry of the submission return the job it started."""
        job = self.prepare(job)
        with self._submit_lock:  # submits arrive on worker threads: check and claim a slot at once
            if len(self.running()) >= self.max_running:
                raise FailedPrecondition(
                    "", f"{self.max_running} jobs are running already; retry when one ends"
                )
            job_id = uuid.uuid4().hex[:12]
            handle = JobHandle(job_id=job_id, loop=self.loop)
            self.jobs[job_id] = handle
        accepted = pb.JobAccepted(
            job_id=job_id,
            program=job.program,
            spec=spec_to_proto(job.spec),
            lm=lm_to_proto(job.lm),
            optimizer=job.optimizer,
            params=params_struct(job.params),
            metric=job.metric,
            trainset_digest=job.trainset_digest,
            valset_digest=job.valset_digest,
            trainset_size=len(job.trainset),
            valset_size=len(job.valset),
            auto_promote=job.auto_promote,
        )
        if job.min_score is not None:
            accepted.min_score = job.min_score
        try:
            outcome = self.ledger.run(
                "StartOptimization", request, lambda _: Decision(job_stream(job_id), [accepted], 0)
            )
        except BaseException:
            del self.jobs[job_id]  # not accepted (e.g. the log is unwritable): free the slot
            raise
        assert isinstance(outcome.event, pb.JobAccepted)
        if outcome.replayed:  # a concurrent duplicate of this request started its job first
            del self.jobs[job_id]
            return self.get(outcome.event.job_id)
        handle.stream_version = outcome.appended.stream_version if outcome.appended else 1
        self._record(handle, "accepted", outcome.event, logged=True)  # as stored: with its origin
        # the job's events are the submitter's: its thread runs in the submitting RPC's context
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(self._run, handle, job), name=f"job-{job_id}", daemon=True
        )
        self._threads[job_id] = thread
        thread.start()
        return handle

    def get(self, job_id: str) -> JobHandle:
        if not job_id:
            raise InvalidArgument("job_id", "is required")
        handle = self.jobs.get(job_id)
        if handle is None:
            handle = self._from_log(job_id)
        return handle

    def summary(self, handle: JobHandle) -> JobSummary:
        """The job's summary as the fold has it (every logged event of ours is folded as it is
        appended). A job stream without JobAccepted (a log written by hand) has none: then
        what its first event says."""
        summary = self.ledger.state.jobs.get(handle.job_id)
        if summary is not None:
            return summary
        first = handle.events[0].at.ToMicroseconds() if handle.events else time.time_ns() // 1000
        return JobSummary(handle.job_id, "", "", "running", 0, first)

    def view(self, handle: JobHandle) -> opb.Job:
        return job_view(self.summary(handle), len(handle.events))

    def cancel(self, job_id: str, reason: str) -> JobHandle:
        handle = self.get(job_id)
        if handle.done:
            state = self.summary(handle).state
            raise FailedPrecondition("job_id", f"job {job_id} has ended already ({state})")
        handle.cancel.cancel(reason or "cancelled by request")
        return handle

    def shutdown(self, reason: str = "optimizer shutting down", timeout: float = 10.0) -> None:
        """Stop running jobs and wait for their threads, so each ends on the record as
        Interrupted (the service went away; nobody cancelled the job)."""
        self._shutting_down = True
        for handle in self.running():
            handle.cancel.cancel(reason)
        deadline = time.monotonic() + timeout
        for thread in self._threads.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        self.executor.close()

    # ------------------------------------------------------------------ the job thread

    def _record(
        self, handle: JobHandle, kind: str, payload: Message, *, final: bool = False, logged: bool = False
    ) -> None:
        """Sequence, log (for lifecycle kinds, unless `logged` already) and publish one
        event. Any thread.

        A job is `done` only after its terminal event is in the list: watchers stop at
        `done`, and must not stop before they have seen the last event. Every string in the
        event is scrubbed first: what is logged and what is streamed are the same text."""
        scrub_message(payload)
        with handle._lock:
            event = opb.OptimizationEvent(job_id=handle.job_id, sequence=len(handle.events) + 1, at=_now())
            getattr(event, kind).CopyFrom(payload)
            if kind in _LOG_KINDS and not logged:
                appended = self.ledger.append(job_stream(handle.job_id), [payload], None)  # folds
                handle.stream_version = appended.stream_version
            event.stream_version = handle.stream_version  # a progress tick: the last logged event's
            handle.events.append(event)
            if final:
                handle.done = True
            self.loop.call_soon_threadsafe(handle._publish)

    def _emit(self, handle: JobHandle) -> Callable[[JobEvent], None]:
        def emit(event: JobEvent) -> None:
            if isinstance(event, Started):
                self._record(
                    handle,
                    "started",
                    pb.JobStarted(optimizer=event.optimizer, planned_trials=event.planned_trials),
                )
            elif isinstance(event, BaselineEvaluated):
                self._record(
                    handle, "baseline", pb.BaselineEvaluated(score=event.score, examples=event.examples)
                )
            elif isinstance(event, Progress):
                self._record(
                    handle,
                    "progress",
                    pb.JobProgress(
                        step=event.step, total=event.total, message=event.message, predictor=event.predictor
                    ),
                )
            elif isinstance(event, TrialCompleted):
                self._record(
                    handle,
                    "trial",
                    pb.TrialCompleted(
                        trial=event.trial,
                        score=event.score,
                        best_score=event.best_score,
                        candidate=event.candidate[:2000],
                        predictors=list(event.predictors),
                    ),
                )

        return emit

    def _run(self, handle: JobHandle, job: ValidatedJob) -> None:
        log = _log.bind(job_id=handle.job_id, program=job.program, optimizer=job.optimizer)
        log.info("job_started")
        started = time.monotonic()
        spec = JobSpec(
            job_id=handle.job_id,
            spec=job.spec,
            lm=job.lm,
            optimizer=job.optimizer,
            params=dict(job.params),
            metric=job.metric,
            trainset=job.trainset,
            valset=job.valset,
            prompt_lm=job.prompt_lm,
            budget=job.budget,
            must_beat=job.must_beat_program.program if job.must_beat_program else None,
            connections=self.connections,
            programs=self.programs,
            metric_modules=allowed_metric_modules(),  # this process's, wherever the job runs
        )
        usage = SharedUsageTracker()
        try:
            result = self.executor.run(spec, self._emit(handle), handle.cancel, usage)
        except JobCancelled as exc:
            reason = scrub(str(exc.reason))
            if self._shutting_down and not exc.budget:
                self._record(handle, "interrupted", pb.JobInterrupted(reason=reason), final=True)
                log.info("job_interrupted", reason=reason)
                return
            spent = usage.snapshot()
            cancelled = pb.JobCancelled(reason=reason, usage=spent.to_proto(), budget=exc.budget)
            self._record(handle, "cancelled", cancelled, final=True)
            log.info("job_cancelled", reason=reason, budget=exc.budget, lm_calls=spent.lm_calls)
            return
        except JobLost as exc:
            # the seam for retrying a job whose executor lost it; today: failed, saying so
            message = scrub(str(exc))[:2000]
            self._record(handle, "failed", pb.JobFailed(error=message), final=True)
            log.warning("job_lost", error=message, executor=self.executor.name)
            return
        except Exception as exc:
            text = str(exc) if isinstance(exc, RemoteJobFailed) else f"{type(exc).__name__}: {exc}"
            message = scrub(text)[:2000]
            self._record(handle, "failed", pb.JobFailed(error=message), final=True)
            log.warning("job_failed", error=message)
            return
        try:
            completed = register_result(
                handle.job_id,
                job,
                result,
                time.monotonic() - started,
                artifacts=self.artifacts,
                registry=self.registry,
                record_gate=lambda gate: self._record(handle, "gate", gate),
            )
        except Exception as exc:
            message = scrub(f"registration failed: {type(exc).__name__}: {exc}")[:2000]
            self._record(handle, "failed", pb.JobFailed(error=message), final=True)
            log.error("job_registration_failed", error=message)
            return
        self._record(handle, "completed", completed, final=True)
        log.info(
            "job_completed",
            version=completed.version,
            final_score=result.final_score,
            baseline_score=result.baseline_score,
        )

    # ------------------------------------------------------------------ jobs of other processes

    def _from_log(self, job_id: str) -> JobHandle:
        """A job this process does not run (an earlier process's, or another replica's): its
        logged events, then the log followed live while anyone watches (its summary is the
        fold's)."""
        return open_from_log(self.ledger.store, self.loop, job_id)
