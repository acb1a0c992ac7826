"""Bad input over the optimizer's RPCs: the right status, the field named, nothing appended,
and the server still serving afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct

from dspyops.client import OptimizerClient, examples
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from optimizer_svc.server import OptimizerConfig, start
from tests.harness import ServerThread, ticket_rows

ROWS = ticket_rows()[:12]
BAD = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def opt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OptimizerClient]:
    tmp = tmp_path_factory.mktemp("bad-input")
    thread = ServerThread(lambda: start(OptimizerConfig(log=str(tmp / "log.db"), data_dir=tmp / "data")))
    with OptimizerClient(thread.address) as client:
        events = list(
            client.start_optimization("tickets", "text -> label", trainset=ROWS, optimizer="LabeledFewShot")
        )
        assert events[-1].WhichOneof("kind") == "completed"
        client.create_deployment("web", "tickets")
        yield client
    thread.stop()


def start_request(**changes: object) -> opb.StartOptimizationRequest:
    request = opb.StartOptimizationRequest(
        program="tickets2",
        spec=pb.ProgramSpec(module="Predict", signature="text -> label"),
        optimizer="BootstrapFewShot",
        metric="exact_match",
        trainset=examples(ROWS),
    )
    for key, value in changes.items():
        if key == "params":
            struct = Struct()
            struct.update(value)  # type: ignore[arg-type]
            request.params.CopyFrom(struct)
        elif key in ("trainset", "valset"):
            del getattr(request, key)[:]
            getattr(request, key).extend(value)  # type: ignore[arg-type]
        elif key in ("spec", "lm"):
            getattr(request, key).CopyFrom(value)
        else:
            setattr(request, key, value)
    return request


def optimize(request: opb.StartOptimizationRequest) -> Callable[[OptimizerClient], object]:
    return lambda c: list(c.stub.StartOptimization(request))


CASES: list[tuple[str, Callable[[OptimizerClient], object], grpc.StatusCode, str]] = [
    ("no program", optimize(start_request(program="")), BAD, "program"),
    ("program with a path separator", optimize(start_request(program="../etc")), BAD, "program"),
    ("program with a control character", optimize(start_request(program="a\x00b")), BAD, "program"),
    ("no signature", optimize(start_request(spec=pb.ProgramSpec(module="Predict"))), BAD, "spec.signature"),
    (
        "malformed signature",
        optimize(start_request(spec=pb.ProgramSpec(signature="text label"))),
        BAD,
        "spec.signature",
    ),
    (
        "unknown module",
        optimize(start_request(spec=pb.ProgramSpec(module="React", signature="a -> b"))),
        BAD,
        "spec.module",
    ),
    ("no optimizer", optimize(start_request(optimizer="")), BAD, "optimizer"),
    ("unknown optimizer", optimize(start_request(optimizer="Nope")), BAD, "optimizer"),
    (
        "negative param",
        optimize(start_request(params={"max_bootstrapped_demos": -1})),
        BAD,
        "params.max_bootstrapped_demos",
    ),
    ("unknown param", optimize(start_request(params={"bogus": 1})), BAD, "params.bogus"),
    (
        "MIPROv2 auto with num_trials",
        optimize(start_request(optimizer="MIPROv2", params={"auto": "light", "num_trials": 3})),
        BAD,
        "params.",
    ),
    ("unknown metric", optimize(start_request(metric="bleu")), BAD, "metric"),
    ("empty trainset", optimize(start_request(trainset=[])), BAD, "trainset"),
    (
        "example without the output",
        optimize(start_request(trainset=[pb.Example(fields={"text": "x"})])),
        BAD,
        "trainset[0].fields",
    ),
    ("min_score above 1", optimize(start_request(min_score=2.0)), BAD, "min_score"),
    (
        "too many examples",
        optimize(start_request(trainset=examples([{"text": "t", "label": "l"}] * 5001))),
        BAD,
        "trainset",
    ),
    (
        "lm temperature out of range",
        optimize(start_request(lm=pb.LMConfig(model="offline/nearest-demo", temperature=9))),
        BAD,
        "lm.temperature",
    ),
    ("unknown job", lambda c: c.get_job("nope"), grpc.StatusCode.NOT_FOUND, "job_id"),
    ("watch unknown job", lambda c: list(c.watch_job("nope")), grpc.StatusCode.NOT_FOUND, "job_id"),
    ("cancel without id", lambda c: c.cancel_job(""), BAD, "job_id"),
    ("versions of unknown program", lambda c: c.list_versions("ghost"), grpc.StatusCode.NOT_FOUND, "program"),
    ("unknown version", lambda c: c.get_version("tickets", "9.9.9"), grpc.StatusCode.NOT_FOUND, "version"),
    ("status unspecified", lambda c: c.set_version_status("tickets", "1.0.0", 0), BAD, "status"),
    ("status out of enum", lambda c: c.set_version_status("tickets", "1.0.0", 42), BAD, "status"),
    ("alias with a slash", lambda c: c.set_alias("tickets", "a/b", "1.0.0"), BAD, "alias"),
    (
        "alias to unknown version",
        lambda c: c.set_alias("tickets", "x", "3.0.0"),
        grpc.StatusCode.NOT_FOUND,
        "version",
    ),
    (
        "duplicate deployment",
        lambda c: c.create_deployment("web", "tickets"),
        grpc.StatusCode.ALREADY_EXISTS,
        "deployment",
    ),
    (
        "deployment of unknown program",
        lambda c: c.create_deployment("web2", "ghost"),
        grpc.StatusCode.NOT_FOUND,
        "program",
    ),
    ("routes that do not sum to 1", lambda c: c.set_routes("web", {"1.0.0": 0.5}), BAD, "routes"),
    (
        "negative weight",
        lambda c: c.set_routes("web", [pb.Route(version="1.0.0", weight=-0.5)]),
        BAD,
        "routes[0].weight",
    ),
    (
        "NaN weight",
        lambda c: c.set_routes("web", [pb.Route(version="1.0.0", weight=float("nan"))]),
        BAD,
        "routes[0].weight",
    ),
    (
        "route to unknown version",
        lambda c: c.set_routes("web", {"7.0.0": 1.0}),
        grpc.StatusCode.NOT_FOUND,
        "routes[0].version",
    ),
    (
        "duplicate route",
        lambda c: c.set_routes(
            "web", [pb.Route(version="1.0.0", weight=0.5), pb.Route(version="1.0.0", weight=0.5)]
        ),
        BAD,
        "routes[1].version",
    ),
    ("no routes", lambda c: c.set_routes("web", []), BAD, "routes"),
    (
        "routes of unknown deployment",
        lambda c: c.set_routes("ghost", {"1.0.0": 1.0}),
        grpc.StatusCode.NOT_FOUND,
        "deployment",
    ),
    (
        "stale expected_version",
        lambda c: c.set_routes("web", {"1.0.0": 1.0}, expected_version=99),
        grpc.StatusCode.ABORTED,
        "expected_version",
    ),
    ("read limit too large", lambda c: c.read_log(0, 10_001), BAD, "limit"),
]


@pytest.mark.parametrize("name,call,code,field", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_cleanly(
    opt: OptimizerClient,
    name: str,
    call: Callable[[OptimizerClient], object],
    code: grpc.StatusCode,
    field: str,
) -> None:
    head = opt.read_log(0, 1).head
    with pytest.raises(grpc.RpcError) as err:
        call(opt)
    assert err.value.code() == code, err.value.details()
    assert field in err.value.details(), err.value.details()
    assert opt.read_log(0, 1).head == head, "a refused request appended to the log"
    assert opt.list_programs()[0].program == "tickets"  # still serving


def test_oversized_request_is_refused_and_the_server_survives(opt: OptimizerClient) -> None:
    huge = [{"text": "x" * 1_000_000, "label": "l"}] * 40  # ~40 MB > the 32 MiB limit
    with pytest.raises(grpc.RpcError) as err:
        list(opt.start_optimization("tickets", "text -> label", trainset=huge))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert opt.list_programs()[0].program == "tickets"
