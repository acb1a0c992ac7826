"""Folded state -> the protobuf messages both services reply with (what they share of it)."""

from __future__ import annotations

from collections.abc import Iterable

from dspyops.proto import events_pb2 as pb
from dspyops.state import ROLE_VALUES, RouteState


def routes_proto(routes: Iterable[RouteState]) -> list[pb.Route]:
    """A deployment's folded routes as the Route messages of its RoutesSet."""
    return [pb.Route(version=r.version, weight=r.weight, role=ROLE_VALUES[r.role]) for r in routes]
