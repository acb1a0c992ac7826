"""Traces (OpenTelemetry): one TracerProvider per server instance, passed in its config.

A server given no provider (None, the default) installs no interceptor and makes no span:
tracing off costs nothing. The entry points (`python -m optimizer_svc|gateway_svc`) build one
with `provider_from_env` only when the standard variables OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT are set; the OTLP exporter reads them (and the other
OTEL_EXPORTER_OTLP_* ones) itself. Tests pass a provider with the SDK's InMemorySpanExporter.

The RPC spans and the W3C traceparent propagation are opentelemetry-instrumentation-grpc's
(`rpc_server_interceptor`, `rpc_client_interceptors`); the spans of jobs, trials, module
calls and LM calls are ours (optimizer_svc.jobs.manager, dspyops.tracing).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

import grpc
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer

INSTRUMENTATION: Final = "dspyops"
ENDPOINT_VARIABLES: Final = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
NO_TRACER: Final[Tracer] = trace.NoOpTracer()


def provider_from_env(service: str, environ: Mapping[str, str] | None = None) -> TracerProvider | None:
    """A provider exporting over OTLP when an OTLP endpoint variable is set, else None."""
    env = os.environ if environ is None else environ
    if not any(env.get(name) for name in ENDPOINT_VARIABLES):
        return None
    # imported here: the exporter's gRPC stack loads only when traces leave the process
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    # OTEL_SERVICE_NAME names the service when set (Resource.create would let ours win over it)
    name = env.get("OTEL_SERVICE_NAME") or f"dspyops-{service}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def tracer(provider: trace.TracerProvider | None) -> Tracer:
    """The provider's tracer for dspyops' own spans; a no-op one without a provider."""
    return NO_TRACER if provider is None else provider.get_tracer(INSTRUMENTATION)


def rpc_server_interceptor(provider: trace.TracerProvider) -> grpc.aio.ServerInterceptor:
    """A span per RPC (rpc.system, rpc.service, rpc.method, rpc.grpc.status_code), continuing
    the trace of an incoming W3C traceparent."""
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(tracer_provider=provider)  # type: ignore[no-untyped-call]
    return interceptor


def rpc_client_interceptors(provider: trace.TracerProvider | None) -> list[Any]:
    """A client span per call, its context sent on as W3C traceparent ([] without a provider)."""
    if provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors(tracer_provider=provider))  # type: ignore[no-untyped-call]


def trace_id_hex(span: trace.Span | None = None) -> str:
    """The current (or given) span's trace id as 32 hex digits; "" when there is no real span."""
    context = (span or trace.get_current_span()).get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else ""


def shutdown(provider: trace.TracerProvider | None) -> None:
    """Flush and stop an SDK provider (a server's stop); nothing for None or a no-op one."""
    if isinstance(provider, TracerProvider):
        provider.shutdown()
