"""gateway_svc's gRPC face: Predict from the replica's current state.

Predict takes one reference to the folded state, so the route it picks, the version it
runs and the log position it reports all come from the same moment of the log.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from dataclasses import dataclass

import grpc
import structlog

from dspyops import rpc
from dspyops.errors import FailedPrecondition, InvalidArgument, NotFound
from dspyops.eventlog import open_store
from dspyops.logs import configure
from dspyops.names import check_name
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import gateway_pb2_grpc
from dspyops.state import DeploymentState, State, state_hash
from gateway_svc.assignment import assign
from gateway_svc.loader import ProgramCache
from gateway_svc.replica import Replica
from gateway_svc.source import FileLogSource, LogSource, RemoteLogSource

SERVICE = gpb.DESCRIPTOR.services_by_name["Gateway"].full_name
_ROLE_VALUES = {"primary": pb.PRIMARY, "shadow": pb.SHADOW}
_MAX_INPUT_CHARS = 100_000


class GatewayService(gateway_pb2_grpc.GatewayServicer):
    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.programs = ProgramCache()
        self._hash_cache: tuple[int, str] = (-1, "")

    def _state_hash(self, state: State) -> str:
        if self._hash_cache[0] != state.position:
            self._hash_cache = (state.position, state_hash(state))
        return self._hash_cache[1]

    def _deployment(self, state: State, name: str) -> DeploymentState:
        check_name("deployment", name)
        deployment = state.deployments.get(name)
        if deployment is None:
            raise NotFound("deployment", f"no deployment named {name!r} (log position {state.position})")
        return deployment

    @rpc.unary
    async def Predict(
        self, request: gpb.PredictRequest, context: grpc.aio.ServicerContext
    ) -> gpb.PredictResponse:
        started = time.perf_counter()
        state = self.replica.state
        deployment = self._deployment(state, request.deployment)
        primary = [r for r in deployment.routes if r.role == "primary"]
        if not primary:
            raise FailedPrecondition(
                "deployment", f"deployment {deployment.name!r} has no routes yet (SetRoutes)"
            )
        index, _ = assign(request.routing_key, deployment.name, [r.weight for r in primary])
        route = primary[index]
        version = state.programs[deployment.program].versions[route.version]
        loaded = self.programs.get(version.artifact_digest, self.replica.artifacts[version.artifact_digest])
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
        try:
            prediction = await loaded.module.acall(**inputs)
        except Exception as exc:
            log.warning("predict_failed", error=f"{type(exc).__name__}: {exc}"[:500])
            raise FailedPrecondition(
                "",
                f"version {version.version} of {deployment.program!r} could not answer: {type(exc).__name__}",
            ) from None
        outputs = {name: str(prediction.get(name, "")) for name in loaded.outputs}
        latency_ms = (time.perf_counter() - started) * 1000
        return gpb.PredictResponse(
            outputs=outputs,
            program=deployment.program,
            version=version.version,
            prediction_id=prediction_id,
            log_position=state.position,
            latency_ms=latency_ms,
            bucket=index,
        )

    def _state_view(self, state: State, deployment: DeploymentState) -> gpb.DeploymentState:
        return gpb.DeploymentState(
            deployment=deployment.name,
            program=deployment.program,
            routes=[
                pb.Route(version=r.version, weight=r.weight, role=_ROLE_VALUES[r.role])
                for r in deployment.routes
            ],
            log_position=state.position,
            state_hash=self._state_hash(state),
            changed_at_position=deployment.changed_position,
        )

    @rpc.unary
    async def GetDeploymentState(
        self, request: gpb.GetDeploymentStateRequest, context: grpc.aio.ServicerContext
    ) -> gpb.DeploymentState:
        state = self.replica.state
        return self._state_view(state, self._deployment(state, request.deployment))

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


@dataclass(frozen=True)
class GatewayConfig:
    log: str = ""  # SQLite log path (same machine) ...
    optimizer: str = ""  # ... or the optimizer's address, to tail its SubscribeLog
    host: str = "127.0.0.1"
    port: int = 0
    port_file: str = ""


class RunningGateway:
    def __init__(self, server: grpc.aio.Server, port: int, replica: Replica) -> None:
        self.server = server
        self.port = port
        self.replica = replica

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace: float = 5.0) -> None:
        await self.server.stop(grace)  # lets in-flight predictions finish within the grace period
        await self.replica.stop()


async def start(config: GatewayConfig) -> RunningGateway:
    configure("gateway_svc")
    if bool(config.log) == bool(config.optimizer):
        raise ValueError("give exactly one of log (a file path) or optimizer (an address)")
    source: LogSource
    head: int | None = None
    if config.log:
        store = open_store(config.log)
        head = await asyncio.to_thread(store.head)
        source = FileLogSource(store)
    else:
        source = RemoteLogSource(config.optimizer)
    replica = Replica(source)
    server, health = rpc.make_server([SERVICE])
    gateway_pb2_grpc.add_GatewayServicer_to_server(GatewayService(replica), server)
    port = rpc.bind(server, config.host, config.port)
    await server.start()
    await rpc.set_serving(health, [SERVICE], serving=False)
    await replica.start(head)  # serve only once the replay has reached the head it saw at start
    await rpc.set_serving(health, [SERVICE])
    structlog.get_logger().info("gateway_listening", port=port, position=replica.state.position)
    if config.port_file:
        with open(config.port_file, "w") as fh:
            fh.write(str(port))
    return RunningGateway(server, port, replica)


async def serve(config: GatewayConfig) -> None:
    running = await start(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.stop()
