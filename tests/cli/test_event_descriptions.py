"""Every event type has a one-line description in `dspyops log` (not its raw type name): a
payload kind added to events.proto without one fails here."""

from __future__ import annotations

import pytest

from dspyops.proto import events_pb2 as pb
from dspyops.render.events import describe_event

# every payload type of the EventPayload oneof (events.proto), with its message's full name
KINDS: dict[str, str] = {}
for _field in pb.EventPayload.DESCRIPTOR.oneofs_by_name["kind"].fields:
    assert _field.message_type is not None  # every payload kind is a message
    KINDS[_field.name] = _field.message_type.full_name


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_event_kind_is_described(kind: str) -> None:
    # the type a real event carries: the payload message's full name (dspyops.v1.GateEvaluated)
    event = pb.Event(position=1, type=KINDS[kind])
    getattr(event.payload, kind).SetInParent()  # an empty payload of that kind
    text = describe_event(event)
    assert text and text != event.type and "dspyops.v1." not in text, f"{kind} has no description: {text!r}"
    assert "\n" not in text  # one line


def test_replayed_lm_calls_are_shown_beside_the_paid_ones() -> None:
    from dspyops.render.jobs import scores_table
    from dspyops.render.usage import lm_calls

    completed = pb.Event(position=1, type="dspyops.v1.job_completed")
    completed.payload.job_completed.usage.CopyFrom(pb.Usage(lm_calls=3, replayed_lm_calls=40))
    assert describe_event(completed).endswith("3 LM calls (+40 replayed)")
    cancelled = pb.Event(position=2, type="dspyops.v1.job_cancelled")
    cancelled.payload.job_cancelled.reason = "budget"
    cancelled.payload.job_cancelled.usage.CopyFrom(pb.Usage(lm_calls=5))
    assert describe_event(cancelled) == "cancelled: budget (5 LM calls)"  # none replayed: not shown
    assert lm_calls(pb.Usage(lm_calls=0, replayed_lm_calls=7)) == "0 LM calls (+7 replayed)"
    table = scores_table("t", [("BootstrapFewShot", completed.payload.job_completed)])
    assert [c.header for c in table.columns][5:7] == ["LM calls", "replayed"]
    assert list(table.columns[6].cells) == ["40"]
