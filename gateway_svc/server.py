"""gateway_svc's configuration, start and drain: opens the log (or connects to the
optimizer), restores from a snapshot, catches up, then serves the Gateway service
(gateway_svc.servicer) until told to stop."""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import structlog
from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry

from dspyops import rpc, serving, telemetry
from dspyops.connections import load_for_server
from dspyops.eventlog import ChainChecker, EventStore, is_server_log, log_file, log_name, open_store
from dspyops.health import HealthServicer
from dspyops.keyfiles import secret_path
from dspyops.lm import OFFLINE
from dspyops.logs import configure
from dspyops.logstart import (
    BrokenChain,
    StartCheck,
    StartRefused,
    broken_chain_refusal,
    chain_key,
    log_routing_secret,
    open_service_store,
    routing_secret,
    start_point,
)
from dspyops.programs.context import ProgramContext
from dspyops.prometheus.http import MetricsEndpoint
from dspyops.proto import gateway_pb2_grpc
from dspyops.snapshots import SnapshotStore
from dspyops.snapshots.backends import open_snapshots
from dspyops.state import EMPTY, State
from gateway_svc.corpora import GatewayCorpora, restore_corpora
from gateway_svc.file_source import FileLogSource
from gateway_svc.learning.job import OptimizerLink
from gateway_svc.metrics import GatewayMetrics
from gateway_svc.readiness import Readiness
from gateway_svc.records import PredictionStore
from gateway_svc.records.postgres import PostgresPredictionStore
from gateway_svc.records.sqlite import SQLitePredictionStore
from gateway_svc.remote_source import RemoteLogSource
from gateway_svc.replica import Replica
from gateway_svc.restore import snapshot_at_stop
from gateway_svc.retention import retention_loop
from gateway_svc.servicer import SERVICE, GatewayService
from gateway_svc.verified_source import VerifiedSource


@dataclass(frozen=True)
class GatewayConfig:
    log: str = ""  # SQLite log path (same machine) ...
    optimizer: str = ""  # ... or the optimizer's address, to tail its SubscribeLog
    # prediction records file; default: beside a file log (<log>.predictions), in a PostgreSQL
    # log's database (shared by its gateways); required with `optimizer`
    predictions: str = ""
    canary_interval: float = 1.0  # seconds between canary checks; 0 disables the loop
    security: rpc.Security = field(default_factory=rpc.Security)  # bearer tokens and TLS (default: neither)
    # how to reach a secured optimizer (with `optimizer` only): a token with the reader role,
    # the CA of its certificate (turns TLS on), and a client certificate if it requires one
    upstream_token: str = ""
    upstream_tls_ca: str = ""
    upstream_tls_cert: str = ""
    upstream_tls_key: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    port_file: str = ""
    metrics_port: int | None = None  # Prometheus /metrics on host (0: any free port); None: none
    metrics_port_file: str = ""  # the bound metrics port is written here
    lm_connections: str = ""  # TOML file of LM connections, the optimizer's (none: only the offline one)
    allow_request_endpoints: tuple[str, ...] = ()  # endpoints versions registered with one may use
    chain_key_file: str = ""  # the log's chain key: keyed links verify, new links are keyed
    allow_broken_log: bool = False  # start (and keep tailing) on a broken chain, with a warning
    create: bool = False  # create a missing log even where files of an earlier one exist
    program_modules: frozenset[str] = frozenset()  # modules user classes and ReAct tools may come from
    allow_code_drift: bool = False  # serve a version whose user code differs from its record
    keep_idle_programs: int = 4  # programs that stopped serving kept loaded, the latest (a route back)
    drift_interval: float = 5.0  # seconds between drift checks of monitored deployments; 0: none
    capture_purge_interval: float = 600.0  # seconds between retention sweeps of captured data; 0: none
    evaluator_queue: int = 1000  # online evaluators' queued work; more is dropped and counted
    evaluator_workers: int = 2  # tasks running it (0: nothing runs, queued work waits: the drop drill)
    # wall clock of retention, canary monitoring periods and learning intervals (tests move it)
    clock: Callable[[], float] = time.time
    # the learning loop: seconds between ticks (0: none); the optimizer its retrains run on, an
    # operator token for it, the CA of its certificate (TLS); none: the loop starts no job
    learning_interval: float = 5.0
    learning_optimizer: str = ""
    learning_token: str = ""
    learning_tls_ca: str = ""
    # traces (dspyops.telemetry): RPC, module-call and LM-call spans, the tail's context sent
    # on; None: none made. trace_content: prompts and completions on LM spans (scrubbed)
    tracer_provider: TracerProvider | None = None
    trace_content: bool = False


