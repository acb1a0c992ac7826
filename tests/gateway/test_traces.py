"""PredictRequest.include_trace through the real servers: the optimizer registers versions
(one Predict, one ChainOfThought), a gateway tailing the log serves them, and the reply
carries every module call; without the flag it carries none."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from dspyops.client import GatewayClient, OptimizerClient
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()[:12]


@dataclass(frozen=True)
class Stack:
    opt: OptimizerClient
    gw: GatewayClient


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("traces")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
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
        gateway = ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0)))
        with GatewayClient(gateway.address) as gw:
            assert wait_until(lambda: gw.list_deployment_states().log_position >= deployment.log_position)
            yield Stack(opt, gw)
        gateway.stop()
    optimizer.stop()


def test_a_one_predictor_version_returns_its_one_module_call(stack: Stack) -> None:
    text = "I was charged twice for my order"
    answer = stack.gw.predict("tickets", {"text": text}, "user-1", include_trace=True)
    assert len(answer.trace) == 1
    call = answer.trace[0]
    assert (call.name, call.module) == ("self", "Predict")
    assert dict(call.inputs) == {"text": text}
    assert dict(call.outputs) == dict(answer.outputs)
    assert call.usage.lm_calls == 1 and call.usage.input_tokens > 0 and call.usage.output_tokens > 0
    assert 0 < call.latency_ms <= answer.latency_ms
    assert call.error == "" and call.trajectory == ""


def test_chain_of_thought_shows_the_module_and_its_predictor(stack: Stack) -> None:
    answer = stack.gw.predict("reasoned", {"text": "where is my parcel"}, include_trace=True)
    assert [(c.name, c.module) for c in answer.trace] == [("self", "ChainOfThought"), ("predict", "Predict")]
    outer, inner = answer.trace
    assert set(outer.outputs) == {"reasoning", "label"} and outer.outputs["label"] == answer.outputs["label"]
    assert inner.usage.lm_calls == outer.usage.lm_calls == 1
    assert inner.usage.input_tokens == outer.usage.input_tokens


def test_without_include_trace_the_reply_has_no_trace(stack: Stack) -> None:
    answer = stack.gw.predict("tickets", {"text": "refund please"}, "user-2")
    assert list(answer.trace) == [] and answer.outputs["label"]
