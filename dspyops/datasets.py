"""Small datasets as lists of dspy.Example, deterministic splits and digests.

Bundled datasets live in ``dspyops/data/<name>.jsonl`` and are loaded by name; anything else
is a path to a JSONL file of flat JSON objects or a CSV file (header row = field names),
read by dspyops.datarefs.read_rows, the reader the server uses for its datasets directory.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dspy

from dspyops.datarefs import read_rows
from dspyops.errors import DspyopsError

DATA_DIR = Path(__file__).parent / "data"


def bundled_datasets() -> list[str]:
    return sorted(p.stem for p in DATA_DIR.glob("*.jsonl"))


def _resolve(name_or_path: str | Path) -> Path:
    name = str(name_or_path)
    if "/" not in name and "\\" not in name and not name.lower().endswith((".jsonl", ".csv")):
        path = DATA_DIR / f"{name}.jsonl"
        if path.is_file():
            return path
        raise FileNotFoundError(
            f"dataset: no bundled dataset {name!r}; bundled: {', '.join(bundled_datasets())}"
        )
    path = Path(name)
    if not path.is_file():
        raise FileNotFoundError(f"dataset: no such file {path}")
    return path


def load_dataset(name_or_path: str | Path, input_keys: Sequence[str] | None = None) -> list[dspy.Example]:
    """Read JSONL (or, by extension, CSV) rows as Examples; inputs are ``input_keys`` or, by
    default, all keys but the last."""
    path = _resolve(name_or_path)
    try:
        read = read_rows(path, str(path), "dataset")
    except DspyopsError as exc:
        raise ValueError(str(exc)) from None
    examples: list[dspy.Example] = []
    for lineno, row in read:
        if len(row) < 2:
            raise ValueError(f"dataset: {path}:{lineno}: expected an object with at least two keys")
        keys = list(input_keys) if input_keys is not None else list(row)[:-1]
        missing = [k for k in keys if k not in row]
        if missing:
            raise ValueError(f"dataset: {path}:{lineno}: missing input keys {missing}")
        if len(keys) >= len(row):
            raise ValueError(f"dataset: {path}:{lineno}: no output keys left after inputs {keys}")
        examples.append(dspy.Example(**row).with_inputs(*keys))
    if not examples:
        raise ValueError(f"dataset: {path} holds no examples")
    return examples


def split(
    examples: Sequence[dspy.Example], val_fraction: float = 0.3, seed: int = 0
) -> tuple[list[dspy.Example], list[dspy.Example]]:
    """Shuffle with a seeded RNG (same seed, same split) and cut off the validation share."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction: must be strictly between 0 and 1, got {val_fraction}")
    if len(examples) < 2:
        raise ValueError("examples: need at least two examples to split")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = min(len(examples) - 1, max(1, round(len(examples) * val_fraction)))
    val = [examples[i] for i in order[:n_val]]
    train = [examples[i] for i in order[n_val:]]
    return train, val


def example_row(example: dspy.Example) -> dict[str, Any]:
    return {k: v for k, v in example.items()}


def dataset_digest(examples: Sequence[dspy.Example]) -> str:
    """sha256 of one canonical JSON line per example, in order (reordering changes it)."""
    h = hashlib.sha256()
    for example in examples:
        row = example_row(example)
        h.update(json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()
