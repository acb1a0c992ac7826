"""What both gRPC servers share: server construction (health, reflection, message size
limits) and the mapping from domain errors to gRPC statuses.

Handlers raise `DspyopsError` subclasses; the decorators here turn them into a status that
names the field. Any other exception becomes INTERNAL with a generic message (the details
go to the service log, not to the client), and the server keeps serving. Every status
message is scrubbed (`dspyops.scrub`): a problem may quote a provider's error, and that may
quote a key.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.trace import TracerProvider
from prometheus_client import CollectorRegistry

from dspyops import reflection
from dspyops.errors import DspyopsError
from dspyops.eventlog import StoreUnavailable
from dspyops.health import HealthServicer
from dspyops.limits import MAX_MESSAGE_BYTES, check_request
from dspyops.scrub import learn_token_hashes, scrub
from dspyops.telemetry import rpc_server_interceptor

_log = structlog.get_logger()

Req = TypeVar("Req")
Resp = TypeVar("Resp")


Context = grpc.aio.ServicerContext[Any, Any]


def unary(
    fn: Callable[[Any, Req, Context], Awaitable[Resp]],
) -> Callable[[Any, Req, Context], Awaitable[Resp]]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Req, context: Context) -> Resp:
        try:
            await _check_limits(request)
            return await fn(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, fn.__name__, exc)

    return wrapper


def streaming(
    fn: Callable[[Any, Req, Context], AsyncIterator[Resp]],
) -> Callable[[Any, Req, Context], AsyncIterator[Resp]]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Req, context: Context) -> AsyncIterator[Resp]:
        try:
            await _check_limits(request)
            async for item in fn(self, request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, fn.__name__, exc)

    return wrapper


async def _abort(context: Context, rpc: str, exc: Exception) -> NoReturn:
    """End the call with the status for what the handler raised (called in its except block,
    so the log line has the traceback)."""
    if isinstance(exc, DspyopsError):
        await context.abort(exc.code, scrub(str(exc)))
    if isinstance(exc, StoreUnavailable):  # a read as much as a write: the log is gone, full, failing
        await context.abort(grpc.StatusCode.UNAVAILABLE, scrub(f"{rpc}: the log is unavailable: {exc}"))
    _log.exception("rpc_failed", rpc=rpc)
    await context.abort(grpc.StatusCode.INTERNAL, f"{rpc}: internal error (see server log)")


async def _check_limits(request: Any) -> None:
    """Every field of every request within its limit (dspyops.limits), before the handler;
    a big request (an inline dataset) is walked in a worker thread, off the event loop."""
    if request.ByteSize() > _WALK_INLINE_BYTES:
        await asyncio.to_thread(check_request, request)
    else:
        check_request(request)


_WALK_INLINE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Security:
    """How a server admits callers: bearer tokens (a file of token hashes with roles) and
    TLS (server certificate; with client_ca, client certificates are required too)."""

    tokens_file: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""

    def credentials(self) -> grpc.ServerCredentials | None:
        if not self.tls_cert:
            if self.tls_key or self.tls_client_ca:
                raise ValueError("tls_key and tls_client_ca need tls_cert")
            return None
        key, cert = Path(self.tls_key).read_bytes(), Path(self.tls_cert).read_bytes()
        client_ca = Path(self.tls_client_ca).read_bytes() if self.tls_client_ca else None
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
        )


def make_server(
    service_names: Sequence[str],
    security: Security | None = None,
    metrics: CollectorRegistry | None = None,
    tracer_provider: TracerProvider | None = None,
) -> tuple[grpc.aio.Server, HealthServicer]:
    """A grpc.aio server with the health and reflection (v1 and v1alpha) services registered;
    with `metrics`, its calls counted there (dspyops.prometheus.grpc); with a tracer
    provider, a span per RPC (dspyops.telemetry)."""
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if metrics is not None:  # first: outermost, so calls auth refuses are counted too
        from dspyops.prometheus.grpc import PrometheusInterceptor

        interceptors.append(PrometheusInterceptor(metrics))
    # before auth: a call auth refuses has its span too (rpc.grpc.status_code 16 or 7)
    interceptors += [rpc_server_interceptor(tracer_provider)] if tracer_provider is not None else []
    if security and security.tokens_file:
        from dspyops.auth import AuthInterceptor, load_tokens

        principals = load_tokens(security.tokens_file)
        learn_token_hashes(principals)  # a token quoted anywhere is redacted (the file holds hashes)
        interceptors.append(AuthInterceptor(principals))
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable(server, (*service_names, health.SERVICE_NAME))
    return server, health_servicer


async def set_serving(
    health_servicer: HealthServicer, service_names: Sequence[str], serving: bool = True
) -> None:
    """The status of the server ("") and of each service; ignored once shutting down."""
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *service_names):
        await health_servicer.set(name, status)


def bind(server: grpc.aio.Server, host: str, port: int, security: Security | None = None) -> int:
    credentials = security.credentials() if security else None
    address = f"{host}:{port}"
    bound = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"cannot bind {address}")
    return bound
