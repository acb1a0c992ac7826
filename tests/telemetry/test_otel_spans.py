"""OpenTelemetry traces through the real servers, each with its own TracerProvider and the
SDK's InMemorySpanExporter: a span per RPC (status codes included), a traceparent from the
caller continued, job and trial spans, module-call and LM-call (GenAI) spans, the trace id
kept with the prediction and returned by explain, the gateway's tail sending its context to
the optimizer; and a gateway given no provider makes no span at all."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import gateway_pb2_grpc
from dspyops.telemetry import provider_from_env
from gateway_svc.predict import SHADOW_SPAN
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until
from tests.support.refused import after_a_refused_call

ROWS = ticket_rows()[:12]
TEXT = "I was charged twice for my order"


def recording() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@dataclass(frozen=True)
class Stack:
    opt: OptimizerClient
    gw: GatewayClient  # on the log, traced
    plain: GatewayClient  # on the log, no provider
    tail: GatewayClient  # tailing the optimizer, traced
    content: GatewayClient  # on the log, traced with trace_content
    gw_address: str
    opt_spans: InMemorySpanExporter
    gw_spans: InMemorySpanExporter
    tail_spans: InMemorySpanExporter
    content_spans: InMemorySpanExporter
    records: str  # the traced gateway's records file


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("otel")
    log = str(tmp / "log.db")
    (opt_provider, opt_spans), (gw_provider, gw_spans) = recording(), recording()
    (tail_provider, tail_spans), (content_provider, content_spans) = recording(), recording()
    optimizer = ServerThread(
        lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data", tracer_provider=opt_provider))
    )
    with OptimizerClient(optimizer.address) as opt:
        for program, module in (("tickets", "Predict"), ("reasoned", "ChainOfThought")):
            events = list(
                opt.start_optimization(
                    program, "text -> label", trainset=ROWS, optimizer="LabeledFewShot", module=module
                )
            )
            assert events[-1].WhichOneof("kind") == "completed", events[-1]
            opt.create_deployment(program, program)
            deployment = opt.set_routes(program, {"1.0.0": 1.0})
        servers = [
            ServerThread(
                lambda: start_gateway(GatewayConfig(log=log, canary_interval=0, tracer_provider=gw_provider))
            ),
            ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0))),
            ServerThread(
                lambda: start_gateway(
                    GatewayConfig(
                        log=log, canary_interval=0, tracer_provider=content_provider, trace_content=True
                    )
                )
            ),
            ServerThread(
                lambda: start_gateway(
                    GatewayConfig(
                        optimizer=optimizer.address,
                        predictions=str(tmp / "tail.db"),
                        canary_interval=0,
                        tracer_provider=tail_provider,
                    )
                )
            ),
        ]
        clients = [GatewayClient(s.address) for s in servers]
        position = deployment.log_position
        for client in clients:
            assert wait_until(partial(caught_up, client, position))
        gw, plain, content, tail = clients
        yield Stack(
            opt,
            gw,
            plain,
            tail,
            content,
            servers[0].address,
            opt_spans,
            gw_spans,
            tail_spans,
            content_spans,
            f"{log}.predictions",
        )
        for client in clients:
            client.close()
        for server in servers:
            server.stop()
    optimizer.stop()


def caught_up(client: GatewayClient, position: int) -> bool:
    return client.list_deployment_states().log_position >= position


def rpc_spans(exporter: InMemorySpanExporter, method: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if (s.attributes or {}).get("rpc.method") == method]


def trace_of(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.context and s.context.trace_id == trace_id]


def test_each_rpc_has_a_span_with_its_service_method_and_status(stack: Stack) -> None:
    answer = stack.gw.predict("tickets", {"text": TEXT}, "user-1")
    predicts = rpc_spans(stack.gw_spans, "Predict")
    (span,) = [s for s in predicts if s.context.trace_id == int(answer.trace_id, 16)]
    attributes = dict(span.attributes or {})
    assert attributes["rpc.system"] == "grpc"
    assert attributes["rpc.service"] == "dspyops.v1.Gateway"
    assert attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
    assert span.kind == trace.SpanKind.SERVER

    with pytest.raises(grpc.RpcError) as failed:
        stack.gw.predict("no-such-deployment", {"text": TEXT})
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND

    def errored() -> list[ReadableSpan]:
        return [
            s
            for s in rpc_spans(stack.gw_spans, "Predict")
            if (s.attributes or {}).get("rpc.grpc.status_code") == grpc.StatusCode.NOT_FOUND.value[0]
        ]

    # the server ends its span after the client has the status: wait for it
    assert wait_until(lambda: bool(errored()))
    # a client's mistake is no server error (the semantic conventions leave NOT_FOUND unset)
    assert errored()[-1].status.status_code == trace.StatusCode.UNSET


def test_a_traceparent_from_the_caller_continues_its_trace(stack: Stack) -> None:
    trace_hex, parent_hex = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with grpc.insecure_channel(stack.gw_address) as channel:
        reply = gateway_pb2_grpc.GatewayStub(channel).Predict(
            gpb.PredictRequest(deployment="tickets", inputs={"text": TEXT}),
            metadata=(("traceparent", f"00-{trace_hex}-{parent_hex}-01"),),
        )
    assert reply.trace_id == trace_hex
    (span,) = [s for s in rpc_spans(stack.gw_spans, "Predict") if s.context.trace_id == int(trace_hex, 16)]
    assert span.parent is not None and span.parent.span_id == int(parent_hex, 16) and span.parent.is_remote


def test_a_job_has_a_span_under_its_rpc_and_its_trials_under_it(stack: Stack) -> None:
    jobs = [s for s in stack.opt_spans.get_finished_spans() if s.name == "job"]
    assert len(jobs) == 2
    job = jobs[0]
    assert (job.attributes or {})["dspyops.optimizer"] == "LabeledFewShot"
    starts = rpc_spans(stack.opt_spans, "StartOptimization")
    (rpc,) = [s for s in starts if s.context.trace_id == job.context.trace_id]
    assert job.parent is not None and job.parent.span_id == rpc.context.span_id
    trials = [s for s in trace_of(stack.opt_spans, job.context.trace_id) if s.name == "trial"]
    assert trials and all(t.parent is not None and t.parent.span_id == job.context.span_id for t in trials)
    assert (trials[0].attributes or {})["dspyops.trial.number"] == 1


def test_module_calls_have_spans_nested_under_the_predict_rpc(stack: Stack) -> None:
    answer = stack.gw.predict("reasoned", {"text": "where is my parcel"})
    spans = trace_of(stack.gw_spans, int(answer.trace_id, 16))
    by_name = {s.name: s for s in spans}
    outer, inner = by_name["dspy.module self"], by_name["dspy.module predict"]
    (rpc,) = [s for s in spans if (s.attributes or {}).get("rpc.method") == "Predict"]
    assert outer.parent is not None and outer.parent.span_id == rpc.context.span_id
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert (outer.attributes or {})["dspyops.module.class"] == "ChainOfThought"


def test_an_lm_call_has_genai_attributes_and_no_prompt_by_default(stack: Stack) -> None:
    answer = stack.gw.predict("tickets", {"text": TEXT}, "user-3")
    spans = trace_of(stack.gw_spans, int(answer.trace_id, 16))
    (lm,) = [s for s in spans if (s.attributes or {}).get("gen_ai.operation.name") == "chat"]
    attributes = dict(lm.attributes or {})
    assert attributes["gen_ai.request.model"] and attributes["gen_ai.provider.name"]
    tokens = attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]
    assert all(isinstance(n, int) and n > 0 for n in tokens)
    module = next(s for s in spans if s.name == "dspy.module self")
    assert lm.parent is not None and lm.parent.span_id == module.context.span_id
    assert "gen_ai.input.messages" not in attributes
    assert not any("charged twice" in str(v) for s in spans for v in (s.attributes or {}).values())


def test_explain_returns_the_trace_id_the_prediction_was_served_under(stack: Stack) -> None:
    answer = stack.gw.predict("tickets", {"text": TEXT}, "user-4")
    assert len(answer.trace_id) == 32 and trace_of(stack.gw_spans, int(answer.trace_id, 16))
    assert stack.gw.explain_prediction(answer.prediction_id).trace_id == answer.trace_id


def test_the_gateways_tail_sends_its_context_to_the_optimizer(stack: Stack) -> None:
    clients = [s for s in stack.tail_spans.get_finished_spans() if s.kind == trace.SpanKind.CLIENT]
    assert any((s.attributes or {}).get("rpc.method") == "ReadLog" for s in clients)
    served = {s.context.span_id: s for s in stack.opt_spans.get_finished_spans()}
    sent = {c.context.span_id for c in clients}
    continued = [
        s
        for s in rpc_spans(stack.opt_spans, "ReadLog")
        if s.parent is not None and s.parent.is_remote and s.parent.span_id in sent
    ]
    assert continued and all(s.context.span_id in served for s in continued)


def test_a_gateway_without_a_provider_makes_no_span(stack: Stack) -> None:
    before = len(stack.gw_spans.get_finished_spans()), len(stack.opt_spans.get_finished_spans())
    answer = stack.plain.predict("tickets", {"text": TEXT}, "user-5")
    assert answer.trace_id == ""
    assert stack.plain.explain_prediction(answer.prediction_id).trace_id == ""
    # and no global provider was installed behind the servers' backs
    assert not trace.get_tracer_provider().get_tracer("x").start_span("probe").get_span_context().is_valid
    after = len(stack.gw_spans.get_finished_spans()), len(stack.opt_spans.get_finished_spans())
    assert after == before


def test_the_entry_points_export_only_when_an_otlp_endpoint_is_set() -> None:
    assert provider_from_env("gateway", {}) is None
    assert provider_from_env("gateway", {"OTEL_EXPORTER_OTLP_ENDPOINT": ""}) is None
    provider = provider_from_env("gateway", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1"})
    assert isinstance(provider, TracerProvider)
    assert provider.resource.attributes["service.name"] == "dspyops-gateway"
    provider.shutdown()


def test_with_trace_content_lm_spans_carry_the_prompt_and_completion_scrubbed(stack: Stack) -> None:
    answer = stack.content.predict("tickets", {"text": f"{TEXT}, Authorization: Bearer abcdef1234567890"})
    (lm,) = [
        s
        for s in trace_of(stack.content_spans, int(answer.trace_id, 16))
        if (s.attributes or {}).get("gen_ai.operation.name") == "chat"
    ]
    prompt = str((lm.attributes or {})["gen_ai.input.messages"])
    assert TEXT in prompt and "abcdef1234567890" not in prompt
    assert answer.outputs["label"] in str((lm.attributes or {})["gen_ai.output.messages"])


def test_a_call_auth_refuses_has_its_span_with_the_status(tmp_path: Path) -> None:
    provider, spans = recording()
    with after_a_refused_call(tmp_path, tracer_provider=provider):
        unauthenticated = grpc.StatusCode.UNAUTHENTICATED.value[0]
        assert wait_until(
            lambda: any(
                (s.attributes or {}).get("rpc.grpc.status_code") == unauthenticated
                for s in rpc_spans(spans, "ListDeploymentStates")
            )
        )


def test_a_shadow_prediction_has_its_span_in_the_primarys_trace(stack: Stack) -> None:
    events = list(
        stack.opt.start_optimization(
            "tickets", "text -> label", trainset=ROWS, optimizer="LabeledFewShot", params={"k": 2}
        )
    )
    shadow = events[-1].completed.version
    stack.opt.create_deployment("shadowed", "tickets")
    routes = [
        pb.Route(version="1.0.0", weight=1.0, role=pb.PRIMARY),
        pb.Route(version=shadow, weight=1.0, role=pb.SHADOW),
    ]
    assert wait_until(partial(caught_up, stack.gw, stack.opt.set_routes("shadowed", routes).log_position))
    answer = stack.gw.predict("shadowed", {"text": TEXT}, "user-s")
    trace_id = int(answer.trace_id, 16)

    def shadows() -> list[ReadableSpan]:
        return [s for s in trace_of(stack.gw_spans, trace_id) if s.name == SHADOW_SPAN]

    assert wait_until(lambda: bool(shadows()))  # the shadow runs after the answer
    (span,) = shadows()
    spans = trace_of(stack.gw_spans, trace_id)
    (rpc,) = [s for s in spans if (s.attributes or {}).get("rpc.method") == "Predict"]
    assert span.parent is not None and span.parent.span_id == rpc.context.span_id
    assert (span.attributes or {})["dspyops.version"] == shadow
    (module,) = [s for s in spans if s.parent is not None and s.parent.span_id == span.context.span_id]
    assert module.name == "dspy.module self"
    assert any(
        (s.attributes or {}).get("gen_ai.operation.name") == "chat"
        for s in spans
        if s.parent is not None and s.parent.span_id == module.context.span_id
    )

    def kept() -> list[str]:  # the shadow's record is written after its span has ended
        with sqlite3.connect(stack.records) as conn:
            sql = "SELECT trace_id FROM predictions WHERE shadow_of = ?"
            return [row[0] for row in conn.execute(sql, [answer.prediction_id])]

    assert wait_until(lambda: bool(kept()))
    assert kept() == [answer.trace_id]  # the shadow's record names the trace it ran in
