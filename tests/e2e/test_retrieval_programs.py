"""Retrieval through the real servers: a declarative pipeline with a Retrieve stage and a
user module given the server's retriever through init_args, each optimized, registered with
the digest of the corpus it searched, and served by a gateway that searches that digest
even after the corpus name has moved on; a missing corpus refused with nothing appended."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.demo_pipeline import triage_spec
from dspyops.launch import ServerThread
from dspyops.proto import events_pb2 as pb
from tests.support.connections import gateway_thread, optimizer_thread
from tests.support.harness import ticket_rows, wait_until
from tests.support.ray_cluster import EXECUTORS

MODULES = "tests.programs_pkg.modules"
ROWS = ticket_rows()[:10]
FIRST = [
    {"id": "refunds", "text": "Refunds: ask for your money back within 30 days of delivery."},
    {"id": "shipping", "text": "Shipping: parcels arrive in 3 to 5 business days."},
    {"id": "password", "text": "Password: reset it from the sign-in page; the email link lasts an hour."},
]
SECOND = [{"id": "other", "text": "Refunds money back delivery shipping parcels password email: all moved."}]


def pipeline(corpus: str = "help") -> pb.ProgramSpec:
    return triage_spec(corpus)  # the demo's: search (Retrieve, k=1), then classify


USER = pb.ProgramSpec(
    module=f"{MODULES}:HelpDesk", init_args=json.dumps({"search": {"$retriever": {"corpus": "help", "k": 1}}})
)


@pytest.fixture
def servers(tmp_path: Path, executor: str) -> Iterator[tuple[OptimizerClient, Path]]:
    optimizer = optimizer_thread(tmp_path, program_modules=frozenset({MODULES}), executor=executor)
    try:
        with OptimizerClient(optimizer.address, timeout=120) as opt:
            yield opt, tmp_path
    finally:
        optimizer.stop()


def optimize(
    opt: OptimizerClient,
    program: str,
    spec: pb.ProgramSpec,
    optimizer: str = "LabeledFewShot",
    **params: object,
) -> str:
    events = list(
        opt.start_optimization(
            program,
            "",
            trainset=ROWS,
            valset=ROWS,
            optimizer=optimizer,
            params=params or {"k": 2},
            spec=spec,
            input_keys=["text"],
        )
    )
    assert events[-1].WhichOneof("kind") == "completed", events[-1]
    return events[-1].completed.version


def serving(opt: OptimizerClient, tmp_path: Path, program: str, version: str) -> ServerThread:
    opt.create_deployment(f"web-{program}", program)
    head = opt.set_routes(f"web-{program}", {version: 1.0}).log_position
    gateway = gateway_thread(tmp_path, program_modules=frozenset({MODULES}))
    with GatewayClient(gateway.address) as gw:
        assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
    return gateway


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
@pytest.mark.parametrize(
    ("program", "spec"), [("piped", pipeline()), ("user", USER)], ids=["pipeline", "user"]
)
def test_a_version_searches_the_corpus_it_was_registered_with(
    servers: tuple[OptimizerClient, Path], program: str, spec: pb.ProgramSpec
) -> None:
    opt, tmp_path = servers
    first = opt.register_corpus("help", FIRST).digest
    version = optimize(opt, program, spec)
    assert dict(opt.get_version(program, version).lineage.corpora) == {"search": first}

    moved = opt.register_corpus("help", SECOND).digest  # the name now means other documents
    assert moved != first
    newer = optimize(opt, program, spec)  # a new version searches what the name means now
    assert dict(opt.get_version(program, newer).lineage.corpora) == {"search": moved}
    # MIPROv2 hangs its candidates and trial logs on the compiled program: the lineage names
    # the program's own stage only
    tuned = optimize(
        opt, program, spec, "MIPROv2", auto="light", max_bootstrapped_demos=0, max_labeled_demos=0
    )
    assert dict(opt.get_version(program, tuned).lineage.corpora) == {"search": moved}

    # the registered version is evaluated as it will be served: on its own corpus
    report = list(opt.evaluate(program, version, dataset=ROWS, input_keys=["text"]))[-1].report
    assert report.examples == len(ROWS) and report.errors == 0

    gateway = serving(opt, tmp_path, program, version)
    try:
        with GatewayClient(gateway.address) as gw:
            answer = gw.predict(f"web-{program}", {"text": "I want my money back"}, include_trace=True)
            assert answer.outputs["label"]
            search = next(call for call in answer.trace if call.name == "search")
            assert search.module == "Retrieve"
            assert json.loads(search.outputs["passages"]) == [FIRST[0]["text"]]
    finally:
        gateway.stop()


def test_a_missing_corpus_is_refused_naming_the_stage(servers: tuple[OptimizerClient, Path]) -> None:
    opt, _ = servers
    opt.register_corpus("help", FIRST)
    head = opt.read_log(0, 1).head
    cases = [
        (pipeline("nope"), "spec.pipeline.stages[0].corpus"),
        (USER_NOPE, "spec.init_args.search.corpus"),
    ]
    for spec, field in cases:
        with pytest.raises(grpc.RpcError) as err:
            list(
                opt.start_optimization(
                    "bad", "", trainset=ROWS, optimizer="LabeledFewShot", spec=spec, input_keys=["text"]
                )
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = str(err.value.details())
        assert details.startswith(field) and "'nope'" in details, details
    assert opt.read_log(0, 1).head == head


USER_NOPE = pb.ProgramSpec(
    module=f"{MODULES}:HelpDesk", init_args=json.dumps({"search": {"$retriever": {"corpus": "nope", "k": 1}}})
)
