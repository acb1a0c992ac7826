"""A retrain's job on the optimizer: the StartOptimization request a run makes (rebuilt the
same from its LearningTriggered on any gateway, so a retry is idempotent) and the gRPC link
to the optimizer, configured server-side (`--learning-optimizer`, `--learning-token-file`;
a request never chooses where the job runs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from dspyops.eventlog import EventStore
from dspyops.events import decode
from dspyops.limits import MAX_MESSAGE_BYTES
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.proto import optimizer_pb2_grpc
from gateway_svc.learning.window import Split, as_examples

CALL_TIMEOUT = 60.0  # seconds for the optimizer to accept a job (it validates and loads must_beat first)


def request_id_of(run_id: str) -> str:
    return f"learn-{run_id}"


def accepted_of(store: EventStore, job_id: str) -> pb.JobAccepted | None:
    """The job's JobAccepted (the first event of its stream), read from the gateway's log."""
    for stored in store.read_stream(f"job-{job_id}")[:1]:
        message = decode(stored)
        if isinstance(message, pb.JobAccepted):
            return message
    return None


def verdict_of(store: EventStore, job_id: str) -> tuple[pb.JobCompleted | None, pb.GateEvaluated | None]:
    """The job's JobCompleted and the last GateEvaluated before it (what the gate decided)."""
    completed: pb.JobCompleted | None = None
    gate: pb.GateEvaluated | None = None
    for stored in store.read_stream(f"job-{job_id}"):
        if stored.type.endswith(".GateEvaluated"):
            message = decode(stored)
            assert isinstance(message, pb.GateEvaluated)
            gate = message
        elif stored.type.endswith(".JobCompleted"):
            message = decode(stored)
            assert isinstance(message, pb.JobCompleted)
            completed = message
    return completed, gate


def start_request(
    policy: pb.LearningPolicy,
    base: pb.JobAccepted,
    triggered: pb.LearningTriggered,
    feedback: Split,
) -> opb.StartOptimizationRequest:
    """The retrain: the serving version's program (spec, LM, metric of the job that registered
    it) on that job's trainset followed by the feedback's training part, validated on the
    held-out feedback, gated against the serving version on it; never promoted by the job."""
    request = opb.StartOptimizationRequest(
        program=base.program,
        spec=base.spec,
        lm=base.lm,
        optimizer=policy.optimizer,
        preset=policy.preset,
        params=policy.params,
        metric=base.metric,
        trainset=as_examples(feedback.train),
        valset=as_examples(feedback.holdout),
        must_beat=triggered.serving_version,
        auto_promote=False,
        budget=policy.budget,
        request_id=triggered.request_id,
        base_trainset_job=triggered.base_job_id,
        learning=pb.JobLearning(deployment=triggered.deployment, run_id=triggered.run_id),
    )
    if policy.HasField("min_improvement"):
        request.min_improvement = policy.min_improvement
    if base.inputs.HasField("prompt_lm"):
        request.prompt_lm.CopyFrom(base.inputs.prompt_lm)
    return request


@dataclass(frozen=True)
class Accepted:
    job_id: str


class OptimizerLink:
    """The gateway's client of the learning optimizer (an operator token: it starts jobs)."""

    def __init__(self, address: str, token: str = "", tls_ca: str = "") -> None:
        self.address = address
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if tls_ca:
            credentials = grpc.ssl_channel_credentials(root_certificates=Path(tls_ca).read_bytes())
            self._channel = grpc.aio.secure_channel(address, credentials, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(address, options=options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._stub = optimizer_pb2_grpc.OptimizerStub(self._channel)

    async def catalog(self) -> tuple[set[str], set[str]]:
        """The optimizers and presets the optimizer knows (for SetLearningPolicy's check)."""
        response = await self._stub.ListOptimizers(
            opb.ListOptimizersRequest(), metadata=self._metadata, timeout=CALL_TIMEOUT
        )
        return {o.name for o in response.optimizers}, {p.name for p in response.presets}

    async def start(self, request: opb.StartOptimizationRequest) -> Accepted:
        """StartOptimization until its first event (JobAccepted); the job runs on without us."""
        call = self._stub.StartOptimization(request, metadata=self._metadata, timeout=CALL_TIMEOUT)
        try:
            async for event in call:
                if event.WhichOneof("kind") == "accepted":
                    return Accepted(event.accepted.job_id)
            raise RuntimeError("StartOptimization ended without accepting the job")
        finally:
            call.cancel()

    async def close(self) -> None:
        await self._channel.close()
