"""The one console everything prints through, and `--json` output (one object per line)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from rich.console import Console

# Piped output (CI logs, tests, `| less`) gets a wide fixed width instead of rich's 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160)


def as_dict(message: Message) -> dict[str, Any]:
    """Proto JSON with every field (defaults included, so a script sees ``0`` and ``""``
    rather than a missing key) and 64-bit integers as numbers (proto JSON writes them as
    strings, which JavaScript needs and Python does not)."""
    value = MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return _ints_as_numbers(message.DESCRIPTOR, value)


_INT64 = frozenset({FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64})


def _ints_as_numbers(descriptor: Any, value: dict[str, Any]) -> dict[str, Any]:
    # descriptor: pure-Python's or upb's Descriptor (one API). json_format has no option
    # for this; a walk over the descriptor does it. Well-known
    # types (Struct, Timestamp, ...) have JSON forms of their own and are left alone.
    if descriptor.full_name.startswith("google.protobuf."):
        return value
    for field in descriptor.fields:
        if field.name not in value:
            continue
        item = value[field.name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry = field.message_type.fields_by_name["value"]
            value[field.name] = {k: _convert(entry, v) for k, v in item.items()}
        elif field.is_repeated:
            value[field.name] = [_convert(field, v) for v in item]
        else:
            value[field.name] = _convert(field, item)
    return value


def _convert(field: FieldDescriptor, item: Any) -> Any:
    if field.cpp_type in _INT64 and isinstance(item, str):
        return int(item)
    if field.message_type is not None and isinstance(item, dict):
        return _ints_as_numbers(field.message_type, item)
    return item


def print_json(message: Message) -> None:
    print(json.dumps(as_dict(message), sort_keys=True), flush=True)


def print_json_object(value: dict[str, Any]) -> None:
    print(json.dumps(value, sort_keys=True), flush=True)
