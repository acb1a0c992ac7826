"""Bad input over every RPC of both services: the right status, the field named, nothing
appended to the log, and both servers still serving afterwards.

`test_every_rpc_has_a_bad_input_row` reads the service descriptors, so an RPC added to the
contract without a row here (or an explicit exemption) fails the suite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.client import GatewayClient, OptimizerClient, examples
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import optimizer_pb2 as opb
from gateway_svc.server import GatewayConfig
from gateway_svc.server import start as start_gateway
from optimizer_svc.server import OptimizerConfig, start
from tests.harness import ServerThread, ticket_rows, wait_until

ROWS = ticket_rows()[:12]
BAD = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
AFTER_MAX = 2**64 - 1  # a valid uint64 on the wire, beyond any SQLite position
BEYOND_TIMESTAMP = Timestamp(seconds=253402300800 + 10)  # after 9999-12-31: not a valid Timestamp


@dataclass(frozen=True)
class Servers:
    opt: OptimizerClient
    gw: GatewayClient
    v1: str  # the first registered version of "tickets" (served by "web")
    v2: str  # a second one, so experiments and canaries have something to compare
    prediction_id: str


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("bad-input")
    log = str(tmp / "log.db")
    optimizer = ServerThread(lambda: start(OptimizerConfig(log=log, data_dir=tmp / "data")))
    with OptimizerClient(optimizer.address) as opt:
        for _ in range(2):
            events = list(
                opt.start_optimization("tickets", "text -> label", trainset=ROWS, optimizer="LabeledFewShot")
            )
            assert events[-1].WhichOneof("kind") == "completed"
        v1, v2 = sorted(v.version for v in opt.list_versions("tickets").versions)
        opt.create_deployment("web", "tickets")
        deployment = opt.set_routes("web", {v1: 1.0})
        gateway = ServerThread(lambda: start_gateway(GatewayConfig(log=log, canary_interval=0)))
        with GatewayClient(gateway.address) as gw:
            assert wait_until(lambda: gw.list_deployment_states().log_position >= deployment.log_position)
            prediction_id = gw.predict("web", {"text": "my invoice is wrong"}, "user-1").prediction_id
            yield Servers(opt, gw, v1, v2, prediction_id)
        gateway.stop()
    optimizer.stop()


def start_request(**changes: object) -> dict[str, object]:
    """The client's arguments of a good StartOptimization, with `changes`."""
    return {
        "program": "tickets2",
        "signature": "text -> label",
        "optimizer": "BootstrapFewShot",
        "metric": "exact_match",
        "trainset": ROWS,
        **changes,
    }


def optimize(arguments: dict[str, object]) -> Callable[[Servers], object]:
    return lambda s: list(s.opt.start_optimization(**arguments))  # type: ignore[arg-type]


def experiment(s: Servers, **changes: object) -> gpb.DeploymentState:
    """StartExperiment on "web" with v1 as control and v2 as treatment, plus `changes`."""
    fields: dict[str, object] = {"deployment": "web", "control": s.v1, "treatments": [s.v2], **changes}
    return s.gw.start_experiment(**fields)  # type: ignore[arg-type]


def canary(s: Servers, **changes: object) -> gpb.DeploymentState:
    fields: dict[str, object] = {"deployment": "web", "candidate": s.v2, **changes}
    return s.gw.start_canary(**fields)  # type: ignore[arg-type]


def evaluate(**fields: object) -> Callable[[Servers], object]:
    return lambda s: list(s.opt.evaluate(**fields))  # type: ignore[arg-type]


def read_after(after: int) -> Callable[[Servers], object]:
    return lambda s: s.opt.read_log(after)


def subscribe_after(after: int) -> Callable[[Servers], object]:
    return lambda s: next(iter(s.opt.subscribe_log(after, timeout=10)))


def predict(**fields: object) -> Callable[[Servers], object]:
    arguments: dict[str, object] = {"deployment": "web", "inputs": {"text": "hi"}, **fields}
    return lambda s: s.gw.predict(**arguments)  # type: ignore[arg-type]


def rollback(**fields: object) -> Callable[[Servers], object]:
    arguments: dict[str, object] = {"to": gpb.AsOf(), **fields}  # an empty AsOf: no point given
    return lambda s: s.gw.rollback("web", **arguments)  # type: ignore[arg-type]


