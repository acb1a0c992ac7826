"""The labelled feedback a retrain learns from: exactly what ExportFeedback yields
(gateway_svc.feedback: outcomes with `expected` on predictions whose inputs were captured),
read page by page in the order the labels arrived, split into a training part and the most
recent `holdout_fraction` (the valset, and the gate's slice)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.state import State
from gateway_svc.feedback import MAX_PAGE, export_feedback
from gateway_svc.records import PredictionStore

MAX_WINDOW = 5_000  # labelled examples a retrain takes at most: the most recent ones
MAX_READ = 100_000  # examples read at most per look (a bound on one tick's work)


def token_of(example: gpb.FeedbackExample) -> str:
    """ExportFeedback's page token right after `example`."""
    return f"{example.recorded_at.ToMicroseconds()}/{example.prediction_id}"


def read_feedback(
    state: State, records: PredictionStore, deployment: str, after: str = "", through: str = ""
) -> list[gpb.FeedbackExample]:
    """The labelled examples after page token `after` (up to and including `through` when
    given), oldest first, at most MAX_READ."""
    examples: list[gpb.FeedbackExample] = []
    token = after
    while len(examples) < MAX_READ:
        page = export_feedback(
            state, records, gpb.ExportFeedbackRequest(deployment=deployment, limit=MAX_PAGE, page_token=token)
        )
        for example in page.examples:
            examples.append(example)
            if through and token_of(example) == through:
                return examples
        if not page.next_page_token:
            break
        token = page.next_page_token
    return examples


@dataclass(frozen=True)
class Split:
    window: pb.FeedbackWindow
    train: list[gpb.FeedbackExample]
    holdout: list[gpb.FeedbackExample]


def split(examples: list[gpb.FeedbackExample], before: str, holdout_fraction: float) -> Split:
    """The window of the most recent MAX_WINDOW examples, its last `holdout_fraction` held out
    (at least one each side; the caller needs two examples or more)."""
    if len(examples) > MAX_WINDOW:
        before = token_of(examples[-MAX_WINDOW - 1])
        examples = examples[-MAX_WINDOW:]
    n = len(examples)
    held = min(n - 1, max(1, math.ceil(n * holdout_fraction)))
    train, holdout = examples[: n - held], examples[n - held :]
    window = pb.FeedbackWindow(
        first_token=before,
        last_token=token_of(examples[-1]),
        first_us=examples[0].recorded_at.ToMicroseconds(),
        last_us=examples[-1].recorded_at.ToMicroseconds(),
        train_n=len(train),
        holdout_n=len(holdout),
        train_digest=digest(train),
        holdout_digest=digest(holdout),
    )
    return Split(window, train, holdout)


def digest(examples: list[gpb.FeedbackExample]) -> str:
    """sha256 of the examples' canonical JSON (inputs and expected outputs, in order)."""
    rows = [{"inputs": dict(e.inputs), "expected": dict(e.expected)} for e in examples]
    return hashlib.sha256(json.dumps(rows, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def as_examples(examples: list[gpb.FeedbackExample]) -> list[pb.Example]:
    """Training examples: the captured inputs and the expected outputs, inputs marked."""
    return [
        pb.Example(fields={**dict(e.inputs), **dict(e.expected)}, input_keys=sorted(e.inputs))
        for e in examples
    ]
