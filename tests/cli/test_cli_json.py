"""`--json` prints proto JSON with every field, defaults included, and 64-bit integers as
numbers (proto JSON's default writes them as strings)."""

from __future__ import annotations

from dspyops.proto import events_pb2 as pb
from tests.support.cli_servers import Servers, cli, servers

__all__ = ["cli", "servers"]  # the fixtures


def test_log_json_has_every_field_and_integers_as_numbers(cli: Servers) -> None:
    events = cli.json("log", "read", "--limit", "3")
    assert [e["position"] for e in events] == [1, 2, 3]  # numbers, not "1"
    first = events[0]
    assert isinstance(first["version"], int) and isinstance(first["chain"], int)
    # message fields without presence are printed even when they hold their default
    assert {f.name for f in pb.Event.DESCRIPTOR.fields} - {"recorded_at", "payload"} <= set(first)
    registered = next(e for e in events if e["type"].endswith("VersionRegistered"))
    payload = registered["payload"]["version_registered"]
    assert all(not isinstance(v, str) or not v.isdigit() for v in payload.values()), payload


def test_log_verify_json_is_json(cli: Servers) -> None:
    (verdict,) = cli.json("log", "verify")
    assert verdict["ok"] is True and isinstance(verdict["checked"], int)
