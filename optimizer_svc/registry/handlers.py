"""The registry and deployment RPCs: reads of the folded state, and the commands of
optimizer_svc.registry.commands run off the event loop (they append with an fsync)."""

from __future__ import annotations

import asyncio
import functools

from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.registry.commands import Registry, RouteInput
from optimizer_svc.registry.views import deployment_view, program_view, version_view


class RegistryHandlers:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.ledger = registry.ledger

    # ------------------------------------------------------------------ programs and versions

    async def list_programs(self, request: opb.ListProgramsRequest) -> opb.ListProgramsResponse:
        state = await asyncio.to_thread(self.ledger.read_state)
        return opb.ListProgramsResponse(
            programs=[program_view(p) for p in sorted(state.programs.values(), key=lambda p: p.name)]
        )

    async def list_versions(self, request: opb.ListVersionsRequest) -> opb.ListVersionsResponse:
        program = await asyncio.to_thread(self.registry.program, request.program)
        return opb.ListVersionsResponse(
            versions=[version_view(v, program) for v in program.versions.values()]
        )

    async def get_version(self, request: opb.GetVersionRequest) -> opb.ProgramVersion:
        version = await asyncio.to_thread(self.registry.version, request.program, request.version)
        return version_view(version, self.ledger.state.programs[request.program])

    async def set_version_status(self, request: opb.SetVersionStatusRequest) -> opb.ProgramVersion:
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

    async def set_alias(self, request: opb.SetAliasRequest) -> opb.ProgramInfo:
        outcome = await asyncio.to_thread(
            functools.partial(
                self.registry.set_alias, request.program, request.alias, request.version, request=request
            )
        )
        return program_view(outcome.state.programs[request.program])

    # ------------------------------------------------------------------ deployments

    async def create_deployment(self, request: opb.CreateDeploymentRequest) -> opb.Deployment:
        outcome = await asyncio.to_thread(
            functools.partial(
                self.registry.create_deployment, request.deployment, request.program, request=request
            )
        )
        return deployment_view(outcome.state.deployments[request.deployment])

    async def set_routes(self, request: opb.SetRoutesRequest) -> opb.Deployment:
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

    async def set_capture_policy(self, request: opb.SetCapturePolicyRequest) -> opb.Deployment:
        expected = request.expected_version if request.HasField("expected_version") else None
        outcome = await asyncio.to_thread(
            functools.partial(
                self.registry.set_capture_policy,
                request.deployment,
                request.policy,
                expected,
                request.reason,
                request=request,
            )
        )
        return deployment_view(outcome.state.deployments[request.deployment])

    async def get_deployment(self, request: opb.GetDeploymentRequest) -> opb.Deployment:
        return deployment_view(await asyncio.to_thread(self.registry.deployment, request.deployment))

    async def list_deployments(self, request: opb.ListDeploymentsRequest) -> opb.ListDeploymentsResponse:
        state = await asyncio.to_thread(self.ledger.read_state)
        return opb.ListDeploymentsResponse(
            deployments=[deployment_view(d) for d in sorted(state.deployments.values(), key=lambda d: d.name)]
        )
