"""ImportProgram / ExportVersion through a real server, and the CLI faces of the new RPCs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dspy
import grpc
import pytest

from dspyops.cli.main import main
from dspyops.client import OptimizerClient
from dspyops.proto import events_pb2 as pb
from optimizer_svc.imports import import_version
from optimizer_svc.server import OptimizerConfig, start
from tests.support.harness import ServerThread, ticket_rows

SIG = "text -> label"
ROWS = ticket_rows()
DEMOS = [{"text": "refund my card charge twice", "label": "billing"}]


def save(program: dspy.Module, tmp: Path, name: str = "saved.json") -> bytes:
    path = tmp / name
    program.save(str(path))
    return path.read_bytes()


def predict_with(demos: list[dict[str, str]], signature: str = SIG) -> dspy.Predict:
    program = dspy.Predict(signature)
    program.demos = [dspy.Example(**d) for d in demos]
    return program


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp("import-export")
    thread = ServerThread(lambda: start(OptimizerConfig(log=str(tmp / "log.db"), data_dir=tmp / "data")))
    yield thread
    thread.stop()


@pytest.fixture()
def opt(server: ServerThread) -> Iterator[OptimizerClient]:
    with OptimizerClient(server.address) as client:
        yield client


def test_import_then_export_round_trips_through_plain_dspy(opt: OptimizerClient, tmp_path: Path) -> None:
    original = predict_with([*DEMOS, {"text": "package never arrived", "label": "shipping"}])
    original.signature = original.signature.with_instructions("Classify the support ticket.")
    version = opt.import_program("roundtrip", SIG, save(original, tmp_path))
    assert version.version == "1.0.0" and version.status == pb.DEVELOPMENT
    assert version.lineage.optimizer == "import" and version.lineage.job_id == ""
    assert version.lineage.dspy_version == dspy.__version__
    assert len(version.lineage.params["state_sha256"]) == 64

    exported = opt.export_version("roundtrip", "1.0.0")
    assert exported.artifact_digest == version.artifact_digest
    assert (exported.spec.module, exported.spec.signature) == ("Predict", SIG)
    path = tmp_path / "exported.json"
    path.write_bytes(exported.state_json)
    loaded = dspy.Predict(SIG)
    loaded.load(str(path))
    assert [dict(d) for d in loaded.demos] == [dict(d) for d in original.demos]
    assert loaded.signature.instructions == "Classify the support ticket."


def test_versioning_of_imports(opt: OptimizerClient, tmp_path: Path) -> None:
    first = save(predict_with(DEMOS), tmp_path, "a.json")
    assert opt.import_program("semver", SIG, first).version == "1.0.0"
    assert opt.import_program("semver", SIG, first).version == "1.0.1"  # same artifact again: patch
    assert opt.import_program("semver", SIG, first).version == "1.0.2"
    other = save(predict_with(DEMOS * 2), tmp_path, "b.json")
    assert opt.import_program("semver", SIG, other).version == "1.1.0"  # new state, same signature: minor
    assert opt.import_program("semver", SIG, first).version == "1.1.1"  # known artifact: patch of latest
    changed = save(predict_with([], "text -> label, urgency"), tmp_path, "c.json")
    assert opt.import_program("semver", "text -> label, urgency", changed).version == "2.0.0"  # major
    # a known artifact of an older signature is a signature change relative to the latest
    assert opt.import_program("semver", SIG, first).version == "3.0.0"


def test_import_version_rules_unit() -> None:
    assert import_version(None, pb.ProgramSpec(module="Predict", signature=SIG), "x" * 64) == "1.0.0"


def test_chain_of_thought_import_and_export(opt: OptimizerClient, tmp_path: Path) -> None:
    program = dspy.ChainOfThought(SIG)
    program.predict.demos = [dspy.Example(text="t", reasoning="r", label="l")]
    version = opt.import_program("cot", SIG, save(program, tmp_path), module="ChainOfThought")
    exported = opt.export_version("cot", version.version)
    path = tmp_path / "cot.json"
    path.write_bytes(exported.state_json)
    loaded = dspy.ChainOfThought(SIG)
    loaded.load(str(path))
    assert [dict(d) for d in loaded.predict.demos] == [{"text": "t", "reasoning": "r", "label": "l"}]


def test_per_predictor_lm_in_the_file_is_dropped(opt: OptimizerClient, tmp_path: Path) -> None:
    body = json.loads(save(predict_with(DEMOS), tmp_path))
    body["lm"] = {"model": "openai/gpt-4o-mini", "api_key": "sk-secret"}
    version = opt.import_program("nolm", SIG, json.dumps(body).encode())
    exported = json.loads(opt.export_version("nolm", version.version).state_json)
    assert exported["lm"] is None
    log = opt.read_log(stream_prefix="program-nolm").events
    assert b"sk-secret" not in log[-1].raw_payload


def test_a_job_version_exports_too(opt: OptimizerClient, tmp_path: Path) -> None:
    events = list(opt.start_optimization("jobbed", SIG, trainset=ROWS[:12], optimizer="LabeledFewShot"))
    assert events[-1].WhichOneof("kind") == "completed"
    exported = opt.export_version("jobbed", "1.0.0")
    path = tmp_path / "job.json"
    path.write_bytes(exported.state_json)
    loaded = dspy.Predict(SIG)
    loaded.load(str(path))
    assert len(loaded.demos) > 0
    # exporting and importing the very same artifact (same LM) re-registers it: a patch
    again = opt.import_program("jobbed", SIG, exported.state_json)
    assert again.version == "1.0.1" and again.artifact_digest == exported.artifact_digest


def _state(tmp: Path) -> bytes:
    return save(predict_with(DEMOS), tmp)


BAD = [
    ("malformed JSON", dict(state_json=b"{nope"), "INVALID_ARGUMENT", "state_json"),
    ("empty state", dict(state_json=b""), "INVALID_ARGUMENT", "state_json"),
    ("not an object", dict(state_json=b"[1, 2]"), "INVALID_ARGUMENT", "state_json"),
    ("missing demos", dict(state_json=b'{"signature": {"fields": []}}'), "INVALID_ARGUMENT", "state_json"),
    (
        "attribute injection",
        dict(mutate=lambda b: {**b, "forward": "boom"}),
        "INVALID_ARGUMENT",
        "state_json",
    ),
    ("other signature", dict(signature="text -> label, urgency"), "INVALID_ARGUMENT", "state_json"),
    ("other module", dict(module="ChainOfThought"), "INVALID_ARGUMENT", "state_json"),
    ("oversized", dict(state_json=b" " * (8 * 1024 * 1024 + 1)), "INVALID_ARGUMENT", "state_json"),
    ("bad program name", dict(program="Bad Name"), "INVALID_ARGUMENT", "program"),
    ("bad signature", dict(signature="text"), "INVALID_ARGUMENT", "spec.signature"),
    (
        "bad lm",
        dict(lm=pb.LMConfig(model="openai/x", api_key_env="sk-123 456")),
        "INVALID_ARGUMENT",
        "lm.api_key_env",
    ),
]


@pytest.mark.parametrize(("case", "code", "field"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_imports_name_the_field_and_append_nothing(
    opt: OptimizerClient, tmp_path: Path, case: dict, code: str, field: str
) -> None:
    state = _state(tmp_path)
    if "mutate" in case:
        state = json.dumps(case["mutate"](json.loads(state))).encode()
    head = opt.read_log(limit=1).head
    with pytest.raises(grpc.RpcError) as err:
        opt.import_program(
            case.get("program", "badimport"),
            case.get("signature", SIG),
            case.get("state_json", state),
            module=case.get("module", "Predict"),
            lm=case.get("lm"),
        )
    assert err.value.code() == getattr(grpc.StatusCode, code), err.value.details()
    assert err.value.details().startswith(f"{field}:"), err.value.details()
    assert opt.read_log(limit=1).head == head


@pytest.mark.parametrize(
    ("program", "version", "code", "field"),
    [
        ("nothere", "1.0.0", "NOT_FOUND", "program"),
        ("roundtrip", "9.0.0", "NOT_FOUND", "version"),
        ("roundtrip", "", "INVALID_ARGUMENT", "version"),
    ],
)
def test_bad_exports(
    opt: OptimizerClient, tmp_path: Path, program: str, version: str, code: str, field: str
) -> None:
    opt.import_program("roundtrip", SIG, _state(tmp_path))
    with pytest.raises(grpc.RpcError) as err:
        opt.export_version(program, version)
    assert err.value.code() == getattr(grpc.StatusCode, code)
    assert err.value.details().startswith(f"{field}:")


def test_dataset_refs_refused_without_a_datasets_dir(opt: OptimizerClient, tmp_path: Path) -> None:
    opt.import_program("refs", SIG, _state(tmp_path))
    with pytest.raises(grpc.RpcError) as err:
        list(opt.evaluate("refs", "1.0.0", dataset_ref="tickets.jsonl"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details().startswith("dataset_ref:")


def test_cli_import_evaluate_compare_export(
    server: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    addr = ["--optimizer", server.address]
    state = tmp_path / "p.json"
    predict_with(ROWS[:30]).save(str(state))
    empty = tmp_path / "e.json"
    predict_with([]).save(str(empty))
    data = tmp_path / "val.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS[30:60]))

    assert main([*addr, "import", "clitool", str(empty), "--signature", SIG]) == 0
    assert "imported clitool 1.0.0" in capsys.readouterr().out
    assert main([*addr, "import", "clitool", str(state), "--signature", SIG, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "1.1.0"

    assert main([*addr, "evaluate", "clitool", "1.1.0", "--dataset", str(data), "--results"]) == 0
    out = capsys.readouterr().out
    assert "30/30 running score" in out and "per class" in out and "examples" in out

    assert main([*addr, "evaluate", "--state", str(state), "--signature", SIG, "--dataset", str(data)]) == 0
    assert "spec + state: exact_match" in capsys.readouterr().out

    assert main([*addr, "compare", "clitool", "1.0.0", "1.1.0", "--dataset", str(data), "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    assert comparison["test"] == "mcnemar" and comparison["verdict"] == "b better"

    out_file = tmp_path / "out.json"
    assert main([*addr, "export", "clitool", "1.1.0", "--out", str(out_file)]) == 0
    loaded = dspy.Predict(SIG)
    loaded.load(str(out_file))
    assert len(loaded.demos) == 30

    assert main([*addr, "evaluate", "clitool", "1.1.0", "--dataset", str(data), "--metric", "nope"]) == 1
    assert "INVALID_ARGUMENT: metric:" in capsys.readouterr().out
