"""Datasets by reference: resolve_dataset_ref's path checks and row parsing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dspyops.client import OptimizerClient
from dspyops.datarefs import resolve_dataset_ref
from dspyops.errors import FailedPrecondition, InvalidArgument
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import optimizer_pb2 as opb

SPEC = ProgramSpec(module="Predict", signature="question -> answer")


def _ref(path: str, *keys: str) -> opb.DatasetRef:
    return opb.DatasetRef(path=path, input_keys=list(keys))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "datasets"
    (root / "sub").mkdir(parents=True)
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(3)]
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    (root / "sub" / "qa.csv").write_text('question,answer\nq0,a0\n"q, 1",a1\n')
    return root


def test_jsonl_and_csv_rows_become_examples(data_dir: Path) -> None:
    jsonl = resolve_dataset_ref(data_dir, _ref("qa.jsonl"), SPEC, "trainset_ref")
    assert [(e.question, e.answer) for e in jsonl] == [("q0", "a0"), ("q1", "a1"), ("q2", "a2")]
    assert set(jsonl[0].inputs().keys()) == {"question"}
    csv_rows = resolve_dataset_ref(data_dir, _ref("sub/qa.csv"), SPEC, "valset_ref")
    assert [(e.question, e.answer) for e in csv_rows] == [("q0", "a0"), ("q, 1", "a1")]


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../x.jsonl", "'..'"),
        ("sub/../../x.jsonl", "'..'"),
        ("/etc/passwd", "relative"),
        ("missing.jsonl", "no such file"),
        ("x.txt", ".jsonl or .csv"),
        ("", "required"),
    ],
)
def test_bad_paths_name_the_field(data_dir: Path, path: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        resolve_dataset_ref(data_dir, _ref(path), SPEC, "trainset_ref")
    assert err.value.field == "trainset_ref.path"
    assert problem in err.value.problem


def test_symlink_out_of_the_dir_is_refused(data_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.jsonl"
    outside.write_text('{"question": "q", "answer": "a"}\n')
    os.symlink(outside, data_dir / "link.jsonl")
    with pytest.raises(InvalidArgument, match="outside"):
        resolve_dataset_ref(data_dir, _ref("link.jsonl"), SPEC, "valset_ref")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"question": "q"}\n', "missing 'answer'"),
        ("not json\n", "not JSON"),
        ("[1, 2]\n", "JSON object"),
        ('{"question": {"a": 1}, "answer": "a"}\n', "must be a string"),
        ("\n\n", "no examples"),
    ],
)
def test_malformed_jsonl_rows(data_dir: Path, content: str, problem: str) -> None:
    (data_dir / "bad.jsonl").write_text(content)
    with pytest.raises(InvalidArgument) as err:
        resolve_dataset_ref(data_dir, _ref("bad.jsonl"), SPEC, "trainset_ref")
    assert err.value.field == "trainset_ref.path"
    assert problem in err.value.problem


def test_malformed_csv_rows(data_dir: Path) -> None:
    (data_dir / "bad.csv").write_text("question,answer\nq0,a0,extra\n")
    with pytest.raises(InvalidArgument, match="more cells"):
        resolve_dataset_ref(data_dir, _ref("bad.csv"), SPEC, "trainset_ref")
    (data_dir / "short.csv").write_text("question,answer\nq0\n")
    with pytest.raises(InvalidArgument, match="fewer cells"):
        resolve_dataset_ref(data_dir, _ref("short.csv"), SPEC, "trainset_ref")


def test_unknown_input_keys(data_dir: Path) -> None:
    with pytest.raises(InvalidArgument) as err:
        resolve_dataset_ref(data_dir, _ref("qa.jsonl", "context"), SPEC, "trainset_ref")
    assert err.value.field == "trainset_ref.input_keys"


def test_no_datasets_dir_is_a_failed_precondition() -> None:
    with pytest.raises(FailedPrecondition) as err:
        resolve_dataset_ref(None, _ref("qa.jsonl"), SPEC, "trainset_ref")
    assert err.value.field == "trainset_ref"


# ---------------------------------------------------------------- through the server


def _server(tmp_path: Path, datasets_dir: Path | None):
    from optimizer_svc.server import OptimizerConfig, start
    from tests.support.harness import ServerThread

    config = OptimizerConfig(log=str(tmp_path / "log.db"), data_dir=tmp_path / "d", datasets_dir=datasets_dir)
    return ServerThread(lambda: start(config))


def _start(opt: OptimizerClient, **kw: object) -> list[opb.OptimizationEvent]:
    """A LabeledFewShot job on the referenced sets: its events."""
    arguments: dict[str, object] = {"optimizer": "LabeledFewShot", "params": {"k": 4}, **kw}
    return list(opt.start_optimization("tickets", "text -> label", **arguments))  # type: ignore[arg-type]


@pytest.fixture
def tickets_dir(tmp_path: Path) -> Path:
    import csv

    from tests.support.harness import ticket_rows

    rows = ticket_rows()
    root = tmp_path / "datasets"
    root.mkdir()
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:30]))
    with (root / "val.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows({"text": r["text"], "label": r["label"]} for r in rows[30:50])
    return root


def test_refs_and_split_through_the_server(tmp_path: Path, tickets_dir: Path) -> None:
    from dspyops.datasets import dataset_digest, split

    spec = ProgramSpec(module="Predict", signature="text -> label")
    train = resolve_dataset_ref(tickets_dir, _ref("train.jsonl"), spec, "trainset_ref")
    val = resolve_dataset_ref(tickets_dir, _ref("val.csv"), spec, "valset_ref")
    thread = _server(tmp_path, tickets_dir)
    try:
        with OptimizerClient(thread.address) as opt:
            events = _start(opt, trainset_ref=_ref("train.jsonl"), valset_ref=_ref("val.csv"))
            assert events[-1].WhichOneof("kind") == "completed", events[-1]
            lineage = opt.get_version("tickets", events[-1].completed.version).lineage
            assert (lineage.trainset_size, lineage.valset_size) == (30, 20)
            assert lineage.trainset_digest == dataset_digest(train)
            assert lineage.valset_digest == dataset_digest(val)
            assert events[0].accepted.valset_digest == dataset_digest(val)

            # no valset: a seeded split of the referenced trainset; same seed, same split
            done = _start(opt, trainset_ref=_ref("train.jsonl"), val_fraction=0.25, split_seed=7)[
                -1
            ].completed
            lineage = opt.get_version("tickets", done.version).lineage
            want_train, want_val = split(train, 0.25, 7)
            assert (lineage.trainset_size, lineage.valset_size) == (len(want_train), len(want_val)) == (22, 8)
            assert lineage.trainset_digest == dataset_digest(want_train)
            assert lineage.valset_digest == dataset_digest(want_val)
    finally:
        thread.stop()


@pytest.mark.parametrize(
    ("field", "path", "problem"),
    [
        ("trainset_ref", "../x.jsonl", "'..'"),
        ("trainset_ref", "/etc/passwd", "relative"),
        ("trainset_ref", "missing.jsonl", "no such file"),
        ("trainset_ref", "x.txt", ".jsonl or .csv"),
        ("valset_ref", "../../etc/passwd.csv", "'..'"),
    ],
)
def test_bad_refs_are_refused_naming_the_field(
    tmp_path: Path, tickets_dir: Path, field: str, path: str, problem: str
) -> None:
    import grpc

    thread = _server(tmp_path, tickets_dir)
    try:
        with OptimizerClient(thread.address) as opt:
            head = opt.read_log(0, 1).head
            refs = {"trainset_ref": _ref("train.jsonl"), field: _ref(path)}
            with pytest.raises(grpc.RpcError) as err:
                _start(opt, **refs)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details().startswith(f"{field}.path: "), err.value.details()
            assert problem in err.value.details()
            assert opt.read_log(0, 1).head == head
    finally:
        thread.stop()


def test_a_server_without_a_datasets_dir_refuses_refs(tmp_path: Path) -> None:
    import grpc

    thread = _server(tmp_path, None)
    try:
        with OptimizerClient(thread.address) as opt:
            head = opt.read_log(0, 1).head
            with pytest.raises(grpc.RpcError) as err:
                _start(opt, trainset_ref=_ref("train.jsonl"))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert err.value.details().startswith("trainset_ref: ")
            assert opt.read_log(0, 1).head == head
    finally:
        thread.stop()


def test_a_user_module_reads_its_inputs_from_the_refs_input_keys(data_dir: Path) -> None:
    user = ProgramSpec("tests.programs_pkg.modules:TwoStep")
    with pytest.raises(InvalidArgument) as err:
        resolve_dataset_ref(data_dir, _ref("qa.jsonl"), user, "trainset_ref")
    assert err.value.field == "trainset_ref.input_keys"
    rows = resolve_dataset_ref(data_dir, _ref("qa.jsonl", "question"), user, "trainset_ref")
    assert set(rows[0].inputs().keys()) == {"question"} and rows[0].answer == "a0"