Case = tuple[str, str, Callable[[Servers], object], grpc.StatusCode, str]

CASES: list[Case] = [
    # (test id, RPC, call, status, a field the message must name)
    ("no program", "StartOptimization", optimize(start_request(program="")), BAD, "program"),
    (
        "program with a path separator",
        "StartOptimization",
        optimize(start_request(program="../etc")),
        BAD,
        "program",
    ),
    (
        "program with a control character",
        "StartOptimization",
        optimize(start_request(program="a\x00b")),
        BAD,
        "program",
    ),
    (
        "no signature",
        "StartOptimization",
        optimize(start_request(signature="")),
        BAD,
        "spec.signature",
    ),
    (
        "malformed signature",
        "StartOptimization",
        optimize(start_request(signature="text label")),
        BAD,
        "spec.signature",
    ),
    (
        "unknown module",
        "StartOptimization",
        optimize(start_request(module="React", signature="a -> b")),
        BAD,
        "spec.module",
    ),
    ("no optimizer", "StartOptimization", optimize(start_request(optimizer="")), BAD, "optimizer"),
    ("unknown optimizer", "StartOptimization", optimize(start_request(optimizer="Nope")), BAD, "optimizer"),
    (
        "negative param",
        "StartOptimization",
        optimize(start_request(params={"max_bootstrapped_demos": -1})),
        BAD,
        "params.max_bootstrapped_demos",
    ),
    ("unknown param", "StartOptimization", optimize(start_request(params={"bogus": 1})), BAD, "params.bogus"),
    (
        "MIPROv2 auto with num_trials",
        "StartOptimization",
        optimize(start_request(optimizer="MIPROv2", params={"auto": "light", "num_trials": 3})),
        BAD,
        "params.",
    ),
    ("unknown metric", "StartOptimization", optimize(start_request(metric="bleu")), BAD, "metric"),
    ("empty trainset", "StartOptimization", optimize(start_request(trainset=[])), BAD, "trainset"),
    (
        "example without the output",
        "StartOptimization",
        optimize(start_request(trainset=[pb.Example(fields={"text": "x"})])),
        BAD,
        "trainset[0].fields",
    ),
    ("min_score above 1", "StartOptimization", optimize(start_request(min_score=2.0)), BAD, "min_score"),
    (
        "too many examples",
        "StartOptimization",
        optimize(start_request(trainset=[{"text": "t", "label": "l"}] * 5001)),
        BAD,
        "trainset",
    ),
    (
        "lm temperature out of range",
        "StartOptimization",
        optimize(start_request(lm=pb.LMConfig(model="offline/nearest-demo", temperature=9))),
        BAD,
        "lm.temperature",
    ),
    ("unknown job", "GetJob", lambda s: s.opt.get_job("nope"), grpc.StatusCode.NOT_FOUND, "job_id"),
    (
        "watch unknown job",
        "WatchJob",
        lambda s: list(s.opt.watch_job("nope")),
        grpc.StatusCode.NOT_FOUND,
        "job_id",
    ),
    ("cancel without id", "CancelJob", lambda s: s.opt.cancel_job(""), BAD, "job_id"),
    (
        "versions of unknown program",
        "ListVersions",
        lambda s: s.opt.list_versions("ghost"),
        grpc.StatusCode.NOT_FOUND,
        "program",
    ),
    (
        "unknown version",
        "GetVersion",
        lambda s: s.opt.get_version("tickets", "9.9.9"),
        grpc.StatusCode.NOT_FOUND,
        "version",
    ),
    (
        "status unspecified",
        "SetVersionStatus",
        lambda s: s.opt.set_version_status("tickets", "1.0.0", 0),
        BAD,
        "status",
    ),
    (
        "status out of enum",
        "SetVersionStatus",
        lambda s: s.opt.set_version_status("tickets", "1.0.0", 42),
        BAD,
        "status",
    ),
    ("alias with a slash", "SetAlias", lambda s: s.opt.set_alias("tickets", "a/b", "1.0.0"), BAD, "alias"),
    (
        "alias to unknown version",
        "SetAlias",
        lambda s: s.opt.set_alias("tickets", "x", "3.0.0"),
        grpc.StatusCode.NOT_FOUND,
        "version",
    ),
    (
        "duplicate deployment",
        "CreateDeployment",
        lambda s: s.opt.create_deployment("web", "tickets"),
        grpc.StatusCode.ALREADY_EXISTS,
        "deployment",
    ),
    (
        "deployment of unknown program",
        "CreateDeployment",
        lambda s: s.opt.create_deployment("web2", "ghost"),
        grpc.StatusCode.NOT_FOUND,
        "program",
    ),
    (
        "routes that do not sum to 1",
        "SetRoutes",
        lambda s: s.opt.set_routes("web", {"1.0.0": 0.5}),
        BAD,
        "routes",
    ),
    (
        "negative weight",
        "SetRoutes",
        lambda s: s.opt.set_routes("web", [pb.Route(version="1.0.0", weight=-0.5)]),
        BAD,
        "routes[0].weight",
    ),
    (
        "NaN weight",
        "SetRoutes",
        lambda s: s.opt.set_routes("web", [pb.Route(version="1.0.0", weight=float("nan"))]),
        BAD,
        "routes[0].weight",
    ),
    (
        "route to unknown version",
        "SetRoutes",
        lambda s: s.opt.set_routes("web", {"7.0.0": 1.0}),
        grpc.StatusCode.NOT_FOUND,
        "routes[0].version",
    ),
    (
        "duplicate route",
        "SetRoutes",
        lambda s: s.opt.set_routes(
            "web", [pb.Route(version="1.0.0", weight=0.5), pb.Route(version="1.0.0", weight=0.5)]
        ),
        BAD,
        "routes[1].version",
    ),
    ("no routes", "SetRoutes", lambda s: s.opt.set_routes("web", []), BAD, "routes"),
    (
        "routes of unknown deployment",
        "SetRoutes",
        lambda s: s.opt.set_routes("ghost", {"1.0.0": 1.0}),
        grpc.StatusCode.NOT_FOUND,
        "deployment",
    ),
    (
        "stale expected_version",
        "SetRoutes",
        lambda s: s.opt.set_routes("web", {"1.0.0": 1.0}, expected_version=99),
        grpc.StatusCode.ABORTED,
        "expected_version",
    ),
    ("read limit too large", "ReadLog", lambda s: s.opt.read_log(0, 10_001), BAD, "limit"),
    ("get job without id", "GetJob", lambda s: s.opt.get_job(""), BAD, "job_id"),
    ("watch without id", "WatchJob", lambda s: list(s.opt.watch_job("")), BAD, "job_id"),
    ("cancel unknown job", "CancelJob", lambda s: s.opt.cancel_job("nope"), NOT_FOUND, "job_id"),
    ("jobs of an invalid program name", "ListJobs", lambda s: s.opt.list_jobs("../x"), BAD, "program"),
    ("versions without program", "ListVersions", lambda s: s.opt.list_versions(""), BAD, "program"),
    ("version without program", "GetVersion", lambda s: s.opt.get_version("", "1.0.0"), BAD, "program"),
    (
        "status of unknown program",
        "SetVersionStatus",
        lambda s: s.opt.set_version_status("ghost", "1.0.0", pb.PRODUCTION),
        NOT_FOUND,
        "program",
    ),
    ("alias empty", "SetAlias", lambda s: s.opt.set_alias("tickets", "", "1.0.0"), BAD, "alias"),
    (
        "deployment without name",
        "CreateDeployment",
        lambda s: s.opt.create_deployment("", "tickets"),
        BAD,
        "deployment",
    ),
    (
        "get unknown deployment",
        "GetDeployment",
        lambda s: s.opt.get_deployment("ghost"),
        NOT_FOUND,
        "deployment",
    ),
    (
        "get deployment with a path",
        "GetDeployment",
        lambda s: s.opt.get_deployment("../x"),
        BAD,
        "deployment",
    ),
    ("evaluate nothing", "Evaluate", evaluate(), BAD, "program"),
    (
        "evaluate without a dataset",
        "Evaluate",
        evaluate(program="tickets", version="1.0.0"),
        BAD,
        "dataset",
    ),
    (
        "evaluate with an unknown metric",
        "Evaluate",
        evaluate(program="tickets", version="1.0.0", dataset=examples(ROWS), metric="bleu"),
        BAD,
        "metric",
    ),
    (
        "evaluate with negative threads",
        "Evaluate",
        evaluate(program="tickets", version="1.0.0", dataset=examples(ROWS), num_threads=-3),
        BAD,
        "num_threads",
    ),
    (
        "evaluate a state that is not JSON",
        "Evaluate",
        evaluate(
            spec=pb.ProgramSpec(module="Predict", signature="text -> label"),
            state_json=b"{not json",
            dataset=examples(ROWS),
        ),
        BAD,
        "state_json",
    ),
    (
        "evaluate a dataset_ref without a datasets dir",
        "Evaluate",
        evaluate(program="tickets", version="1.0.0", dataset_ref=opb.DatasetRef(path="../../etc/passwd")),
        PRECONDITION,
        "dataset_ref",
    ),
    (
        "compare nothing",
        "CompareVersions",
        lambda s: s.opt.compare_versions("", "", ""),
        BAD,
        "program",
    ),
    (
        "compare with an unknown version",
        "CompareVersions",
        lambda s: s.opt.compare_versions("tickets", s.v1, "9.0.0", dataset=ROWS),
        NOT_FOUND,
        "b",
    ),
    (
        "compare without a dataset",
        "CompareVersions",
        lambda s: s.opt.compare_versions("tickets", s.v1, s.v2),
        BAD,
        "dataset",
    ),
    (
        "import nothing",
        "ImportProgram",
        # raw: no spec at all (the client always sends one)
        lambda s: s.opt.stub.ImportProgram(opb.ImportProgramRequest()),
        BAD,
        "program",
    ),
    (
        "import a state that is not JSON",
        "ImportProgram",
        lambda s: s.opt.import_program("imported", "text -> label", b"{x"),
        BAD,
        "state_json",
    ),
    (
        "import a state with foreign keys",
        "ImportProgram",
        lambda s: s.opt.import_program("imported", "text -> label", b'{"predict": {"demos": [1]}}'),
        BAD,
        "state_json",
    ),
    (
        "import an importable path as module",
        "ImportProgram",
        lambda s: s.opt.import_program("imported", "text -> label", b"{}", module="os:system"),
        BAD,
        "spec.module",
    ),
    (
        "export unknown version",
        "ExportVersion",
        lambda s: s.opt.export_version("tickets", "9.9.9"),
        NOT_FOUND,
        "version",
    ),
    (
        "export nothing",
        "ExportVersion",
        lambda s: s.opt.export_version("", ""),
        BAD,
        "program",
    ),
    ("read after beyond int64", "ReadLog", read_after(AFTER_MAX), BAD, "after"),
    ("read after 2**63", "ReadLog", read_after(2**63), BAD, "after"),
    ("subscribe after beyond int64", "SubscribeLog", subscribe_after(AFTER_MAX), BAD, "after"),
    # ---------------------------------------------------------------- gateway
    ("predict unknown deployment", "Predict", predict(deployment="ghost"), NOT_FOUND, "deployment"),
    ("predict without deployment", "Predict", predict(deployment=""), BAD, "deployment"),
    ("predict without inputs", "Predict", predict(inputs={}), BAD, "inputs"),
    ("predict with an unknown input", "Predict", predict(inputs={"text": "a", "x": "b"}), BAD, "inputs"),
    ("predict with a huge input", "Predict", predict(inputs={"text": "x" * 100_001}), BAD, "inputs.text"),
    (
        "predict as of a future position",
        "Predict",
        predict(as_of=gpb.AsOf(position=AFTER_MAX)),
        BAD,
        "as_of.position",
    ),
    (
        "predict as of an invalid time",
        "Predict",
        predict(as_of=gpb.AsOf(time=BEYOND_TIMESTAMP)),
        BAD,
        "as_of.time",
    ),
    ("outcome without id", "RecordOutcome", lambda s: s.gw.record_outcome("", 1.0), BAD, "prediction_id"),
    (
        "outcome of unknown prediction",
        "RecordOutcome",
        lambda s: s.gw.record_outcome("nope", 1.0),
        NOT_FOUND,
        "prediction_id",
    ),
    (
        "NaN outcome",
        "RecordOutcome",
        lambda s: s.gw.record_outcome(s.prediction_id, float("nan")),
        BAD,
        "value",
    ),
    (
        "infinite outcome",
        "RecordOutcome",
        lambda s: s.gw.record_outcome(s.prediction_id, float("inf")),
        BAD,
        "value",
    ),
    (
        "state of unknown deployment",
        "GetDeploymentState",
        lambda s: s.gw.get_deployment_state("ghost"),
        NOT_FOUND,
        "deployment",
    ),
    (
        "state as of an invalid time",
        "GetDeploymentState",
        lambda s: s.gw.get_deployment_state("web", as_of=gpb.AsOf(time=BEYOND_TIMESTAMP)),
        BAD,
        "as_of.time",
    ),
    (
        "experiment without treatments",
        "StartExperiment",
        lambda s: experiment(s, treatments=[]),
        BAD,
        "treatments",
    ),
    (
        "experiment arm twice",
        "StartExperiment",
        lambda s: experiment(s, treatments=[s.v1]),
        BAD,
        "treatments",
    ),
    ("experiment alpha 2", "StartExperiment", lambda s: experiment(s, alpha=2.0), BAD, "alpha"),
    (
        "experiment one weight for two arms",
        "StartExperiment",
        lambda s: experiment(s, weights=[1.0]),
        BAD,
        "weights",
    ),
    (
        "experiment NaN weight",
        "StartExperiment",
        lambda s: experiment(s, weights=[float("nan"), 0.5]),
        BAD,
        "weights",
    ),
    (
        "experiment hash version 7",
        "StartExperiment",
        lambda s: experiment(s, hash_version=7),
        BAD,
        "hash_version",
    ),
    ("experiment coverage 3", "StartExperiment", lambda s: experiment(s, coverage=3.0), BAD, "coverage"),
    ("experiment metric out of enum", "StartExperiment", lambda s: experiment(s, metric=99), BAD, "metric"),
    (
        "experiment negative samples",
        "StartExperiment",
        lambda s: experiment(s, min_samples_per_arm=-5),
        BAD,
        "min_samples_per_arm",
    ),
    (
        "experiment unknown control",
        "StartExperiment",
        lambda s: experiment(s, control="8.0.0"),
        NOT_FOUND,
        "control",
    ),
    (
        "experiment stale expected_version",
        "StartExperiment",
        lambda s: experiment(s, expected_version=77),
        grpc.StatusCode.ABORTED,
        "expected_version",
    ),
    (
        "results without an experiment",
        "GetExperimentResults",
        lambda s: s.gw.get_experiment_results("web"),
        PRECONDITION,
        "deployment",
    ),
    (
        "results of unknown deployment",
        "GetExperimentResults",
        lambda s: s.gw.get_experiment_results("ghost"),
        NOT_FOUND,
        "deployment",
    ),
    (
        "conclude without an experiment",
        "ConcludeExperiment",
        lambda s: s.gw.conclude_experiment("web", promote_winner=True),
        PRECONDITION,
        "deployment",
    ),
    ("stop without deployment", "StopExperiment", lambda s: s.gw.stop_experiment(""), BAD, "deployment"),
    (
        "stop without an experiment",
        "StopExperiment",
        lambda s: s.gw.stop_experiment("web"),
        PRECONDITION,
        "deployment",
    ),
    ("canary without candidate", "StartCanary", lambda s: canary(s, candidate=""), BAD, "candidate"),
    ("canary of the baseline", "StartCanary", lambda s: canary(s, candidate=s.v1), BAD, "candidate"),
    (
        "canary unknown candidate",
        "StartCanary",
        lambda s: canary(s, candidate="5.0.0"),
        NOT_FOUND,
        "candidate",
    ),
    ("canary steps going down", "StartCanary", lambda s: canary(s, steps=[50.0, 10.0]), BAD, "steps"),
    ("canary step above 100", "StartCanary", lambda s: canary(s, steps=[200.0]), BAD, "steps"),
    ("canary NaN step", "StartCanary", lambda s: canary(s, steps=[float("nan")]), BAD, "steps"),
    ("canary negative alpha", "StartCanary", lambda s: canary(s, alpha=-1.0), BAD, "alpha"),
    (
        "evaluate canary of unknown deployment",
        "EvaluateCanary",
        lambda s: s.gw.evaluate_canary("ghost"),
        NOT_FOUND,
        "deployment",
    ),
    (
        "shadow results without deployment",
        "GetShadowResults",
        lambda s: s.gw.get_shadow_results(""),
        BAD,
        "deployment",
    ),
    (
        "shadow results of unknown deployment",
        "GetShadowResults",
        lambda s: s.gw.get_shadow_results("ghost"),
        NOT_FOUND,
        "deployment",
    ),
    ("rollback without a point", "Rollback", rollback(), BAD, "to"),
    ("rollback to the future", "Rollback", rollback(to=gpb.AsOf(position=AFTER_MAX)), BAD, "to"),
    ("rollback to an invalid time", "Rollback", rollback(to=gpb.AsOf(time=BEYOND_TIMESTAMP)), BAD, "to.time"),
    ("rollback before the deployment", "Rollback", rollback(to=gpb.AsOf(position=1)), PRECONDITION, "to"),
    (
        "rollback of unknown deployment",
        "Rollback",
        lambda s: s.gw.rollback("ghost", 1),
        NOT_FOUND,
        "deployment",
    ),
    (
        "rollback with a stale expected_version",
        "Rollback",
        lambda s: s.gw.rollback("web", s.gw.get_deployment_state("web").log_position, expected_version=77),
        grpc.StatusCode.ABORTED,
        "expected_version",
    ),
    ("explain without id", "ExplainPrediction", lambda s: s.gw.explain_prediction(""), BAD, "prediction_id"),
    (
        "explain unknown prediction",
        "ExplainPrediction",
        lambda s: s.gw.explain_prediction("nope"),
        NOT_FOUND,
        "prediction_id",
    ),
]

