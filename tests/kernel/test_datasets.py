"""The bundled support-ticket dataset, loading, splitting and digests."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import dspy
import pytest

from dspyops.datasets import DATA_DIR, bundled_datasets, dataset_digest, load_dataset, split


def test_bundled_support_tickets_shape() -> None:
    assert "support_tickets" in bundled_datasets()
    examples = load_dataset("support_tickets")
    assert 80 <= len(examples) <= 120
    labels = Counter(e.label for e in examples)
    assert 4 <= len(labels) <= 6
    assert min(labels.values()) >= 10  # balanced enough to learn every class
    assert len({e.text for e in examples}) == len(examples)  # no duplicate tickets
    assert all(set(e.inputs().keys()) == {"text"} for e in examples)
    assert all(set(e.labels().keys()) == {"label"} for e in examples)
    # Labels are learnable from the words but not by copying a word from the ticket.
    copied = sum(e.label in e.text.lower().split() for e in examples)
    assert copied <= len(examples) * 0.15


def test_load_path_and_input_keys(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    rows = [
        {"question": "2+2?", "context": "math", "answer": "4"},
        {"question": "Capital of France?", "context": "", "answer": "Paris"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    default = load_dataset(path)
    assert set(default[0].inputs().keys()) == {"question", "context"}  # all keys but the last
    chosen = load_dataset(str(path), input_keys=["question"])
    assert set(chosen[1].labels().keys()) == {"context", "answer"}


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("not json\n", "not JSON"), ('{"only": 1}\n', "at least two keys"), ("", "no examples")],
)
def test_load_rejects_bad_files(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=fragment):
        load_dataset(path)


def test_load_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="support_tickets"):
        load_dataset("no_such_dataset")
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "missing.jsonl")
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1, "b": 2}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="missing input keys"):
        load_dataset(path, input_keys=["c"])


def test_split_is_seeded_and_disjoint() -> None:
    examples = load_dataset("support_tickets")
    train, val = split(examples, 0.3, seed=7)
    assert len(val) == 30 and len(train) == len(examples) - 30
    assert {e.text for e in train}.isdisjoint({e.text for e in val})
    again_train, again_val = split(examples, 0.3, seed=7)
    assert dataset_digest(again_train) == dataset_digest(train)
    assert dataset_digest(again_val) == dataset_digest(val)
    other_train, _ = split(examples, 0.3, seed=8)
    assert dataset_digest(other_train) != dataset_digest(train)
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="val_fraction"):
            split(examples, bad, seed=0)


def test_digest_is_order_sensitive_and_content_based() -> None:
    a = dspy.Example(text="x", label="1").with_inputs("text")
    b = dspy.Example(text="y", label="2").with_inputs("text")
    assert dataset_digest([a, b]) != dataset_digest([b, a])
    assert dataset_digest([a, b]) == dataset_digest(
        [dspy.Example(label="1", text="x"), b]
    )  # key order irrelevant
    assert len(dataset_digest([])) == 64


def test_data_file_is_plain_jsonl() -> None:
    for line in (DATA_DIR / "support_tickets.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        assert list(row) == ["text", "label"] and all(isinstance(v, str) and v for v in row.values())
