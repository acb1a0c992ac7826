"""The Evaluate and CompareVersions RPCs: a registered version (or a spec + state) run over
a dataset in the evaluation pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import cached_property
from pathlib import Path

from dspyops.artifacts import ArtifactStore
from dspyops.connections import Connections
from dspyops.programs.context import NO_CONTEXT, ProgramContext
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.evaluation.compare import compare_versions
from optimizer_svc.evaluation.pool import EvaluationPool
from optimizer_svc.evaluation.stream import stream_evaluation
from optimizer_svc.registry.commands import Registry


class EvaluationHandlers:
    def __init__(
        self,
        registry: Registry,
        artifacts: ArtifactStore,
        pool: EvaluationPool,
        connections: Connections,
        datasets_dir: Path | None,
        programs: ProgramContext = NO_CONTEXT,
    ) -> None:
        self.registry = registry
        self.artifacts = artifacts
        self.pool = pool
        self.connections = connections
        self.datasets_dir = datasets_dir
        self.programs = programs  # --program-modules and the corpora

    @cached_property
    def metric_modules(self) -> frozenset[str]:
        """The custom-metric allowlist, read from DSPYOPS_METRIC_MODULES once per service."""
        from dspyops.metrics import allowed_metric_modules

        return allowed_metric_modules()

    async def evaluate(self, request: opb.EvaluateRequest) -> AsyncIterator[opb.EvaluationEvent]:
        async for event in stream_evaluation(
            request,
            self.registry,
            self.artifacts,
            self.metric_modules,
            self.datasets_dir,
            self.pool,
            self.connections,
            self.programs,
        ):
            yield event

    async def compare_versions(self, request: opb.CompareVersionsRequest) -> opb.VersionComparison:
        slot = self.pool.admit()
        modules = self.metric_modules
        return await self.pool.run(
            slot,
            lambda token, callbacks: compare_versions(
                request,
                self.registry,
                self.artifacts,
                modules,
                self.datasets_dir,
                self.connections,
                token,
                callbacks,
                self.programs,
            ),
        )
