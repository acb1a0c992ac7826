"""Multi-module programs traced through the real servers: a two-stage pipeline ("analyze,
then answer"), the user's own module (an allowlisted test class with two predictors) and a
ReAct stage with two tools, one of which raises; each registered by the optimizer, served by
a gateway with include_trace, its trace kept by a capture policy, and explained stage by stage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import events_pb2 as pb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.programs_pkg.specs import ALLOWED, MODULES, PIPELINE, agent
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()[:8]
USER = pb.ProgramSpec(module=f"{MODULES}:TwoStep")
AGENT = agent(max_iters=3)


@dataclass(frozen=True)
class Served:
    opt: OptimizerClient
    gw: GatewayClient
    predictors: dict[str, set[str]]  # deployment -> the served program's predictor names


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp: Path = tmp_path_factory.mktemp("traced-programs")
    log = str(tmp / "log.db")
    allowed: dict[str, Any] = {"program_modules": ALLOWED}  # p1's setting, typed loosely until the merge
    config = OptimizerConfig(log=log, data_dir=tmp / "data", **allowed)
    optimizer = ServerThread(lambda: start_optimizer(config))
    predictors: dict[str, set[str]] = {}
    with OptimizerClient(optimizer.address, timeout=120) as opt:
        for name, spec in (("twostage", PIPELINE), ("twostep", USER), ("agent", AGENT)):
            extra: dict[str, Any] = {"spec": spec}
            events = list(
                opt.start_optimization(
                    name, "", trainset=ROWS, optimizer="LabeledFewShot", input_keys=["text"], **extra
                )
            )
            assert events[-1].WhichOneof("kind") == "completed", events[-1]
            version = events[-1].completed.version
            predictors[name] = set(json.loads(opt.export_version(name, version).state_json)) - {"metadata"}
            opt.create_deployment(name, name)
            opt.set_routes(name, {version: 1.0})
            head = opt.set_capture_policy(name, traces=True).log_position
        gateway = ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0, **allowed)))
        with GatewayClient(gateway.address) as gw:
            assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
            yield Served(opt, gw, predictors)
        gateway.stop()
    optimizer.stop()


@pytest.mark.parametrize("deployment", ["twostage", "twostep"])
def test_every_stage_is_a_module_call_with_its_inputs_outputs_and_usage(
    served: Served, deployment: str
) -> None:
    gw, predictors = served.gw, served.predictors[deployment]
    answer = gw.predict(deployment, {"text": "I was charged twice"}, include_trace=True)
    root = answer.trace[0]
    assert root.name == "self" and dict(root.inputs) == {"text": "I was charged twice"}
    named = {c.name: c for c in answer.trace}
    assert {c.name for c in answer.trace if c.module == "Predict"} == predictors
    assert named["answer"].inputs["topic"] == named["analyze"].outputs["topic"]  # the wiring, as it ran
    assert named["answer"].outputs["label"] == answer.outputs["label"]
    assert root.usage.lm_calls == sum(named[p].usage.lm_calls for p in predictors) == 2


@pytest.mark.parametrize("deployment", ["twostage", "twostep", "agent"])
def test_the_kept_trace_and_each_stage_lm_are_explained(served: Served, deployment: str) -> None:
    gw, predictors = served.gw, served.predictors[deployment]
    answer = gw.predict(deployment, {"text": "where is my parcel"})
    explained = gw.explain_prediction(answer.prediction_id)
    assert {s.stage for s in explained.stage_lms} == predictors
    assert all(s.connection == "offline" for s in explained.stage_lms)
    assert {c.name for c in explained.trace} >= predictors | {"self"}


def test_a_react_stage_keeps_its_trajectory_and_a_raising_tool_is_an_observation(served: Served) -> None:
    answer = served.gw.predict("agent", {"text": "refund order 42"}, include_trace=True)
    react = next(c for c in answer.trace if c.module == "ReAct")
    assert react.name == "agent" and react.error == ""
    steps = json.loads(react.trajectory)
    assert "thought_0" in steps and "observation_0" in steps
    assert "trajectory" not in react.outputs and react.outputs["label"] == answer.outputs["label"]
    assert react.usage.lm_calls >= 2  # its steps and the extraction
