"""Which outcome values a prediction takes: the metric of the experiment or canary that
assigned it decides. Binary metrics take 1 (success) or 0 (failure); continuous ones a
finite number within the statistics' range (|value| <= 1e100, `statistics.summary.outcome_in_range`:
what RecordOutcome takes is exactly what the statistics use); a prediction outside any
experiment or canary takes the continuous range too.

The experiment is looked up in the gateway's current state, and, when it has ended since
(or another one runs now), in the state at the prediction's own log position, which by
construction holds it. A gateway tailing a remote optimizer has no history: there an ended
experiment's outcomes are only checked for being finite.

`expected` (the correct outputs, when the caller knows them) takes output fields of the
served version only: the program's signature says which, or, for a user module (whose
signature is its code), the fields the prediction answered with; its values are scrubbed
(dspyops.scrub) before they are stored, like captured inputs.
"""

from __future__ import annotations

import functools
import json

from dspyops.commands import check_request_id
from dspyops.errors import InvalidArgument, shown
from dspyops.history import History
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import gateway_pb2 as gpb
from dspyops.scrub import scrub
from dspyops.state import State
from gateway_svc.records import PredictionRecord, PredictionStore
from gateway_svc.statistics.summary import CONTINUOUS_LIMIT, outcome_in_range


def assigned_by(state: State, record: PredictionRecord) -> tuple[str, str] | None:
    """(what assigned the prediction, its metric kind) when `state` holds it: the experiment
    whose id the record carries, or the canary whose step key (`<canary_id>/<step>`) it does."""
    deployment = state.deployments.get(record.deployment)
    if deployment is None or not record.experiment_id:
        return None
    experiment = deployment.experiment
    if experiment is not None and experiment.experiment_id == record.experiment_id:
        return f"experiment {experiment.experiment_id}", experiment.metric
    canary = deployment.canary
    if canary is not None and record.experiment_id.startswith(f"{canary.canary_id}/"):
        return f"canary {canary.canary_id}", canary.metric
    return None


def check_outcome(
    state: State, history: History | None, records: PredictionStore, request: gpb.RecordOutcomeRequest
) -> PredictionRecord:
    """The prediction the outcome is for, once its value fits; INVALID_ARGUMENT naming
    `value` otherwise (NOT_FOUND naming `prediction_id` for an unknown prediction)."""
    value = request.value
    record = records.get(request.prediction_id)
    found = assigned_by(state, record)
    if found is None and record.experiment_id and history is not None:
        found = assigned_by(history.state_at(record.log_position), record)
    metric = found[1] if found is not None else "continuous"
    if outcome_in_range(metric, value):
        return record
    if found is not None and metric == "binary":  # NaN compares unequal to both
        raise InvalidArgument(
            "value", f"{found[0]} has a binary metric: 1 (success) or 0 (failure), got {shown(value)}"
        )
    raise InvalidArgument(
        "value", f"must be a finite number with |value| <= {CONTINUOUS_LIMIT:g}, got {shown(value)}"
    )


@functools.lru_cache(maxsize=256)
def _spec_outputs(spec_json: str) -> tuple[str, ...]:
    """Parsed once per spec: signature parsing is too slow to repeat for every outcome."""
    return tuple(ProgramSpec.from_dict(json.loads(spec_json)).output_fields())


def output_fields(state: State, record: PredictionRecord) -> tuple[str, ...]:
    """The output fields of the version that served the prediction."""
    program = state.programs.get(record.program)
    version = program.versions.get(record.version) if program is not None else None
    outputs = _spec_outputs(json.dumps(dict(version.spec), sort_keys=True)) if version is not None else ()
    if outputs:
        return outputs
    try:  # a user module: what the prediction answered with
        answered = json.loads(record.outputs_json or "{}")
    except ValueError:
        return ()
    return tuple(answered) if isinstance(answered, dict) else ()


def check_expected(state: State, record: PredictionRecord, request: gpb.RecordOutcomeRequest) -> None:
    """INVALID_ARGUMENT naming `expected` for a key that is no output of the served version."""
    if not request.expected:
        return
    outputs = output_fields(state, record)
    for key in sorted(request.expected):
        if key not in outputs:
            known = ", ".join(outputs) or "none known"
            raise InvalidArgument(
                "expected",
                f"{shown(key)} is not an output field of version {record.version} of "
                f"{shown(record.program)} (outputs: {known})",
            )


def record_outcome(
    state: State, history: History | None, records: PredictionStore, request: gpb.RecordOutcomeRequest
) -> PredictionRecord:
    """Check the value against the metric of the prediction's experiment or canary and the
    expected outputs against the served version's, then record it once (a retry with the
    same request_id gets the first answer)."""
    request_id = check_request_id(request.request_id)
    record = check_outcome(state, history, records, request)
    check_expected(state, record, request)
    # scrubbed as captured inputs are: secrets never enter the records (scrubbing is
    # deterministic, so a retry still matches the first request)
    expected = {key: scrub(value) for key, value in request.expected.items()}
    return records.add_outcome(request.prediction_id, request.value, request_id=request_id, expected=expected)
