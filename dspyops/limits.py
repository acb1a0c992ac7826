"""Size limits on everything a request carries and on every event the log takes.

Every RPC of both services checks its request here before its handler runs (the
``dspyops.rpc`` decorators call ``check_request``). The check walks the request's protobuf
descriptor, so every string and bytes field, and every repeated and map field, at any
depth, has a limit: the one named in ``LIMITS`` by its full field path (the message's full
name and the field's, e.g. ``dspyops.v1.SetRoutesRequest.reason``; a limit on a shared
message such as ``dspyops.v1.ProgramSpec.instructions`` holds wherever it appears), else
the one in ``BY_NAME`` for fields such as ``reason`` that mean the same everywhere, else
the default for its kind. A field added to the contract is therefore covered from the
start. A value over its limit is INVALID_ARGUMENT naming the field's path in the request
and the limit, and echoes nothing of the value.

Why: a 30 MB SetRoutes ``reason``, a 4 MB ``spec.instructions`` and a 7 MB ImportProgram
``metadata`` were all appended (one event was 12.6 MB), after which ReadLog and gateways
tailing the optimizer could not read the log. Besides the request limits, an event's
payload has a hard limit at append (``check_payload``), sized so that the largest event,
in its ReadLog/SubscribeLog envelope (which carries the payload twice: decoded and raw),
still fits one gRPC message.

``limits_table()`` renders the table for the README.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from dspyops.descriptors import is_map, map_value, message_type
from dspyops.errors import InvalidArgument, shown

KIB: Final = 1024
MIB: Final = 1024 * KIB

MAX_MESSAGE_BYTES: Final = 32 * MIB  # gRPC send/receive limit of both servers and their clients
DEFAULT_CHARS: Final = 1_000  # any string field not in LIMITS
DEFAULT_BYTES: Final = 64 * KIB  # any bytes field not in LIMITS
DEFAULT_ENTRIES: Final = 1_000  # any repeated or map field not in LIMITS
DEFAULT_KEY_CHARS: Final = 200  # the keys of any map field not in LIMITS

MAX_STATE_JSON_BYTES: Final = 4 * MIB  # a DSPy saved state in a request (ImportProgram, Evaluate)
MAX_STATE_METADATA_BYTES: Final = 64 * KIB  # its "metadata" object (DSPy writes dependency versions)
# An event's payload at append. VersionRegistered carries its artifact inline (the state
# re-encoded as canonical JSON plus spec and LM), so this leaves room for the largest state
# a request may carry; and twice this (a ReadLog envelope holds decoded + raw payload)
# plus the envelope's other fields stays under MAX_MESSAGE_BYTES.
MAX_EVENT_PAYLOAD_BYTES: Final = 12 * MIB
# A corpus (RegisterCorpus; dspyops.corpora): documents, each an id and a text.
MAX_CORPUS_DOCUMENTS: Final = 10_000
MAX_DOCUMENT_ID_CHARS: Final = 200
MAX_DOCUMENT_TEXT_CHARS: Final = 20_000


@dataclass(frozen=True)
class Limit:
    """``chars``: characters of a string (bytes of a bytes field), or of each value of a
    repeated or map field; ``entries``: items of a repeated or map field; ``key_chars``:
    characters of each map key. None: the default for the field's kind."""

    chars: int | None = None
    entries: int | None = None
    key_chars: int | None = None
    why: str = ""


_REASON = Limit(chars=2_000, why="a note for the audit log")
_EXAMPLES = Limit(entries=5_000, why="examples inline; more through a DatasetRef file")
_STATE = Limit(chars=MAX_STATE_JSON_BYTES, why="a DSPy saved state (program.save JSON)")
_REQUEST_ID = Limit(chars=200, why="a client-chosen id (a UUID fits many times over)")


# Fields that mean the same in every request, by name (a new RPC's `reason` is covered).
BY_NAME: Final[dict[str, Limit]] = {"reason": _REASON, "request_id": _REQUEST_ID}

