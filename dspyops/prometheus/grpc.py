"""gRPC server metrics with py-grpc-prometheus's names and labels (so its dashboards and
alerts apply), through a `grpc.aio.ServerInterceptor`: that library wraps only the sync
server (grpc.ServerInterceptor), it has no asyncio support, so the interceptor is written
here.

It runs first (outermost), so a call the auth interceptor refuses is counted too, with its
UNAUTHENTICATED or PERMISSION_DENIED code. Health and reflection calls are counted like any.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Context = grpc.aio.ServicerContext[Any, Any]

UNARY, SERVER_STREAM, CLIENT_STREAM, BIDI_STREAM = "UNARY", "SERVER_STREAM", "CLIENT_STREAM", "BIDI_STREAM"
_LABELS = ("grpc_type", "grpc_service", "grpc_method")


class GrpcServerMetrics:
    """The five py-grpc-prometheus server families, registered in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.started = Counter(
            "grpc_server_started", "Total number of RPCs started on the server.", _LABELS, registry=registry
        )
        self.handled = Counter(
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            (*_LABELS, "grpc_code"),
            registry=registry,
        )
        self.handling_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled "
            "by the server.",
            _LABELS,
            registry=registry,
        )
        self.received = Counter(
            "grpc_server_msg_received",
            "Total number of RPC stream messages received on the server.",
            _LABELS,
            registry=registry,
        )
        self.sent = Counter(
            "grpc_server_msg_sent",
            "Total number of gRPC stream messages sent by the server.",
            _LABELS,
            registry=registry,
        )


class PrometheusInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.metrics = GrpcServerMetrics(registry)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Req, Resp] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Req, Resp] | None:
        handler = await continuation(details)
        if handler is None:  # an unknown method: grpc answers UNIMPLEMENTED without a handler
            return None
        service, _, method = (details.method or "").lstrip("/").rpartition("/")
        return _measured(handler, _Call(self.metrics, service, method, _kind(handler)))


def _kind(handler: grpc.RpcMethodHandler[Any, Any]) -> str:
    if handler.request_streaming:
        return BIDI_STREAM if handler.response_streaming else CLIENT_STREAM
    return SERVER_STREAM if handler.response_streaming else UNARY


class _Call:
    """One method's labelled children, and how a call on it ends."""

    def __init__(self, metrics: GrpcServerMetrics, service: str, method: str, kind: str) -> None:
        self.metrics = metrics
        self.labels = (kind, service, method)

    def begin(self) -> float:
        self.metrics.started.labels(*self.labels).inc()
        return time.perf_counter()

    def received(self) -> None:
        self.metrics.received.labels(*self.labels).inc()

    def sent(self) -> None:
        self.metrics.sent.labels(*self.labels).inc()

    def end(self, began: float, code: grpc.StatusCode) -> None:
        self.metrics.handled.labels(*self.labels, code.name).inc()
        self.metrics.handling_seconds.labels(*self.labels).observe(time.perf_counter() - began)


def _code(context: Context, exc: BaseException | None) -> grpc.StatusCode:
    """The call's status: what the handler set or aborted with; an escaped exception is
    UNKNOWN (as grpc reports it), a cancelled call CANCELLED."""
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if exc is not None and not isinstance(exc, grpc.aio.AbortError):
        return grpc.StatusCode.UNKNOWN
    return grpc.StatusCode.OK


# grpc's stubs type a handler's behaviours as the sync server calls them; under grpc.aio they
# are coroutine functions (unary responses) and async generator functions (streamed ones).
_AioUnary = Callable[[Any, Context], Awaitable[Any]]
_AioStream = Callable[[Any, Context], AsyncIterator[Any]]


def _measured(handler: grpc.RpcMethodHandler[Req, Resp], call: _Call) -> grpc.RpcMethodHandler[Req, Resp]:
    decode, encode = handler.request_deserializer, handler.response_serializer

    def requests(request: Any) -> Any:
        """The request as the inner behaviour takes it: one message, or a stream counted as read."""
        if not handler.request_streaming:
            call.received()
            return request

        async def counted() -> AsyncIterator[Any]:
            async for message in request:
                call.received()
                yield message

        return counted()

    if handler.response_streaming:
        inner_stream = cast(_AioStream, handler.unary_stream or handler.stream_stream)

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            began, failure = call.begin(), None
            try:
                async for item in inner_stream(requests(request), context):
                    call.sent()  # each message of the stream
                    yield item
            except BaseException as exc:
                failure = exc
                raise
            finally:
                call.end(began, _code(context, failure))

        make = (
            grpc.unary_stream_rpc_method_handler
            if handler.unary_stream
            else grpc.stream_stream_rpc_method_handler
        )
        return cast(
            "grpc.RpcMethodHandler[Req, Resp]",
            make(stream, request_deserializer=decode, response_serializer=encode),
        )

    inner = cast(_AioUnary, handler.unary_unary or handler.stream_unary)

    async def unary(request: Any, context: Context) -> Any:
        began, failure = call.begin(), None
        try:
            response = await inner(requests(request), context)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            call.end(began, _code(context, failure))
        call.sent()
        return response

    make_unary = (
        grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
    )
    return cast(
        "grpc.RpcMethodHandler[Req, Resp]",
        make_unary(unary, request_deserializer=decode, response_serializer=encode),
    )
