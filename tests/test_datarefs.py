"""Datasets by reference: resolve_dataset_ref's path checks and row parsing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dspyops.datarefs import resolve_dataset_ref
from dspyops.errors import FailedPrecondition, InvalidArgument
from dspyops.programs import ProgramSpec
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
