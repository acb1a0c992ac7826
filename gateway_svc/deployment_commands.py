"""The gateway's deployment commands (experiments, canaries, rollback) and its canary loop.

Each command is a decision on the replica's state (gateway_svc.experiments,
gateway_svc.canary) carried out by the one writer path (dspyops.commands), in a thread
since it appends; the answer is the deployment's state right after the command's batch,
once the replica has folded it, so the caller's next request sees the change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from dspyops.actor import SYSTEM, current_actor
from dspyops.commands import Commands, Decision
from dspyops.proto import gateway_pb2 as gpb
from dspyops.state import State
from gateway_svc.canary import Canaries
from gateway_svc.experiments import Experiments, deployment_of
from gateway_svc.replica import Replica
from gateway_svc.views import StateViews


class DeploymentCommands:
    def __init__(
        self,
        commands: Commands,
        replica: Replica,
        views: StateViews,
        experiments: Experiments,
        canaries: Canaries,
    ) -> None:
        self.commands = commands
        self.replica = replica
        self.views = views
        self.experiments = experiments
        self.canaries = canaries

    async def run(
        self, method: str, decide: Callable[[State, Any], Decision], request: Any
    ) -> gpb.DeploymentState:
        """Run a deployment command through the one writer path, deciding on the replica's
        state (in a thread: it appends), then answer with the state right after its batch."""
        outcome = await asyncio.to_thread(
            self.commands.run, method, request, lambda state: decide(state, request)
        )
        state = await self._settled(outcome.state)
        return self.views.deployment(state, deployment_of(state, request.deployment))

    async def _settled(self, state: State) -> State:
        """A command's answer: the state right after its batch (for a retry, the first
        attempt's batch), once the replica has folded it too, so the caller's next request
        sees the change. The replica's own state when it is exactly there (its hash is cached)."""
        await self.replica.wait_for(state.position, timeout=10)
        return self.replica.state if self.replica.state.position == state.position else state

    async def evaluate_canary(self, name: str) -> gpb.CanaryStatus:
        checks = self.views.canary_checks
        state = self.replica.state
        deployment = deployment_of(state, name)  # a bad name is the caller's error, not a failed check
        try:
            decision = await asyncio.to_thread(self.canaries.evaluate, state, name)
        except Exception as exc:  # records unreadable, the log failing...: say why, decide nothing
            if deployment.canary is None:
                raise
            reason = checks.failed(name, deployment.canary.canary_id, exc)
            return gpb.CanaryStatus(
                deployment=name,
                canary=deployment.canary.to_proto(),
                action="failed",
                reason=reason,
                state=self.views.deployment(state, deployment),
            )
        if decision.canary is not None:
            checks.ran(name, decision.canary.canary_id, decision.reason)
        if decision.appended:
            # wait until the replica has folded our own append, so the answer shows it
            await self.replica.wait_for(decision.appended.last_position, timeout=10)
        state = self.replica.state
        status = gpb.CanaryStatus(
            deployment=name,
            action=decision.action,
            reason=decision.reason,
            state=self.views.deployment(state, deployment_of(state, name)),
        )
        if decision.canary is not None:
            status.canary.CopyFrom(decision.canary.to_proto())
        if decision.check is not None:
            status.check.CopyFrom(decision.check)
        if decision.appended:
            structlog.get_logger().info(
                "canary_decision", deployment=name, action=decision.action, reason=decision.reason
            )
        return status

    async def canary_loop(self, interval: float) -> None:
        """Every gateway checks running canaries; the log settles who decides (expected_version).
        Decisions taken here are the service's own, recorded with the SYSTEM actor."""
        current_actor.set(SYSTEM)  # this task's context only
        while True:
            await asyncio.sleep(interval)
            for name, deployment in list(self.replica.state.deployments.items()):
                if deployment.canary is None:
                    continue
                try:
                    await self.evaluate_canary(name)  # a check that cannot run answers "failed"
                except Exception as exc:  # anything else must not stop the loop: the next tick retries
                    self.views.canary_checks.failed(name, deployment.canary.canary_id, exc)
