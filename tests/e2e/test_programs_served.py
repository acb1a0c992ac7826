"""Real DSPy programs through the real servers: a user module from an allowlisted test
package and a declarative pipeline, optimized, registered with their code digests, served,
exported and loaded back with plain DSPy; bad specs refused with nothing appended; a
changed source file refused by the gateway unless it allows code drift."""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dspyops.client import GatewayClient, OptimizerClient
from dspyops.launch import ServerThread
from dspyops.proto import events_pb2 as pb
from tests.programs_pkg.modules import TwoStep
from tests.programs_pkg.specs import ALLOWED, MODULES, PIPELINE, TOOLS, agent
from tests.support.connections import gateway_thread, optimizer_thread
from tests.support.harness import ticket_rows, wait_until
from tests.support.ray_cluster import EXECUTORS

ROWS = ticket_rows()[:8]
USER = pb.ProgramSpec(module=f"{MODULES}:TwoStep", init_args='{"hint": "be brief"}')


@pytest.fixture
def servers(tmp_path: Path, executor: str) -> Iterator[tuple[OptimizerClient, ServerThread, Path]]:
    optimizer = optimizer_thread(tmp_path, program_modules=ALLOWED, executor=executor)
    try:
        with OptimizerClient(optimizer.address, timeout=120) as opt:
            yield opt, optimizer, tmp_path
    finally:
        optimizer.stop()


def optimize(
    opt: OptimizerClient, program: str, spec: pb.ProgramSpec, optimizer: str, **params: object
) -> str:
    # MIPROv2 and GEPA select on a valset: a share of the trainset is held out for them
    val_fraction = 0.25 if optimizer in ("MIPROv2", "GEPA") else 0.0
    events = list(
        opt.start_optimization(
            program,
            "",
            trainset=ROWS,
            optimizer=optimizer,
            params=params,
            spec=spec,
            input_keys=["text"],
            val_fraction=val_fraction,
        )
    )
    assert events[-1].WhichOneof("kind") == "completed", events[-1]
    return events[-1].completed.version


def serve(opt: OptimizerClient, tmp_path: Path, program: str, version: str, **config: object) -> ServerThread:
    """A new gateway serving ``version`` on web-<program> (created the first time)."""
    if f"web-{program}" not in {d.deployment for d in opt.list_deployments().deployments}:
        opt.create_deployment(f"web-{program}", program)
    head = opt.set_routes(f"web-{program}", {version: 1.0}).log_position
    gateway = gateway_thread(tmp_path, predictions=str(tmp_path / f"{uuid.uuid4().hex}.db"), **config)
    with GatewayClient(gateway.address) as gw:
        assert wait_until(lambda: gw.list_deployment_states().log_position >= head)
    return gateway


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_user_module_optimized_registered_served_exported(
    servers: tuple[OptimizerClient, ServerThread, Path],
) -> None:
    opt, _, tmp_path = servers
    version = optimize(
        opt, "twostep", USER, "BootstrapFewShot", max_bootstrapped_demos=2, max_labeled_demos=2
    )
    registered = opt.get_version("twostep", version)
    source = Path(sys.modules[MODULES].__file__ or "").read_bytes()
    assert dict(registered.lineage.code_digests) == {MODULES: hashlib.sha256(source).hexdigest()}
    assert registered.spec.init_args == '{"hint":"be brief"}'

    gateway = serve(opt, tmp_path, "twostep", version, program_modules=ALLOWED)
    try:
        with GatewayClient(gateway.address) as gw:
            answer = gw.predict("web-twostep", {"text": "I was charged twice"})
            assert answer.version == version and "label" in answer.outputs and "topic" in answer.outputs
    finally:
        gateway.stop()

    # a gateway that does not allowlist the module never imports it: the version cannot be served
    bare = serve(opt, tmp_path, "twostep", version)
    try:
        with GatewayClient(bare.address) as gw:
            with pytest.raises(grpc.RpcError) as err:
                gw.predict("web-twostep", {"text": "I was charged twice"})
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert version in str(err.value.details()) and "not allowlisted" in str(err.value.details())
    finally:
        bare.stop()

    # the whole program is evaluated (its examples name the input)
    report = list(opt.evaluate("twostep", version, dataset=ROWS, input_keys=["text"]))[-1].report
    assert report.examples == len(ROWS) and report.errors == 0

    exported = opt.export_version("twostep", version)
    state_path = tmp_path / "twostep.json"
    state_path.write_bytes(exported.state_json)
    plain = TwoStep()
    plain.load(str(state_path))  # plain DSPy reads the export: every predictor's demos
    state = json.loads(exported.state_json)
    assert set(state) == {"analyze.predict", "answer", "metadata"}
    assert state["answer"]["demos"] and [dict(d) for d in plain.answer.demos] == state["answer"]["demos"]

    # and a state plain DSPy saved registers as it is
    plain.answer.signature = plain.answer.signature.with_instructions("Pick the queue.")
    saved = tmp_path / "saved.json"
    plain.save(str(saved))
    imported = opt.import_program("twostep-import", "", saved.read_bytes(), spec=USER)
    assert dict(imported.lineage.code_digests) == dict(registered.lineage.code_digests)
    back = json.loads(opt.export_version("twostep-import", imported.version).state_json)
    assert back["answer"]["signature"]["instructions"] == "Pick the queue."


