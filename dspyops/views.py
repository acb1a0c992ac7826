"""Folded state -> the protobuf messages both services send (each service's own views
build on these)."""

from __future__ import annotations

from collections.abc import Iterable

from dspyops.proto import events_pb2 as pb
from dspyops.state import ROLE_VALUES, RouteState


def routes_proto(routes: Iterable[RouteState]) -> list[pb.Route]:
    """A deployment's routes as the Route messages of RoutesSet, ListDeployments and the
    gateway's replies."""
    return [pb.Route(version=r.version, weight=r.weight, role=ROLE_VALUES[r.role]) for r in routes]
