"""optimizer_svc's gRPC face: validates each request, runs the command, maps errors.

Blocking work (SQLite appends with fsync, folding) runs in worker threads so the event
loop keeps answering other RPCs and streaming job progress while jobs run.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import structlog

from dspyops import rpc, serving
from dspyops.artifacts import ArtifactStore
from dspyops.caps import Cap
from dspyops.connections import OFFLINE_ONLY, Connections, load_for_server
from dspyops.errors import InvalidArgument
from dspyops.eventlog import EventStore, WriterLease
from dspyops.health import HealthServicer
from dspyops.ledger import Ledger
from dspyops.logfiles import LogFiles
from dspyops.logs import configure
from dspyops.logstart import chain_key, open_service_store, routing_secret, verify_at_start, writer_lease
from dspyops.logwire import envelope, log_filter, read_reply, verify_response
from dspyops.names import check_name
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.proto import optimizer_pb2_grpc
from dspyops.snapshots import SnapshotStore, snapshot_path
from optimizer_svc.evaluation import DEFAULT_MAX_EVALUATIONS, EvaluationPool
from optimizer_svc.jobs import JobManager
from optimizer_svc.registry import Registry, RouteInput, registered_version
from optimizer_svc.requests import validate_start
from optimizer_svc.views import deployment_view, program_view, version_view

SERVICE = opb.DESCRIPTOR.services_by_name["Optimizer"].full_name
_MAX_READ = 10_000
DEFAULT_MAX_SUBSCRIBERS = 256  # SubscribeLog streams at once (--max-subscribers)
DEFAULT_MAX_SUBSCRIBERS_PER_ACTOR = 64  # ... per caller (--max-subscribers-per-actor)
_MAX_POSITION = 2**63 - 1  # log positions are SQLite INTEGERs (signed 64-bit); the proto says uint64


def _check_after(after: int) -> None:
    if after > _MAX_POSITION:
        raise InvalidArgument("after", f"at most {_MAX_POSITION} (a log position), got {after}")


class OptimizerService(optimizer_pb2_grpc.OptimizerServicer):
    def __init__(
        self,
        store: EventStore,
        jobs: JobManager,
        registry: Registry,
        evaluations: EvaluationPool | None = None,
        subscribers: Cap | None = None,
        connections: Connections | None = None,
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.registry = registry
        self.ledger = registry.ledger
        self.evaluations = evaluations or EvaluationPool()
        self.subscribers = subscribers or Cap(
            "log subscriptions",
            DEFAULT_MAX_SUBSCRIBERS,
            DEFAULT_MAX_SUBSCRIBERS_PER_ACTOR,
            flags="--max-subscribers, --max-subscribers-per-actor",
        )
        self.connections = connections or OFFLINE_ONLY

    # ------------------------------------------------------------------ jobs

    @rpc.streaming
    async def StartOptimization(
        self, request: opb.StartOptimizationRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[opb.OptimizationEvent]:
        # a retry streams the job the first attempt started, as WatchJob from 0 would
        prior = await asyncio.to_thread(self.ledger.commands.answered, "StartOptimization", request)
        if prior is not None:
            assert isinstance(prior.event, pb.JobAccepted)
            handle = await asyncio.to_thread(self.jobs.get, prior.event.job_id)
        else:
            job = await asyncio.to_thread(validate_start, request, self.connections)
            handle = await asyncio.to_thread(self.jobs.submit, job, request)
            structlog.get_logger().info(
                "job_accepted", job_id=handle.job_id, program=job.program, optimizer=job.optimizer
            )
        async for event in handle.watch(0):
            yield event

    @rpc.streaming
    async def WatchJob(
        self, request: opb.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[opb.OptimizationEvent]:
        handle = await asyncio.to_thread(self.jobs.get, request.job_id)
        async for event in handle.watch(request.after_sequence):
            yield event

    @rpc.unary
    async def CancelJob(self, request: opb.CancelJobRequest, context: grpc.aio.ServicerContext) -> opb.Job:
        handle = await asyncio.to_thread(self.jobs.cancel, request.job_id, request.reason)
        return handle.to_proto()

    @rpc.unary
    async def GetJob(self, request: opb.GetJobRequest, context: grpc.aio.ServicerContext) -> opb.Job:
        handle = await asyncio.to_thread(self.jobs.get, request.job_id)
        return handle.to_proto()

    @rpc.unary
    async def ListJobs(
        self, request: opb.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> opb.ListJobsResponse:
        if request.program:
            check_name("program", request.program)
        state = await asyncio.to_thread(self.ledger.refresh)
        jobs = []
        for summary in sorted(state.jobs.values(), key=lambda j: j.accepted_position):
            if request.program and summary.program != request.program:
                continue
            handle = self.jobs.jobs.get(summary.job_id)
            jobs.append(
                handle.to_proto()
                if handle
                else (await asyncio.to_thread(self.jobs.get, summary.job_id)).to_proto()
            )
        return opb.ListJobsResponse(jobs=jobs)

    @rpc.unary
    async def ListOptimizers(
        self, request: opb.ListOptimizersRequest, context: grpc.aio.ServicerContext
    ) -> opb.ListOptimizersResponse:
        from optimizer_svc.presets import catalog

        return catalog()

    @rpc.unary
    async def ListConnections(
        self, request: pb.ListConnectionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListConnectionsResponse:
        return pb.ListConnectionsResponse(connections=self.connections.info())

    # ------------------------------------------------------------------ registry

    @rpc.unary
    async def ListPrograms(
        self, request: opb.ListProgramsRequest, context: grpc.aio.ServicerContext
    ) -> opb.ListProgramsResponse:
        state = await asyncio.to_thread(self.ledger.refresh)
        return opb.ListProgramsResponse(
            programs=[program_view(p) for p in sorted(state.programs.values(), key=lambda p: p.name)]
        )

    @rpc.unary
    async def ListVersions(
        self, request: opb.ListVersionsRequest, context: grpc.aio.ServicerContext
    ) -> opb.ListVersionsResponse:
        program = await asyncio.to_thread(self.registry.program, request.program)
        return opb.ListVersionsResponse(
            versions=[version_view(v, program) for v in program.versions.values()]
        )

    @rpc.unary
    async def GetVersion(
        self, request: opb.GetVersionRequest, context: grpc.aio.ServicerContext
    ) -> opb.ProgramVersion:
        version = await asyncio.to_thread(self.registry.version, request.program, request.version)
        return version_view(version, self.ledger.state.programs[request.program])

    @rpc.unary
    async def SetVersionStatus(
        self, request: opb.SetVersionStatusRequest, context: grpc.aio.ServicerContext
    ) -> opb.ProgramVersion:
        outcome = await asyncio.to_thread(
            functools.partial(
                self.registry.set_status,
                request.program,
                request.version,
                request.status,
                request.reason,
                request=request,
            )
        )
        program = outcome.state.programs[request.program]
        version = program.resolve(request.version)  # as of right after the change: resolves as it did
        assert version is not None
        return version_view(version, program)

    @rpc.unary
    async def SetAlias(
        self, request: opb.SetAliasRequest, context: grpc.aio.ServicerContext
    ) -> opb.ProgramInfo:
        outcome = await asyncio.to_thread(
            functools.partial(
                self.registry.set_alias, request.program, request.alias, request.version, request=request
            )
        )
        return program_view(outcome.state.programs[request.program])

    # ------------------------------------------------------------------ evaluation, import, export

    def _metric_modules(self) -> frozenset[str]:
        """The custom-metric allowlist, read from DSPYOPS_METRIC_MODULES once per service."""
        from dspyops.metrics import allowed_metric_modules

        if "_allowed_metric_modules" not in self.__dict__:
            self.__dict__["_allowed_metric_modules"] = allowed_metric_modules()
        return self.__dict__["_allowed_metric_modules"]

    def _datasets_dir(self) -> Path | None:
        return getattr(self.jobs, "datasets_dir", None)

    @rpc.streaming
    async def Evaluate(
        self, request: opb.EvaluateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[opb.EvaluationEvent]:
        from optimizer_svc.evaluation import stream_evaluation

        async for event in stream_evaluation(
            request,
            self.registry,
            self.jobs.artifacts,
            self._metric_modules(),
            self._datasets_dir(),
            self.evaluations,
            self.connections,
        ):
            yield event

    @rpc.unary
    async def CompareVersions(
        self, request: opb.CompareVersionsRequest, context: grpc.aio.ServicerContext
    ) -> opb.VersionComparison:
        from optimizer_svc.evaluation import compare_versions

        slot = self.evaluations.admit()
        modules, datasets_dir = self._metric_modules(), self._datasets_dir()
        return await self.evaluations.run(
            slot,
            lambda token, callbacks: compare_versions(
                request,
                self.registry,
                self.jobs.artifacts,
                modules,
                datasets_dir,
                self.connections,
                token,
                callbacks,
            ),
        )

    @rpc.unary
    async def ImportProgram(
        self, request: opb.ImportProgramRequest, context: grpc.aio.ServicerContext
    ) -> opb.ProgramVersion:
        from optimizer_svc.imports import import_program

        outcome = await asyncio.to_thread(
            import_program, request, self.registry, self.jobs.artifacts, self.connections
        )
        version = registered_version(outcome)
        return version_view(version, outcome.state.programs[version.program])

    @rpc.unary
    async def ExportVersion(
        self, request: opb.ExportVersionRequest, context: grpc.aio.ServicerContext
    ) -> opb.ExportVersionResponse:
        from optimizer_svc.imports import export_version

        return await asyncio.to_thread(export_version, request, self.registry, self.jobs.artifacts)

    # ------------------------------------------------------------------ deployments

    @rpc.unary
    async def CreateDeployment(
        self, request: opb.CreateDeploymentRequest, context: grpc.aio.ServicerContext
    ) -> opb.Deployment:
        outcome = await asyncio.to_thread(
            functools.partial(
                self.registry.create_deployment, request.deployment, request.program, request=request
            )
        )
        return deployment_view(outcome.state.deployments[request.deployment])

    @rpc.unary
    async def SetRoutes(
        self, request: opb.SetRoutesRequest, context: grpc.aio.ServicerContext
    ) -> opb.Deployment:
        routes = [RouteInput(version=r.version, weight=r.weight, role=r.role) for r in request.routes]
        expected = request.expected_version if request.HasField("expected_version") else None
        outcome = await asyncio.to_thread(
            functools.partial(
                self.registry.set_routes,
                request.deployment,
                routes,
                expected,
                request.reason,
                request=request,
            )
        )
        return deployment_view(outcome.state.deployments[request.deployment])

    @rpc.unary
    async def GetDeployment(
        self, request: opb.GetDeploymentRequest, context: grpc.aio.ServicerContext
    ) -> opb.Deployment:
        return deployment_view(await asyncio.to_thread(self.registry.deployment, request.deployment))

    @rpc.unary
    async def ListDeployments(
        self, request: opb.ListDeploymentsRequest, context: grpc.aio.ServicerContext
    ) -> opb.ListDeploymentsResponse:
        state = await asyncio.to_thread(self.ledger.refresh)
        return opb.ListDeploymentsResponse(
            deployments=[deployment_view(d) for d in sorted(state.deployments.values(), key=lambda d: d.name)]
        )

    # ------------------------------------------------------------------ log

    @rpc.unary
    async def ReadLog(
        self, request: opb.ReadLogRequest, context: grpc.aio.ServicerContext
    ) -> opb.ReadLogResponse:
        limit = request.limit or 100
        if limit > _MAX_READ:
            raise InvalidArgument("limit", f"at most {_MAX_READ}, got {limit}")
        _check_after(request.after)
        wanted = log_filter(request)
        # pages by count and by bytes: the reply stays far under the message limit
        page = await asyncio.to_thread(read_reply, self.store, request.after, limit, wanted)
        head = await asyncio.to_thread(self.store.head)
        return opb.ReadLogResponse(events=page.events, head=head, scanned_to=page.scanned_to)

    @rpc.streaming
    async def SubscribeLog(
        self, request: opb.SubscribeLogRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator:
        """One page in memory per subscriber: asubscribe reads the next page only once every
        event of this one was yielded, and grpc.aio's yield returns only once the transport
        took the message (HTTP/2 flow control), so a client that stops reading stops us."""
        _check_after(request.after)
        wanted = log_filter(request)
        with self.subscribers.acquire():
            async for event in self.store.asubscribe(request.after):
                if wanted.matches(event):
                    yield envelope(event)

    @rpc.unary
    async def VerifyLog(
        self, request: opb.VerifyLogRequest, context: grpc.aio.ServicerContext
    ) -> opb.VerifyLogResponse:
        return verify_response(await asyncio.to_thread(self.store.verify))


@dataclass(frozen=True)
class OptimizerConfig:
    log: str  # path of the SQLite log (or a store URL)
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    max_jobs: int = 4
    max_evaluations: int = DEFAULT_MAX_EVALUATIONS  # Evaluate + CompareVersions running at once
    max_subscribers: int = DEFAULT_MAX_SUBSCRIBERS  # SubscribeLog streams at once
    max_subscribers_per_actor: int = DEFAULT_MAX_SUBSCRIBERS_PER_ACTOR
    port_file: Path | None = None
    datasets_dir: Path | None = None  # trainset_ref/valset_ref files live here (None: refs refused)
    security: rpc.Security = field(default_factory=rpc.Security)  # bearer tokens and TLS (default: neither)
    lm_connections: str = ""  # TOML file of LM connections (none: only the offline one)
    allow_request_endpoints: tuple[
        str, ...
    ] = ()  # HOST[:PORT] a request's api_base may name (none: no request may)
    chain_key_file: str = ""  # the log's chain key: new links are keyed (HMAC-SHA256), keyed links verify
    allow_broken_log: bool = False  # start on a broken chain, with a warning naming the position
    create: bool = False  # create a missing log even where files of an earlier one exist


class RunningOptimizer:
    """A started server, for tests and the CLI: `.port`, `.stop()`."""

    def __init__(
        self,
        server: grpc.aio.Server,
        port: int,
        jobs: JobManager,
        store: EventStore,
        health: HealthServicer,
        evaluations: EvaluationPool | None = None,
        lease: WriterLease | None = None,
    ) -> None:
        self.server = server
        self.port = port
        self.jobs = jobs
        self.store = store
        self.health = health
        self.evaluations = evaluations
        self.lease = lease

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace: float = 5.0) -> None:
        await self.health.enter_graceful_shutdown()  # NOT_SERVING first; Watch streams end
        await asyncio.to_thread(self.jobs.shutdown, "optimizer shutting down", grace)
        await self.server.stop(grace)  # evaluations in flight get the grace; then their RPCs end
        if self.evaluations is not None:
            self.evaluations.shutdown()  # and whatever still runs stops at its next LM call
        self.store.close()
        if self.lease is not None:
            self.lease.release()  # last: no other optimizer may append before this one is done


async def start(config: OptimizerConfig) -> RunningOptimizer:
    configure("optimizer_svc")
    connections = load_for_server(config.lm_connections, config.allow_request_endpoints)
    key = chain_key(config.chain_key_file)
    artifacts = config.data_dir / "artifacts"
    store = open_service_store(config.log, key, create=config.create, evidence=[artifacts])
    try:
        # one optimizer per log for its lifetime: a second one would take this one's running
        # jobs for orphans and append JobInterrupted for them
        lease = writer_lease(store)
    except BaseException:
        store.close()
        raise
    try:
        return await _start(config, store, lease, key, connections)
    except BaseException:
        store.close()
        lease.release()
        raise


async def _start(
    config: OptimizerConfig,
    store: EventStore,
    lease: WriterLease,
    key: bytes | None,
    connections: Connections,
) -> RunningOptimizer:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    routing_secret(LogFiles.of(config.log).secret)  # created with the log; the gateways use it
    # the writer keeps snapshots of its fold beside the log, so restarts and gateways fold only the tail
    snapshots = SnapshotStore(snapshot_path(config.log), key=key)
    await asyncio.to_thread(
        verify_at_start, store, snapshots, allow_broken=config.allow_broken_log, service="optimizer"
    )
    ledger = await asyncio.to_thread(Ledger, store, snapshots)
    registry = Registry(ledger)
    jobs = JobManager(
        ledger,
        registry,
        ArtifactStore(config.data_dir / "artifacts"),
        asyncio.get_running_loop(),
        max_running=config.max_jobs,
        datasets_dir=config.datasets_dir,
        connections=connections,
    )
    orphans = await asyncio.to_thread(jobs.interrupt_orphans)
    server, health = rpc.make_server([SERVICE], config.security)
    evaluations = EvaluationPool(config.max_evaluations)
    subscribers = Cap(
        "log subscriptions",
        config.max_subscribers,
        config.max_subscribers_per_actor,
        flags="--max-subscribers, --max-subscribers-per-actor",
    )
    service = OptimizerService(store, jobs, registry, evaluations, subscribers, connections)
    optimizer_pb2_grpc.add_OptimizerServicer_to_server(service, server)
    port = rpc.bind(server, config.host, config.port, config.security)
    await server.start()
    await rpc.set_serving(health, [SERVICE])
    structlog.get_logger().info(
        "optimizer_listening", port=port, log=str(config.log), interrupted_jobs=orphans
    )
    if config.port_file:
        config.port_file.write_text(str(port))
    return RunningOptimizer(server, port, jobs, store, health, evaluations, lease)


async def serve(config: OptimizerConfig, grace: float = 5.0) -> None:
    """Run until SIGTERM/SIGINT, then drain (dspyops.serving): health NOT_SERVING, running
    jobs end Interrupted on the record, calls in flight get `grace` seconds to finish."""
    running = await start(config)
    await serving.serve_until_signalled(running, "optimizer", grace)
