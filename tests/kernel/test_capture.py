"""dspyops.capture: what a policy keeps of a prediction, and when it expires (the gateway's
records apply exactly these; tests/gateway/test_capture.py runs them through the servers)."""

from __future__ import annotations

import pytest

from dspyops.capture import DAY_US, check_policy, expires_at_us, kept_inputs, kept_trace, wants_trace
from dspyops.errors import InvalidArgument
from dspyops.proto import events_pb2 as pb
from dspyops.state import CaptureState

CALLS = [
    pb.ModuleCall(
        name="self", module="Agent", inputs={"text": "hi"}, outputs={"label": "x"}, trajectory="{}"
    ),
    pb.ModuleCall(name="agent", module="ReAct", inputs={"text": "hi"}, outputs={"label": "x", "note": "n"}),
]


def policy(**fields: object) -> CaptureState:
    return CaptureState.from_proto(pb.CapturePolicy(**fields), 1)  # type: ignore[arg-type]


def test_no_policy_and_an_empty_policy_keep_nothing() -> None:
    for capture in (None, policy()):
        assert kept_inputs(capture, {"text": "hi"}) == {}
        assert kept_trace(capture, CALLS) == []
        assert not wants_trace(capture)
        assert expires_at_us(capture, 1_000) == 0


def test_everything_is_kept_without_an_allowlist_and_only_its_fields_with_one() -> None:
    everything = policy(traces=True, inputs_outputs=True)
    assert kept_inputs(everything, {"text": "hi", "user": "u"}) == {"text": "hi", "user": "u"}
    assert kept_trace(everything, CALLS) == CALLS
    only = policy(traces=True, inputs_outputs=True, fields=["label"])
    assert kept_inputs(only, {"text": "hi"}) == {}
    kept = kept_trace(only, CALLS)
    assert [dict(c.outputs) for c in kept] == [{"label": "x"}, {"label": "x"}]
    assert all(not c.inputs and not c.trajectory for c in kept)


def test_kept_inputs_are_scrubbed() -> None:
    kept = kept_inputs(policy(inputs_outputs=True), {"text": "key api_key=abcd1234efgh5678ijkl"})
    assert "abcd1234efgh5678ijkl" not in kept["text"]


def test_expiry_is_the_retention_after_the_record_and_zero_keeps() -> None:
    assert expires_at_us(policy(traces=True, retention_days=3), 5) == 5 + 3 * DAY_US
    assert expires_at_us(policy(traces=True), 5) == 0
    assert expires_at_us(policy(retention_days=3), 5) == 0  # nothing kept: nothing to delete


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"retention_days": -1}, "policy.retention_days"),
        ({"retention_days": 3651}, "policy.retention_days"),
        ({"traces": True, "fields": ["ok", "not ok"]}, "policy.fields[1]"),
        ({"traces": True, "fields": ["class"]}, "policy.fields[0]"),
        ({"traces": True, "fields": ["a", "a"]}, "policy.fields[1]"),
        ({"traces": True, "fields": [f"f{i}" for i in range(65)]}, "policy.fields"),
        ({"fields": ["text"]}, "policy.fields"),
    ],
)
def test_policies_that_cannot_mean_what_they_say_are_refused(fields: dict[str, object], where: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        check_policy(pb.CapturePolicy(**fields))  # type: ignore[arg-type]
    assert err.value.field == where


def test_good_policies_pass() -> None:
    check_policy(pb.CapturePolicy())
    check_policy(
        pb.CapturePolicy(traces=True, inputs_outputs=True, fields=["text", "label"], retention_days=3650)
    )