LIMITS: Final[dict[str, Limit]] = {
    "dspyops.v1.ProgramSpec.instructions": Limit(chars=20_000, why="a signature's instructions"),
    "dspyops.v1.ProgramSpec.signature": Limit(chars=4_000, why="fields with their types and choices"),
    "dspyops.v1.LMConfig.api_base": Limit(chars=2_000, why="a URL"),
    "dspyops.v1.DatasetRef.path": Limit(chars=4_096, why="a relative path (PATH_MAX)"),
    "dspyops.v1.DatasetRef.input_keys": Limit(chars=100, entries=100, why="field names"),
    "dspyops.v1.Example.fields": Limit(
        chars=20_000, entries=100, key_chars=100, why="an example's field values"
    ),
    "dspyops.v1.Example.input_keys": Limit(chars=100, entries=100, why="field names"),
    "dspyops.v1.StartOptimizationRequest.trainset": _EXAMPLES,
    "dspyops.v1.StartOptimizationRequest.valset": _EXAMPLES,
    "dspyops.v1.EvaluateRequest.dataset": _EXAMPLES,
    "dspyops.v1.CompareVersionsRequest.dataset": _EXAMPLES,
    "dspyops.v1.EvaluateRequest.state_json": _STATE,
    "dspyops.v1.ImportProgramRequest.state_json": _STATE,
    "dspyops.v1.SetRoutesRequest.routes": Limit(entries=64, why="routes of one deployment"),
    "dspyops.v1.PredictRequest.inputs": Limit(
        chars=100_000, entries=100, key_chars=100, why="a prediction's input values"
    ),
    "dspyops.v1.RecordOutcomeRequest.expected": Limit(
        chars=20_000, entries=100, key_chars=100, why="a prediction's correct outputs (a training label)"
    ),
    "dspyops.v1.RegisterCorpusRequest.documents": Limit(
        entries=MAX_CORPUS_DOCUMENTS, why="a corpus inline; larger through a DatasetRef file"
    ),
    "dspyops.v1.Document.id": Limit(chars=MAX_DOCUMENT_ID_CHARS, why="a document's id"),
    "dspyops.v1.Document.text": Limit(chars=MAX_DOCUMENT_TEXT_CHARS, why="a help-centre article, a passage"),
    "google.protobuf.Struct.fields": Limit(entries=100, key_chars=100, why="optimizer parameters"),
}


def limit_for(field: FieldDescriptor) -> Limit:
    """The field's limit with every default filled in."""
    resolved = _resolved.get(field.full_name)
    if resolved is None:
        resolved = _resolved[field.full_name] = _resolve(field)
    return resolved


_resolved: dict[str, Limit] = {}


def _resolve(field: FieldDescriptor) -> Limit:
    found = LIMITS.get(field.full_name) or BY_NAME.get(field.name) or Limit()
    if is_map(field):
        value = map_value(field)
        default_chars = DEFAULT_BYTES if value.type == FieldDescriptor.TYPE_BYTES else DEFAULT_CHARS
    else:
        default_chars = DEFAULT_BYTES if field.type == FieldDescriptor.TYPE_BYTES else DEFAULT_CHARS
    return Limit(
        chars=found.chars if found.chars is not None else default_chars,
        entries=found.entries if found.entries is not None else DEFAULT_ENTRIES,
        key_chars=found.key_chars if found.key_chars is not None else DEFAULT_KEY_CHARS,
        why=found.why,
    )


def check_request(message: Message) -> None:
    """Raise InvalidArgument for the first field (in field order, depth first) over its limit."""
    _check(message, "")


def _check(message: Message, prefix: str) -> None:
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        limit = limit_for(field)
        if not field.is_repeated:
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                _check(value, f"{path}.")
            elif field.type in _TEXT:
                _check_size(path, value, limit)
            continue
        if len(value) > limit.entries:  # type: ignore[operator]
            raise InvalidArgument(path, f"at most {limit.entries:,} entries, got {len(value):,}")
        if is_map(field):
            value_field = map_value(field)
            for key, item in value.items():
                if isinstance(key, str) and len(key) > limit.key_chars:  # type: ignore[operator]
                    raise InvalidArgument(
                        path, f"keys of at most {limit.key_chars:,} characters, got one of {len(key):,}"
                    )
                where = f"{path}.{key}" if _plain_key(key) else f"{path}[{shown(key, 40)}]"
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    _check(item, f"{where}.")
                elif value_field.type in _TEXT:
                    _check_size(where, item, limit)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            for i, item in enumerate(value):
                _check(item, f"{path}[{i}].")
        elif field.type in _TEXT:
            for i, item in enumerate(value):
                _check_size(f"{path}[{i}]", item, limit)


def _plain_key(key: object) -> bool:
    """A key that reads well in a dotted path (as the handlers name fields: inputs.text)."""
    return isinstance(key, str) and len(key) <= 40 and key.isidentifier()


def _check_size(path: str, value: str | bytes, limit: Limit) -> None:
    if len(value) > limit.chars:  # type: ignore[operator]
        unit = "bytes" if isinstance(value, bytes) else "characters"
        raise InvalidArgument(path, f"at most {limit.chars:,} {unit}, got {len(value):,}")