class RunningGateway:
    def __init__(
        self,
        server: grpc.aio.Server,
        port: int,
        replica: Replica,
        records: PredictionStore,
        store: EventStore | None,
        health: HealthServicer,
        snapshots: SnapshotStore | None = None,
        snapshot_from: int | None = None,
    ) -> None:
        """`snapshot_from`: save a snapshot at stop when the replica passed this position
        (None: never; see start)."""
        self.server = server
        self.port = port
        self.replica = replica
        self.records = records
        self.store = store
        self.health = health
        self.snapshots = snapshots
        self.snapshot_from = snapshot_from
        self.tasks: list[asyncio.Task[None]] = []
        self.learning_link: OptimizerLink | None = None  # closed at stop
        self.metrics: MetricsEndpoint | None = None  # stopped at stop

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace: float = 5.0) -> None:
        await self.health.enter_graceful_shutdown()  # NOT_SERVING first; Watch streams end
        for task in self.tasks:
            task.cancel()
        await self.server.stop(grace)  # lets in-flight predictions finish within the grace period
        await self.replica.stop()
        if self.metrics is not None:
            self.metrics.stop()
        if self.learning_link is not None:
            await self.learning_link.close()
        self.records.close()
        if self.snapshots is not None:
            if self.store is not None and self.snapshot_from is not None:
                state = self.replica.state
                await asyncio.to_thread(
                    snapshot_at_stop, self.store, self.snapshots, state, self.snapshot_from
                )
            self.snapshots.close()
        if self.store is not None:
            self.store.close()


async def _refusal(
    exc: BaseException, store: EventStore | None, check: StartCheck | None, allow_broken: bool
) -> StartRefused | None:
    """What a start that failed while replaying says. A replay stopped by anything but a broken
    link (a row it could not even read: a column rewritten by hand) is explained by the walk
    of the chain when the walk finds a broken link, as the start's walk did before replays
    checked links themselves."""
    if isinstance(exc, BrokenChain):
        return broken_chain_refusal("gateway", exc.position, exc.reason)
    if not isinstance(exc, Exception):
        return None
    if store is not None and check is not None:
        try:
            await asyncio.to_thread(check.walk, store, allow_broken=allow_broken, service="gateway")
        except StartRefused as found:
            return found
        except Exception:  # the walk could not say either: the replay's own error does
            pass
    return StartRefused(f"gateway: {exc}")


