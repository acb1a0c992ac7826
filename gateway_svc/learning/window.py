"""The labelled feedback a retrain learns from: exactly what ExportFeedback yields
(gateway_svc.feedback: outcomes with `expected` on predictions whose inputs were captured),
read page by page in the order the labels arrived, split into a training part and the most
recent `holdout_fraction` (the valset, and the gate's slice)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.state import State
from gateway_svc.evaluators.sampling import sample_point
from gateway_svc.feedback import MAX_PAGE, export_feedback
from gateway_svc.records import PredictionStore

MAX_WINDOW = 5_000  # labelled examples a retrain takes at most: the most recent ones
MAX_READ = 100_000  # examples read at most per look (a bound on one tick's work)
HOLDOUT = "learning-holdout"  # the hash's salt: another sample than any evaluator's


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
    """The window of the most recent MAX_WINDOW examples, a hashed `holdout_fraction` of it
    held out (at least one each side; the caller needs two examples or more).

    Held out by a hash of the prediction id, not the window's tail: after a drift the new
    kinds of input are the most recent feedback, so a tail held out would judge the candidate
    on exactly what it was not trained on, and a retrain on the detection could never pass
    its gate. The hash keeps the split the same on every gateway and on every re-read."""
    if len(examples) > MAX_WINDOW:
        before = token_of(examples[-MAX_WINDOW - 1])
        examples = examples[-MAX_WINDOW:]
    n = len(examples)
    held = {i for i, e in enumerate(examples) if sample_point(HOLDOUT, e.prediction_id) < holdout_fraction}
    if not held:
        held = {n - 1}
    elif len(held) == n:
        held.discard(0)
    train = [e for i, e in enumerate(examples) if i not in held]
    holdout = [e for i, e in enumerate(examples) if i in held]
    window = pb.FeedbackWindow(
        first_token=before,
        last_token=token_of(examples[-1]),
        first_us=examples[0].recorded_at.ToMicroseconds(),
        last_us=examples[-1].recorded_at.ToMicroseconds(),
        train_n=len(train),
        holdout_n=len(holdout),
        train_digest=digest(train),
        holdout_digest=digest(holdout),
        holdout_fraction=holdout_fraction,
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