@pytest.mark.parametrize(
    ("optimizer", "params"),
    [
        ("MIPROv2", {"auto": None, "num_candidates": 2, "num_trials": 2, "max_bootstrapped_demos": 1}),
        ("COPRO", {"breadth": 2, "depth": 1}),
        ("GEPA", {"max_metric_calls": 30}),
    ],
)
def test_every_optimizer_takes_the_two_predictor_module(
    servers: tuple[OptimizerClient, ServerThread, Path], optimizer: str, params: dict[str, object]
) -> None:
    opt, _, tmp_path = servers
    program = f"twostep-{optimizer.lower()}"
    version = optimize(opt, program, USER, optimizer, **params)
    exported = tmp_path / f"{program}.json"
    exported.write_bytes(opt.export_version(program, version).state_json)
    plain = TwoStep()
    plain.load(str(exported))  # both predictors' state, as plain DSPy reads it
    state = json.loads(exported.read_text())
    assert plain.answer.signature.instructions == state["answer"]["signature"]["instructions"]
    assert (
        plain.analyze.predict.signature.instructions == state["analyze.predict"]["signature"]["instructions"]
    )


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_react_stage_with_a_raising_tool_served(servers: tuple[OptimizerClient, ServerThread, Path]) -> None:
    opt, _, tmp_path = servers
    react = agent(max_iters=2, tool_timeout_seconds=2)
    version = optimize(opt, "agent", react, "LabeledFewShot", k=2)
    assert set(opt.get_version("agent", version).lineage.code_digests) == {TOOLS}  # the tools' code
    state = json.loads(opt.export_version("agent", version).state_json)
    assert set(state) == {"agent.react", "agent.extract.predict", "metadata"}
    gateway = serve(opt, tmp_path, "agent", version, program_modules=ALLOWED)
    try:
        with GatewayClient(gateway.address) as gw:
            answer = gw.predict("web-agent", {"text": "refund order 12 please"})
            assert answer.version == version and set(answer.outputs) == {"label"}
    finally:
        gateway.stop()


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_pipeline_served_end_to_end(servers: tuple[OptimizerClient, ServerThread, Path]) -> None:
    opt, _, tmp_path = servers
    version = optimize(opt, "pipe", PIPELINE, "LabeledFewShot", k=3)
    assert opt.get_version("pipe", version).spec.pipeline.outputs["label"] == "answer.label"
    state = json.loads(opt.export_version("pipe", version).state_json)
    assert set(state) == {"analyze.predict", "answer", "metadata"}
    assert len(state["answer"]["demos"]) == 3
    # the whole pipeline is evaluated, as a registered version and as a spec + its state
    report = list(opt.evaluate("pipe", version, dataset=ROWS))[-1].report
    assert report.examples == len(ROWS) and report.errors == 0
    again = list(opt.evaluate(spec=PIPELINE, state_json=json.dumps(state).encode(), dataset=ROWS))[-1].report
    assert again.score == report.score
    gateway = serve(opt, tmp_path, "pipe", version)  # a pipeline needs no user code
    try:
        with GatewayClient(gateway.address) as gw:
            answer = gw.predict("web-pipe", {"text": "I was charged twice"})
            assert set(answer.outputs) == {"label"} and answer.outputs["label"]
            with pytest.raises(grpc.RpcError) as err:
                gw.predict("web-pipe", {"question": "x"})
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        gateway.stop()


def _wired(
    inputs: dict[str, str] | None = None, tools: list[str] | None = None, signature: str = ""
) -> pb.ProgramSpec:
    """PIPELINE with its second stage changed."""
    spec = pb.ProgramSpec()
    spec.CopyFrom(PIPELINE)
    stage = spec.pipeline.stages[1]
    if inputs is not None:
        stage.inputs.clear()
        stage.inputs.update(inputs)
    if tools is not None:
        stage.kind = "ReAct"
        stage.tools.extend(tools)
    if signature:
        stage.signature = signature
    return spec


