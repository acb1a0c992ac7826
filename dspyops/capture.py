"""Capture policies: what a deployment keeps of its predictions beyond the decision.

Off by default (a deployment without a policy keeps nothing more): inputs may be personal
data. A policy (SetCapturePolicy -> CapturePolicySet -> `DeploymentState.capture`) may keep
the module-call trace of every prediction and/or its inputs, only the allowlisted `fields`
of either when given, and for `retention_days` (0: until deleted by hand). The optimizer
checks a policy with `check_policy` before appending it; the gateway applies it with
`kept_inputs` / `kept_trace` / `expires_at_us` when it writes a prediction record, and
deletes what expired (gateway_svc.retention). A record's outputs are kept whatever the
policy says, as before policies: shadow agreement compares them; the policy adds inputs.
"""

from __future__ import annotations

import keyword
from collections.abc import Iterable, Mapping
from typing import Final

from dspyops.errors import InvalidArgument, shown
from dspyops.proto import events_pb2 as pb
from dspyops.state import CaptureState
from dspyops.tracing import as_text, keep_fields

MAX_FIELDS: Final = 64
MAX_FIELD_CHARS: Final = 100
MAX_RETENTION_DAYS: Final = 3650  # ten years: beyond that "keep" is meant, which is 0
DAY_US: Final = 86_400 * 1_000_000


def check_policy(policy: pb.CapturePolicy) -> None:
    """INVALID_ARGUMENT naming the field for a policy that cannot mean what it says."""
    if not 0 <= policy.retention_days <= MAX_RETENTION_DAYS:
        raise InvalidArgument(
            "policy.retention_days",
            f"must be 0 (keep) or 1..{MAX_RETENTION_DAYS} days, got {policy.retention_days}",
        )
    if len(policy.fields) > MAX_FIELDS:
        raise InvalidArgument("policy.fields", f"at most {MAX_FIELDS} fields, got {len(policy.fields)}")
    seen: set[str] = set()
    for i, name in enumerate(policy.fields):
        if len(name) > MAX_FIELD_CHARS or not name.isidentifier() or keyword.iskeyword(name):
            raise InvalidArgument(f"policy.fields[{i}]", f"{shown(name)} is not a field name (an identifier)")
        if name in seen:
            raise InvalidArgument(f"policy.fields[{i}]", f"{name!r} appears twice")
        seen.add(name)
    if policy.fields and not (policy.traces or policy.inputs_outputs):
        raise InvalidArgument(
            "policy.fields", "an allowlist keeps nothing without traces or inputs_outputs: set one of them"
        )


def kept_inputs(capture: CaptureState | None, inputs: Mapping[str, str]) -> dict[str, str]:
    """The inputs a record keeps under the policy ({}: none), scrubbed as trace values are."""
    if capture is None or not capture.inputs_outputs:
        return {}
    allowed = set(capture.fields)
    return {k: as_text(v) for k, v in inputs.items() if not allowed or k in allowed}


def kept_trace(capture: CaptureState | None, calls: Iterable[pb.ModuleCall]) -> list[pb.ModuleCall]:
    """The trace a record keeps under the policy ([]: none)."""
    if capture is None or not capture.traces:
        return []
    return keep_fields(calls, capture.fields) if capture.fields else list(calls)


def wants_trace(capture: CaptureState | None) -> bool:
    return capture is not None and capture.traces


def expires_at_us(capture: CaptureState | None, recorded_at_us: int) -> int:
    """When what the record captured is deleted (0: never, or nothing captured)."""
    if capture is None or not (capture.traces or capture.inputs_outputs) or capture.retention_days <= 0:
        return 0
    return recorded_at_us + capture.retention_days * DAY_US
