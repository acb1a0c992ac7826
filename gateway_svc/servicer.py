"""The Gateway gRPC service: each RPC method checks what it needs and hands off to the
module that holds its idea (predict, explain, views, outcomes, deployment_commands)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
from opentelemetry.trace import Tracer

from dspyops import rpc
from dspyops.commands import Commands
from dspyops.connections import OFFLINE_ONLY, Connections
from dspyops.errors import InvalidArgument
from dspyops.eventlog import EventStore
from dspyops.history import History
from dspyops.metrics import allowed_metric_modules
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import gateway_pb2_grpc
from dspyops.scrub import scrub
from dspyops.snapshots import SnapshotStore
from dspyops.telemetry import NO_TRACER
from gateway_svc.as_of import need_log, state_as_of
from gateway_svc.canary import Canaries, CheckBook
from gateway_svc.deployment_commands import DeploymentCommands
from gateway_svc.drift.monitor import DriftMonitors, DriftService
from gateway_svc.evaluators.commands import EvaluatorService, results_source
from gateway_svc.evaluators.runner import EvaluatorRunner
from gateway_svc.experiments import Experiments, deployment_of, results_proto
from gateway_svc.explain import explain
from gateway_svc.feedback import export_feedback
from gateway_svc.learning.job import OptimizerLink
from gateway_svc.learning.loop import LearningService
from gateway_svc.loader import ProgramCache
from gateway_svc.metrics import GatewayMetrics
from gateway_svc.outcomes import record_outcome
from gateway_svc.predict import Predictions
from gateway_svc.records import PredictionRecord, PredictionStore
from gateway_svc.replica import Replica
from gateway_svc.views import StateViews

SERVICE = gpb.DESCRIPTOR.services_by_name["Gateway"].full_name


class GatewayService(gateway_pb2_grpc.GatewayServicer):
    def __init__(
        self,
        replica: Replica,
        records: PredictionStore,
        store: EventStore | None,
        connections: Connections | None = None,
        snapshots: SnapshotStore | None = None,
        programs: ProgramContext = NO_CONTEXT,
        allow_code_drift: bool = False,
        clock: Callable[[], float] = time.time,
        evaluator_queue: int = 1000,
        learning_link: OptimizerLink | None = None,
        tracer: Tracer = NO_TRACER,
        trace_content: bool = False,
        keep_idle_programs: int = 4,
    ) -> None:
        self.connections = connections or OFFLINE_ONLY
        self.replica = replica
        self.records = records
        # None when tailing a remote optimizer: no history, no writes
        self.history = History(store, snapshots=snapshots) if store else None
        self.views = StateViews(replica, CheckBook())
        self.predictions = Predictions(
            replica,
            records,
            ProgramCache(self.connections, programs, allow_code_drift, keep_idle_programs),
            self.history,
            tracer,
            trace_content,
        )
        self.deployments: DeploymentCommands | None = None
        commands: Commands | None = None
        if store is not None and self.history is not None:
            # the one writer path: commands decide from the replica's state (dspyops.commands)
            commands = Commands(store, lambda: self.replica.state, self.history)
            self.deployments = DeploymentCommands(
                commands,
                replica,
                self.views,
                Experiments(self.history, records),
                Canaries(commands, records, clock),
            )
        self.drift = DriftService(DriftMonitors(commands, records), replica)
        metric_modules = allowed_metric_modules()  # read once at start, as the optimizer does
        runner = EvaluatorRunner(
            records,
            lambda: self.replica.state,
            self.predictions.load,
            clock=clock,
            queue_size=evaluator_queue,
            metric_modules=metric_modules,
        )
        self.evaluators = EvaluatorService(commands, replica, runner, metric_modules)
        self.predictions.on_recorded = runner.after_predict  # judges sample what was served
        self.metrics: GatewayMetrics | None = None  # with --metrics-port (count_into)
        self.learning: LearningService | None = None  # on the log only: its loop appends
        if commands is not None and store is not None and self.deployments is not None:
            self.learning = LearningService(
                commands, store, records, self.deployments.canaries, replica, self.drift, learning_link, clock
            )

    def count_into(self, metrics: GatewayMetrics) -> None:
        """Count predictions (each record kept), outcomes, evaluator scores and the LM calls
        of predictions, shadows and judges into `metrics`."""
        self.metrics = metrics
        self.predictions.lm_usage = self.evaluators.runner.lm_usage = metrics.lm
        self.evaluators.runner.on_scored = metrics.scored
        after = self.predictions.on_recorded

        def on_recorded(record: PredictionRecord) -> None:
            metrics.predicted(record)
            after(record)

        self.predictions.on_recorded = on_recorded

    def _commands(self) -> DeploymentCommands:
        need_log(self.history, "deployment")
        assert self.deployments is not None
        return self.deployments

    # ------------------------------------------------------------------ serving

    @rpc.unary
    async def Predict(
        self, request: gpb.PredictRequest, context: grpc.aio.ServicerContext
    ) -> gpb.PredictResponse:
        return await self.predictions.predict(request)

    @rpc.unary
    async def GetShadowResults(
        self, request: gpb.GetShadowResultsRequest, context: grpc.aio.ServicerContext
    ) -> gpb.ShadowResults:
        return await self.predictions.shadow_results(request)

    @rpc.unary
    async def ListConnections(
        self, request: pb.ListConnectionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListConnectionsResponse:
        return pb.ListConnectionsResponse(connections=self.connections.info())

    @rpc.unary
    async def RecordOutcome(
        self, request: gpb.RecordOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> gpb.RecordOutcomeResponse:
        record = await asyncio.to_thread(
            record_outcome, self.replica.state, self.history, self.records, request
        )
        if self.metrics is not None:
            self.metrics.outcome(record, labelled=bool(request.expected))
        if request.expected:  # metric evaluators score what the human labelled (never waits)
            self.evaluators.runner.after_outcome(record, {k: scrub(v) for k, v in request.expected.items()})
        return gpb.RecordOutcomeResponse(
            prediction_id=record.prediction_id, version=record.version, experiment_id=record.experiment_id
        )

    @rpc.unary
    async def GetDeploymentState(
        self, request: gpb.GetDeploymentStateRequest, context: grpc.aio.ServicerContext
    ) -> gpb.DeploymentState:
        state = await state_as_of(self.replica, self.history, request.as_of)
        return self.views.deployment(state, deployment_of(state, request.deployment))

    @rpc.unary
    async def ListDeploymentStates(
        self, request: gpb.ListDeploymentStatesRequest, context: grpc.aio.ServicerContext
    ) -> gpb.ListDeploymentStatesResponse:
        return self.views.deployments(self.replica.state)

    @rpc.unary
    async def ExplainPrediction(
        self, request: gpb.ExplainPredictionRequest, context: grpc.aio.ServicerContext
    ) -> gpb.Explanation:
        history = need_log(self.history, "prediction_id")
        return await explain(request, history, self.records, self.predictions.load)

    @rpc.unary
    async def ExportFeedback(
        self, request: gpb.ExportFeedbackRequest, context: grpc.aio.ServicerContext
    ) -> gpb.ExportFeedbackResponse:
        return await asyncio.to_thread(export_feedback, self.replica.state, self.records, request)

    # ------------------------------------------------------------------ experiments, canaries, rollback

    @rpc.unary
    async def StartExperiment(
        self, request: gpb.StartExperimentRequest, context: grpc.aio.ServicerContext
    ) -> gpb.DeploymentState:
        commands = self._commands()
        return await commands.run("StartExperiment", commands.experiments.start, request)

    @rpc.unary
    async def GetExperimentResults(
        self, request: gpb.GetExperimentResultsRequest, context: grpc.aio.ServicerContext
    ) -> gpb.ExperimentResults:
        experiments = self._commands().experiments
        source = results_source(request.source)
        results = await asyncio.to_thread(
            experiments.results, self.replica.state, request.deployment, source, request.include_history
        )
        return results_proto(request.deployment, results)

    @rpc.unary
    async def ConcludeExperiment(
        self, request: gpb.ConcludeExperimentRequest, context: grpc.aio.ServicerContext
    ) -> gpb.DeploymentState:
        commands = self._commands()
        return await commands.run("ConcludeExperiment", commands.experiments.conclude, request)

    @rpc.unary
    async def StopExperiment(
        self, request: gpb.StopExperimentRequest, context: grpc.aio.ServicerContext
    ) -> gpb.DeploymentState:
        commands = self._commands()
        return await commands.run("StopExperiment", commands.experiments.stop, request)

    @rpc.unary
    async def StartCanary(
        self, request: gpb.StartCanaryRequest, context: grpc.aio.ServicerContext
    ) -> gpb.DeploymentState:
        commands = self._commands()
        return await commands.run("StartCanary", commands.canaries.start, request)

    @rpc.unary
    async def EvaluateCanary(
        self, request: gpb.EvaluateCanaryRequest, context: grpc.aio.ServicerContext
    ) -> gpb.CanaryStatus:
        return await self._commands().evaluate_canary(request.deployment)

    @rpc.unary
    async def Rollback(
        self, request: gpb.RollbackRequest, context: grpc.aio.ServicerContext
    ) -> gpb.DeploymentState:
        commands = self._commands()
        if request.to.WhichOneof("point") is None:
            raise InvalidArgument("to", "give a log position or a time to roll back to")
        return await commands.run("Rollback", commands.experiments.rollback, request)

    # ------------------------------------------------------------------ drift

    @rpc.unary
    async def SetDriftMonitor(
        self, request: gpb.SetDriftMonitorRequest, context: grpc.aio.ServicerContext
    ) -> gpb.DriftStatus:
        self._commands()  # a log to append to
        return await self.drift.set_monitor(request)

    @rpc.unary
    async def GetDriftStatus(
        self, request: gpb.GetDriftStatusRequest, context: grpc.aio.ServicerContext
    ) -> gpb.DriftStatus:
        return await self.drift.status(request.deployment)

    # ------------------------------------------------------------------ online evaluators

    @rpc.unary
    async def SetEvaluator(
        self, request: gpb.SetEvaluatorRequest, context: grpc.aio.ServicerContext
    ) -> gpb.EvaluatorStatus:
        self._commands()  # a log to append to
        return await self.evaluators.set(request)

    @rpc.unary
    async def ListEvaluators(
        self, request: gpb.ListEvaluatorsRequest, context: grpc.aio.ServicerContext
    ) -> gpb.ListEvaluatorsResponse:
        return await self.evaluators.list(request)

    # ------------------------------------------------------------------ learning

    def _learning(self) -> LearningService:
        self._commands()  # a log to append to
        assert self.learning is not None
        return self.learning

    @rpc.unary
    async def SetLearningPolicy(
        self, request: gpb.SetLearningPolicyRequest, context: grpc.aio.ServicerContext
    ) -> gpb.LearningStatus:
        return await self._learning().set_policy(request)

    @rpc.unary
    async def PauseLearning(
        self, request: gpb.PauseLearningRequest, context: grpc.aio.ServicerContext
    ) -> gpb.LearningStatus:
        return await self._learning().pause(request)

    @rpc.unary
    async def GetLearningStatus(
        self, request: gpb.GetLearningStatusRequest, context: grpc.aio.ServicerContext
    ) -> gpb.LearningStatus:
        return await self._learning().status(request.deployment)
