"""The Python client API: one method per RPC, plain arguments in, protobuf messages out.

The CLI is a thin face over these two classes; use them directly from notebooks and
scripts:

    with OptimizerClient("127.0.0.1:50051") as opt:
        for event in opt.start_optimization("tickets", "text -> label", trainset=rows,
                                            optimizer="BootstrapFewShot"):
            print(event)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf.struct_pb2 import Struct

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


def _channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(
        address,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )


def examples(rows: Iterable[Row], input_keys: Sequence[str] = ()) -> list[pb.Example]:
    return [
        pb.Example(fields={k: str(v) for k, v in row.items()}, input_keys=list(input_keys)) for row in rows
    ]


class _Client:
    def __init__(self, address: str, timeout: float | None = 30.0) -> None:
        self.address = address
        self.timeout = timeout
        self.channel = _channel(address)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OptimizerClient(_Client):
    def __init__(self, address: str, timeout: float | None = 30.0) -> None:
        super().__init__(address, timeout)
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
        optimizer: str = "BootstrapFewShot",
        params: Mapping[str, Any] | None = None,
        metric: str = "exact_match",
        module: str = "Predict",
        instructions: str = "",
        lm: pb.LMConfig | None = None,
        prompt_lm: pb.LMConfig | None = None,
        min_score: float | None = None,
        auto_promote: bool = False,
        input_keys: Sequence[str] = (),
    ) -> Iterator[opb.OptimizationEvent]:
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
        )
        if prompt_lm is not None:
            request.prompt_lm.CopyFrom(prompt_lm)
        if min_score is not None:
            request.min_score = min_score
        return self.stub.StartOptimization(request)  # a stream: no deadline, jobs take their time

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
        self, program: str, version: str, status: str | int, reason: str = ""
    ) -> opb.ProgramVersion:
        value = STATUSES[status.lower()] if isinstance(status, str) else status
        request = opb.SetVersionStatusRequest(program=program, version=version, status=value, reason=reason)
        return self.stub.SetVersionStatus(request, timeout=self.timeout)

    def set_alias(self, program: str, alias: str, version: str) -> opb.ProgramInfo:
        return self.stub.SetAlias(
            opb.SetAliasRequest(program=program, alias=alias, version=version), timeout=self.timeout
        )

    # deployments
    def create_deployment(self, deployment: str, program: str) -> opb.Deployment:
        request = opb.CreateDeploymentRequest(deployment=deployment, program=program)
        return self.stub.CreateDeployment(request, timeout=self.timeout)

    def set_routes(
        self,
        deployment: str,
        routes: Mapping[str, float] | Sequence[pb.Route],
        *,
        expected_version: int | None = None,
        reason: str = "",
    ) -> opb.Deployment:
        if isinstance(routes, Mapping):
            route_list = [pb.Route(version=v, weight=w, role=pb.PRIMARY) for v, w in routes.items()]
        else:
            route_list = list(routes)
        request = opb.SetRoutesRequest(deployment=deployment, routes=route_list, reason=reason)
        if expected_version is not None:
            request.expected_version = expected_version
        return self.stub.SetRoutes(request, timeout=self.timeout)

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
    def __init__(self, address: str, timeout: float | None = 30.0) -> None:
        super().__init__(address, timeout)
        self.stub = gateway_pb2_grpc.GatewayStub(self.channel)

    def __enter__(self) -> GatewayClient:
        return self

    def predict(
        self, deployment: str, inputs: Mapping[str, str], routing_key: str = ""
    ) -> gpb.PredictResponse:
        request = gpb.PredictRequest(deployment=deployment, inputs=dict(inputs), routing_key=routing_key)
        return self.stub.Predict(request, timeout=self.timeout)

    def get_deployment_state(self, deployment: str) -> gpb.DeploymentState:
        return self.stub.GetDeploymentState(
            gpb.GetDeploymentStateRequest(deployment=deployment), timeout=self.timeout
        )

    def list_deployment_states(self) -> gpb.ListDeploymentStatesResponse:
        return self.stub.ListDeploymentStates(gpb.ListDeploymentStatesRequest(), timeout=self.timeout)
