"""Optimization jobs: each runs in its own thread; its events are logged and fanned out.

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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import dspy
import structlog
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.actor import SYSTEM, acting_as
from dspyops.artifacts import ArtifactStore, encode_artifact
from dspyops.commands import Decision
from dspyops.connections import OFFLINE_ONLY, Connections
from dspyops.errors import FailedPrecondition, InvalidArgument, NotFound, shown
from dspyops.events import decode
from dspyops.ledger import Ledger
from dspyops.names import job_stream
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.scrub import scrub, scrub_message
from optimizer_svc import progress
from optimizer_svc.cancel import CancelToken, JobCancelled
from optimizer_svc.gates import evaluate_gate, resolve_must_beat
from optimizer_svc.registry import Registry
from optimizer_svc.requests import ValidatedJob, lm_to_proto, resolve_datasets, spec_to_proto
from optimizer_svc.runner import JobResult, JobSpec, run_job

_log = structlog.get_logger()

TERMINAL = {"succeeded", "failed", "cancelled", "interrupted"}
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


@dataclass
class JobHandle:
    job_id: str
    program: str
    optimizer: str
    created_at: datetime
    loop: asyncio.AbstractEventLoop
    cancel: CancelToken = field(default_factory=CancelToken)
    state: str = "running"
    events: list[opb.OptimizationEvent] = field(default_factory=list)
    baseline_score: float = 0.0
    final_score: float = 0.0
    best_score: float = 0.0
    trials: int = 0
    version: str = ""
    error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: asyncio.Future[None] | None = None

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

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

    def to_proto(self) -> opb.Job:
        created = Timestamp()
        created.FromDatetime(self.created_at)
        return opb.Job(
            job_id=self.job_id,
            program=self.program,
            optimizer=self.optimizer,
            state=_JOB_STATES[self.state],
            baseline_score=self.baseline_score,
            final_score=self.final_score,
            best_score=self.best_score,
            trials=self.trials,
            version=self.version,
            error=scrub(self.error),  # jobs of earlier processes too
            created_at=created,
            last_sequence=len(self.events),
        )


_JOB_STATES = {
    "running": opb.RUNNING,
    "succeeded": opb.SUCCEEDED,
    "failed": opb.FAILED,
    "cancelled": opb.CANCELLED,
    "interrupted": opb.INTERRUPTED,
}


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
    ) -> None:
        self.datasets_dir = datasets_dir  # where trainset_ref/valset_ref files live (None: refused)
        self.connections = connections or OFFLINE_ONLY  # the LM connections jobs may name
        self.ledger = ledger
        self.registry = registry
        self.artifacts = artifacts
        self.loop = loop
        self.max_running = max_running
        self.jobs: dict[str, JobHandle] = {}
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
            must_beat = resolve_must_beat(self.registry, self.artifacts, job.program, job.must_beat, job.spec)
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
            handle = JobHandle(
                job_id=job_id,
                program=job.program,
                optimizer=job.optimizer,
                created_at=datetime.now(UTC),
                loop=self.loop,
            )
            self.jobs[job_id] = handle
        params = Struct()
        ParseDict(_json_safe(job.params), params)
        accepted = pb.JobAccepted(
            job_id=job_id,
            program=job.program,
            spec=spec_to_proto(job.spec),
            lm=lm_to_proto(job.lm),
            optimizer=job.optimizer,
            params=params,
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
        if outcome.replayed:  # a concurrent duplicate of this request started its job first
            del self.jobs[job_id]
            assert isinstance(outcome.event, pb.JobAccepted)
            return self.get(outcome.event.job_id)
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

    def cancel(self, job_id: str, reason: str) -> JobHandle:
        handle = self.get(job_id)
        if handle.done:
            raise FailedPrecondition("job_id", f"job {job_id} has ended already ({handle.state})")
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

    # ------------------------------------------------------------------ the job thread

    def _record(
        self, handle: JobHandle, kind: str, payload: object, *, final_state: str = "", logged: bool = False
    ) -> None:
        """Sequence, log (for lifecycle kinds, unless `logged` already) and publish one
        event. Any thread.

        A terminal state is set only after its event is in the list: watchers stop at
        `done`, and must not stop before they have seen the last event. Every string in the
        event is scrubbed first: what is logged and what is streamed are the same text."""
        scrub_message(payload)  # type: ignore[arg-type]
        with handle._lock:
            event = opb.OptimizationEvent(job_id=handle.job_id, sequence=len(handle.events) + 1, at=_now())
            getattr(event, kind).CopyFrom(payload)
            if kind in _LOG_KINDS and not logged:
                self.ledger.append(job_stream(handle.job_id), [payload], None)
            handle.events.append(event)
            if final_state:
                handle.state = final_state
            self.loop.call_soon_threadsafe(handle._publish)

    def _emit(self, handle: JobHandle) -> Callable[[progress.JobEvent], None]:
        def emit(event: progress.JobEvent) -> None:
            if isinstance(event, progress.Started):
                self._record(
                    handle,
                    "started",
                    pb.JobStarted(optimizer=event.optimizer, planned_trials=event.planned_trials),
                )
            elif isinstance(event, progress.BaselineEvaluated):
                handle.baseline_score = event.score
                self._record(
                    handle, "baseline", pb.BaselineEvaluated(score=event.score, examples=event.examples)
                )
            elif isinstance(event, progress.Progress):
                self._record(
                    handle,
                    "progress",
                    pb.JobProgress(step=event.step, total=event.total, message=event.message),
                )
            elif isinstance(event, progress.TrialCompleted):
                handle.trials += 1
                handle.best_score = max(handle.best_score, event.best_score)
                self._record(
                    handle,
                    "trial",
                    pb.TrialCompleted(
                        trial=event.trial,
                        score=event.score,
                        best_score=event.best_score,
                        candidate=event.candidate[:2000],
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
        )
        usage = progress.SharedUsageTracker()
        try:
            result = run_job(spec, self._emit(handle), handle.cancel, usage)
        except JobCancelled as exc:
            reason = scrub(str(exc.reason))
            handle.error = reason
            if self._shutting_down and not exc.budget:
                self._record(
                    handle, "interrupted", pb.JobInterrupted(reason=reason), final_state="interrupted"
                )
                log.info("job_interrupted", reason=reason)
                return
            spent = usage.snapshot()
            cancelled = pb.JobCancelled(reason=reason, usage=_usage_proto(spent), budget=exc.budget)
            self._record(handle, "cancelled", cancelled, final_state="cancelled")
            log.info("job_cancelled", reason=reason, budget=exc.budget, lm_calls=spent.lm_calls)
            return
        except Exception as exc:
            message = scrub(f"{type(exc).__name__}: {exc}")[:2000]
            handle.error = message
            self._record(handle, "failed", pb.JobFailed(error=message), final_state="failed")
            log.warning("job_failed", error=message)
            return
        try:
            completed = self._register(handle, job, result, time.monotonic() - started)
        except Exception as exc:
            message = scrub(f"registration failed: {type(exc).__name__}: {exc}")[:2000]
            handle.error = message
            self._record(handle, "failed", pb.JobFailed(error=message), final_state="failed")
            log.error("job_registration_failed", error=message)
            return
        handle.final_score = result.final_score
        handle.version = completed.version
        self._record(handle, "completed", completed, final_state="succeeded")
        log.info(
            "job_completed",
            version=completed.version,
            final_score=result.final_score,
            baseline_score=result.baseline_score,
        )

    def _register(
        self, handle: JobHandle, job: ValidatedJob, result: JobResult, wall: float
    ) -> pb.JobCompleted:
        digest, artifact = encode_artifact(job.spec, result.state, job.lm)
        self.artifacts.put(artifact)
        gate = evaluate_gate(
            final_score=result.final_score,
            baseline_score=result.baseline_score,
            min_score=job.min_score,
            must_beat=job.must_beat_program.version if job.must_beat_program else "",
            must_beat_score=result.must_beat_score,
            min_improvement=job.min_improvement,
        )
        self._record(handle, "gate", gate)  # the verdict is on the record before the version
        gate_passed, gate_reason = gate.passed, gate.reason
        params = Struct()
        ParseDict(_json_safe(job.params), params)
        registered = pb.VersionRegistered(
            program=job.program,
            spec=spec_to_proto(job.spec),
            lm=lm_to_proto(job.lm),
            artifact_digest=digest,
            artifact=artifact,
            status=pb.DEVELOPMENT,
            lineage=pb.Lineage(
                job_id=handle.job_id,
                optimizer=job.optimizer,
                params=params,
                metric=job.metric,
                trainset_digest=job.trainset_digest,
                valset_digest=job.valset_digest,
                trainset_size=len(job.trainset),
                valset_size=len(job.valset),
                baseline_score=result.baseline_score,
                final_score=result.final_score,
                dspy_version=dspy.__version__,
            ),
        )
        version = self.registry.register_version(registered, promote=job.auto_promote and gate_passed)
        return pb.JobCompleted(
            program=job.program,
            version=version.version,
            final_score=result.final_score,
            baseline_score=result.baseline_score,
            improvement=result.final_score - result.baseline_score,
            gate_passed=gate_passed,
            gate_reason=gate_reason,
            status=pb.PRODUCTION if version.status == "production" else pb.DEVELOPMENT,
            usage=_usage_proto(result.usage),
            wall_seconds=wall,
            artifact_digest=digest,
        )

    # ------------------------------------------------------------------ jobs of earlier processes

    def _from_log(self, job_id: str) -> JobHandle:
        """A finished job of an earlier process: its logged events, replayed."""
        records = self.ledger.store.read_stream(job_stream(job_id)) if len(job_id) <= 64 else []
        if not records:
            raise NotFound("job_id", f"no job {shown(job_id)}")
        summary = self.ledger.refresh().jobs.get(job_id)
        handle = JobHandle(
            job_id=job_id,
            program=summary.program if summary else "",
            optimizer=summary.optimizer if summary else "",
            created_at=records[0].recorded_at,
            loop=self.loop,
        )
        for record in records:
            payload = decode(record)
            kind = _KIND_OF[type(payload).__name__]
            stamp = Timestamp()
            stamp.FromDatetime(record.recorded_at)
            event = opb.OptimizationEvent(job_id=job_id, sequence=len(handle.events) + 1, at=stamp)
            getattr(event, kind).CopyFrom(scrub_message(payload))  # logs written before the scrubber
            handle.events.append(event)
        if summary:
            handle.state = summary.state
            handle.baseline_score = summary.baseline_score
            handle.final_score = summary.final_score
            handle.best_score = summary.best_score
            handle.trials = summary.trials
            handle.version = summary.version
            handle.error = summary.error
        return handle


_KIND_OF = {
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
}


def _usage_proto(usage: progress.Usage) -> pb.Usage:
    return pb.Usage(
        lm_calls=usage.lm_calls,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=usage.cost_usd,
    )


def _json_safe(params: dict) -> dict:
    return {
        k: (v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else str(v))
        for k, v in params.items()
    }
