"""Codec between protobuf payload messages and log records.

The log stores each payload as bytes under its full protobuf type name; the set of known
types is read from the `EventPayload` oneof, so adding a payload to events.proto is all it
takes to make it storable and decodable.
"""

from __future__ import annotations

from datetime import UTC

from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.descriptors import message_type
from dspyops.eventlog import LINK_V1, NewEvent, StoredEvent
from dspyops.proto import events_pb2

_PAYLOAD = events_pb2.DESCRIPTOR.message_types_by_name["EventPayload"]
#: full type name -> (oneof field name, message class)
PAYLOAD_TYPES: dict[str, tuple[str, type[Message]]] = {
    message_type(field).full_name: (field.name, GetMessageClass(message_type(field)))
    for field in _PAYLOAD.oneofs_by_name["kind"].fields
}


class UnknownEventType(Exception):
    pass


def new_event(payload: Message, event_id: str | None = None) -> NewEvent:
    type_name = payload.DESCRIPTOR.full_name
    if type_name not in PAYLOAD_TYPES:
        raise UnknownEventType(f"{type_name} is not an EventPayload kind")
    data = payload.SerializeToString(deterministic=True)
    if event_id is None:
        return NewEvent(type=type_name, payload=data)
    return NewEvent(type=type_name, payload=data, event_id=event_id)


def decode(event: StoredEvent) -> Message:
    try:
        _, cls = PAYLOAD_TYPES[event.type]
    except KeyError:
        raise UnknownEventType(f"position {event.position}: unknown event type {event.type!r}") from None
    message = cls()
    message.ParseFromString(event.payload)
    return message


def from_proto(envelope: events_pb2.Event) -> StoredEvent:
    """Back from the wire: the inverse of to_proto (used by replicas tailing SubscribeLog)."""
    return StoredEvent(
        position=envelope.position,
        stream=envelope.stream,
        version=envelope.version,
        event_id=envelope.event_id,
        type=envelope.type,
        payload=envelope.raw_payload,
        recorded_at=envelope.recorded_at.ToDatetime(tzinfo=UTC),
        hash=envelope.hash,
        actor=envelope.actor,
        # 0: a sender from before chain v2, whose links are all v1
        chain=envelope.chain or LINK_V1,
    )


def to_proto(event: StoredEvent) -> events_pb2.Event:
    """The wire envelope for ReadLog / SubscribeLog."""
    stamp = Timestamp()
    stamp.FromDatetime(event.recorded_at)
    envelope = events_pb2.Event(
        position=event.position,
        stream=event.stream,
        version=event.version,
        event_id=event.event_id,
        type=event.type,
        recorded_at=stamp,
        hash=event.hash,
        raw_payload=event.payload,
        actor=event.actor,
        chain=event.chain,
    )
    if event.type in PAYLOAD_TYPES:
        field_name, _ = PAYLOAD_TYPES[event.type]
        getattr(envelope.payload, field_name).CopyFrom(decode(event))
    return envelope
