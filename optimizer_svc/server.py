"""Start and drain optimizer_svc: open and verify the log, build the service, serve.

The RPCs themselves are optimizer_svc.servicer's; this module wires them to one log, one
ledger, the artifact store, the job manager and the evaluation pool, and stops them in the
order that leaves the record whole (health first, jobs released, calls drained, lease last).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import structlog
from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry

from dspyops import rpc, serving, telemetry
from dspyops.artifacts import ArtifactStore
from dspyops.artifacts.backends import open_artifacts
from dspyops.artifacts.files import FileArtifactStore
from dspyops.connections import Connections, load_for_server
from dspyops.corpora import log_corpora, program_context
from dspyops.eventlog import EventStore, WriterLease, is_server_log, log_name
from dspyops.health import HealthServicer
from dspyops.ledger import Ledger
from dspyops.lmcache import open_lm_cache
from dspyops.logs import configure
from dspyops.logstart import chain_key, log_routing_secret, open_service_store, verify_at_start, writer_lease
from dspyops.programs.context import ProgramContext
from dspyops.prometheus.http import MetricsEndpoint
from dspyops.proto import optimizer_pb2 as opb
from dspyops.proto import optimizer_pb2_grpc
from dspyops.snapshots.backends import open_snapshots
from optimizer_svc import metrics
from optimizer_svc.corpora import CorpusHandlers
from optimizer_svc.evaluation.handlers import EvaluationHandlers
from optimizer_svc.evaluation.pool import DEFAULT_MAX_EVALUATIONS, EvaluationPool
from optimizer_svc.imports import ImportHandlers
from optimizer_svc.jobs.executor import EXECUTORS, JobExecutor, ThreadExecutor
from optimizer_svc.jobs.handlers import JobHandlers
from optimizer_svc.jobs.manager import JobManager
from optimizer_svc.log_reading import (
    DEFAULT_MAX_SUBSCRIBERS,
    DEFAULT_MAX_SUBSCRIBERS_PER_ACTOR,
    LogHandlers,
    subscriber_cap,
)
from optimizer_svc.registry.commands import Registry
from optimizer_svc.registry.handlers import RegistryHandlers
from optimizer_svc.servicer import OptimizerService

SERVICE = opb.DESCRIPTOR.services_by_name["Optimizer"].full_name


@dataclass(frozen=True)
class OptimizerConfig:
    log: str  # path of the SQLite log (or a store URL)
    # the artifact directory; None: a postgresql:// log keeps them in its database (a file log needs one)
    data_dir: Path | None = None
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
    program_modules: frozenset[str] = frozenset()  # modules user classes and ReAct tools may come from
    executor: str = "thread"  # where jobs run: "thread" (in this process) or "ray" (Ray tasks)
    ray_address: str = "local"  # with executor "ray": a cluster's address, or "local" to start one
    ray_job_cpus: float = 1.0  # with executor "ray": the CPUs Ray reserves for each job's task
    job_max_attempts: int = 1  # runs of a job whose replica died, for requests that leave it 0
    job_lease_seconds: float = 15.0  # a job's lease: another replica takes it over this long after
    max_queued: int = 16  # jobs waiting for a replica (beyond: FAILED_PRECONDITION)
    metrics_port: int | None = None  # Prometheus /metrics on host (0: any free port); None: none
    metrics_port_file: Path | None = None  # the bound metrics port is written here
    # traces (dspyops.telemetry): RPC, job and trial spans; None: none made, nothing exported
    tracer_provider: TracerProvider | None = None


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
        artifacts: ArtifactStore | None = None,
        metrics: MetricsEndpoint | None = None,
    ) -> None:
        self.server = server
        self.metrics = metrics
        self.port = port
        self.jobs = jobs
        self.store = store
        self.health = health
        self.evaluations = evaluations
        self.lease = lease
        self.artifacts = artifacts

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace: float = 5.0) -> None:
        await self.health.enter_graceful_shutdown()  # NOT_SERVING first; Watch streams end
        await asyncio.to_thread(self.jobs.shutdown, "optimizer shutting down", grace)
        await self.server.stop(grace)  # evaluations in flight get the grace; then their RPCs end
        if self.evaluations is not None:
            self.evaluations.shutdown()  # and whatever still runs stops at its next LM call
        if self.metrics is not None:
            self.metrics.stop()
        self.store.close()
        if self.artifacts is not None:
            self.artifacts.close()
        if self.lease is not None:
            self.lease.release()  # last: no other optimizer may append before this one is done


async def start(config: OptimizerConfig) -> RunningOptimizer:
    configure("optimizer_svc")
    connections = load_for_server(config.lm_connections, config.allow_request_endpoints)
    key = chain_key(config.chain_key_file)
    if config.data_dir is None and not is_server_log(config.log):
        raise ValueError("data_dir: a file log's optimizer needs a directory for its artifacts")
    evidence = [config.data_dir / "artifacts"] if config.data_dir is not None else []
    store = open_service_store(config.log, key, create=config.create, evidence=evidence, home=config.data_dir)
    try:
        # a file log: one optimizer for its lifetime; PostgreSQL: any number (each job is
        # claimed on its own stream, optimizer_svc.jobs.claims)
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
    if config.data_dir is not None:
        config.data_dir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(log_routing_secret, config.log)  # created with the log; the gateways use it
    # the writer keeps snapshots of its fold (beside a file log; in a PostgreSQL log's
    # database), so restarts and gateways fold only the tail
    snapshots = await asyncio.to_thread(open_snapshots, config.log, key)
    check = await asyncio.to_thread(
        verify_at_start, store, snapshots, allow_broken=config.allow_broken_log, service="optimizer"
    )
    ledger = await asyncio.to_thread(functools.partial(Ledger, store, snapshots, initial=check.snapshot))
    registry = Registry(ledger)
    artifacts = await asyncio.to_thread(artifact_store, config)
    programs = program_context(
        ProgramContext(program_modules=config.program_modules),
        log_corpora(store, ledger.refresh, artifacts),
        ledger.refresh,
    )
    executor = await asyncio.to_thread(job_executor, config, ledger, artifacts)
    # the jobs' LM calls, kept per job until it ends, in the log's database (dspyops.lmcache)
    lm_cache = await asyncio.to_thread(open_lm_cache, config.log)
    jobs = JobManager(
        ledger,
        registry,
        artifacts,
        asyncio.get_running_loop(),
        max_running=config.max_jobs,
        datasets_dir=config.datasets_dir,
        connections=connections,
        programs=programs,
        executor=executor,
        max_attempts=config.job_max_attempts,
        lease_ms=int(config.job_lease_seconds * 1000),
        max_queued=config.max_queued,
        exclusive=lease.exclusive,  # a file log's lock: the owners of its earlier claims are dead
        lm_cache=lm_cache,
        tracer=telemetry.tracer(config.tracer_provider),
    )
    orphans = await asyncio.to_thread(jobs.start)
    # this server's own registry (never prometheus_client's global one: tests run several)
    metrics_registry = CollectorRegistry() if config.metrics_port is not None else None
    server, health = rpc.make_server(
        [SERVICE], config.security, metrics=metrics_registry, tracer_provider=config.tracer_provider
    )
    evaluations = EvaluationPool(config.max_evaluations)
    log_handlers = LogHandlers(
        store, subscriber_cap(config.max_subscribers, config.max_subscribers_per_actor)
    )
    service = OptimizerService(
        JobHandlers(jobs, connections),
        RegistryHandlers(registry),
        EvaluationHandlers(registry, artifacts, evaluations, connections, config.datasets_dir, programs),
        ImportHandlers(registry, artifacts, connections, programs),
        log_handlers,
        connections,
        CorpusHandlers(ledger, artifacts, config.datasets_dir),
    )
    optimizer_pb2_grpc.add_OptimizerServicer_to_server(service, server)
    port = rpc.bind(server, config.host, config.port, config.security)
    # after the gRPC bind: a bind that fails leaves no metrics thread behind
    endpoint = None
    if metrics_registry is not None and config.metrics_port is not None:
        jobs.on_usage = metrics.register(metrics_registry, ledger, store, log_handlers.subscribers).job_ended
        endpoint = MetricsEndpoint(
            metrics_registry, config.host, config.metrics_port, config.metrics_port_file or ""
        )
    await server.start()
    await rpc.set_serving(health, [SERVICE])
    structlog.get_logger().info(
        "optimizer_listening", port=port, log=log_name(config.log), interrupted_jobs=orphans
    )
    if config.port_file:
        config.port_file.write_text(str(port))
    return RunningOptimizer(server, port, jobs, store, health, evaluations, lease, artifacts, endpoint)


def artifact_store(config: OptimizerConfig) -> ArtifactStore:
    """``--data-dir``'s artifacts directory when given (it wins), else the log's database's
    artifacts table (a postgresql:// log: nothing else for replicas or Ray workers to mount)."""
    if config.data_dir is not None:
        return FileArtifactStore(config.data_dir / "artifacts")
    return open_artifacts(config.log)


def job_executor(config: OptimizerConfig, ledger: Ledger, artifacts: ArtifactStore) -> JobExecutor:
    if config.executor == "thread":
        return ThreadExecutor()
    if config.executor != "ray":
        raise ValueError(f"executor: {config.executor!r} is not one of {', '.join(EXECUTORS)}")
    from optimizer_svc.jobs.ray_executor import RayExecutor  # Ray is imported only when used

    def corpora() -> dict[str, str]:
        return {name: found.digest for name, found in ledger.refresh().corpora.items()}

    return RayExecutor(
        config.ray_address,
        artifacts=str(Path(artifacts.location).resolve())
        if isinstance(artifacts, FileArtifactStore)
        else artifacts.location,
        corpora=corpora,
        job_cpus=config.ray_job_cpus,
    )


async def serve(config: OptimizerConfig, grace: float = 5.0) -> None:
    """Run until SIGTERM/SIGINT, then drain (dspyops.serving): health NOT_SERVING, running
    jobs released on the record (another replica, or the next start, runs them again),
    calls in flight get `grace` seconds to finish."""
    running = await start(config)
    await serving.serve_until_signalled(running, "optimizer", grace)
