"""The job RPCs: start a job (or answer its retry), watch it, cancel it, read its summary."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import structlog

from dspyops.connections import Connections
from dspyops.errors import InvalidArgument
from dspyops.ids import resolve_prefix
from dspyops.names import check_name
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.jobs.handle import JobHandle, job_view
from optimizer_svc.jobs.learning import with_learning
from optimizer_svc.jobs.manager import JobManager
from optimizer_svc.jobs.requests import validate_start


class JobHandlers:
    def __init__(self, jobs: JobManager, connections: Connections) -> None:
        self.jobs = jobs
        self.ledger = jobs.ledger
        self.connections = connections

    async def start_optimization(
        self, request: opb.StartOptimizationRequest
    ) -> AsyncIterator[opb.OptimizationEvent]:
        # a retry streams the job the first attempt started, as WatchJob from 0 would
        prior = await asyncio.to_thread(self.ledger.commands.answered, "StartOptimization", request)
        if prior is not None:
            assert isinstance(prior.event, pb.JobAccepted)
            handle = await asyncio.to_thread(self.jobs.get, prior.event.job_id)
        else:
            job = await asyncio.to_thread(validate_start, request, self.connections, self.jobs.programs)
            if request.base_trainset_job or request.HasField("learning"):  # a learning loop's retrain
                validated = job
                job = await asyncio.to_thread(
                    lambda: with_learning(validated, request, self.ledger.refresh(), self.ledger.store)
                )
            handle = await asyncio.to_thread(self.jobs.submit, job, request)
            structlog.get_logger().info(
                "job_accepted", job_id=handle.job_id, program=job.program, optimizer=job.optimizer
            )
        async for event in handle.watch(0):
            yield event

    async def watch_job(self, request: opb.WatchJobRequest) -> AsyncIterator[opb.OptimizationEvent]:
        handle = await asyncio.to_thread(self.jobs.get, await self._job_id(request.job_id))
        if request.after_stream_version:
            await asyncio.to_thread(self._check_resume, handle, request.after_stream_version)
        async for event in handle.watch(request.after_sequence, request.after_stream_version):
            yield event

    async def _job_id(self, given: str) -> str:
        """The job `given` names: its id or a unique prefix of it (dspyops.ids), as the
        prediction ids the gateway takes."""
        if not given or given in self.jobs.jobs:
            return given
        state = await asyncio.to_thread(self.ledger.refresh)
        try:
            return resolve_prefix(given, state.jobs, "jobs")
        except ValueError as exc:
            raise InvalidArgument("job_id", str(exc)) from None

    def _check_resume(self, handle: JobHandle, after: int) -> None:
        """A resume position comes from an event some replica streamed, and every replica
        reads the one log: one past the job's last logged event was never streamed."""
        summary = self.ledger.refresh().jobs.get(handle.job_id)
        last = max(handle.stream_version, summary.stream_version if summary is not None else 0)
        if after > last:
            raise InvalidArgument(
                "after_stream_version", f"{after} is past the job's last logged event (version {last})"
            )

    async def cancel_job(self, request: opb.CancelJobRequest) -> opb.Job:
        job_id = await self._job_id(request.job_id)
        handle = await asyncio.to_thread(self.jobs.cancel, job_id, request.reason, request)
        return self.jobs.view(handle)

    async def get_job(self, request: opb.GetJobRequest) -> opb.Job:
        handle = await asyncio.to_thread(self.jobs.get, await self._job_id(request.job_id))
        return self.jobs.view(handle)

    async def list_jobs(self, request: opb.ListJobsRequest) -> opb.ListJobsResponse:
        if request.program:
            check_name("program", request.program)
        state = await asyncio.to_thread(self.ledger.read_state)
        jobs = []
        for summary in sorted(state.jobs.values(), key=lambda j: j.accepted_position):
            if request.program and summary.program != request.program:
                continue
            handle = self.jobs.jobs.get(summary.job_id)
            if handle is None:  # a job of an earlier process: its events are counted from the log
                handle = await asyncio.to_thread(self.jobs.get, summary.job_id)
            jobs.append(job_view(summary, len(handle.events)))
        return opb.ListJobsResponse(jobs=jobs)