_TEXT: Final = frozenset({FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES})


def check_json_size(field: str, value: Any, limit: int) -> None:
    """A JSON value (part of a saved state) over ``limit`` bytes as compact JSON is refused."""
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8"))
    if size > limit:
        raise InvalidArgument(field, f"at most {limit:,} bytes as JSON, got {size:,}")


def check_payload(event_type: str, payload: bytes) -> None:
    """The hard limit on one event's payload, checked before anything is appended."""
    if len(payload) > MAX_EVENT_PAYLOAD_BYTES:
        name = event_type.rsplit(".", 1)[-1]
        raise InvalidArgument(
            "",
            f"a {name} event of {len(payload):,} bytes is over the log's limit of "
            f"{MAX_EVENT_PAYLOAD_BYTES:,} bytes per event; nothing was appended",
        )


# ---------------------------------------------------------------------- the README's table


def request_fields(roots: Iterable[Descriptor]) -> dict[str, FieldDescriptor]:
    """Every string, bytes, repeated and map field reachable from the request types, by full
    name (map entries are described by their map field)."""
    found: dict[str, FieldDescriptor] = {}
    seen: set[str] = set()

    def visit(descriptor: Descriptor) -> None:
        if descriptor.full_name in seen:
            return
        seen.add(descriptor.full_name)
        for field in descriptor.fields:
            if field.is_repeated or field.type in _TEXT:
                found[field.full_name] = field
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if is_map(field):
                    value = map_value(field)
                    if value.type == FieldDescriptor.TYPE_MESSAGE:
                        visit(message_type(value))
                else:
                    visit(message_type(field))

    for root in roots:
        visit(root)
    return found


def service_requests() -> list[Descriptor]:
    """The request types of both services."""
    from dspyops.proto import gateway_pb2, optimizer_pb2

    services = (
        optimizer_pb2.DESCRIPTOR.services_by_name["Optimizer"],
        gateway_pb2.DESCRIPTOR.services_by_name["Gateway"],
    )
    return [method.input_type for service in services for method in service.methods]


def limits_table() -> str:
    """The limits as a Markdown table: the defaults, then every field with its own limit."""
    rows = [
        "| field | limit | why |",
        "|---|---|---|",
        f"| any string field | {DEFAULT_CHARS:,} characters | default |",
        f"| any bytes field | {DEFAULT_BYTES:,} bytes | default |",
        f"| any repeated or map field | {DEFAULT_ENTRIES:,} entries, map keys {DEFAULT_KEY_CHARS:,} "
        "characters | default |",
    ]
    for name, limit in sorted(BY_NAME.items()):
        rows.append(f"| `{name}` of any request | {limit.chars:,} characters | {limit.why} |")
    fields = request_fields(service_requests())
    grouped: dict[tuple[str, str, str], list[str]] = {}  # (field, limit, why) -> messages
    for name in LIMITS:
        field = fields[name]
        limit = limit_for(field)
        parts = []
        if field.is_repeated:
            parts.append(f"{limit.entries:,} entries")
        if is_map(field):
            parts.append(f"keys {limit.key_chars:,} characters")
            value = map_value(field)
            if value.type in _TEXT:
                parts.append(f"values {limit.chars:,} {_unit(value)}")
        elif field.type in _TEXT:
            parts.append(f"{limit.chars:,} {_unit(field)}" + (" each" if field.is_repeated else ""))
        owner = field.containing_type
        assert owner is not None  # a field of a message
        message = owner.full_name.removeprefix("dspyops.v1.")
        grouped.setdefault((field.name, ", ".join(parts), limit.why), []).append(message)
    for (field_name, limit_text, why), messages in sorted(grouped.items()):
        rows.append(f"| `{field_name}` of {', '.join(sorted(messages))} | {limit_text} | {why} |")
    rows += [
        f"| `state_json` `metadata` object | {MAX_STATE_METADATA_BYTES:,} bytes as JSON | DSPy writes "
        "dependency versions there |",
        f"| an event's payload (at append) | {MAX_EVENT_PAYLOAD_BYTES:,} bytes | its ReadLog envelope "
        "fits one message |",
        f"| a gRPC message (both servers, both clients) | {MAX_MESSAGE_BYTES:,} bytes | |",
    ]
    return "\n".join(rows)


def _unit(field: FieldDescriptor) -> str:
    return "bytes" if field.type == FieldDescriptor.TYPE_BYTES else "characters"


if __name__ == "__main__":  # python -m dspyops.limits  -> the README's table
    print(limits_table())
