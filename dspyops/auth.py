"""Bearer-token authentication and role checks for both services.

Tokens are configured at start in a file of token hashes, one per line:

    # sha256(token) hex                                               role      name
    9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 deployer  ci-bot

Only hashes are stored, so the file is not a secret. Roles: reader (read the log and
registry, predict, outcomes), operator (reader + optimize, evaluate, cancel, import, corpora),
deployer (reader + registry status and aliases, deployments, routes, experiments, canaries,
rollback), admin (everything). A method missing from the table needs admin, so a new RPC
is closed until it is classified. Health and reflection stay open (probes carry no token).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import grpc

from dspyops.actor import current_actor
from dspyops.eventlog.store import MAX_ACTOR_CHARS
from dspyops.scrub import scrub

Req = TypeVar("Req")
Resp = TypeVar("Resp")

ROLES = ("reader", "operator", "deployer", "admin")
_GRANTS = {
    "reader": {"reader"},
    "operator": {"reader", "operator"},
    "deployer": {"reader", "deployer"},
    "admin": {"reader", "operator", "deployer", "admin"},
}

#: method name -> the permission it needs (per service; names are unique across ours)
REQUIRED: Mapping[str, str] = {
    # optimizer: reads
    "WatchJob": "reader",
    "GetJob": "reader",
    "ListJobs": "reader",
    "ListPrograms": "reader",
    "ListVersions": "reader",
    "GetVersion": "reader",
    "GetDeployment": "reader",
    "ListDeployments": "reader",
    "ReadLog": "reader",
    "SubscribeLog": "reader",
    "VerifyLog": "reader",
    "ListOptimizers": "reader",
    "ListConnections": "reader",
    "ExportVersion": "reader",
    "ListCorpora": "reader",
    # optimizer: jobs and evaluation
    "StartOptimization": "operator",
    "CancelJob": "operator",
    "Evaluate": "operator",
    "CompareVersions": "operator",
    "ImportProgram": "operator",
    "RegisterCorpus": "operator",  # what new versions' Retrieve stages search; versions keep theirs
    # registry and deployments
    "SetVersionStatus": "deployer",
    "SetAlias": "deployer",
    "CreateDeployment": "deployer",
    "SetRoutes": "deployer",
    "SetCapturePolicy": "deployer",
    # gateway
    "Predict": "reader",
    "RecordOutcome": "reader",
    "GetDeploymentState": "reader",
    "ListDeploymentStates": "reader",
    "GetExperimentResults": "reader",
    "ExplainPrediction": "reader",
    "GetShadowResults": "reader",
    "ExportFeedback": "reader",  # what statistics and explanations read: the records
    "StartExperiment": "deployer",
    "ConcludeExperiment": "deployer",
    "StopExperiment": "deployer",
    "Rollback": "deployer",
    "StartCanary": "deployer",
    "EvaluateCanary": "deployer",
    "SetDriftMonitor": "deployer",
    "GetDriftStatus": "reader",
    # operator, as Evaluate: a judge evaluator spends LM calls on the gateway's connections
    "SetEvaluator": "operator",
    "ListEvaluators": "reader",
    "SetLearningPolicy": "operator",  # its retrains start jobs (on the gateway's own optimizer link)
    "PauseLearning": "deployer",
    "GetLearningStatus": "reader",
}
_OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


@dataclass(frozen=True)
class Principal:
    name: str
    role: str


class TokenFileError(ValueError):
    pass


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_tokens(path: str | Path) -> dict[str, Principal]:
    """sha256 hex -> principal. Malformed lines are refused at start, with their line number."""
    principals: dict[str, Principal] = {}
    for number, raw in enumerate(Path(path).read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3:
            raise TokenFileError(f"{path}:{number}: expected '<sha256 hex> <role> <name>'")
        digest, role, name = parts
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
            raise TokenFileError(
                f"{path}:{number}: the first column must be a sha256 hex digest, not a token"
            )
        if role not in ROLES:
            raise TokenFileError(f"{path}:{number}: unknown role {role!r}; roles: {', '.join(ROLES)}")
        if len(name) > MAX_ACTOR_CHARS or not name.isprintable():
            # the name is the actor written with every event the token causes
            raise TokenFileError(
                f"{path}:{number}: the name must be printable and at most {MAX_ACTOR_CHARS} characters"
            )
        principals[digest.lower()] = Principal(name, role)
    if not principals:
        raise TokenFileError(f"{path}: no tokens")
    return principals


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, principals: Mapping[str, Principal]) -> None:
        self.principals = dict(principals)

    def _authenticate(self, metadata: Any) -> Principal | None:
        header = next((v for k, v in metadata or () if k == "authorization"), "")
        if not isinstance(header, str) or not header.startswith("Bearer "):
            return None
        digest = hash_token(header[len("Bearer ") :].strip())
        for known, principal in self.principals.items():  # constant-time compare of the digests
            if hmac.compare_digest(known, digest):
                return principal
        return None

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Req, Resp] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Req, Resp] | None:
        handler = await continuation(details)
        method = details.method or ""
        if handler is None or method.startswith(_OPEN_SERVICES):
            return handler
        principal = self._authenticate(details.invocation_metadata)
        name = method.rsplit("/", 1)[-1]
        if principal is None:
            return _refuse(
                handler, grpc.StatusCode.UNAUTHENTICATED, "authorization: a valid bearer token is required"
            )
        needed = REQUIRED.get(name, "admin")
        if needed not in _GRANTS[principal.role]:
            return _refuse(
                handler,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{name} needs the {needed} role; {principal.name} is {principal.role}",
            )
        return _as_actor(handler, principal.name)


# grpc's stubs type a handler's behaviours as the sync server calls them; under grpc.aio they
# are coroutine functions (unary responses) and async generator functions (streamed ones).
Context = grpc.aio.ServicerContext[Any, Any]
_AioUnary = Callable[[Any, Context], Awaitable[Any]]
_AioStream = Callable[[Any, Context], AsyncIterator[Any]]


def _refuse(
    handler: grpc.RpcMethodHandler[Req, Resp], code: grpc.StatusCode, message: str
) -> grpc.RpcMethodHandler[Req, Resp]:
    message = scrub(message)
    if handler.response_streaming:

        async def deny_stream(request: Any, context: Context) -> AsyncIterator[Any]:
            await context.abort(code, message)
            yield  # pragma: no cover - abort raises

        return grpc.unary_stream_rpc_method_handler(
            deny_stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def deny(request: Any, context: Context) -> Any:
        await context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(
        deny,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _as_actor(handler: grpc.RpcMethodHandler[Req, Resp], actor: str) -> grpc.RpcMethodHandler[Req, Resp]:
    """The same handler, run with `current_actor` set (service code reads it for the log)."""
    if handler.unary_unary:
        inner = cast(_AioUnary, handler.unary_unary)

        async def unary(request: Any, context: Context) -> Any:
            token = current_actor.set(actor)
            try:
                return await inner(request, context)
            finally:
                current_actor.reset(token)

        return grpc.unary_unary_rpc_method_handler(
            unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream:
        inner_stream = cast(_AioStream, handler.unary_stream)

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            token = current_actor.set(actor)
            try:
                async for item in inner_stream(request, context):
                    yield item
            finally:
                current_actor.reset(token)

        return grpc.unary_stream_rpc_method_handler(
            stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler  # our services have no client-streaming methods


class BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Client side: adds `authorization: Bearer <token>` to every call."""

    def __init__(self, token: str) -> None:
        self.header = ("authorization", f"Bearer {token}")

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [*(details.metadata or ()), self.header]
        return _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(details), request)


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any
    compression: Any
