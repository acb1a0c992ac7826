"""Feedback as a dataset file: the labelled examples ExportFeedback returns, written in the
format a DatasetRef reads (dspyops.datarefs): JSONL, one flat object per example, its
captured inputs first and its expected outputs after them (so the default split of
dspyops.datasets, inputs = all keys but the last, also holds for one output).

The file is written to a temporary name beside the target and renamed over it, so an
optimizer reading the path never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from dspyops.proto import gateway_pb2 as gpb


def example_row(example: gpb.FeedbackExample) -> dict[str, str]:
    """Inputs + expected as one row; an expected output named like an input (not possible
    through RecordOutcome, which takes output fields only) would win."""
    row = dict(sorted(example.inputs.items()))
    row.update(sorted(example.expected.items()))
    return row


def write_dataset(examples: Iterable[gpb.FeedbackExample], path: str | Path) -> int:
    """Writes the rows as JSONL at `path`; returns how many it wrote."""
    target = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or Path("."))
    written = 0
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for example in examples:
                out.write(json.dumps(example_row(example), ensure_ascii=False) + "\n")
                written += 1
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return written
