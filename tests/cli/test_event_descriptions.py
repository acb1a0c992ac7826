"""Every event type has a one-line description in `dspyops log` (not its raw type name): a
payload kind added to events.proto without one fails here."""

from __future__ import annotations

import pytest

from dspyops.proto import events_pb2 as pb
from dspyops.render.events import describe_event

KINDS = [field.name for field in pb.EventPayload.DESCRIPTOR.oneofs_by_name["kind"].fields]


@pytest.mark.parametrize("kind", KINDS)
def test_every_event_kind_is_described(kind: str) -> None:
    event = pb.Event(position=1, type=f"dspyops.v1.{kind}")
    getattr(event.payload, kind).SetInParent()  # an empty payload of that kind
    text = describe_event(event)
    assert text and not text.startswith("dspyops.v1."), f"{kind} has no description: {text!r}"
