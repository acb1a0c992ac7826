"""What both gRPC servers share: server construction (health, reflection, message size
limits) and the mapping from domain errors to gRPC statuses.

Handlers raise `DspyopsError` subclasses; the decorators here turn them into a status that
names the field. Any other exception becomes INTERNAL with a generic message (the details
go to the service log, not to the client), and the server keeps serving.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from dspyops.errors import DspyopsError
from dspyops.eventlog import StoreUnavailable

MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # inline datasets are bounded by this (see README)
_log = structlog.get_logger()

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def unary(
    fn: Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        try:
            return await fn(self, request, context)
        except DspyopsError as exc:
            await context.abort(exc.code, str(exc))
        except StoreUnavailable as exc:  # a read as much as a write: the log is gone, full, failing
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{fn.__name__}: the log is unavailable: {exc}")
        except grpc.aio.AbortError:
            raise
        except Exception:
            _log.exception("rpc_failed", rpc=fn.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, f"{fn.__name__}: internal error (see server log)")
        raise AssertionError("unreachable")  # abort() always raises

    return wrapper


def streaming(
    fn: Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> AsyncIterator[Resp]:
        try:
            async for item in fn(self, request, context):
                yield item
        except DspyopsError as exc:
            await context.abort(exc.code, str(exc))
        except StoreUnavailable as exc:  # a read as much as a write: the log is gone, full, failing
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{fn.__name__}: the log is unavailable: {exc}")
        except grpc.aio.AbortError:
            raise
        except Exception:
            _log.exception("rpc_failed", rpc=fn.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, f"{fn.__name__}: internal error (see server log)")

    return wrapper


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
    service_names: Sequence[str], security: Security | None = None
) -> tuple[grpc.aio.Server, health.HealthServicer]:
    """A grpc.aio server with the health and reflection services registered."""
    interceptors = []
    if security and security.tokens_file:
        from dspyops.auth import AuthInterceptor, load_tokens

        interceptors.append(AuthInterceptor(load_tokens(security.tokens_file)))
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    return server, health_servicer


async def set_serving(health_servicer: Any, service_names: Sequence[str], serving: bool = True) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *service_names):
        result = health_servicer.set(name, status)
        if hasattr(result, "__await__"):
            await result


def bind(server: grpc.aio.Server, host: str, port: int, security: Security | None = None) -> int:
    credentials = security.credentials() if security else None
    address = f"{host}:{port}"
    bound = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"cannot bind {address}")
    return bound
