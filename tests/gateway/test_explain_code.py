"""ExplainPrediction names what ran, through the real servers: the version's code digests
(Lineage.code_digests), each predictor's connection and model, the record's code-drift flag,
and the trace the deployment's capture policy kept.

The log is written with the store API as the optimizer writes it (tests/support/logs.py),
plus a version whose lineage carries code digests, as a version of a user module will (the
user-module kind itself is p1's part). The drift flag is set on the record the way a gateway
started with --allow-code-drift sets it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import dspy
import pytest

from dspyops.artifacts import encode_artifact
from dspyops.client import GatewayClient
from dspyops.eventlog import open_store
from dspyops.events import new_event
from dspyops.lm import LMConfig
from dspyops.programs.build import build_module, program_state
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from tests.support.harness import ServerThread, ticket_rows, wait_until
from tests.support.logs import write_log

GATEWAY_FIELDS = {f.name for f in fields(GatewayConfig)}
DIGESTS = {"mypkg.programs": "a" * 64, "mypkg.tools": "b" * 64}


@dataclass(frozen=True)
class Stack:
    gw: GatewayClient
    predictions: Path


def _register(
    log: Path, version: str, module: str, lineage: pb.Lineage, deployment: str, capture: bool
) -> None:
    spec = ProgramSpec(module=module, signature="text -> label")
    program = build_module(spec)
    for predictor in program.predictors():
        predictor.demos = [dspy.Example(**row).with_inputs("text") for row in ticket_rows()[:4]]
    digest, artifact = encode_artifact(spec, program_state(program), LMConfig())
    registered = pb.VersionRegistered(
        program="tickets",
        version=version,
        spec=pb.ProgramSpec(module=module, signature="text -> label"),
        lm=pb.LMConfig(connection="offline"),
        artifact_digest=digest,
        artifact=artifact,
        status=pb.STAGING,
        lineage=lineage,
    )
    store = open_store(str(log))
    try:
        store.append("program-tickets", [new_event(registered)], None)
        events = [
            new_event(pb.DeploymentCreated(deployment=deployment, program="tickets")),
            new_event(pb.RoutesSet(deployment=deployment, routes=[pb.Route(version=version, weight=1.0)])),
        ]
        if capture:
            events.append(
                new_event(pb.CapturePolicySet(deployment=deployment, policy=pb.CapturePolicy(traces=True)))
            )
        store.append(f"deployment-{deployment}", events, 0)
    finally:
        store.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("explain-code")
    log = tmp / "log.db"
    write_log(log)  # tickets 1.0.0 (Predict, no user code) served by "web", nothing captured
    _register(log, "2.0.0", "Predict", pb.Lineage(optimizer="test", code_digests=DIGESTS), "coded", True)
    _register(log, "3.0.0", "ChainOfThought", pb.Lineage(optimizer="test"), "reasoned", True)
    with open_store(str(log), create=False) as store:
        head = store.head()
    # the digests above name no module this gateway loads: a gateway that checks user code
    # (p1's, once merged) serves the version only with drift allowed, and records the drift
    drift: dict[str, Any] = {"allow_code_drift": True} if "allow_code_drift" in GATEWAY_FIELDS else {}
    config = GatewayConfig(log=str(log), canary_interval=0, **drift)
    gateway = ServerThread(lambda: start_gateway(config))
    with GatewayClient(gateway.address) as gw:
        assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
        yield Stack(gw, Path(f"{log}.predictions"))
    gateway.stop()


def test_explain_names_the_code_digests_and_each_stage_lm(stack: Stack) -> None:
    answer = stack.gw.predict("coded", {"text": "I was charged twice"}, "u1")
    explained = stack.gw.explain_prediction(answer.prediction_id, "u1")
    assert explained.reproduced and explained.recorded_version == "2.0.0"
    assert dict(explained.code_digests) == DIGESTS
    assert [(s.stage, s.connection, s.model) for s in explained.stage_lms] == [("self", "offline", "")]


def test_a_version_without_user_code_has_no_digests_and_names_every_predictor(stack: Stack) -> None:
    answer = stack.gw.predict("reasoned", {"text": "where is my parcel"})
    explained = stack.gw.explain_prediction(answer.prediction_id)
    assert dict(explained.code_digests) == {}
    assert [(s.stage, s.connection) for s in explained.stage_lms] == [("predict", "offline")]
    assert not explained.code_drift


def test_explain_shows_the_kept_trace_only_where_the_policy_kept_one(stack: Stack) -> None:
    kept = stack.gw.predict("reasoned", {"text": "refund please"})
    explained = stack.gw.explain_prediction(kept.prediction_id)
    assert [(c.name, c.module) for c in explained.trace] == [
        ("self", "ChainOfThought"),
        ("predict", "Predict"),
    ]
    assert explained.trace[0].outputs["label"] == kept.outputs["label"]
    plain = stack.gw.predict("web", {"text": "refund please"}, include_trace=True)  # returned, not kept
    assert len(plain.trace) == 1 and list(stack.gw.explain_prediction(plain.prediction_id).trace) == []


def test_explain_reports_the_records_code_drift(stack: Stack) -> None:
    answer = stack.gw.predict("coded", {"text": "hello"})
    with sqlite3.connect(stack.predictions) as conn:  # as --allow-code-drift records it
        drift = '{"mypkg.programs": {"loaded": "' + "c" * 64 + '", "recorded": "' + "a" * 64 + '"}}'
        conn.execute(
            "UPDATE predictions SET code_drift = ? WHERE prediction_id = ?", [drift, answer.prediction_id]
        )
    conn.close()
    assert stack.gw.explain_prediction(answer.prediction_id).code_drift
