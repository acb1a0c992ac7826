"""The committed stubs must be exactly what `make proto` generates from protos/."""

from __future__ import annotations

from pathlib import Path

from dspyops.protogen import OUT_DIR, generate


def test_generated_stubs_are_not_stale(tmp_path: Path) -> None:
    fresh = {p.name: p.read_text() for p in generate(tmp_path)}
    committed = {p.name: p.read_text() for p in OUT_DIR.glob("*_pb2*.py*")}
    assert sorted(fresh) == sorted(committed), "stub files differ: run `make proto`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale stubs (run `make proto`): {stale}"


def test_every_payload_kind_is_a_distinct_message() -> None:
    from dspyops.proto import events_pb2

    oneof = events_pb2.EventPayload.DESCRIPTOR.oneofs_by_name["kind"]
    names = [f.message_type.full_name for f in oneof.fields]
    assert len(names) == len(set(names))
    assert "dspyops.v1.VersionRegistered" in names