async def start(config: GatewayConfig) -> RunningGateway:
    configure("gateway_svc")
    if bool(config.log) == bool(config.optimizer):
        raise ValueError("give exactly one of log (a file path) or optimizer (an address)")
    upstream = (
        config.upstream_token,
        config.upstream_tls_ca,
        config.upstream_tls_cert,
        config.upstream_tls_key,
    )
    if config.log and any(upstream):
        raise ValueError("upstream_*: only a gateway tailing a remote optimizer has an upstream")
    if config.learning_optimizer and not config.log:
        raise ValueError("learning_optimizer: only a gateway on the log runs the learning loop")
    connections = load_for_server(config.lm_connections, config.allow_request_endpoints)
    if any(name != OFFLINE for name in connections.names()):
        # Versions on these connections call litellm, whose import takes seconds (4-7 s on 2
        # cores): paid here, before serving, not by such a version's first predictions, which
        # would otherwise stall through a canary step's whole monitoring period.
        await asyncio.to_thread(importlib.import_module, "litellm")
    source: VerifiedSource
    check: StartCheck | None = None
    store: EventStore | None = None
    snapshots: SnapshotStore | None = None
    head: int | None = None
    initial: State = EMPTY
    corpus_documents: dict[str, bytes] = {}
    server_log = is_server_log(config.log)
    # the records: an explicit file wins; else beside a file log, or in a PostgreSQL log's
    # database (shared by every gateway on it: "" here)
    predictions = config.predictions or (
        f"{log_file(config.log)}.predictions" if config.log and not server_log else ""
    )
    if not predictions and not server_log:
        raise ValueError("a gateway tailing a remote optimizer needs predictions (a file for its records)")
    key = chain_key(config.chain_key_file)
    if config.log:
        store = open_service_store(
            config.log, key, create=config.create, evidence=[Path(predictions)] if predictions else []
        )
        try:
            # the log's one secret (beside a file log, in a PostgreSQL log's database), so any
            # gateway's explain --key checks any gateway's record
            secret = await asyncio.to_thread(log_routing_secret, config.log)
            # the log's snapshots (a PostgreSQL log's in its database, shared by every process
            # on it): the chain check and the restore start from the newest, and history after
            snapshots = await asyncio.to_thread(open_snapshots, config.log, key)
            try:
                # the links after the snapshot are checked as the replica's replay reads them
                # (VerifiedSource): one read of the log, not a walk and then a replay
                check = await asyncio.to_thread(start_point, store, snapshots)
            except BaseException:
                snapshots.close()
                raise
            head = await asyncio.to_thread(store.head)
            # the tail gets its own connections, so it never waits behind a command's append
            tail_store = open_store(config.log, chain_key=key, create=False)
            source = VerifiedSource(
                FileLogSource(tail_store), check.checker, allow_broken=config.allow_broken_log
            )
            try:
                if check.snapshot is not None:  # the replica reads its serving versions' artifacts
                    initial = check.snapshot
                    structlog.get_logger().info("restored_from_snapshot", position=initial.position)
                corpus_documents = await asyncio.to_thread(restore_corpora, store, initial)
            except BaseException:
                tail_store.close()
                snapshots.close()
                raise
        except BaseException:
            store.close()
            raise
    else:
        secret = routing_secret(secret_path(predictions))
        remote = RemoteLogSource(
            config.optimizer,
            token=config.upstream_token,
            tls_ca=config.upstream_tls_ca,
            tls_cert=config.upstream_tls_cert,
            tls_key=config.upstream_tls_key,
            tracer_provider=config.tracer_provider,
        )
        # verified from the first event received, with the log's key when it is keyed
        source = VerifiedSource(remote, ChainChecker(key=key), allow_broken=config.allow_broken_log)
    try:
        records = await asyncio.to_thread(prediction_store, predictions, config.log, secret)
    except BaseException:
        for opened in (store, snapshots):
            if opened is not None:
                opened.close()
        raise
    # this server's own registry (never prometheus_client's global one: tests run several)
    metrics_registry = CollectorRegistry() if config.metrics_port is not None else None
    server, health = rpc.make_server(
        [SERVICE], config.security, metrics=metrics_registry, tracer_provider=config.tracer_provider
    )
    described = (
        (f"the log {log_name(config.log)}" if server_log else f"the log file {config.log}")
        if config.log
        else f"the optimizer at {config.optimizer}"
    )
    readiness = Readiness(described, health, [SERVICE], through_outage=bool(config.log) and server_log)
    # a gateway on the log keeps the serving versions' artifacts and reads any other from the
    # log when it loads it; one tailing an optimizer keeps every artifact it receives
    replica = Replica(source, initial, readiness, GatewayCorpora(corpus_documents), log=store)
    # history (as-of reads, rollback, answers to retried commands) starts from snapshots too
    history_snapshots = snapshots if config.log else None
    service = GatewayService(
        replica,
        records,
        store,
        connections,
        history_snapshots,
        # a version's Retrieve stages search the corpus digests its lineage recorded
        ProgramContext(
            program_modules=config.program_modules,
            pinned=lambda lineage, stages: replica.corpora.for_version(lineage, replica.state, stages),
        ),
        config.allow_code_drift,
        config.clock,
        config.evaluator_queue,
        OptimizerLink(config.learning_optimizer, config.learning_token, config.learning_tls_ca)
        if config.learning_optimizer and config.log
        else None,
        tracer=telemetry.tracer(config.tracer_provider),
        trace_content=config.trace_content,
        keep_idle_programs=config.keep_idle_programs,
    )
    gateway_pb2_grpc.add_GatewayServicer_to_server(service, server)
    port = rpc.bind(server, config.host, config.port, config.security)
    # after the gRPC bind: a bind that fails leaves no metrics thread behind
    endpoint = None
    if metrics_registry is not None and config.metrics_port is not None:
        service.count_into(
            GatewayMetrics(metrics_registry, replica, store, records, service.predictions.programs)
        )
        endpoint = MetricsEndpoint(
            metrics_registry, config.host, config.metrics_port, config.metrics_port_file
        )
    await server.start()
    # NOT_SERVING until the first catch-up is done; the readiness turns it to SERVING then
    await rpc.set_serving(health, [SERVICE], serving=False)
    # A file gateway replays its own file before it opens for business (port file included)
    # and refuses to start when it cannot (a broken chain, a log replaced meanwhile); a remote
    # one cannot know when (or whether) its optimizer will answer, so it starts listening at
    # once and says so through health.
    try:
        await replica.start(head)
    except BaseException as exc:
        await server.stop(0)
        await replica.stop()
        refusal = await _refusal(exc, store, check, config.allow_broken_log)
        if endpoint is not None:
            endpoint.stop()
        records.close()
        if store is not None:
            store.close()
        if history_snapshots is not None:
            history_snapshots.close()
        if refusal is not None:
            raise refusal from exc
        raise
    structlog.get_logger().info(
        "gateway_listening",
        port=port,
        position=replica.state.position,
        serving=readiness.ready,
        # where the start began: the snapshot's position (0: none, a full replay), and what it folded since
        restored_from=initial.position,
        folded=replica.folded,
        records=repr(records),
    )
    if config.port_file:
        with open(config.port_file, "w") as fh:
            fh.write(str(port))
    # A gateway on a PostgreSQL log leaves a snapshot of where it got to when it stops: the
    # table is every process's on that log, so the next gateway to start (a rolling restart,
    # a new replica) folds only what came after. A file log's snapshots stay the optimizer's
    # (it writes them beside the file as its fold passes SNAPSHOT_EVERY events); a gateway
    # serving a broken chain leaves none (a snapshot is trusted without its chain).
    snapshot_from = initial.position if server_log and not config.allow_broken_log else None
    running = RunningGateway(server, port, replica, records, store, health, history_snapshots, snapshot_from)
    running.metrics = endpoint
    if service.deployments is not None and config.canary_interval > 0:  # a gateway on the log file
        running.tasks.append(
            asyncio.create_task(service.deployments.canary_loop(config.canary_interval), name="canary-loop")
        )
    if service.deployments is not None and config.drift_interval > 0:  # appends: a gateway on the log
        running.tasks.append(
            asyncio.create_task(service.drift.loop(config.drift_interval), name="drift-loop")
        )
    for i in range(config.evaluator_workers):  # off the Predict path: their own tasks and queue
        running.tasks.append(asyncio.create_task(service.evaluators.runner.work(), name=f"evaluator-{i}"))
    running.learning_link = service.learning.link if service.learning is not None else None
    if service.learning is not None and config.learning_interval > 0:  # appends: a gateway on the log
        running.tasks.append(
            asyncio.create_task(service.learning.loop(config.learning_interval), name="learning-loop")
        )
    if config.capture_purge_interval > 0:
        running.tasks.append(
            asyncio.create_task(
                retention_loop(records, config.capture_purge_interval, config.clock), name="capture-retention"
            )
        )
    return running


def prediction_store(predictions: str, log: str, secret: bytes) -> PredictionStore:
    """The records file when there is one (given, or beside a file log), else the tables of
    the PostgreSQL log's database."""
    if predictions:
        return SQLitePredictionStore(predictions, secret=secret)
    return PostgresPredictionStore(log, secret=secret)


async def serve(config: GatewayConfig, grace: float = 5.0) -> None:
    """Run until SIGTERM/SIGINT, then drain (dspyops.serving): health NOT_SERVING, new calls
    are refused, calls in flight get `grace` seconds to finish (their prediction records
    committed), then exit."""
    running = await start(config)
    await serving.serve_until_signalled(running, "gateway", grace)
