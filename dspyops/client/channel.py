"""The channel both clients share: TLS, bearer token, message limits, request ids and retries.

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, Self, TypeVar, cast

import grpc
from google.protobuf.message import Message

from dspyops.auth import BearerToken
from dspyops.limits import MAX_MESSAGE_BYTES

Reply = TypeVar("Reply", bound=Message)
Method = TypeVar("Method", bound=Callable[..., Any])

# The calls gRPC sends again on UNAVAILABLE: those that change something, which carry a
# request_id, so the server recognises a repeat. Reads fail fast as they always did (a caller
# probing a server that is going away must see it at once).
MUTATING: Final = {
    "dspyops.v1.Optimizer": (
        "StartOptimization",
        "ImportProgram",
        "SetVersionStatus",
        "SetAlias",
        "CreateDeployment",
        "SetRoutes",
        "RegisterCorpus",
        "SetCapturePolicy",
    ),
    "dspyops.v1.Gateway": (
        "StartExperiment",
        "ConcludeExperiment",
        "StopExperiment",
        "StartCanary",
        "Rollback",
        "RecordOutcome",
        "SetDriftMonitor",
        "SetEvaluator",
        "SetLearningPolicy",
        "PauseLearning",
    ),
}
SERVICE_CONFIG: Final = json.dumps(
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


def rpc(name: str, **covered_by: tuple[str, ...]) -> Callable[[Method], Method]:
    """Marks a client method as the one for RPC `name`. `covered_by` names the parameters
    that fill a request field in a friendlier form (spec=("signature", "module",
    "instructions")); every other field is a parameter of its own name. The contract test
    (tests/cli/test_client_contract.py) holds each method to its request's descriptor."""

    def mark(method: Method) -> Method:
        setattr(method, "__rpc__", name)  # noqa: B010 - an attribute of a function object
        setattr(method, "__covered_by__", covered_by)  # noqa: B010
        return method

    return mark


def make_channel(
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


class Client:
    """What both clients share: the channel, the deadline, and the three ways to call."""

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
        self.channel = make_channel(address, token, tls_ca, tls_cert, tls_key)
        # to open a client of another replica with the same credentials (watch_job's targets)
        self._credentials = {"token": token, "tls_ca": tls_ca, "tls_cert": tls_cert, "tls_key": tls_key}

    def _unary(self, call: Callable[..., Any], request: Message, reply: type[Reply]) -> Reply:
        """A read: one attempt within the client's timeout."""
        return self._call(call, request, reply, self.timeout)

    @staticmethod
    def _call(call: Callable[..., Any], request: Message, reply: type[Reply], timeout: float | None) -> Reply:
        """One attempt within `timeout` (None: no deadline)."""
        return cast(Reply, call(request, timeout=timeout))

    def _send(self, call: Callable[..., Any], request: Message, reply: type[Reply]) -> Reply:
        """A unary call that changes something: the same request (same request_id) again
        after DEADLINE_EXCEEDED, so a reply lost to a slow server is not lost for good."""
        for attempt in range(self.retries + 1):
            try:
                return self._call(call, request, reply, self.timeout)
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED or attempt == self.retries:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _stream(
        call: Callable[..., Any], request: Message, reply: type[Reply], timeout: float | None
    ) -> Iterator[Reply]:
        """A server stream; `timeout` None: no deadline (jobs and evaluations take their time)."""
        return cast(Iterator[Reply], call(request, timeout=timeout))

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
