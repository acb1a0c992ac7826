"""Walking protobuf descriptors: what the request limits (dspyops.limits) and the scrubber
(dspyops.scrub) both ask of a field.

protobuf's stubs type ``FieldDescriptor.message_type`` as optional (it is None for scalar
fields); these helpers are for message fields, and say so when given another.
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor


def message_type(field: FieldDescriptor) -> Descriptor:
    """The message type of a message (or map) field."""
    descriptor = field.message_type
    if descriptor is None:
        raise TypeError(f"{field.full_name} is not a message field")
    return descriptor


def is_map(field: FieldDescriptor) -> bool:
    return (
        field.type == FieldDescriptor.TYPE_MESSAGE
        and field.is_repeated
        and message_type(field).GetOptions().map_entry
    )


def map_value(field: FieldDescriptor) -> FieldDescriptor:
    """The value field of a map field's entries."""
    return message_type(field).fields_by_name["value"]
