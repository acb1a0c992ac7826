"""Bad input over every Optimizer RPC: the right status, the field named, nothing appended to
the log, and both servers still serving afterwards (tests/support/bad_input.py)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from dspyops.client import examples
from dspyops.proto import events_pb2 as pb
from dspyops.proto import optimizer_pb2 as opb
from tests.support.bad_input import (
    AFTER_MAX,
    BAD,
    DENIED,
    NOT_FOUND,
    PRECONDITION,
    ROWS,
    Case,
    Servers,
    check_refused,
    evaluate,
    optimize,
    read_after,
    start_request,
    subscribe_after,
)

DOCS = [
    {"id": "refunds", "text": "Refunds reach your card in 5 to 10 business days."},
    {"id": "shipping", "text": "Standard delivery takes 3 to 5 business days."},
]


def _pipeline(*stages: pb.Stage, output: str) -> pb.ProgramSpec:
    return pb.ProgramSpec(module="Pipeline", pipeline=pb.Pipeline(stages=stages, outputs={"label": output}))


BAD_WIRING = _pipeline(
    pb.Stage(name="answer", kind="Predict", signature="text -> label", inputs={"text": "nowhere.text"}),
    output="answer.label",
)
FOREIGN_TOOL = _pipeline(
    pb.Stage(
        name="agent",
        kind="ReAct",
        signature="text -> label",
        inputs={"text": "input.text"},
        tools=["os:system"],
    ),
    output="agent.label",
)
CYCLE = _pipeline(
    pb.Stage(
        name="a",
        kind="Predict",
        signature="text, hint -> topic",
        inputs={"text": "input.text", "hint": "b.hint"},
    ),
    pb.Stage(name="b", kind="Predict", signature="topic -> hint, label", inputs={"topic": "a.topic"}),
    output="b.label",
)

OPTIMIZER_CASES: list[Case] = [
    # (test id, RPC, call, status, a field the message must name)
    ("no program", "StartOptimization", optimize(start_request(program="")), BAD, "program"),
    (
        "a learning run that is not on record (a forged lineage)",
        "StartOptimization",
        optimize(start_request(program="tickets", learning=pb.JobLearning(deployment="web", run_id="run-x"))),
        NOT_FOUND,
        "learning.run_id",
    ),
    (
        "a learning run of an unknown deployment",
        "StartOptimization",
        optimize(start_request(learning=pb.JobLearning(deployment="ghost", run_id="run-1"))),
        NOT_FOUND,
        "learning.deployment",
    ),
    (
        "the trainset of an unknown job",
        "StartOptimization",
        optimize(start_request(base_trainset_job="nosuchjob")),
        NOT_FOUND,
        "base_trainset_job",
    ),
    (
        "user module from a module not allowlisted",
        "StartOptimization",
        optimize(start_request(signature="", spec=pb.ProgramSpec(module="os:system"), input_keys=["text"])),
        DENIED,
        "spec.module",
    ),
    (
        "pipeline wired to an unknown stage",
        "StartOptimization",
        optimize(start_request(signature="", spec=BAD_WIRING)),
        BAD,
        "spec.pipeline.stages[0].inputs.text",
    ),
    (
        "ReAct tool from a module not allowlisted",
        "StartOptimization",
        optimize(start_request(signature="", spec=FOREIGN_TOOL)),
        DENIED,
        "spec.pipeline.stages[0].tools[0]",
    ),
    (
        "evaluate a pipeline with a cycle",
        "Evaluate",
        evaluate(spec=CYCLE, state_json=b"{}", dataset=ROWS),
        BAD,
        "spec.pipeline.stages[",
    ),
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
        "max_attempts below 0",
        "StartOptimization",
        optimize(start_request(max_attempts=-1)),
        BAD,
        "max_attempts",
    ),
    (
        "max_attempts above 10",
        "StartOptimization",
        optimize(start_request(max_attempts=11)),
        BAD,
        "max_attempts",
    ),
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
    (
        "capture policy of unknown deployment",
        "SetCapturePolicy",
        lambda s: s.opt.set_capture_policy("ghost", traces=True),
        grpc.StatusCode.NOT_FOUND,
        "deployment",
    ),
    (
        "capture policy of an invalid deployment name",
        "SetCapturePolicy",
        lambda s: s.opt.set_capture_policy("../x", traces=True),
        BAD,
        "deployment",
    ),
    (
        "negative retention",
        "SetCapturePolicy",
        lambda s: s.opt.set_capture_policy("web", traces=True, retention_days=-1),
        BAD,
        "policy.retention_days",
    ),
    (
        "retention beyond ten years",
        "SetCapturePolicy",
        lambda s: s.opt.set_capture_policy("web", traces=True, retention_days=100_000),
        BAD,
        "policy.retention_days",
    ),
    (
        "capture field that is no identifier",
        "SetCapturePolicy",
        lambda s: s.opt.set_capture_policy("web", traces=True, fields=["label", "x; drop table"]),
        BAD,
        "policy.fields[1]",
    ),
    (
        "capture field twice",
        "SetCapturePolicy",
        lambda s: s.opt.set_capture_policy("web", inputs_outputs=True, fields=["text", "text"]),
        BAD,
        "policy.fields[1]",
    ),
    (
        "field allowlist that keeps nothing",
        "SetCapturePolicy",
        lambda s: s.opt.set_capture_policy("web", fields=["text"]),
        BAD,
        "policy.fields",
    ),
    (
        "too many capture fields",
        "SetCapturePolicy",
        lambda s: s.opt.set_capture_policy("web", traces=True, fields=[f"f{i}" for i in range(65)]),
        BAD,
        "policy.fields",
    ),
    (
        "capture policy on a stale expected_version",
        "SetCapturePolicy",
        lambda s: s.opt.set_capture_policy("web", traces=True, expected_version=99),
        grpc.StatusCode.ABORTED,
        "expected_version",
    ),
    ("read limit too large", "ReadLog", lambda s: s.opt.read_log(0, 10_001), BAD, "limit"),
    ("get job without id", "GetJob", lambda s: s.opt.get_job(""), BAD, "job_id"),
    ("watch without id", "WatchJob", lambda s: list(s.opt.watch_job("")), BAD, "job_id"),
    (
        "watch resumed past the job's last logged event",
        "WatchJob",
        lambda s: list(s.opt.watch_job(s.opt.list_jobs().jobs[0].job_id, after_stream_version=10**6)),
        BAD,
        "after_stream_version",
    ),
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
        DENIED,
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
    ("corpus without a name", "RegisterCorpus", lambda s: s.opt.register_corpus("", DOCS), BAD, "corpus"),
    (
        "corpus name with a path separator",
        "RegisterCorpus",
        lambda s: s.opt.register_corpus("../help", DOCS),
        BAD,
        "corpus",
    ),
    ("corpus without documents", "RegisterCorpus", lambda s: s.opt.register_corpus("help"), BAD, "documents"),
    (
        "corpus document without an id",
        "RegisterCorpus",
        lambda s: s.opt.register_corpus("help", [{"id": "", "text": "t"}]),
        BAD,
        "documents[0].id",
    ),
    (
        "corpus document ids repeat",
        "RegisterCorpus",
        lambda s: s.opt.register_corpus("help", [*DOCS, {"id": "refunds", "text": "again"}]),
        BAD,
        "documents[2].id",
    ),
    (
        "corpus document with a blank text",
        "RegisterCorpus",
        lambda s: s.opt.register_corpus("help", [{"id": "a", "text": "  "}]),
        BAD,
        "documents[0].text",
    ),
    (
        "corpus document text over its limit",
        "RegisterCorpus",
        lambda s: s.opt.register_corpus("help", [{"id": "a", "text": "x" * 20_001}]),
        BAD,
        "documents[0].text",
    ),
    (
        "corpus inline and from a file",
        "RegisterCorpus",
        lambda s: s.opt.register_corpus("help", DOCS, source="help.jsonl"),
        BAD,
        "source",
    ),
    (
        "corpus text_field without a file",
        "RegisterCorpus",
        lambda s: s.opt.register_corpus("help", DOCS, text_field="body"),
        BAD,
        "text_field",
    ),
    (
        "corpus file on a server without a datasets directory",
        "RegisterCorpus",
        lambda s: s.opt.register_corpus("help", source="help.jsonl"),
        PRECONDITION,
        "source",
    ),
    (
        "corpus request_id with a control character",
        "RegisterCorpus",
        lambda s: s.opt.register_corpus("help", DOCS, request_id="a\x00b"),
        BAD,
        "request_id",
    ),
    ("read after beyond int64", "ReadLog", read_after(AFTER_MAX), BAD, "after"),
    ("read after 2**63", "ReadLog", read_after(2**63), BAD, "after"),
    ("subscribe after beyond int64", "SubscribeLog", subscribe_after(AFTER_MAX), BAD, "after"),
    # ---------------------------------------------------------------- gateway
]


@pytest.mark.parametrize("name,rpc,call,code,field", OPTIMIZER_CASES, ids=[c[0] for c in OPTIMIZER_CASES])
def test_bad_input_is_refused_cleanly(
    servers: Servers,
    name: str,
    rpc: str,
    call: Callable[[Servers], object],
    code: grpc.StatusCode,
    field: str,
) -> None:
    check_refused(servers, rpc, call, code, field)


def test_oversized_request_is_refused_and_the_server_survives(servers: Servers) -> None:
    huge = [{"text": "x" * 1_000_000, "label": "l"}] * 40  # ~40 MB > the 32 MiB limit
    with pytest.raises(grpc.RpcError) as err:
        list(servers.opt.start_optimization("tickets", "text -> label", trainset=huge))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert servers.opt.list_programs().programs[0].program == "tickets"
