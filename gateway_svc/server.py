"""gateway_svc's gRPC face: Predict from the replica's current state.

Predict takes one reference to the folded state, so the route it picks, the version it
runs and the log position it reports all come from the same moment of the log.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import grpc
import structlog

from dspyops import rpc, serving
from dspyops.actor import SYSTEM, current_actor
from dspyops.artifacts import ArtifactCorrupt
from dspyops.commands import Commands, Decision, check_request_id
from dspyops.connections import OFFLINE_ONLY, Connections, load_for_server
from dspyops.errors import FailedPrecondition, InvalidArgument, Unavailable
from dspyops.eventlog import ChainChecker, EventStore, log_file, open_store
from dspyops.events import decode
from dspyops.fold import state_hash
from dspyops.health import HealthServicer
from dspyops.history import History
from dspyops.keyfiles import secret_path
from dspyops.logfiles import LogFiles
from dspyops.logs import configure
from dspyops.logstart import StartRefused, chain_key, open_service_store, routing_secret, verify_at_start
from dspyops.programs import ProgramError
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import gateway_pb2_grpc
from dspyops.scrub import scrub
from dspyops.snapshots import SnapshotStore, snapshot_path
from dspyops.state import EMPTY, DeploymentState, State, VersionState
from gateway_svc.canary import Canaries, CheckBook
from gateway_svc.experiments import Experiments, deployment_of, results_proto, routes_proto
from gateway_svc.loader import LoadedProgram, ProgramCache
from gateway_svc.outcomes import check_outcome
from gateway_svc.readiness import Readiness
from gateway_svc.records import PredictionRecord, PredictionStore
from gateway_svc.replica import Replica
from gateway_svc.routing import decide, decide_from_hash, hash_value
from gateway_svc.source import FileLogSource, RemoteLogSource
from gateway_svc.verified_source import VerifiedSource

SERVICE = gpb.DESCRIPTOR.services_by_name["Gateway"].full_name
_MAX_INPUT_CHARS = 100_000


class GatewayService(gateway_pb2_grpc.GatewayServicer):
    def __init__(
        self,
        replica: Replica,
        records: PredictionStore,
        store: EventStore | None,
        connections: Connections | None = None,
        snapshots: SnapshotStore | None = None,
    ) -> None:
        self.connections = connections or OFFLINE_ONLY
        self.replica = replica
        self.records = records
        self.store = store  # None when tailing a remote optimizer: no history, no writes
        self.history = History(store, snapshots=snapshots) if store else None
        # the one writer path: commands decide from the replica's state (dspyops.commands)
        self.commands = (
            Commands(store, lambda: self.replica.state, self.history) if store and self.history else None
        )
        self.experiments = Experiments(self.history, records) if self.history else None
        self.canaries = Canaries(self.commands, records) if self.commands else None
        self.canary_checks = CheckBook()
        self.programs = ProgramCache(self.connections)
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self._hash_cache: tuple[int, str] = (-1, "")

    def _state_hash(self, state: State) -> str:
        if self._hash_cache[0] != state.position:
            self._hash_cache = (state.position, state_hash(state))
        return self._hash_cache[1]

    def _need_log(self, field: str) -> tuple[History, Experiments]:
        if self.history is None or self.experiments is None:
            raise FailedPrecondition(
                field,
                "this gateway tails a remote optimizer: history and commands need a gateway "
                "started with --log",
            )
        return self.history, self.experiments

    async def _state_as_of(self, as_of: gpb.AsOf, field: str = "as_of") -> State:
        point = as_of.WhichOneof("point")
        if point is None:
            return self.replica.state
        history, _ = self._need_log(field)
        position = await asyncio.to_thread(history.position, as_of, field)
        return await asyncio.to_thread(history.state_at, position)

    async def _applied(self, position: int) -> State:
        """Wait until the replica has folded our own append, so the answer shows it."""
        await self.replica.wait_for(position, timeout=10)
        return self.replica.state

    async def _settled(self, state: State) -> State:
        """A command's answer: the state right after its batch (for a retry, the first
        attempt's batch), once the replica has folded it too, so the caller's next request
        sees the change. The replica's own state when it is exactly there (its hash is cached)."""
        await self.replica.wait_for(state.position, timeout=10)
        return self.replica.state if self.replica.state.position == state.position else state

    # ------------------------------------------------------------------ serving

    def _load(self, version: VersionState) -> LoadedProgram:
        """The version's program, its artifact verified against the digest in the log."""
        try:
            return self.programs.get(
                version.artifact_digest,
                self.replica.artifacts[version.artifact_digest],
                f"version {version.version} of {version.program!r}",
            )
        except ArtifactCorrupt as exc:
            structlog.get_logger().error(
                "artifact_refused", program=version.program, version=version.version, error=str(exc)[:300]
            )
            raise FailedPrecondition(
                "deployment",
                f"the artifact of {version.program} {version.version} fails verification "
                f"(sha256 {version.artifact_digest[:12]}...): refused, run `dspyops log verify`",
            ) from None
        except ProgramError as exc:  # a stored spec outside the grammar, or a state that does not fit
            structlog.get_logger().error(
                "program_refused", program=version.program, version=version.version, error=str(exc)[:300]
            )
            raise FailedPrecondition(
                "deployment",
                f"version {version.version} of {version.program!r} cannot be loaded: {exc}",
            ) from None

    @rpc.unary
    async def Predict(
        self, request: gpb.PredictRequest, context: grpc.aio.ServicerContext
    ) -> gpb.PredictResponse:
        started = time.perf_counter()
        readiness = self.replica.readiness
        if not readiness.ready:  # an empty or stale replica would answer "no deployment" or worse
            raise Unavailable("", f"this gateway is not serving: {readiness.reason}")
        state = await self._state_as_of(request.as_of)
        deployment = deployment_of(state, request.deployment)
        decision = decide(deployment, request.routing_key)
        version = state.programs[deployment.program].versions[decision.version]
        loaded = self._load(version)
        inputs = dict(request.inputs)
        expected = list(loaded.inputs)
        missing = [name for name in expected if name not in inputs]
        if missing:
            raise InvalidArgument("inputs", f"missing {missing}; the program takes {expected}")
        unknown = [name for name in inputs if name not in expected]
        if unknown:
            raise InvalidArgument("inputs", f"unknown fields {unknown}; the program takes {expected}")
        for name, value in inputs.items():
            if len(value) > _MAX_INPUT_CHARS:
                raise InvalidArgument(f"inputs.{name}", f"longer than {_MAX_INPUT_CHARS} characters")
        prediction_id = uuid.uuid4().hex
        log = structlog.get_logger().bind(
            deployment=deployment.name, version=version.version, prediction_id=prediction_id
        )
        error = ""
        outputs: dict[str, str] = {}
        try:
            prediction = await loaded.module.acall(**inputs)
            outputs = {name: str(prediction.get(name, "")) for name in loaded.outputs}
        except Exception as exc:
            # scrubbed before it is cut, recorded or logged: a provider's error may echo the key
            error = scrub(f"{type(exc).__name__}: {exc}")[:500]
            log.warning("predict_failed", error=error)
        latency_ms = (time.perf_counter() - started) * 1000
        await self.records.record(
            PredictionRecord(
                prediction_id=prediction_id,
                deployment=deployment.name,
                program=deployment.program,
                version=version.version,
                bucket=decision.bucket,
                experiment_id=decision.experiment_id,
                routing_key_sha256="",  # no plain digest: reversible for guessable keys
                routing_key_hmac=self.records.key_hmac(request.routing_key),
                hash_value=decision.hash_value,
                hash_version=decision.hash_version,
                seed=decision.seed,
                log_position=state.position,
                latency_ms=latency_ms,
                error=error,
                recorded_at_us=time.time_ns() // 1000,
                outputs_json=json.dumps(outputs, sort_keys=True),
            )
        )
        if not error and request.as_of.WhichOneof("point") is None:
            self._send_to_shadows(state, deployment, inputs, prediction_id)
        if error:
            raise FailedPrecondition(
                "",
                f"version {version.version} of {deployment.program!r} could not answer "
                f"({error.split(':', 1)[0]}); prediction {prediction_id} records the failure",
            )
        return gpb.PredictResponse(
            outputs=outputs,
            program=deployment.program,
            version=version.version,
            prediction_id=prediction_id,
            log_position=state.position,
            latency_ms=latency_ms,
            bucket=decision.bucket,
            experiment_id=decision.experiment_id,
            hash_version=decision.hash_version,
            seed=decision.seed,
        )

    def _send_to_shadows(
        self, state: State, deployment: DeploymentState, inputs: dict, primary_id: str
    ) -> None:
        """Copy a share of requests to shadow routes. Their answers are recorded, never
        returned, and the caller does not wait for them."""
        for route in deployment.routes:
            if route.role != "shadow" or random.random() >= route.weight:
                continue
            task = asyncio.create_task(self._shadow(state, deployment, route.version, inputs, primary_id))
            self._shadow_tasks.add(task)
            task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(
        self, state: State, deployment: DeploymentState, version_name: str, inputs: dict, primary_id: str
    ) -> None:
        started = time.perf_counter()
        version = state.programs[deployment.program].versions[version_name]
        error, outputs = "", {}
        try:
            loaded = self._load(version)
            prediction = await loaded.module.acall(**inputs)
            outputs = {name: str(prediction.get(name, "")) for name in loaded.outputs}
        except Exception as exc:
            error = scrub(f"{type(exc).__name__}: {exc}")[:500]
        try:
            await self.records.record(
                PredictionRecord(
                    prediction_id=uuid.uuid4().hex,
                    deployment=deployment.name,
                    program=deployment.program,
                    version=version_name,
                    bucket=0,
                    experiment_id="",
                    routing_key_sha256="",
                    hash_value=0.0,
                    hash_version=0,
                    seed="",
                    log_position=state.position,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    error=error,
                    recorded_at_us=time.time_ns() // 1000,
                    outputs_json=json.dumps(outputs, sort_keys=True),
                    shadow_of=primary_id,
                )
            )
        except Exception:
            structlog.get_logger().exception(
                "shadow_record_failed", deployment=deployment.name, version=version_name
            )

    @rpc.unary
    async def GetShadowResults(
        self, request: gpb.GetShadowResultsRequest, context: grpc.aio.ServicerContext
    ) -> gpb.ShadowResults:
        deployment = deployment_of(self.replica.state, request.deployment)
        pairs = await asyncio.to_thread(self.records.shadow_pairs, deployment.name)
        by_version: dict[str, list[tuple[str, str, str, float, float, str]]] = {}
        for pair in pairs:
            by_version.setdefault(pair[0], []).append(pair)
        results = gpb.ShadowResults(deployment=deployment.name)
        for version, rows in sorted(by_version.items()):
            ok = [r for r in rows if not r[5]]
            results.versions.append(
                gpb.ShadowVersionResult(
                    version=version,
                    n=len(ok),
                    errors=len(rows) - len(ok),
                    agreement=sum(r[1] == r[2] for r in ok) / len(ok) if ok else 0.0,
                    latency_p50_ms=median(r[3] for r in ok) if ok else 0.0,
                    primary_latency_p50_ms=median(r[4] for r in ok) if ok else 0.0,
                )
            )
        return results

    @rpc.unary
    async def ListConnections(
        self, request: pb.ListConnectionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListConnectionsResponse:
        return pb.ListConnectionsResponse(connections=self.connections.info())

    @rpc.unary
    async def RecordOutcome(
        self, request: gpb.RecordOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> gpb.RecordOutcomeResponse:
        record = await asyncio.to_thread(self._record_outcome, request)
        return gpb.RecordOutcomeResponse(
            prediction_id=record.prediction_id, version=record.version, experiment_id=record.experiment_id
        )

    def _record_outcome(self, request: gpb.RecordOutcomeRequest) -> PredictionRecord:
        """Check the value against the metric of the prediction's experiment or canary, then
        record it once (a retry with the same request_id gets the first answer)."""
        request_id = check_request_id(request.request_id)
        check_outcome(self.replica.state, self.history, self.records, request)
        return self.records.add_outcome(request.prediction_id, request.value, request_id=request_id)

    def _state_view(self, state: State, deployment: DeploymentState) -> gpb.DeploymentState:
        view = gpb.DeploymentState(
            deployment=deployment.name,
            program=deployment.program,
            routes=routes_proto(deployment),
            log_position=state.position,
            state_hash=self._state_hash(state) if state is self.replica.state else state_hash(state),
            changed_at_position=deployment.changed_position,
            stream_version=deployment.stream_version,
        )
        if deployment.experiment is not None:
            view.experiment.CopyFrom(deployment.experiment.to_proto())
        if deployment.canary is not None:
            view.canary.CopyFrom(deployment.canary.to_proto())
            view.canary_check = self.canary_checks.text(deployment.name, deployment.canary.canary_id)
        return view

    @rpc.unary
    async def GetDeploymentState(
        self, request: gpb.GetDeploymentStateRequest, context: grpc.aio.ServicerContext
    ) -> gpb.DeploymentState:
        state = await self._state_as_of(request.as_of)
        return self._state_view(state, deployment_of(state, request.deployment))

    @rpc.unary
    async def ListDeploymentStates(
        self, request: gpb.ListDeploymentStatesRequest, context: grpc.aio.ServicerContext
    ) -> gpb.ListDeploymentStatesResponse:
        state = self.replica.state
        return gpb.ListDeploymentStatesResponse(
            deployments=[
                self._state_view(state, d) for d in sorted(state.deployments.values(), key=lambda d: d.name)
            ],
            log_position=state.position,
        )

    # ------------------------------------------------------------------ experiments and rollback

    async def _command(
        self, method: str, decide: Callable[[State, Any], Decision], request: Any
    ) -> gpb.DeploymentState:
        """Run a deployment command through the one writer path, deciding on the replica's
        state (in a thread: it appends), then answer with the state right after its batch."""
        assert self.commands is not None
        outcome = await asyncio.to_thread(
            self.commands.run, method, request, lambda state: decide(state, request)
        )
        state = await self._settled(outcome.state)
        return self._state_view(state, deployment_of(state, request.deployment))

    @rpc.unary
    async def StartExperiment(
        self, request: gpb.StartExperimentRequest, context: grpc.aio.ServicerContext
    ) -> gpb.DeploymentState:
        _, experiments = self._need_log("deployment")
        return await self._command("StartExperiment", experiments.start, request)

    @rpc.unary
    async def GetExperimentResults(
        self, request: gpb.GetExperimentResultsRequest, context: grpc.aio.ServicerContext
    ) -> gpb.ExperimentResults:
        _, experiments = self._need_log("deployment")
        results = await asyncio.to_thread(experiments.results, self.replica.state, request.deployment)
        return results_proto(request.deployment, results)

    @rpc.unary
    async def ConcludeExperiment(
        self, request: gpb.ConcludeExperimentRequest, context: grpc.aio.ServicerContext
    ) -> gpb.DeploymentState:
        _, experiments = self._need_log("deployment")
        return await self._command("ConcludeExperiment", experiments.conclude, request)

    @rpc.unary
    async def StopExperiment(
        self, request: gpb.StopExperimentRequest, context: grpc.aio.ServicerContext
    ) -> gpb.DeploymentState:
        _, experiments = self._need_log("deployment")
        return await self._command("StopExperiment", experiments.stop, request)

    @rpc.unary
    async def StartCanary(
        self, request: gpb.StartCanaryRequest, context: grpc.aio.ServicerContext
    ) -> gpb.DeploymentState:
        self._need_log("deployment")
        assert self.canaries is not None
        return await self._command("StartCanary", self.canaries.start, request)

    @rpc.unary
    async def EvaluateCanary(
        self, request: gpb.EvaluateCanaryRequest, context: grpc.aio.ServicerContext
    ) -> gpb.CanaryStatus:
        self._need_log("deployment")
        return await self.evaluate_canary(request.deployment)

    async def evaluate_canary(self, name: str) -> gpb.CanaryStatus:
        assert self.canaries is not None
        state = self.replica.state
        deployment = deployment_of(state, name)  # a bad name is the caller's error, not a failed check
        try:
            decision = await asyncio.to_thread(self.canaries.evaluate, state, name)
        except Exception as exc:  # records unreadable, the log failing...: say why, decide nothing
            if deployment.canary is None:
                raise
            reason = self.canary_checks.failed(name, deployment.canary.canary_id, exc)
            return gpb.CanaryStatus(
                deployment=name,
                canary=deployment.canary.to_proto(),
                action="failed",
                reason=reason,
                state=self._state_view(state, deployment),
            )
        if decision.canary is not None:
            self.canary_checks.ran(name, decision.canary.canary_id, decision.reason)
        state = (
            await self._applied(decision.appended.last_position) if decision.appended else self.replica.state
        )
        status = gpb.CanaryStatus(
            deployment=name,
            action=decision.action,
            reason=decision.reason,
            state=self._state_view(state, deployment_of(state, name)),
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
                    self.canary_checks.failed(name, deployment.canary.canary_id, exc)

    @rpc.unary
    async def Rollback(
        self, request: gpb.RollbackRequest, context: grpc.aio.ServicerContext
    ) -> gpb.DeploymentState:
        _, experiments = self._need_log("deployment")
        if request.to.WhichOneof("point") is None:
            raise InvalidArgument("to", "give a log position or a time to roll back to")
        return await self._command("Rollback", experiments.rollback, request)

    @rpc.unary
    async def ExplainPrediction(
        self, request: gpb.ExplainPredictionRequest, context: grpc.aio.ServicerContext
    ) -> gpb.Explanation:
        history, _ = self._need_log("prediction_id")
        record = await asyncio.to_thread(self.records.get, request.prediction_id)
        state = await asyncio.to_thread(history.state_at, record.log_position)
        deployment = deployment_of(state, record.deployment)
        again = decide_from_hash(deployment, record.hash_value)
        # the key's hash and HMAC only for a caller who knows the key (see Explanation)
        matches = (
            bool(request.routing_key)
            and self.records.key_matches(record, request.routing_key)
            and (hash_value(deployment, request.routing_key) == record.hash_value)
        )
        shown_hash = matches or not record.has_routing_key
        reason = (
            again.reason if shown_hash else again.reason.replace(f"hash {record.hash_value:.4f}", "its hash")
        )
        explanation = gpb.Explanation(
            prediction_id=record.prediction_id,
            deployment=record.deployment,
            recorded_version=record.version,
            recorded_bucket=record.bucket,
            recomputed_version=again.version,
            recomputed_bucket=again.bucket,
            reproduced=(again.version, again.bucket, again.experiment_id)
            == (record.version, record.bucket, record.experiment_id),
            log_position=record.log_position,
            experiment_id=record.experiment_id,
            hash_version=record.hash_version,
            seed=record.seed,
            routing_key_hash=(record.routing_key_hmac or record.routing_key_sha256) if matches else "",
            hash_value=record.hash_value if matches else -1.0,
            hash_withheld=record.has_routing_key and not matches,
            routes=routes_proto(deployment),
            reason=reason if record.has_routing_key else f"random draw (no routing key); {again.reason}",
            routing_key_matches=matches,
        )
        if deployment.changed_position:
            change = (await asyncio.to_thread(history.store.read, deployment.changed_position - 1, 1))[0]
            explanation.changed_position = change.position
            explanation.changed_by = change.actor
            explanation.change = change.type.rsplit(".", 1)[-1]
        return explanation


@dataclass(frozen=True)
class GatewayConfig:
    log: str = ""  # SQLite log path (same machine) ...
    optimizer: str = ""  # ... or the optimizer's address, to tail its SubscribeLog
    predictions: str = ""  # prediction records file; default: beside the log (<log>.predictions)
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
    lm_connections: str = ""  # TOML file of LM connections, the optimizer's (none: only the offline one)
    allow_request_endpoints: tuple[str, ...] = ()  # endpoints versions registered with one may use
    chain_key_file: str = ""  # the log's chain key: keyed links verify, new links are keyed
    allow_broken_log: bool = False  # start (and keep tailing) on a broken chain, with a warning
    create: bool = False  # create a missing log even where files of an earlier one exist


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
    ) -> None:
        self.server = server
        self.port = port
        self.replica = replica
        self.records = records
        self.store = store
        self.health = health
        self.snapshots = snapshots
        self.tasks: list[asyncio.Task[None]] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace: float = 5.0) -> None:
        await self.health.enter_graceful_shutdown()  # NOT_SERVING first; Watch streams end
        for task in self.tasks:
            task.cancel()
        await self.server.stop(grace)  # lets in-flight predictions finish within the grace period
        await self.replica.stop()
        self.records.close()
        if self.snapshots is not None:
            self.snapshots.close()
        if self.store is not None:
            self.store.close()


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
    connections = load_for_server(config.lm_connections, config.allow_request_endpoints)
    source: VerifiedSource
    store: EventStore | None = None
    head: int | None = None
    initial, artifacts = EMPTY, {}
    predictions = config.predictions or (f"{log_file(config.log)}.predictions" if config.log else "")
    if not predictions:
        raise ValueError("a gateway tailing a remote optimizer needs predictions (a file for its records)")
    key = chain_key(config.chain_key_file)
    if config.log:
        store = open_service_store(config.log, key, create=config.create, evidence=[Path(predictions)])
        try:
            secret = routing_secret(LogFiles.of(config.log).secret)
            snapshots = SnapshotStore(snapshot_path(config.log), key=key)
            try:
                check = await asyncio.to_thread(
                    verify_at_start, store, snapshots, allow_broken=config.allow_broken_log, service="gateway"
                )
            finally:
                snapshots.close()
            head = await asyncio.to_thread(store.head)
            # the tail gets its own connections, so it never waits behind a command's append
            tail_store = open_store(config.log, chain_key=key, create=False)
            source = VerifiedSource(
                FileLogSource(tail_store), check.checker, allow_broken=config.allow_broken_log
            )
            try:
                initial, artifacts = await asyncio.to_thread(_from_snapshot, store, config.log, key)
            except BaseException:
                tail_store.close()
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
        )
        # verified from the first event received, with the log's key when it is keyed
        source = VerifiedSource(remote, ChainChecker(key=key), allow_broken=config.allow_broken_log)
    records = PredictionStore(predictions, secret=secret)
    server, health = rpc.make_server([SERVICE], config.security)
    described = f"the log file {config.log}" if config.log else f"the optimizer at {config.optimizer}"
    readiness = Readiness(described, health, [SERVICE])
    replica = Replica(source, initial, artifacts, readiness)
    # history (as-of reads, rollback, answers to retried commands) starts from snapshots too
    history_snapshots = SnapshotStore(snapshot_path(config.log), key=key) if config.log else None
    service = GatewayService(replica, records, store, connections, history_snapshots)
    gateway_pb2_grpc.add_GatewayServicer_to_server(service, server)
    port = rpc.bind(server, config.host, config.port, config.security)
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
        records.close()
        if store is not None:
            store.close()
        if history_snapshots is not None:
            history_snapshots.close()
        if isinstance(exc, Exception):
            raise StartRefused(f"gateway: {exc}") from exc
        raise
    structlog.get_logger().info(
        "gateway_listening", port=port, position=replica.state.position, serving=readiness.ready
    )
    if config.port_file:
        with open(config.port_file, "w") as fh:
            fh.write(str(port))
    running = RunningGateway(server, port, replica, records, store, health, history_snapshots)
    if store is not None and config.canary_interval > 0:
        running.tasks.append(
            asyncio.create_task(service.canary_loop(config.canary_interval), name="canary-loop")
        )
    return running


def _from_snapshot(store: EventStore, log: str, key: bytes | None) -> tuple[State, dict[str, bytes]]:
    """The newest snapshot of this log, and the artifacts of its versions (read from their
    VersionRegistered events), so a cold start folds only the tail."""
    snapshots = SnapshotStore(snapshot_path(log), key=key)
    try:
        state = snapshots.latest(store)
    finally:
        snapshots.close()
    if state is None:
        return EMPTY, {}
    artifacts: dict[str, bytes] = {}
    for program in state.programs.values():
        for version in program.versions.values():
            event = store.read(after_position=version.registered_position - 1, limit=1)[0]
            registered = decode(event)
            assert isinstance(registered, pb.VersionRegistered)
            artifacts[registered.artifact_digest] = registered.artifact
    return state, artifacts


async def serve(config: GatewayConfig, grace: float = 5.0) -> None:
    """Run until SIGTERM/SIGINT, then drain (dspyops.serving): health NOT_SERVING, new calls
    are refused, calls in flight get `grace` seconds to finish (their prediction records
    committed), then exit."""
    running = await start(config)
    await serving.serve_until_signalled(running, "gateway", grace)