BAD_SPECS = [
    (
        "not allowlisted",
        pb.ProgramSpec(module="tests.programs_pkg.elsewhere:Anything"),
        "PERMISSION_DENIED",
        "spec.module",
    ),
    ("stdlib module", pb.ProgramSpec(module="os:system"), "PERMISSION_DENIED", "spec.module"),
    ("not a dspy.Module", pb.ProgramSpec(module=f"{MODULES}:NotAModule"), "INVALID_ARGUMENT", "spec.module"),
    (
        "bad init_args",
        pb.ProgramSpec(module=f"{MODULES}:TwoStep", init_args='{"bogus": 1}'),
        "INVALID_ARGUMENT",
        "spec.init_args",
    ),
    (
        "unknown source",
        _wired(inputs={"text": "input.text", "topic": "analyse.topic"}),
        "INVALID_ARGUMENT",
        "spec.pipeline.stages[1].inputs.topic",
    ),
    (
        "cycle",
        _wired(inputs={"text": "input.text", "topic": "answer.label"}),
        "INVALID_ARGUMENT",
        "spec.pipeline.stages[1].inputs.topic",
    ),
    (
        "unused output",
        _wired(signature="text, topic -> label, extra"),
        "INVALID_ARGUMENT",
        "spec.pipeline.stages[1].signature",
    ),
    (
        "unknown tool",
        _wired(tools=[f"{TOOLS}:no_such_tool"]),
        "INVALID_ARGUMENT",
        "spec.pipeline.stages[1].tools[0]",
    ),
    (
        "tool not allowlisted",
        _wired(tools=["tests.programs_pkg.elsewhere:tool"]),
        "PERMISSION_DENIED",
        "spec.pipeline.stages[1].tools[0]",
    ),
]


@pytest.mark.parametrize(("case", "spec", "code", "field"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_bad_programs_refused_with_nothing_appended(
    servers: tuple[OptimizerClient, ServerThread, Path],
    case: str,
    spec: pb.ProgramSpec,
    code: str,
    field: str,
) -> None:
    opt, _, _ = servers
    sys.modules.pop("tests.programs_pkg.elsewhere", None)
    head = opt.read_log(0, 1).head
    calls = [
        lambda: list(
            opt.start_optimization(
                "bad", "", trainset=ROWS, optimizer="LabeledFewShot", spec=spec, input_keys=["text"]
            )
        ),
        lambda: opt.import_program("bad", "", b"{}", spec=spec),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code().name == code, (case, str(err.value.details()))
        assert str(err.value.details()).startswith(field), (case, str(err.value.details()))
    assert opt.read_log(0, 1).head == head
    assert "tests.programs_pkg.elsewhere" not in sys.modules  # never imported
    assert opt.list_programs() is not None  # still serving


def test_not_allowlisted_names_the_allowlist(servers: tuple[OptimizerClient, ServerThread, Path]) -> None:
    opt, _, _ = servers
    with pytest.raises(grpc.RpcError) as err:
        opt.import_program("bad", "", b"{}", spec=pb.ProgramSpec(module="json:JSONDecoder"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'json'" in str(err.value.details()) and f"{MODULES}, {TOOLS}" in str(err.value.details())


def test_gateway_refuses_changed_code_unless_allowed(tmp_path: Path) -> None:
    package = f"drift_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    source = tmp_path / package / "prog.py"
    source.write_text(
        "import dspy\n\n\nclass Prog(dspy.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.answer = dspy.Predict('text -> label')\n\n"
        "    def forward(self, text):\n        return self.answer(text=text)\n"
    )
    sys.path.insert(0, str(tmp_path))
    module = f"{package}.prog"
    try:
        optimizer = optimizer_thread(tmp_path, program_modules=frozenset({module}))
        try:
            with OptimizerClient(optimizer.address, timeout=120) as opt:
                version = optimize(
                    opt, "drift", pb.ProgramSpec(module=f"{module}:Prog"), "LabeledFewShot", k=2
                )
                recorded = opt.get_version("drift", version).lineage.code_digests[module]
                source.write_text(source.read_text() + "\n# changed after registration\n")
                loaded = hashlib.sha256(source.read_bytes()).hexdigest()

                strict = serve(opt, tmp_path, "drift", version, program_modules=frozenset({module}))
                try:
                    with GatewayClient(strict.address) as gw:
                        with pytest.raises(grpc.RpcError) as err:
                            gw.predict("web-drift", {"text": "I was charged twice"})
                        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                        details = str(err.value.details())
                        assert version in details and recorded in details and loaded in details, details
                finally:
                    strict.stop()

                lenient = gateway_thread(
                    tmp_path,
                    predictions=str(tmp_path / "lenient.db"),
                    program_modules=frozenset({module}),
                    allow_code_drift=True,
                )
                try:
                    with GatewayClient(lenient.address) as gw:
                        assert wait_until(lambda: bool(gw.list_deployment_states().deployments))
                        answer = gw.predict("web-drift", {"text": "I was charged twice"})
                        assert answer.version == version
                        explanation = gw.explain_prediction(answer.prediction_id)
                        assert explanation.code_drift
                finally:
                    lenient.stop()
        finally:
            optimizer.stop()
    finally:
        sys.path.remove(str(tmp_path))
