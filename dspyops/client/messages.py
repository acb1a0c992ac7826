"""The friendly forms the client methods take, turned into request messages: rows (dicts) for
examples, dicts for routes and optimizer parameters, names for enums, ints and datetimes for
points of the log. Each also takes the message itself, for what the friendly form cannot say."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, cast

from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import optimizer_pb2 as opb

Row = Mapping[str, Any]
Point = int | datetime | gpb.AsOf

STATUSES: Final = {
    "development": pb.DEVELOPMENT,
    "staging": pb.STAGING,
    "production": pb.PRODUCTION,
    "deprecated": pb.DEPRECATED,
    "archived": pb.ARCHIVED,
}
METRIC_KINDS: Final = {"binary": pb.BINARY, "continuous": pb.CONTINUOUS}


def examples(rows: Iterable[Row | pb.Example], input_keys: Sequence[str] = ()) -> list[pb.Example]:
    """Rows ({"text": ..., "label": ...}) as Example messages; values become strings.
    `input_keys` empty: the server takes the signature's inputs. Examples pass as they are."""
    return [
        row
        if isinstance(row, pb.Example)
        else pb.Example(fields={k: str(v) for k, v in row.items()}, input_keys=list(input_keys))
        for row in rows
    ]


def dataset_ref(ref: str | opb.DatasetRef, input_keys: Sequence[str] = ()) -> opb.DatasetRef:
    """A path under the server's --datasets-dir, or the DatasetRef itself."""
    if isinstance(ref, opb.DatasetRef):
        return ref
    return opb.DatasetRef(path=ref, input_keys=list(input_keys))


def document(value: Mapping[str, str] | pb.Document) -> pb.Document:
    """A corpus document from {"id": ..., "text": ...}, or the Document itself."""
    if isinstance(value, pb.Document):
        return value
    return pb.Document(id=value.get("id", ""), text=value.get("text", ""))


def struct(params: Mapping[str, Any] | Struct | None) -> Struct:
    if isinstance(params, Struct):
        return params
    message = Struct()
    message.update(dict(params or {}))
    return message


def status(value: str | int) -> pb.VersionStatus:
    """A version status by name ("production", any case) or enum value (pb.PRODUCTION)."""
    return STATUSES[value.lower()] if isinstance(value, str) else cast(pb.VersionStatus, value)


def metric_kind(value: str | int) -> pb.MetricKind:
    """An experiment's or canary's metric kind by name ("binary", "continuous") or enum value."""
    return METRIC_KINDS[value] if isinstance(value, str) else cast(pb.MetricKind, value)


def routes(value: Mapping[str, float] | Sequence[pb.Route]) -> list[pb.Route]:
    """{version: weight} as primary routes, or Route messages (shadow routes, roles)."""
    if isinstance(value, Mapping):
        return [pb.Route(version=v, weight=w, role=pb.PRIMARY) for v, w in value.items()]
    return list(value)


def timestamp(when: datetime | Timestamp) -> Timestamp:
    """A datetime (naive means UTC) as a Timestamp."""
    if isinstance(when, Timestamp):
        return when
    stamp = Timestamp()
    stamp.FromDatetime(when if when.tzinfo else when.replace(tzinfo=UTC))
    return stamp


def as_of_point(point: Point | None) -> gpb.AsOf:
    """A log position (int) or a time (datetime; naive means UTC) as an AsOf message."""
    if point is None:
        return gpb.AsOf()
    if isinstance(point, gpb.AsOf):
        return point
    if isinstance(point, datetime):
        return gpb.AsOf(time=timestamp(point))
    return gpb.AsOf(position=point)
