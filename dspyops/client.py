"""The Python client API: one method per RPC, plain arguments in, protobuf messages out.

The CLI is a thin face over these two classes; use them directly from notebooks and
scripts:

    with OptimizerClient("127.0.0.1:50051") as opt:
        for event in opt.start_optimization("tickets", "text -> label", trainset=rows,
                                            optimizer="BootstrapFewShot"):
            print(event)

Retries. Every method that changes something takes `request_id` (default: a fresh uuid4 hex
per call) and sends it, so the server carries the request out once however often it
arrives: a repeat returns the first answer. The client retries its own calls with that same
id: on UNAVAILABLE through gRPC's retry policy (the channel's service config, which resends
the identical request bytes with backoff, before any response has arrived), and for unary
calls on DEADLINE_EXCEEDED by sending the same request again, `retries` times, each with the
full `timeout` (gRPC's own retries end at the call's deadline; its per-attempt timeout works
only behind an experimental hedging switch). To retry by hand after the client gave up,
call again with the same `request_id`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.auth import BearerToken
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import gateway_pb2_grpc, optimizer_pb2_grpc
from dspyops.proto import optimizer_pb2 as opb
from dspyops.rpc import MAX_MESSAGE_BYTES

STATUSES = {
    "development": pb.DEVELOPMENT,
    "staging": pb.STAGING,
    "production": pb.PRODUCTION,
    "deprecated": pb.DEPRECATED,
    "archived": pb.ARCHIVED,
}

Row = Mapping[str, str]
Resp = TypeVar("Resp")

# The calls gRPC sends again on UNAVAILABLE: those that change something, which carry a
# request_id, so the server recognises a repeat. Reads fail fast as they always did (a caller
# probing a server that is going away must see it at once).
MUTATING = {
    "dspyops.v1.Optimizer": (
        "StartOptimization",
        "ImportProgram",
        "SetVersionStatus",
        "SetAlias",
        "CreateDeployment",
        "SetRoutes",
    ),
    "dspyops.v1.Gateway": (
        "StartExperiment",
        "ConcludeExperiment",
        "StopExperiment",
        "StartCanary",
        "Rollback",
        "RecordOutcome",
    ),
}
SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [
                    {"service": service, "method": method}
                    for service, methods in MUTATING.items()
                    for method in methods
                ],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


def new_request_id() -> str:
    return uuid.uuid4().hex


def _channel(
    address: str, token: str = "", tls_ca: str = "", tls_cert: str = "", tls_key: str = ""
) -> grpc.Channel:
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", SERVICE_CONFIG),
        # gRPC replays a call from this buffer; a larger request would not be retried at all
        ("grpc.per_rpc_retry_buffer_size", MAX_MESSAGE_BYTES),
    ]
    if tls_ca:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=Path(tls_ca).read_bytes(),
            private_key=Path(tls_key).read_bytes() if tls_key else None,
            certificate_chain=Path(tls_cert).read_bytes() if tls_cert else None,
        )
        channel = grpc.secure_channel(address, credentials, options=options)
    else:
        channel = grpc.insecure_channel(address, options=options)
    return grpc.intercept_channel(channel, BearerToken(token)) if token else channel


def examples(rows: Iterable[Row], input_keys: Sequence[str] = ()) -> list[pb.Example]:
    return [
        pb.Example(fields={k: str(v) for k, v in row.items()}, input_keys=list(input_keys)) for row in rows
    ]


class _Client:
    def __init__(
        self,
        address: str,
        timeout: float | None = 30.0,
        *,
        token: str = "",
        tls_ca: str = "",
        tls_cert: str = "",
        tls_key: str = "",
        retries: int = 2,
    ) -> None:
        """`token`: bearer token; `tls_ca`: CA bundle to verify the server (turns TLS on);
        `tls_cert`/`tls_key`: client certificate when the server requires one; `retries`:
        how often a unary call that changes something is sent again after its deadline."""
        self.address = address
        self.timeout = timeout
        self.retries = retries
        self.channel = _channel(address, token, tls_ca, tls_cert, tls_key)

    def _send(self, call: Callable[..., Resp], request: Any) -> Resp:
        """A unary call that changes something: the same request (same request_id) again
        after DEADLINE_EXCEEDED, so a reply lost to a slow server is not lost for good."""
        for attempt in range(self.retries + 1):
            try:
                return call(request, timeout=self.timeout)
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED or attempt == self.retries:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OptimizerClient(_Client):
    def __init__(self, address: str, timeout: float | None = 30.0, **options: Any) -> None:
        super().__init__(address, timeout, **options)
        self.stub = optimizer_pb2_grpc.OptimizerStub(self.channel)

    def __enter__(self) -> OptimizerClient:
        return self

    # jobs
    def start_optimization(
        self,
        program: str,
        signature: str,
        *,
        trainset: Iterable[Row],
        valset: Iterable[Row] = (),
        optimizer: str = "",
        params: Mapping[str, Any] | None = None,
        metric: str = "exact_match",
        module: str = "Predict",
        instructions: str = "",
        lm: pb.LMConfig | None = None,
        prompt_lm: pb.LMConfig | None = None,
        min_score: float | None = None,
        auto_promote: bool = False,
        input_keys: Sequence[str] = (),
        preset: str = "",
        request_id: str | None = None,
    ) -> Iterator[opb.OptimizationEvent]:
        """The job's events. Sent again with the same request_id (or re-attached to with
        watch_job), a request streams the job it started instead of starting another."""
        struct = Struct()
        struct.update(dict(params or {}))
        request = opb.StartOptimizationRequest(
            program=program,
            spec=pb.ProgramSpec(module=module, signature=signature, instructions=instructions),
            lm=lm or pb.LMConfig(),
            optimizer=optimizer,
            params=struct,
            metric=metric,
            trainset=examples(trainset, input_keys),
            valset=examples(valset, input_keys),
            auto_promote=auto_promote,
            preset=preset,
            request_id=request_id or new_request_id(),
        )
        if prompt_lm is not None:
            request.prompt_lm.CopyFrom(prompt_lm)
        if min_score is not None:
            request.min_score = min_score
        return self.stub.StartOptimization(request)  # a stream: no deadline, jobs take their time

    def list_optimizers(self) -> opb.ListOptimizersResponse:
        return self.stub.ListOptimizers(opb.ListOptimizersRequest(), timeout=self.timeout)

    def list_connections(self) -> list[pb.ConnectionInfo]:
        """The LM connections this optimizer was started with (never a key)."""
        return list(self.stub.ListConnections(pb.ListConnectionsRequest(), timeout=self.timeout).connections)

    def watch_job(self, job_id: str, after_sequence: int = 0) -> Iterator[opb.OptimizationEvent]:
        return self.stub.WatchJob(opb.WatchJobRequest(job_id=job_id, after_sequence=after_sequence))

    def cancel_job(self, job_id: str, reason: str = "") -> opb.Job:
        return self.stub.CancelJob(opb.CancelJobRequest(job_id=job_id, reason=reason), timeout=self.timeout)

    def get_job(self, job_id: str) -> opb.Job:
        return self.stub.GetJob(opb.GetJobRequest(job_id=job_id), timeout=self.timeout)

    def list_jobs(self, program: str = "") -> list[opb.Job]:
        return list(self.stub.ListJobs(opb.ListJobsRequest(program=program), timeout=self.timeout).jobs)

    # registry
    def list_programs(self) -> list[opb.ProgramInfo]:
        return list(self.stub.ListPrograms(opb.ListProgramsRequest(), timeout=self.timeout).programs)

    def list_versions(self, program: str) -> list[opb.ProgramVersion]:
        return list(
            self.stub.ListVersions(opb.ListVersionsRequest(program=program), timeout=self.timeout).versions
        )

    def get_version(self, program: str, version: str) -> opb.ProgramVersion:
        return self.stub.GetVersion(
            opb.GetVersionRequest(program=program, version=version), timeout=self.timeout
        )

    def set_version_status(
        self,
        program: str,
        version: str,
        status: str | int,
        reason: str = "",
        *,
        request_id: str | None = None,
    ) -> opb.ProgramVersion:
        value = STATUSES[status.lower()] if isinstance(status, str) else status
        request = opb.SetVersionStatusRequest(
            program=program,
            version=version,
            status=value,
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        return self._send(self.stub.SetVersionStatus, request)

    def set_alias(
        self, program: str, alias: str, version: str, *, request_id: str | None = None
    ) -> opb.ProgramInfo:
        request = opb.SetAliasRequest(
            program=program, alias=alias, version=version, request_id=request_id or new_request_id()
        )
        return self._send(self.stub.SetAlias, request)

    # evaluation, import, export
    def evaluate(
        self,
        program: str = "",
        version: str = "",
        *,
        dataset: Iterable[Row] = (),
        dataset_ref: str = "",
        dataset_input_keys: Sequence[str] = (),
        spec: pb.ProgramSpec | None = None,
        state_json: bytes = b"",
        lm: pb.LMConfig | None = None,
        metric: str = "",
        num_threads: int = 0,
        include_results: bool = False,
        input_keys: Sequence[str] = (),
    ) -> Iterator[opb.EvaluationEvent]:
        """Progress events, then one report event (a stream: no deadline)."""
        request = opb.EvaluateRequest(
            program=program,
            version=version,
            state_json=state_json,
            dataset=examples(dataset, input_keys),
            metric=metric,
            num_threads=num_threads,
            include_results=include_results,
        )
        if spec is not None:
            request.spec.CopyFrom(spec)
        if lm is not None:
            request.lm.CopyFrom(lm)
        if dataset_ref:
            request.dataset_ref.CopyFrom(
                opb.DatasetRef(path=dataset_ref, input_keys=list(dataset_input_keys))
            )
        return self.stub.Evaluate(request)

    def compare_versions(
        self,
        program: str,
        a: str,
        b: str,
        *,
        dataset: Iterable[Row] = (),
        dataset_ref: str = "",
        dataset_input_keys: Sequence[str] = (),
        metric: str = "",
        input_keys: Sequence[str] = (),
        timeout: float | None = None,
    ) -> opb.VersionComparison:
        request = opb.CompareVersionsRequest(
            program=program, a=a, b=b, dataset=examples(dataset, input_keys), metric=metric
        )
        if dataset_ref:
            request.dataset_ref.CopyFrom(
                opb.DatasetRef(path=dataset_ref, input_keys=list(dataset_input_keys))
            )
        return self.stub.CompareVersions(request, timeout=timeout)  # runs both: no short deadline

    def import_program(
        self,
        program: str,
        signature: str,
        state_json: bytes,
        *,
        module: str = "Predict",
        instructions: str = "",
        lm: pb.LMConfig | None = None,
        request_id: str | None = None,
    ) -> opb.ProgramVersion:
        request = opb.ImportProgramRequest(
            program=program,
            spec=pb.ProgramSpec(module=module, signature=signature, instructions=instructions),
            state_json=state_json,
            lm=lm or pb.LMConfig(),
            request_id=request_id or new_request_id(),
        )
        return self._send(self.stub.ImportProgram, request)

    def export_version(self, program: str, version: str) -> opb.ExportVersionResponse:
        request = opb.ExportVersionRequest(program=program, version=version)
        return self.stub.ExportVersion(request, timeout=self.timeout)

    # deployments
    def create_deployment(
        self, deployment: str, program: str, *, request_id: str | None = None
    ) -> opb.Deployment:
        request = opb.CreateDeploymentRequest(
            deployment=deployment, program=program, request_id=request_id or new_request_id()
        )
        return self._send(self.stub.CreateDeployment, request)

    def set_routes(
        self,
        deployment: str,
        routes: Mapping[str, float] | Sequence[pb.Route],
        *,
        expected_version: int | None = None,
        reason: str = "",
        request_id: str | None = None,
    ) -> opb.Deployment:
        if isinstance(routes, Mapping):
            route_list = [pb.Route(version=v, weight=w, role=pb.PRIMARY) for v, w in routes.items()]
        else:
            route_list = list(routes)
        request = opb.SetRoutesRequest(
            deployment=deployment, routes=route_list, reason=reason, request_id=request_id or new_request_id()
        )
        if expected_version is not None:
            request.expected_version = expected_version
        return self._send(self.stub.SetRoutes, request)

    def get_deployment(self, deployment: str) -> opb.Deployment:
        return self.stub.GetDeployment(opb.GetDeploymentRequest(deployment=deployment), timeout=self.timeout)

    def list_deployments(self) -> list[opb.Deployment]:
        return list(self.stub.ListDeployments(opb.ListDeploymentsRequest(), timeout=self.timeout).deployments)

    # log
    def read_log(self, after: int = 0, limit: int = 100, stream_prefix: str = "") -> opb.ReadLogResponse:
        request = opb.ReadLogRequest(after=after, limit=limit, stream_prefix=stream_prefix)
        return self.stub.ReadLog(request, timeout=self.timeout)

    def subscribe_log(self, after: int = 0, stream_prefix: str = "") -> Iterator[pb.Event]:
        return self.stub.SubscribeLog(opb.SubscribeLogRequest(after=after, stream_prefix=stream_prefix))

    def verify_log(self) -> opb.VerifyLogResponse:
        return self.stub.VerifyLog(opb.VerifyLogRequest(), timeout=self.timeout)


class GatewayClient(_Client):
    def __init__(self, address: str, timeout: float | None = 30.0, **options: Any) -> None:
        super().__init__(address, timeout, **options)
        self.stub = gateway_pb2_grpc.GatewayStub(self.channel)

    def __enter__(self) -> GatewayClient:
        return self

    def predict(
        self,
        deployment: str,
        inputs: Mapping[str, str],
        routing_key: str = "",
        *,
        as_of: int | datetime | None = None,
    ) -> gpb.PredictResponse:
        request = gpb.PredictRequest(
            deployment=deployment, inputs=dict(inputs), routing_key=routing_key, as_of=as_of_point(as_of)
        )
        return self.stub.Predict(request, timeout=self.timeout)

    def record_outcome(
        self, prediction_id: str, value: float, *, request_id: str | None = None
    ) -> gpb.RecordOutcomeResponse:
        request = gpb.RecordOutcomeRequest(
            prediction_id=prediction_id, value=value, request_id=request_id or new_request_id()
        )
        return self._send(self.stub.RecordOutcome, request)

    def get_deployment_state(
        self, deployment: str, *, as_of: int | datetime | None = None
    ) -> gpb.DeploymentState:
        request = gpb.GetDeploymentStateRequest(deployment=deployment, as_of=as_of_point(as_of))
        return self.stub.GetDeploymentState(request, timeout=self.timeout)

    def list_deployment_states(self) -> gpb.ListDeploymentStatesResponse:
        return self.stub.ListDeploymentStates(gpb.ListDeploymentStatesRequest(), timeout=self.timeout)

    def list_connections(self) -> list[pb.ConnectionInfo]:
        """The LM connections this gateway was started with (never a key)."""
        return list(self.stub.ListConnections(pb.ListConnectionsRequest(), timeout=self.timeout).connections)

    def start_experiment(
        self,
        deployment: str,
        control: str,
        treatments: Sequence[str],
        *,
        metric: str | int = "binary",
        weights: Sequence[float] = (),
        alpha: float = 0.05,
        min_samples_per_arm: int = 100,
        sequential: bool = True,
        hash_version: int = 2,
        seed: str = "",
        coverage: float = 1.0,
        expected_version: int | None = None,
        reason: str = "",
        request_id: str | None = None,
    ) -> gpb.DeploymentState:
        request = gpb.StartExperimentRequest(
            deployment=deployment,
            control=control,
            treatments=list(treatments),
            weights=list(weights),
            metric=METRIC_KINDS[metric] if isinstance(metric, str) else metric,
            alpha=alpha,
            min_samples_per_arm=min_samples_per_arm,
            sequential=sequential,
            hash_version=hash_version,
            seed=seed,
            coverage=coverage,
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        if expected_version is not None:
            request.expected_version = expected_version
        return self._send(self.stub.StartExperiment, request)

    def get_experiment_results(self, deployment: str) -> gpb.ExperimentResults:
        request = gpb.GetExperimentResultsRequest(deployment=deployment)
        return self.stub.GetExperimentResults(request, timeout=self.timeout)

    def conclude_experiment(
        self, deployment: str, *, promote_winner: bool, reason: str = "", request_id: str | None = None
    ) -> gpb.DeploymentState:
        request = gpb.ConcludeExperimentRequest(
            deployment=deployment,
            promote_winner=promote_winner,
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        return self._send(self.stub.ConcludeExperiment, request)

    def stop_experiment(
        self, deployment: str, reason: str = "", *, request_id: str | None = None
    ) -> gpb.DeploymentState:
        request = gpb.StopExperimentRequest(
            deployment=deployment, reason=reason, request_id=request_id or new_request_id()
        )
        return self._send(self.stub.StopExperiment, request)

    def start_canary(
        self,
        deployment: str,
        candidate: str,
        *,
        steps: Sequence[float] = (),
        min_samples_per_step: int = 100,
        metric: str | int = "binary",
        alpha: float = 0.05,
        expected_version: int | None = None,
        reason: str = "",
        request_id: str | None = None,
    ) -> gpb.DeploymentState:
        request = gpb.StartCanaryRequest(
            deployment=deployment,
            candidate=candidate,
            steps=list(steps),
            min_samples_per_step=min_samples_per_step,
            metric=METRIC_KINDS[metric] if isinstance(metric, str) else metric,
            alpha=alpha,
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        if expected_version is not None:
            request.expected_version = expected_version
        return self._send(self.stub.StartCanary, request)

    def get_shadow_results(self, deployment: str) -> gpb.ShadowResults:
        return self.stub.GetShadowResults(
            gpb.GetShadowResultsRequest(deployment=deployment), timeout=self.timeout
        )

    def evaluate_canary(self, deployment: str) -> gpb.CanaryStatus:
        return self.stub.EvaluateCanary(
            gpb.EvaluateCanaryRequest(deployment=deployment), timeout=self.timeout
        )

    def rollback(
        self,
        deployment: str,
        to: int | datetime,
        *,
        reason: str = "",
        expected_version: int | None = None,
        request_id: str | None = None,
    ) -> gpb.DeploymentState:
        request = gpb.RollbackRequest(
            deployment=deployment,
            to=as_of_point(to),
            reason=reason,
            request_id=request_id or new_request_id(),
        )
        if expected_version is not None:
            request.expected_version = expected_version
        return self._send(self.stub.Rollback, request)

    def explain_prediction(self, prediction_id: str, routing_key: str = "") -> gpb.Explanation:
        request = gpb.ExplainPredictionRequest(prediction_id=prediction_id, routing_key=routing_key)
        return self.stub.ExplainPrediction(request, timeout=self.timeout)


METRIC_KINDS = {"binary": pb.BINARY, "continuous": pb.CONTINUOUS}


def as_of_point(point: int | datetime | None) -> gpb.AsOf:
    """A log position (int) or a time (datetime; naive means UTC) as an AsOf message."""
    if point is None:
        return gpb.AsOf()
    if isinstance(point, datetime):
        stamp = Timestamp()
        stamp.FromDatetime(point if point.tzinfo else point.replace(tzinfo=UTC))
        return gpb.AsOf(time=stamp)
    return gpb.AsOf(position=point)