# RPCs whose request has no fields: there is no input to get wrong.
EXEMPT: dict[str, str] = {
    "ListOptimizers": "ListOptimizersRequest has no fields",
    "ListPrograms": "ListProgramsRequest has no fields",
    "ListDeployments": "ListDeploymentsRequest has no fields",
    "VerifyLog": "VerifyLogRequest has no fields",
    "ListDeploymentStates": "ListDeploymentStatesRequest has no fields",
    "ListConnections": "ListConnectionsRequest has no fields (both services)",
}


def all_rpcs() -> dict[str, int]:
    """Every RPC of both services -> the number of fields its request has."""
    methods = {}
    for module, service in ((opb, "Optimizer"), (gpb, "Gateway")):
        for method in module.DESCRIPTOR.services_by_name[service].methods:
            methods[method.name] = len(method.input_type.fields)
    return methods


def test_every_rpc_has_a_bad_input_row() -> None:
    rpcs = all_rpcs()
    covered = {case[1] for case in CASES}
    assert not covered - rpcs.keys(), f"rows name RPCs the services do not have: {covered - rpcs.keys()}"
    missing = rpcs.keys() - covered - EXEMPT.keys()
    assert not missing, f"RPCs with neither a bad-input row nor an exemption: {sorted(missing)}"
    assert not covered & EXEMPT.keys(), "an exempt RPC has rows: drop the exemption"
    # an exemption holds only while the request really takes nothing
    assert {name for name in EXEMPT if rpcs[name]} == set(), "an exempt RPC's request has fields now"


@pytest.mark.parametrize("name,rpc,call,code,field", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_cleanly(
    servers: Servers,
    name: str,
    rpc: str,
    call: Callable[[Servers], object],
    code: grpc.StatusCode,
    field: str,
) -> None:
    head = servers.opt.read_log(0, 1).head
    with pytest.raises(grpc.RpcError) as err:
        call(servers)
    assert err.value.code() == code, f"{rpc}: {err.value.code()} {err.value.details()}"
    assert field in err.value.details(), err.value.details()
    assert servers.opt.read_log(0, 1).head == head, f"a refused {rpc} appended to the log"
    # both still serving
    assert servers.opt.list_programs().programs[0].program == "tickets"
    assert servers.gw.predict("web", {"text": "my invoice is wrong"}, "user-1").version == servers.v1


def test_oversized_request_is_refused_and_the_server_survives(servers: Servers) -> None:
    huge = [{"text": "x" * 1_000_000, "label": "l"}] * 40  # ~40 MB > the 32 MiB limit
    with pytest.raises(grpc.RpcError) as err:
        list(servers.opt.start_optimization("tickets", "text -> label", trainset=huge))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert servers.opt.list_programs().programs[0].program == "tickets"
