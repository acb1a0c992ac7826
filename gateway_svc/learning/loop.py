"""The learning loop on every gateway on the log, beside the drift and canary loops: each
tick plans every deployment with a learning policy (gateway_svc.learning.plan) and carries
the plan out: its append with the deployment's stream version the plan was taken on (when
several gateways plan at once exactly one append wins; the others see ABORTED and re-plan on
the next tick), then its StartOptimization on the learning optimizer, whose request id is the
run's, so a second call by another gateway (or after a crash between append and call) starts
nothing new. The RPCs (SetLearningPolicy, PauseLearning, GetLearningStatus) live here too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import structlog

from dspyops.actor import SYSTEM, current_actor
from dspyops.commands import Commands, Decision
from dspyops.errors import Aborted, FailedPrecondition
from dspyops.eventlog import EventStore
from dspyops.names import deployment_stream
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from gateway_svc.canary import Canaries
from gateway_svc.drift.monitor import DriftService
from gateway_svc.learning.job import OptimizerLink
from gateway_svc.learning.plan import Planner
from gateway_svc.learning.policy import pause_decision, set_decision
from gateway_svc.learning.status import status_proto
from gateway_svc.records import PredictionStore
from gateway_svc.replica import Replica

NO_OPTIMIZER = "this gateway has no --learning-optimizer: it starts no retrain (another gateway may)"
# what the optimizer answers for a request that will never start a job: the run ends
_FINAL = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
}


class LearningService:
    def __init__(
        self,
        commands: Commands,
        store: EventStore,
        records: PredictionStore,
        canaries: Canaries,
        replica: Replica,
        drift: DriftService,
        link: OptimizerLink | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.commands = commands
        self.planner = Planner(records, store, canaries)
        self.replica = replica
        self.drift = drift
        self.link = link
        self.clock = clock
        self._last: dict[str, str] = {}  # deployment -> this gateway's last tick, in words
        self._logged: set[str] = set()

    def _now_us(self) -> int:
        return int(self.clock() * 1_000_000)

    @property
    def can_start(self) -> str:
        return "" if self.link is not None else NO_OPTIMIZER

    # ------------------------------------------------------------------ RPCs

    async def set_policy(self, request: gpb.SetLearningPolicyRequest) -> gpb.LearningStatus:
        optimizers: set[str] | None = None
        presets: set[str] | None = None
        if self.link is not None and request.enabled:
            try:
                optimizers, presets = await self.link.catalog()
            except grpc.aio.AioRpcError as exc:
                raise FailedPrecondition(
                    "policy.optimizer",
                    f"the learning optimizer at {self.link.address} cannot be asked what it runs: "
                    f"{exc.code().name}",
                ) from None
        outcome = await asyncio.to_thread(
            self.commands.run,
            "SetLearningPolicy",
            request,
            lambda state: set_decision(state, request, optimizers, presets),
        )
        await self.replica.wait_for(outcome.state.position, timeout=10)
        return await self.status(request.deployment)

    async def pause(self, request: gpb.PauseLearningRequest) -> gpb.LearningStatus:
        outcome = await asyncio.to_thread(
            self.commands.run, "PauseLearning", request, lambda state: pause_decision(state, request)
        )
        await self.replica.wait_for(outcome.state.position, timeout=10)
        return await self.status(request.deployment)

    async def status(self, name: str) -> gpb.LearningStatus:
        state = self.replica.state
        drift = await self.drift.status(name)  # checks the name first (INVALID_ARGUMENT / NOT_FOUND)
        plan = await asyncio.to_thread(self.planner.plan, state, name, self._now_us(), self.can_start)
        return await asyncio.to_thread(
            status_proto, state, name, self.planner, plan, drift, self._last.get(name, "")
        )

    # ------------------------------------------------------------------ the loop

    async def tick(self, name: str) -> str:
        """Plan `name` on the replica's state and carry the plan out; the tick in words."""
        state = self.replica.state
        plan = await asyncio.to_thread(self.planner.plan, state, name, self._now_us(), self.can_start)
        if plan.decision is not None:
            decision = plan.decision
            try:  # the gateway's own decision, taken on `state`: no request id
                outcome = await asyncio.to_thread(
                    self.commands.run, "Learning", None, lambda _: decision, state=state
                )
            except Aborted:
                return "another writer changed the deployment first; re-planned on the next tick"
            if outcome.appended is not None:
                await self.replica.wait_for(outcome.appended.last_position, timeout=10)
                structlog.get_logger().info("learning_decided", deployment=name, decision=plan.text)
        if plan.request is None or self.link is None:
            return plan.text
        try:
            accepted = await self.link.start(plan.request)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in _FINAL:
                return (
                    f"{plan.text}; the optimizer did not answer ({exc.code().name}): retried on the next tick"
                )
            await self._job_refused(name, plan.run_id, f"{exc.code().name}: {(exc.details() or '')[:300]}")
            return f"{plan.text}; the optimizer refused the job: {exc.code().name}"
        return f"{plan.text}; job {accepted.job_id} accepted"

    async def _job_refused(self, name: str, run_id: str, reason: str) -> None:
        """A job the optimizer will never accept ends its run (else every tick would ask again)."""
        state = self.replica.state
        deployment = state.deployments[name]
        learning = deployment.learning
        run = learning.run(run_id) if learning is not None else None
        if run is None or not run.active:
            return
        ended = pb.LearningRunEnded(
            deployment=name,
            run_id=run_id,
            result="job_failed",
            reason=f"the optimizer refused the job: {reason}",
        )
        decision = Decision(deployment_stream(name), [ended], deployment.stream_version)
        try:
            outcome = await asyncio.to_thread(
                self.commands.run, "Learning", None, lambda _: decision, state=state
            )
        except Aborted:
            return
        if outcome.appended is not None:
            await self.replica.wait_for(outcome.appended.last_position, timeout=10)

    async def loop(self, interval: float) -> None:
        """Every gateway ticks every deployment with a learning policy; the log settles who
        appends. A tick that cannot run is logged once per reason and shown in `learn status`."""
        current_actor.set(SYSTEM)  # this task's context only: the loop's decisions are the service's own
        if self.link is None:
            structlog.get_logger().info("learning_loop_idle", reason=NO_OPTIMIZER)
        while True:
            await asyncio.sleep(interval)
            for name, deployment in list(self.replica.state.deployments.items()):
                if deployment.learning is None or not deployment.learning.enabled:
                    continue
                try:
                    text = await self.tick(name)
                except Exception as exc:  # must not stop the loop: the next tick retries
                    text = (
                        f"learning tick failed; nothing was decided: {type(exc).__name__}: {str(exc)[:200]}"
                    )
                    if text not in self._logged:
                        self._logged.add(text)
                        structlog.get_logger().error("learning_tick_failed", deployment=name, error=text)
                self._last[name] = text
