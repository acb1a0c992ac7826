"""Feedback as a dataset: the labelled examples ExportFeedback returns, paged
(`FeedbackPages`), as rows (`example_row`) or written in the format a DatasetRef reads
(dspyops.datarefs): JSONL, one flat object per example, its captured inputs first and its
expected outputs after them (so the default split of dspyops.datasets, inputs = all keys but
the last, also holds for one output). `feedback:DEPLOYMENT[@SINCE]` names a deployment's
feedback wherever the CLI takes a dataset (`parse_feedback_ref`).

The file is written to a temporary name beside the target and renamed over it, so an
optimizer reading the path never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.proto import gateway_pb2 as gpb

FEEDBACK_REF = "feedback:"


class _Exporter(Protocol):  # GatewayClient.export_feedback (the client imports nothing of this)
    def export_feedback(
        self,
        deployment: str,
        since: datetime | Timestamp | None = None,
        until: datetime | Timestamp | None = None,
        *,
        limit: int = 0,
        page_token: str = "",
    ) -> gpb.ExportFeedbackResponse: ...


class FeedbackPages:
    """Every labelled example of an export in order, page after page, counting what the
    gateway skipped on the way (labelled, but no captured inputs)."""

    def __init__(
        self, gw: _Exporter, deployment: str, since: datetime | None, until: datetime | None = None
    ) -> None:
        self.gw, self.deployment, self.since, self.until = gw, deployment, since, until
        self.skipped = 0

    def __iter__(self) -> Iterator[gpb.FeedbackExample]:
        token = ""
        while True:
            page = self.gw.export_feedback(self.deployment, self.since, self.until, page_token=token)
            self.skipped += page.skipped
            yield from page.examples
            token = page.next_page_token
            if not token:
                return


def parse_feedback_ref(text: str) -> tuple[str, str] | None:
    """`feedback:DEPLOYMENT` or `feedback:DEPLOYMENT@SINCE` -> (deployment, since as given,
    "" for all); None when `text` names no feedback (a file or a shipped dataset)."""
    if not text.startswith(FEEDBACK_REF):
        return None
    deployment, _, since = text.removeprefix(FEEDBACK_REF).partition("@")
    return deployment, since


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
