"""A multi-stage program traced through the real servers: a two-stage pipeline ("analyze,
then answer") registered by the optimizer, served by a gateway with include_trace, its trace
kept by a capture policy, and explained stage by stage.

Pipelines are p1's part (ProgramSpec.pipeline, `spec=` on the client): until the branches
are merged this module is skipped; once they are, it runs as it stands."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.proto import events_pb2 as pb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

pytestmark = pytest.mark.skipif(
    "spec" not in inspect.signature(OptimizerClient.start_optimization).parameters,
    reason="needs p1's pipelines (ProgramSpec.pipeline, start_optimization(spec=)); runs once merged",
)

ROWS = ticket_rows()[:8]
PIPELINE = pb.ProgramSpec(
    module="Pipeline",
    pipeline=pb.Pipeline(
        stages=[
            pb.Stage(
                name="analyze",
                kind="ChainOfThought",
                signature="text -> topic",
                inputs={"text": "input.text"},
            ),
            pb.Stage(
                name="answer",
                kind="Predict",
                signature="text, topic -> label",
                inputs={"text": "input.text", "topic": "analyze.topic"},
            ),
        ],
        outputs={"label": "answer.label"},
    ),
)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[OptimizerClient, GatewayClient, set[str]]]:
    tmp: Path = tmp_path_factory.mktemp("traced-pipeline")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
    with OptimizerClient(optimizer.address, timeout=120) as opt:
        pipeline: dict[str, Any] = {"spec": PIPELINE}  # p1's parameter, typed loosely until the merge
        events = list(
            opt.start_optimization(
                "twostage", "", trainset=ROWS, optimizer="LabeledFewShot", input_keys=["text"], **pipeline
            )
        )
        assert events[-1].WhichOneof("kind") == "completed", events[-1]
        version = events[-1].completed.version
        predictors = set(json.loads(opt.export_version("twostage", version).state_json)) - {"metadata"}
        opt.create_deployment("web", "twostage")
        opt.set_routes("web", {version: 1.0})
        head = opt.set_capture_policy("web", traces=True).log_position
        gateway = ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0)))
        with GatewayClient(gateway.address) as gw:
            assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
            yield opt, gw, predictors
        gateway.stop()
    optimizer.stop()


def test_every_stage_is_a_module_call_with_its_inputs_outputs_and_usage(
    served: tuple[OptimizerClient, GatewayClient, set[str]],
) -> None:
    _, gw, predictors = served
    answer = gw.predict("web", {"text": "I was charged twice"}, include_trace=True)
    root = answer.trace[0]
    assert root.name == "self" and dict(root.inputs) == {"text": "I was charged twice"}
    named = {c.name: c for c in answer.trace}
    assert {c.name for c in answer.trace if c.module == "Predict"} == predictors
    assert named["answer"].inputs["topic"] == named["analyze"].outputs["topic"]  # the wiring, as it ran
    assert named["answer"].outputs["label"] == answer.outputs["label"]
    assert root.usage.lm_calls == sum(named[p].usage.lm_calls for p in predictors) == 2


def test_the_kept_trace_and_each_stage_lm_are_explained(
    served: tuple[OptimizerClient, GatewayClient, set[str]],
) -> None:
    _, gw, predictors = served
    answer = gw.predict("web", {"text": "where is my parcel"})
    explained = gw.explain_prediction(answer.prediction_id)
    assert {s.stage for s in explained.stage_lms} == predictors
    assert all(s.connection == "offline" for s in explained.stage_lms)
    assert {c.name for c in explained.trace} >= predictors | {"self"}
