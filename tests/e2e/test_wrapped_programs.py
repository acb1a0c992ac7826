"""KNNFewShot and Ensemble register the programs they built (ProgramSpec.wrapper), and the real
gateway serves exactly what the job scored: per-input retrieved demos, the members' vote."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dspy
import grpc
import pytest

from dspyops.client import GatewayClient, OptimizerClient, examples
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig
from optimizer_svc.server import start as start_optimizer
from tests.support.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()
TRAIN, VAL = ROWS[:24], ROWS[24:36]
# A training example no validation input resembles, with a label no other example has: only a
# program that retrieves per input ever shows it to the engine.
ODD = {"text": "zebra giraffe okapi sighting report", "label": "wildlife"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OptimizerClient, GatewayClient]]:
    tmp = tmp_path_factory.mktemp("wrapped")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start_optimizer(OptimizerConfig(log=log, data_dir=tmp / "data")))
    gateway = ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0)))
    with OptimizerClient(optimizer.address) as opt, GatewayClient(gateway.address) as gw:
        yield opt, gw
    gateway.stop()
    optimizer.stop()


def _optimize(opt: OptimizerClient, program: str, optimizer: str, params: dict[str, Any]) -> list[Any]:
    events = list(
        opt.start_optimization(
            program, "text -> label", trainset=[*TRAIN, ODD], valset=VAL, optimizer=optimizer, params=params
        )
    )
    assert events[-1].WhichOneof("kind") == "completed", events[-1]
    return events


def _serve(opt: OptimizerClient, gw: GatewayClient, program: str, version: str) -> None:
    opt.create_deployment(program, program)
    opt.set_routes(program, {version: 1.0})
    head = opt.read_log(0, 1).head
    assert wait_until(lambda: gw.list_deployment_states().log_position >= head)


def _served_equals_evaluated(opt: OptimizerClient, gw: GatewayClient, program: str, final: float) -> None:
    """The gateway's answers are the optimizer's Evaluate answers, example by example, and
    score what the job reported."""
    report = list(opt.evaluate(program, "1.0.0", dataset=VAL, include_results=True))[-1].report
    assert report.examples == len(VAL) and report.score == pytest.approx(final)
    served = []
    for result in report.results:
        response = gw.predict(program, dict(result.inputs), routing_key="k")
        assert response.version == "1.0.0"
        assert dict(response.outputs) == dict(result.predicted)
        served.append(response.outputs["label"] == result.expected["label"])
    assert sum(served) / len(served) == pytest.approx(final)


def test_knn_registers_a_program_that_retrieves_per_input(
    stack: tuple[OptimizerClient, GatewayClient],
) -> None:
    opt, gw = stack
    events = _optimize(opt, "knn", "KNNFewShot", {"k": 1})
    completed = events[-1].completed
    version = opt.get_version("knn", completed.version)
    assert version.spec.wrapper == "KNNFewShot" and version.spec.signature == "text -> label"

    exported = opt.export_version("knn", completed.version)
    assert exported.spec.wrapper == "KNNFewShot"
    state = json.loads(exported.state_json)
    assert state["knn"]["k"] == 1 and len(state["knn"]["examples"]) == len(TRAIN) + 1
    assert state["program"]["demos"] == []  # the demos are chosen per call, not fixed

    _serve(opt, gw, "knn", completed.version)
    # The odd example is its own nearest neighbour: served, its label comes back.
    assert gw.predict("knn", {"text": ODD["text"]}, routing_key="k").outputs["label"] == "wildlife"
    _served_equals_evaluated(opt, gw, "knn", completed.final_score)


def test_ensemble_registers_the_vote_of_its_members(stack: tuple[OptimizerClient, GatewayClient]) -> None:
    opt, gw = stack
    events = _optimize(
        opt, "ens", "Ensemble", {"size": 3, "max_bootstrapped_demos": 2, "max_labeled_demos": 2}
    )
    started = next(e.started for e in events if e.WhichOneof("kind") == "started")
    trials = [e.trial for e in events if e.WhichOneof("kind") == "trial"]
    assert started.planned_trials == len(trials) == 4  # three members, then their vote
    # each names the predictor its demos changed (a one-predictor program's is DSPy's "self")
    assert all(list(t.predictors) == ["self"] for t in trials)
    completed = events[-1].completed
    assert completed.final_score == pytest.approx(trials[-1].score)  # the vote is what is registered

    exported = opt.export_version("ens", completed.version)
    assert exported.spec.wrapper == "Ensemble"
    state = json.loads(exported.state_json)
    assert state["ensemble"] == {"size": 3, "reduce": "majority_vote"}
    assert {key.split(".")[0] for key in state if key.startswith("programs[")} == {
        "programs[0]",
        "programs[1]",
        "programs[2]",
    }

    _serve(opt, gw, "ens", completed.version)
    _served_equals_evaluated(opt, gw, "ens", completed.final_score)


def test_plain_dspy_loads_an_ensemble_export(
    stack: tuple[OptimizerClient, GatewayClient], tmp_path: Path
) -> None:
    """The export is DSPy's own state: plain dspy.Ensemble's program of three members reads it."""
    opt, _ = stack
    if not any(p.program == "ens" for p in opt.list_programs().programs):
        pytest.skip("needs the ensemble test's version")
    exported = opt.export_version("ens", "1.0.0")
    path = tmp_path / "ens.json"
    path.write_bytes(exported.state_json)
    members = [dspy.Predict("text -> label") for _ in range(3)]
    program = dspy.Ensemble(reduce_fn=dspy.majority).compile(members)
    for member in members:
        member._compiled = False  # compile freezes them, which hides them from load_state
    program.load(str(path))
    saved = json.loads(exported.state_json)
    assert [len(m.demos) for m in program.programs] == [
        len(saved[f"programs[{i}]"]["demos"]) for i in range(3)
    ]
    assert sum(len(m.demos) for m in program.programs) > 0


def test_an_export_evaluates_inline_as_the_version_does(stack: tuple[OptimizerClient, GatewayClient]) -> None:
    """ExportVersion's spec (wrapper included) and state evaluate to the registered version's score."""
    opt, _ = stack
    if not any(p.program == "knn" for p in opt.list_programs().programs):
        pytest.skip("needs the k-NN test's version")
    exported = opt.export_version("knn", "1.0.0")
    inline = list(opt.evaluate(spec=exported.spec, state_json=exported.state_json, dataset=VAL))[-1].report
    registered = list(opt.evaluate("knn", "1.0.0", dataset=VAL))[-1].report
    assert inline.score == registered.score and inline.examples == len(VAL)


def test_a_job_may_not_ask_for_a_wrapper(stack: tuple[OptimizerClient, GatewayClient]) -> None:
    opt, _ = stack
    head = opt.read_log(0, 1).head
    request = opb.StartOptimizationRequest(
        program="wrapped-by-hand",
        spec=pb.ProgramSpec(module="Predict", signature="text -> label", wrapper="KNNFewShot"),
        optimizer="BootstrapFewShot",
        metric="exact_match",
        trainset=examples(TRAIN),
    )
    with pytest.raises(grpc.RpcError) as raised:
        list(opt.stub.StartOptimization(request))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (raised.value.details() or "").startswith(
        "spec.wrapper: is set by the KNNFewShot and Ensemble optimizers"
    )
    assert opt.read_log(0, 1).head == head  # nothing appended
