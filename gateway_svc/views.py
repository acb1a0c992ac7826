"""Folded state -> the DeploymentState messages the gateway's RPCs answer with."""

from __future__ import annotations

from dspyops.fold import state_hash
from dspyops.proto import gateway_pb2 as gpb
from dspyops.state import DeploymentState, State
from dspyops.views import routes_proto
from gateway_svc.canary import CheckBook
from gateway_svc.replica import Replica


class StateViews:
    def __init__(self, replica: Replica, canary_checks: CheckBook) -> None:
        self.replica = replica
        self.canary_checks = canary_checks  # the last check of each running canary, in words
        self._hash_cache: tuple[int, str] = (-1, "")

    def _state_hash(self, state: State) -> str:
        """The replica's state hash, computed once per position (other states: each time)."""
        if state is not self.replica.state:
            return state_hash(state)
        if self._hash_cache[0] != state.position:
            self._hash_cache = (state.position, state_hash(state))
        return self._hash_cache[1]

    def deployment(self, state: State, deployment: DeploymentState) -> gpb.DeploymentState:
        view = gpb.DeploymentState(
            deployment=deployment.name,
            program=deployment.program,
            routes=routes_proto(deployment.routes),
            log_position=state.position,
            state_hash=self._state_hash(state),
            changed_at_position=deployment.changed_position,
            stream_version=deployment.stream_version,
        )
        if deployment.experiment is not None:
            view.experiment.CopyFrom(deployment.experiment.to_proto())
        if deployment.canary is not None:
            view.canary.CopyFrom(deployment.canary.to_proto())
            view.canary_check = self.canary_checks.text(deployment.name, deployment.canary.canary_id)
        if deployment.capture is not None:
            view.capture.CopyFrom(deployment.capture.to_proto())
        if deployment.drift is not None:
            view.drift.CopyFrom(deployment.drift.to_proto())
        view.evaluators.extend(e.to_proto() for e in deployment.evaluators)
        return view

    def deployments(self, state: State) -> gpb.ListDeploymentStatesResponse:
        return gpb.ListDeploymentStatesResponse(
            deployments=[
                self.deployment(state, d) for d in sorted(state.deployments.values(), key=lambda d: d.name)
            ],
            log_position=state.position,
        )
