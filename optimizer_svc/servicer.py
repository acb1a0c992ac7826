"""optimizer_svc's gRPC face: each RPC hands its request to the handler of its idea.

The handlers (jobs, the registry and deployments, evaluation, import/export, the log) check
the request, run the command and render the reply; ``rpc.unary``/``rpc.streaming`` map
their errors to statuses that name the field. Blocking work (SQLite appends with fsync,
folding) runs in worker threads there, so the event loop keeps answering other RPCs and
streaming job progress while jobs run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from dspyops import rpc
from dspyops.connections import Connections
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.proto import optimizer_pb2_grpc
from optimizer_svc.corpora import CorpusHandlers
from optimizer_svc.evaluation.handlers import EvaluationHandlers
from optimizer_svc.imports import ImportHandlers
from optimizer_svc.jobs.handlers import JobHandlers
from optimizer_svc.log_reading import LogHandlers
from optimizer_svc.optimizers.registry import catalog
from optimizer_svc.registry.handlers import RegistryHandlers

Context = grpc.aio.ServicerContext


class OptimizerService(optimizer_pb2_grpc.OptimizerServicer):
    def __init__(
        self,
        jobs: JobHandlers,
        registry: RegistryHandlers,
        evaluations: EvaluationHandlers,
        imports: ImportHandlers,
        log: LogHandlers,
        connections: Connections,
        corpora: CorpusHandlers,
    ) -> None:
        self.jobs = jobs
        self.registry = registry
        self.evaluations = evaluations
        self.imports = imports
        self.log = log
        self.connections = connections
        self.corpora = corpora

    # ------------------------------------------------------------------ jobs

    @rpc.streaming
    async def StartOptimization(
        self, request: opb.StartOptimizationRequest, context: Context
    ) -> AsyncIterator[opb.OptimizationEvent]:
        async for event in self.jobs.start_optimization(request):
            yield event

    @rpc.streaming
    async def WatchJob(
        self, request: opb.WatchJobRequest, context: Context
    ) -> AsyncIterator[opb.OptimizationEvent]:
        async for event in self.jobs.watch_job(request):
            yield event

    @rpc.unary
    async def CancelJob(self, request: opb.CancelJobRequest, context: Context) -> opb.Job:
        return await self.jobs.cancel_job(request)

    @rpc.unary
    async def GetJob(self, request: opb.GetJobRequest, context: Context) -> opb.Job:
        return await self.jobs.get_job(request)

    @rpc.unary
    async def ListJobs(self, request: opb.ListJobsRequest, context: Context) -> opb.ListJobsResponse:
        return await self.jobs.list_jobs(request)

    @rpc.unary
    async def ListOptimizers(
        self, request: opb.ListOptimizersRequest, context: Context
    ) -> opb.ListOptimizersResponse:
        return catalog()

    @rpc.unary
    async def ListConnections(
        self, request: pb.ListConnectionsRequest, context: Context
    ) -> pb.ListConnectionsResponse:
        return pb.ListConnectionsResponse(connections=self.connections.info())

    # ------------------------------------------------------------------ registry

    @rpc.unary
    async def ListPrograms(
        self, request: opb.ListProgramsRequest, context: Context
    ) -> opb.ListProgramsResponse:
        return await self.registry.list_programs(request)

    @rpc.unary
    async def ListVersions(
        self, request: opb.ListVersionsRequest, context: Context
    ) -> opb.ListVersionsResponse:
        return await self.registry.list_versions(request)

    @rpc.unary
    async def GetVersion(self, request: opb.GetVersionRequest, context: Context) -> opb.ProgramVersion:
        return await self.registry.get_version(request)

    @rpc.unary
    async def SetVersionStatus(
        self, request: opb.SetVersionStatusRequest, context: Context
    ) -> opb.ProgramVersion:
        return await self.registry.set_version_status(request)

    @rpc.unary
    async def SetAlias(self, request: opb.SetAliasRequest, context: Context) -> opb.ProgramInfo:
        return await self.registry.set_alias(request)

    # ------------------------------------------------------------------ evaluation, import, export

    @rpc.streaming
    async def Evaluate(
        self, request: opb.EvaluateRequest, context: Context
    ) -> AsyncIterator[opb.EvaluationEvent]:
        async for event in self.evaluations.evaluate(request):
            yield event

    @rpc.unary
    async def CompareVersions(
        self, request: opb.CompareVersionsRequest, context: Context
    ) -> opb.VersionComparison:
        return await self.evaluations.compare_versions(request)

    @rpc.unary
    async def ImportProgram(self, request: opb.ImportProgramRequest, context: Context) -> opb.ProgramVersion:
        return await self.imports.import_program(request)

    @rpc.unary
    async def ExportVersion(
        self, request: opb.ExportVersionRequest, context: Context
    ) -> opb.ExportVersionResponse:
        return await self.imports.export_version(request)

    # ------------------------------------------------------------------ corpora

    @rpc.unary
    async def RegisterCorpus(self, request: opb.RegisterCorpusRequest, context: Context) -> opb.Corpus:
        return await self.corpora.register_corpus(request)

    @rpc.unary
    async def ListCorpora(self, request: opb.ListCorporaRequest, context: Context) -> opb.ListCorporaResponse:
        return await self.corpora.list_corpora(request)

    # ------------------------------------------------------------------ deployments

    @rpc.unary
    async def CreateDeployment(
        self, request: opb.CreateDeploymentRequest, context: Context
    ) -> opb.Deployment:
        return await self.registry.create_deployment(request)

    @rpc.unary
    async def SetRoutes(self, request: opb.SetRoutesRequest, context: Context) -> opb.Deployment:
        return await self.registry.set_routes(request)

    @rpc.unary
    async def SetCapturePolicy(
        self, request: opb.SetCapturePolicyRequest, context: Context
    ) -> opb.Deployment:
        return await self.registry.set_capture_policy(request)

    @rpc.unary
    async def GetDeployment(self, request: opb.GetDeploymentRequest, context: Context) -> opb.Deployment:
        return await self.registry.get_deployment(request)

    @rpc.unary
    async def ListDeployments(
        self, request: opb.ListDeploymentsRequest, context: Context
    ) -> opb.ListDeploymentsResponse:
        return await self.registry.list_deployments(request)

    # ------------------------------------------------------------------ log

    @rpc.unary
    async def ReadLog(self, request: opb.ReadLogRequest, context: Context) -> opb.ReadLogResponse:
        return await self.log.read_log(request)

    @rpc.streaming
    async def SubscribeLog(
        self, request: opb.SubscribeLogRequest, context: Context
    ) -> AsyncIterator[pb.Event]:
        async for event in self.log.subscribe_log(request):
            yield event

    @rpc.unary
    async def VerifyLog(self, request: opb.VerifyLogRequest, context: Context) -> opb.VerifyLogResponse:
        return await self.log.verify_log(request)
