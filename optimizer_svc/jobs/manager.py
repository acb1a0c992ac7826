"""Optimization jobs: each runs in its own thread; its events are logged and fanned out.

The job thread runs the optimization itself, or drives the Ray task that does (the
executor: optimizer_svc.jobs.executor); either way the events and the result come back
here, and this process appends them.

A job's events get a per-job sequence number. Lifecycle and trial events are appended to
stream `job-<id>` as they happen (progress ticks are too chatty for the log and live only
in memory). Subscribers (StartOptimization, WatchJob) read from an in-memory list and wait
on a future that the event loop resolves at each new event, so any number of watchers can
attach, detach and re-attach without ever blocking the job thread.

Every job is claimed (optimizer_svc.jobs.claims): JobAccepted queues it, and the replica
whose JobClaimed lands first runs it, appending each of its events with the claim's fence
and the version of its own last append as expected version (`_record`), so a replica that
lost the job cannot append to it any more. The LeaseKeeper (optimizer_svc.jobs.leases)
renews the claims, and takes over queued jobs and jobs whose owner's lease expired.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import structlog
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace
from opentelemetry.trace import Span, Tracer

from dspyops.actor import SYSTEM, acting_as
from dspyops.artifacts import ArtifactStore
from dspyops.commands import Decision
from dspyops.connections import OFFLINE_ONLY, Connections
from dspyops.errors import Aborted, FailedPrecondition, InvalidArgument
from dspyops.eventlog import AppendResult
from dspyops.eventlog.store import StoreUnavailable
from dspyops.events import decode
from dspyops.ledger import Ledger
from dspyops.lm import LMConfig
from dspyops.lmcache.cache import LMCache
from dspyops.lmcache.memory import MemoryLMCache
from dspyops.metrics import allowed_metric_modules
from dspyops.names import job_stream
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.scrub import scrub, scrub_message
from dspyops.state import JobSummary, State
from dspyops.telemetry import NO_TRACER
from optimizer_svc.cancel import JobCancelled
from optimizer_svc.jobs import claims
from optimizer_svc.jobs.claims import Claim, LeaseLost
from optimizer_svc.jobs.executor import JobExecutor, JobLost, RemoteJobFailed, ThreadExecutor
from optimizer_svc.jobs.follow import KIND_OF, follow, open_from_log
from optimizer_svc.jobs.gates import resolve_must_beat
from optimizer_svc.jobs.handle import TERMINAL, JobHandle, job_view
from optimizer_svc.jobs.leases import LeaseKeeper
from optimizer_svc.jobs.registration import accepted_event, register_result, registered_version_of
from optimizer_svc.jobs.requests import ValidatedJob, check_accepted_size, job_inputs, resolve_datasets
from optimizer_svc.jobs.runner import JobSpec
from optimizer_svc.jobs.takeover import accepted_record, completed_from_version, last_event_us
from optimizer_svc.jobs.watched import job_event_payload
from optimizer_svc.progress.events import JobEvent, TrialCompleted
from optimizer_svc.progress.usage import SharedUsageTracker, Usage
from optimizer_svc.registry.commands import Registry

_log = structlog.get_logger()
RELEASE_WAIT = 30.0  # seconds a cancelled job may take past the grace to append its release

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
_CANCEL_REQUESTED = pb.JobCancelRequested.DESCRIPTOR.full_name
DEFAULT_LEASE_MS = 15_000
DEFAULT_MAX_QUEUED = 16


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
        owner: str = "",
        max_attempts: int = 1,
        lease_ms: int = DEFAULT_LEASE_MS,
        max_queued: int = DEFAULT_MAX_QUEUED,
        exclusive: bool = True,
        clock_us: Callable[[], int] | None = None,
        lm_cache: LMCache | None = None,
        tracer: Tracer = NO_TRACER,
    ) -> None:
        self.tracer = tracer  # a span per job and per trial (dspyops.telemetry); no-op: none
        # each attempt's LM usage once it ends, however it ended (optimizer_svc.metrics)
        self.on_usage: Callable[[LMConfig, Usage], None] | None = None
        # where each job's optimization runs (the manager keeps its record either way)
        self.executor: JobExecutor = executor or ThreadExecutor()
        self.datasets_dir = datasets_dir  # where trainset_ref/valset_ref files live (None: refused)
        self.connections = connections or OFFLINE_ONLY  # the LM connections jobs may name
        self.programs = programs  # the user code and corpora programs may use (--program-modules)
        # every job's LM calls, by job id, until its terminal event (dspyops.lmcache); the
        # manager's own (closed at shutdown) unless given one
        self.lm_cache: LMCache = lm_cache if lm_cache is not None else MemoryLMCache()
        self.ledger = ledger
        self.registry = registry
        self.artifacts = artifacts
        self.loop = loop
        self.max_running = max_running
        self.owner = owner or claims.new_owner_id()  # this replica's name on its claims
        self.max_attempts = max_attempts  # for jobs whose request leaves it 0
        self.lease_ms = lease_ms
        self.max_queued = max_queued
        # True: this process holds the log's exclusive writer lock, so the owners of claims
        # other than ours are dead (a file log); False: other replicas may be alive
        self.exclusive = exclusive
        self.clock_us = clock_us or ledger.store.clock_us  # the log's clock: leases are on it
        self.jobs: dict[str, JobHandle] = {}  # the jobs this process runs (or ran)
        self._threads: dict[str, threading.Thread] = {}  # job threads alive: the slots taken
        self._shutting_down = False
        self._slots = threading.RLock()  # a free slot is checked and taken at once
        self.keeper = LeaseKeeper(self)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> list[str]:
        """At the service's start: end what earlier processes left, then keep the leases."""
        orphans = self.interrupt_orphans()
        self.keeper.start()
        return orphans

    def interrupt_orphans(self) -> list[str]:
        """Jobs the log says are running but no live process runs; the ids of those ended.

        A job from before claims (max_attempts 0) cannot be taken over: it ends Interrupted,
        at once when this process holds the log's exclusive lock (whoever ran it is dead),
        else once its last event is older than a lease. A claimed job is the keeper's: its
        first pass, made here, retries or ends every job whose lease expired, and on an
        exclusive log every job another process claimed (that process is dead)."""
        state = self.ledger.refresh()
        now_us = self.clock_us()
        old = [
            j.job_id
            for j in state.jobs.values()
            if j.state == "running" and j.max_attempts == 0 and j.job_id not in self.jobs
        ]
        if not self.exclusive:
            old = [
                job_id
                for job_id in old
                if now_us - last_event_us(self.ledger.store, job_id) > self.lease_ms * 1000
            ]
        interrupted = pb.JobInterrupted(reason="optimizer restarted while the job ran")
        with acting_as(SYSTEM):
            for job_id in old:
                self.ledger.append(job_stream(job_id), [interrupted], None)
                self.forget_lm_calls(job_id)  # ended on the record: nothing retries it
        return old + self.keeper.tick()

    def running(self) -> list[JobHandle]:
        """The jobs this replica runs now."""
        return [self.jobs[job_id] for job_id in list(self._threads) if job_id in self.jobs]

    def free_slots(self) -> int:
        return 0 if self._shutting_down else self.max_running - len(self._threads)

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
        """Accept a job: JobAccepted through the one writer path, then claim it when this
        replica has a free slot (else it waits queued for any replica's). `request` (with a
        request_id) makes a retry of the submission return the job it started."""
        job = self.prepare(job)
        inputs = job_inputs(job)  # refused (e.g. examples disagreeing on their inputs) before a slot is taken
        if self.free_slots() <= 0:
            queued = sum(1 for j in self.ledger.refresh().jobs.values() if j.state == "queued")
            if queued >= self.max_queued:
                raise FailedPrecondition(
                    "", f"{queued} jobs are queued already (--max-queued); retry when one has started"
                )
        job_id = uuid.uuid4().hex[:12]
        handle = JobHandle(job_id=job_id, loop=self.loop)
        accepted = accepted_event(
            job, job_id, inputs, max_attempts=job.max_attempts or self.max_attempts, lease_ms=self.lease_ms
        )
        check_accepted_size(accepted)
        with self._slots:  # this replica's keeper claims the job only after this claim attempt
            outcome = self.ledger.run(
                "StartOptimization", request, lambda _: Decision(job_stream(job_id), [accepted], 0)
            )
            assert isinstance(outcome.event, pb.JobAccepted)
            if outcome.replayed:  # a concurrent duplicate of this request started its job first
                return self.get(outcome.event.job_id)
            self.jobs[job_id] = handle
            assert outcome.appended is not None
            handle.stream_version = outcome.appended.stream_version
            self._record(handle, "accepted", outcome.event, logged=True)  # as stored: with its origin
            # the job's events are the submitter's: its thread runs in the submitting RPC's context
            if not self.take(job_id, job, contextvars.copy_context(), handle=handle):
                # queued (no slot here) or claimed by another replica: its watchers follow the log
                follow(handle, self.ledger.store, handle.stream_version)
        return handle

    def take(
        self,
        job_id: str,
        job: ValidatedJob | None = None,
        context: contextvars.Context | None = None,
        *,
        handle: JobHandle | None = None,
        owners_dead: bool = False,
    ) -> bool:
        """Claim the job and start its thread, if a slot is free and the job is claimable.
        `job`, `handle`: as submitted here (else the job is rebuilt from its JobAccepted, and
        its handle from the log); `context`: the submitting RPC's (else the thread acts as
        the JobAccepted's actor)."""
        with self._slots:
            if self.free_slots() <= 0 or job_id in self._threads:
                return False
            claim = claims.claim(self.ledger, self.clock_us, job_id, self.owner, owners_dead=owners_dead)
            if claim is None:
                return False
            if handle is not None:
                self._publish_logged(handle, after_version=handle.stream_version)  # the claim
            else:
                # a new handle: one of this replica that followed the job goes on following
                handle = open_from_log(self.ledger.store, self.loop, job_id)
                handle.follower = None  # filled by the job thread now
            self.jobs[job_id] = handle
            handle.fence, handle.stream_version, handle.attempt = (
                claim.fence,
                claim.stream_version,
                claim.attempt,
            )
            summary = self.ledger.state.jobs.get(job_id)
            handle.lease_ms = summary.lease_ms if summary is not None else self.lease_ms
            handle.renewed_at, handle.fenced, handle.done = time.monotonic(), "", False
            thread = threading.Thread(
                target=self._job_thread, args=(handle, job, context, claim), name=f"job-{job_id}", daemon=True
            )
            self._threads[job_id] = thread
            thread.start()
        _log.info(
            "job_claimed", job_id=job_id, attempt=claim.attempt, retried=claim.retried, owner=self.owner
        )
        return True

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

    def cancel(self, job_id: str, reason: str, request: opb.CancelJobRequest | None = None) -> JobHandle:
        """Stop a job: at once when this replica runs it; else JobCancelRequested on its
        stream, which its owner's keeper acts on (or any keeper, for a job nobody runs)."""
        handle = self.get(job_id)
        reason = (reason or "cancelled by request")[:500]
        # ended first: a job's thread outlives its last event for a moment, and a cancel in
        # that moment would be acknowledged as if it had stopped a running job
        ended = self.ledger.state.jobs.get(job_id)
        if handle.done or (ended is not None and ended.state in TERMINAL):
            raise FailedPrecondition(
                "job_id", f"job {job_id} has ended already ({ended.state if ended else 'ended'})"
            )
        if job_id in self._threads and not handle.fenced:
            handle.cancel.cancel(reason)
            return handle
        summary = self.ledger.refresh().jobs.get(job_id)
        if handle.done or summary is None or summary.state in TERMINAL:
            state = summary.state if summary is not None else "ended"
            raise FailedPrecondition("job_id", f"job {job_id} has ended already ({state})")

        def decide(state: State) -> Decision:
            current = state.jobs.get(job_id)
            if current is None or current.state in TERMINAL:
                return Decision()
            return Decision(
                job_stream(job_id), [pb.JobCancelRequested(reason=reason)], current.stream_version
            )

        self.ledger.run("CancelJob", request, decide, attempts=5)
        return handle

    def shutdown(self, reason: str = "optimizer shutting down", timeout: float = 10.0) -> None:
        """Stop the keeper and the running jobs, and wait for their threads: each job is
        released (JobLeaseReleased), so another replica, or the next start, runs it again
        without spending an attempt. `timeout` is the grace; a job still stopping after it
        gets up to RELEASE_WAIT more, since the log closes once this returns."""
        self._shutting_down = True
        self.keeper.stop()
        for handle in self.running():
            handle.cancel.cancel(reason)
        deadline = time.monotonic() + timeout
        for thread in list(self._threads.values()):
            thread.join(max(0.0, deadline - time.monotonic()))
        # a cancelled job still appends its release: the store closes after this, so a slow
        # stop (a Ray task's cancel on a busy machine) gets a while more, not a closed log
        late = [thread for thread in list(self._threads.values()) if thread.is_alive()]
        if late:
            _log.warning("jobs_still_stopping", jobs=len(late), wait_seconds=RELEASE_WAIT)
            deadline = time.monotonic() + RELEASE_WAIT
            for thread in late:
                thread.join(max(0.0, deadline - time.monotonic()))
        self.executor.close()
        self.lm_cache.close()

    # ------------------------------------------------------------------ the fenced appends

    def renew(self, handle: JobHandle) -> None:
        """JobLeaseRenewed, when the job appended nothing else for a while (the keeper). The
        replica renews for itself, as it claims: the system, whichever thread ticks."""
        with handle._lock, acting_as(SYSTEM):
            if handle.done:  # its end is on the record (the keeper decided just before): no lease
                return
            self._append_fenced(handle, [pb.JobLeaseRenewed(fence=handle.fence)])

    def lose(self, handle: JobHandle, reason: str) -> None:
        """The lease is gone (another replica claimed the job, or the log was unreachable for
        too long): stop the job here and append nothing more of it."""
        if handle.fenced:
            return
        handle.fenced = reason
        handle.cancel.cancel(reason)
        # its watchers go on with what the log says: the new owner's events, or how it ended
        follow(handle, self.ledger.store, handle.stream_version)
        _log.warning("job_lease_lost", job_id=handle.job_id, reason=reason, owner=self.owner)

    def _append_fenced(self, handle: JobHandle, payloads: Sequence[Message]) -> AppendResult:
        """Append the owner's events: with its fence, expecting the version of its own last
        append. Under `handle._lock`. Someone else's JobCancelRequested in between is no
        loss (the token is cancelled, the append made again after it); anything else is:
        LeaseLost, and the job is stopped here."""
        if handle.fenced:
            raise LeaseLost(handle.job_id, handle.fenced)
        for payload in payloads:
            if "fence" in payload.DESCRIPTOR.fields_by_name:
                payload.fence = handle.fence  # type: ignore[attr-defined]
        stream = job_stream(handle.job_id)
        while True:
            try:
                result = self.ledger.append(stream, payloads, handle.stream_version)
            except Aborted:
                newer = self.ledger.store.read_stream(stream, after_version=handle.stream_version)
                if newer and all(record.type == _CANCEL_REQUESTED for record in newer):
                    request = decode(newer[-1])
                    assert isinstance(request, pb.JobCancelRequested)
                    handle.cancel.cancel(request.reason or "cancelled by request")
                    self._publish_logged(handle, after_version=handle.stream_version)
                    handle.stream_version = newer[-1].version
                    continue
                self.lose(handle, "lease lost: another replica took the job over")
                raise LeaseLost(handle.job_id, handle.fenced) from None
            handle.stream_version = result.stream_version
            handle.renewed_at = time.monotonic()
            return result

    def _record(
        self, handle: JobHandle, kind: str, payload: Message, *, final: bool = False, logged: bool = False
    ) -> None:
        """Sequence, log (for lifecycle kinds, unless `logged` already; fenced) and publish
        one event. Any thread.

        A job is `done` only after its terminal event is in the list: watchers stop at
        `done`, and must not stop before they have seen the last event. Every string in the
        event is scrubbed first: what is logged and what is streamed are the same text."""
        scrub_message(payload)
        with handle._lock:
            if handle.fenced:  # the handle follows the log now: the job is another replica's
                raise LeaseLost(handle.job_id, handle.fenced)
            if "fence" in payload.DESCRIPTOR.fields_by_name:
                payload.fence = handle.fence  # type: ignore[attr-defined]
            if kind in _LOG_KINDS and not logged:
                self._append_fenced(handle, [payload])  # folds: the summary
            if final:  # on the record: before a watcher hears of it, so the rows are gone by then
                self.forget_lm_calls(handle.job_id)
            self._publish(handle, kind, payload, _now(), final=final)

    def _publish(
        self, handle: JobHandle, kind: str, payload: Message, at: Timestamp, *, final: bool = False
    ) -> None:
        event = opb.OptimizationEvent(
            job_id=handle.job_id,
            sequence=len(handle.events) + 1,
            at=at,
            stream_version=handle.stream_version,  # a progress tick: the last logged event's
        )
        getattr(event, kind).CopyFrom(payload)
        handle.events.append(event)
        if final:
            handle.done = True  # before the wake-up: a woken watcher must find the job ended
        self.loop.call_soon_threadsafe(handle._publish)

    def _publish_logged(self, handle: JobHandle, *, after_version: int) -> None:
        """Stream to the handle's watchers what others appended to the job (a claim, a
        retry, a cancel request) of the kinds a watcher is shown."""
        for record in self.ledger.store.read_stream(job_stream(handle.job_id), after_version=after_version):
            kind = KIND_OF.get(record.type.removeprefix("dspyops.v1."))
            handle.stream_version = record.version
            if kind is not None:
                stamp = Timestamp()
                stamp.FromDatetime(record.recorded_at)
                self._publish(handle, kind, scrub_message(decode(record)), stamp)

    # ------------------------------------------------------------------ the job thread

    def forget_lm_calls(self, job_id: str) -> None:
        """The job ended on the record: nothing will retry it, so its cached LM calls go. A
        cache that cannot be reached now keeps the rows (the job's outcome stands; the rows
        are only space: the README's "Several optimizers" section says how to remove them by hand)."""
        try:
            self.lm_cache.delete_job(job_id)
        except StoreUnavailable as exc:
            _log.warning("lm_cache_rows_kept", job_id=job_id, error=scrub(str(exc)))

    def _emit(self, handle: JobHandle, job_span: Span | None = None) -> Callable[[JobEvent], None]:
        # a trial's span runs from the previous trial's end (or the job's start) to its own:
        # the optimizers report a trial when it is scored, not when it starts
        trial_from = [time.time_ns()]
        parent = trace.set_span_in_context(job_span) if job_span is not None else None

        def emit(event: JobEvent) -> None:
            if job_span is not None and isinstance(event, TrialCompleted):
                ended = time.time_ns()
                span = self.tracer.start_span(
                    "trial",
                    context=parent,
                    start_time=trial_from[0],
                    attributes={
                        "dspyops.job.id": handle.job_id,
                        "dspyops.trial.number": event.trial,
                        "dspyops.trial.score": event.score,
                        "dspyops.trial.best_score": event.best_score,
                    },
                )
                span.end(end_time=ended)
                trial_from[0] = ended
            watched = job_event_payload(event)
            if watched is not None:
                self._record(handle, *watched)

        return emit

    def _job_thread(
        self, handle: JobHandle, job: ValidatedJob | None, context: contextvars.Context | None, claim: Claim
    ) -> None:
        try:
            if context is not None:
                context.run(self._attempt, handle, job, claim)
            else:  # taken over: the job's events stay its submitter's
                record, _ = accepted_record(self.ledger.store, handle.job_id)
                with acting_as(record.actor):
                    self._attempt(handle, job, claim)
        except LeaseLost as lost:
            _log.warning("job_abandoned", job_id=handle.job_id, reason=lost.reason, owner=self.owner)
        finally:
            with self._slots:
                self._threads.pop(handle.job_id, None)
        if not self._shutting_down:
            self.keeper.wake()  # a slot is free: a queued job may start at once

    def _attempt(self, handle: JobHandle, job: ValidatedJob | None, claim: Claim) -> None:
        """One run of the job under `claim`. A job taken over is rebuilt from its JobAccepted,
        unless the owner it was taken from registered its version already: then it is
        completed from that version (a job registers one version at most)."""
        if job is None:
            state = self.ledger.refresh()
            summary = state.jobs[handle.job_id]
            registered = registered_version_of(state, summary.program, handle.job_id)
            if registered is not None:
                version = state.programs[summary.program].versions[registered]
                completed = completed_from_version(self.ledger.store, handle.job_id, version)
                self._record(handle, "completed", completed, final=True)
                _log.info("job_completed_from_registration", job_id=handle.job_id, version=version.version)
                return
            _, accepted = accepted_record(self.ledger.store, handle.job_id)
            try:
                job = self._rebuild(accepted)
            except Exception as exc:  # e.g. a connection or metric module this replica lacks
                message = scrub(f"cannot run the job here: {type(exc).__name__}: {exc}")[:2000]
                self._record(handle, "failed", pb.JobFailed(error=message), final=True)
                _log.warning("job_rebuild_failed", job_id=handle.job_id, error=message)
                return
        self._run(handle, job)

    def _rebuild(self, accepted: pb.JobAccepted) -> ValidatedJob:
        """The job as it was accepted: its inputs from JobAccepted, must_beat loaded here."""
        job = ValidatedJob.from_accepted(accepted, self.connections, self.programs)
        if job.must_beat:
            must_beat = resolve_must_beat(
                self.registry, self.artifacts, job.program, job.must_beat, job.spec, self.programs
            )
            job = replace(job, must_beat_program=must_beat)
        return job

    def _run(self, handle: JobHandle, job: ValidatedJob) -> None:
        """The job under its span (parented by the submitting RPC's: the job thread runs in its
        context), then `_run_traced`."""
        attributes = {"dspyops.job.id": handle.job_id, "dspyops.program": job.program}
        with self.tracer.start_as_current_span(
            "job", attributes={**attributes, "dspyops.optimizer": job.optimizer}
        ) as span:
            usage = SharedUsageTracker()
            try:
                self._run_traced(handle, job, span, usage)
            finally:
                if self.on_usage is not None:
                    self.on_usage(job.lm, usage.snapshot())

    def _run_traced(
        self, handle: JobHandle, job: ValidatedJob, span: Span, usage: SharedUsageTracker
    ) -> None:
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
            lm_cache=self.lm_cache,
        )
        try:
            result = self.executor.run(spec, self._emit(handle, span), handle.cancel, usage)
        except JobCancelled as exc:
            reason = scrub(str(exc.reason))
            if handle.fenced:  # not ours any more: its new owner records how it ends
                raise LeaseLost(handle.job_id, handle.fenced) from None
            if self._shutting_down and not exc.budget:
                self._release(handle, reason)
                log.info("job_released", reason=reason)
                return
            spent = usage.snapshot()
            cancelled = pb.JobCancelled(reason=reason, usage=spent.to_proto(), budget=exc.budget)
            self._record(handle, "cancelled", cancelled, final=True)
            log.info("job_cancelled", reason=reason, budget=exc.budget, lm_calls=spent.lm_calls)
            return
        except JobLost as exc:
            # the task died with its worker or node: retried here like a crashed replica's
            # job (a new attempt, replaying the LM calls the lost one paid for), while
            # attempts are left; failed, naming why, when they are used up
            message = scrub(str(exc))[:1800]
            if handle.cancel.cancelled or self._shutting_down or not self._retry_lost(handle, message):
                attempts = self.summary(handle).max_attempts
                failed = f"{message} (attempt {handle.attempt} of {attempts})" if attempts else message
                used = usage.snapshot().to_proto()
                self._record(handle, "failed", pb.JobFailed(error=failed, usage=used), final=True)
                log.warning("job_lost", error=message, executor=self.executor.name)
                return
            log.warning(
                "job_lost_retrying", error=message, attempt=handle.attempt, executor=self.executor.name
            )
            self._run(handle, job)  # bounded: every retry spends one of max_attempts
            return
        except Exception as exc:
            text = str(exc) if isinstance(exc, RemoteJobFailed) else f"{type(exc).__name__}: {exc}"
            message = scrub(text)[:2000]
            used = usage.snapshot().to_proto()
            self._record(handle, "failed", pb.JobFailed(error=message, usage=used), final=True)
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
            used = usage.snapshot().to_proto()
            self._record(handle, "failed", pb.JobFailed(error=message, usage=used), final=True)
            log.error("job_registration_failed", error=message)
            return
        self._record(handle, "completed", completed, final=True)
        log.info(
            "job_completed",
            version=completed.version,
            final_score=result.final_score,
            baseline_score=result.baseline_score,
        )

    def _retry_lost(self, handle: JobHandle, reason: str) -> bool:
        """The next attempt of a job whose executor lost it, under a new claim of this
        replica: ``[JobRetried, JobClaimed]`` in one fenced append, as a taker appends for a
        crashed replica's job (optimizer_svc.jobs.claims.decide). False when its attempts are
        used up. Raises LeaseLost when the job is not ours any more."""
        if handle.attempt >= self.summary(handle).max_attempts:
            return False
        attempt = handle.attempt + 1
        retried = pb.JobRetried(
            attempt=attempt, lost_fence=handle.fence, lost_owner=self.owner, reason=f"task lost: {reason}"
        )
        with handle._lock:
            before = handle.stream_version
            result = self._append_fenced(handle, [retried, pb.JobClaimed(owner=self.owner, attempt=attempt)])
            handle.fence, handle.attempt = result.stream_version, attempt  # the claim's version: the fence
            self._publish_logged(handle, after_version=before)  # watchers see the retry and the claim
        return True

    def _release(self, handle: JobHandle, reason: str) -> None:
        """Give the job back at shutdown: queued again, for any replica (or the next start)
        to claim without spending an attempt. Watchers here see the stream end."""
        with handle._lock:
            self._append_fenced(handle, [pb.JobLeaseReleased(reason=reason, fence=handle.fence)])
            handle.done = True
            self.loop.call_soon_threadsafe(handle._publish)

    # ------------------------------------------------------------------ jobs of other processes

    def _from_log(self, job_id: str) -> JobHandle:
        """A job this process does not run (an earlier process's, or another replica's): its
        logged events, then the log followed live while anyone watches (its summary is the
        fold's)."""
        return open_from_log(self.ledger.store, self.loop, job_id)
