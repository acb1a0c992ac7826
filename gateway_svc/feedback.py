"""ExportFeedback: a deployment's labelled examples, read from the prediction records.

A labelled example is an outcome that carries `expected` (the correct outputs) on a
prediction whose inputs the capture policy kept; outcomes with `expected` whose prediction
kept no inputs (no capture, an allowlist without them, or deleted by the retention) cannot
train anything and are counted as `skipped` (so is a row a hand-edited records file holds
in a form the gateway never writes: logged, never a server error). With the records in
PostgreSQL every gateway of the log answers with every gateway's feedback.

Paged, not streamed: each call is one bounded, indexed query; the page token is the last
outcome's (time, prediction id), so a caller resumes after a failure or against another
gateway with nothing held on the server between calls, and the client has no streaming
path for the gateway to keep alive. The time order is the outcomes' (when the label
arrived), which is what "examples since T" means to a learning loop.
"""

from __future__ import annotations

import json
from datetime import UTC

import structlog
from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.errors import InvalidArgument, shown
from dspyops.proto import gateway_pb2 as gpb
from dspyops.state import State
from gateway_svc.experiments import deployment_of
from gateway_svc.records import FeedbackRow, PredictionStore

DEFAULT_PAGE = 500
MAX_PAGE = 5_000
_NO_END = 2**63 - 1


def _micros(stamp: Timestamp, field: str) -> int:
    try:
        stamp.ToDatetime(tzinfo=UTC)  # validates the range
    except ValueError as exc:
        raise InvalidArgument(field, str(exc)) from None
    return int(stamp.ToMicroseconds())


def _cursor(token: str) -> tuple[int, str]:
    """A page token: `<outcome time in µs>/<prediction id>` (what next_page_token gave)."""
    if not token:
        return (0, "")
    at, sep, prediction_id = token.partition("/")
    if not sep or not at.isdigit() or not prediction_id:
        raise InvalidArgument("page_token", f"not a token this gateway gave: {shown(token)}")
    return (int(at), prediction_id)


def _fields(text: str) -> dict[str, str] | None:
    """A stored JSON object of strings; None when it is none (a hand-edited records file)."""
    try:
        loaded = json.loads(text)
    except ValueError:
        return None
    if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
        return None
    return {str(k): v for k, v in loaded.items()}


def _example(row: FeedbackRow) -> gpb.FeedbackExample | None:
    """The row as an example; None when it cannot train anything: no captured inputs (deleted
    or never kept), or inputs/expected the records hold in a form they never write."""
    inputs = _fields(row.inputs_json) if row.inputs_json else None
    expected = _fields(row.expected_json)
    if not inputs or not expected:
        if row.inputs_json:
            structlog.get_logger().warning("feedback_row_unreadable", prediction_id=row.prediction_id)
        return None
    example = gpb.FeedbackExample(
        prediction_id=row.prediction_id,
        version=row.version,
        inputs=inputs,
        expected=expected,
        value=row.value,
    )
    example.recorded_at.FromMicroseconds(row.recorded_at_us)
    return example


def export_feedback(
    state: State, records: PredictionStore, request: gpb.ExportFeedbackRequest
) -> gpb.ExportFeedbackResponse:
    deployment_of(state, request.deployment)
    since = _micros(request.since, "since") if request.HasField("since") else 0
    until = _micros(request.until, "until") if request.HasField("until") else _NO_END
    if until <= since:
        raise InvalidArgument("until", "must be after since")
    if request.limit > MAX_PAGE:
        raise InvalidArgument("limit", f"at most {MAX_PAGE} per page, got {request.limit}")
    limit = request.limit or DEFAULT_PAGE
    rows = records.feedback(request.deployment, since, until, _cursor(request.page_token), limit)
    response = gpb.ExportFeedbackResponse()
    for row in rows:
        example = _example(row)
        if example is not None:
            response.examples.append(example)
        else:
            response.skipped += 1
    if len(rows) == limit:
        last = rows[-1]
        response.next_page_token = f"{last.recorded_at_us}/{last.prediction_id}"
    return response
