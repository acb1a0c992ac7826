"""A version's artifact, loaded the one way both services load it (dspyops.artifacts):
from the artifact store when it has the file, else from the version's VersionRegistered
event; verified either way. On the in-memory log store: no files but the artifacts'."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dspyops.artifacts import (
    ArtifactCorrupt,
    ArtifactNotFound,
    encode_artifact,
    registered_artifact,
    version_artifact,
    version_artifact_bytes,
)
from dspyops.artifacts.files import FileArtifactStore
from dspyops.eventlog import EventStore, open_store
from dspyops.events import new_event
from dspyops.fold import fold
from dspyops.lm import LMConfig
from dspyops.programs.build import build_module, program_state
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.state import VersionState

SPEC = ProgramSpec("Predict", "text -> label", "Route the ticket.")


@pytest.fixture
def store() -> EventStore:
    return open_store("memory:")


def _register(
    store: EventStore, version: str, *, carry: bool = True, data: bytes | None = None
) -> VersionState:
    digest, encoded = encode_artifact(SPEC, program_state(build_module(SPEC)), LMConfig())
    registered = pb.VersionRegistered(
        program="triage",
        version=version,
        artifact_digest=digest,
        artifact=(data or encoded) if carry else b"",
    )
    expected = store.stream_version("program-triage")
    store.append("program-triage", [new_event(registered)], expected)
    return fold(store.read(limit=100)).programs["triage"].versions[version]


def test_from_the_event_when_there_is_no_artifact_store(store: EventStore) -> None:
    version = _register(store, "1.0.0")
    artifact = version_artifact(store, version)
    assert artifact.digest == version.artifact_digest and artifact.spec == SPEC
    found = registered_artifact(store.read()[0])
    assert found is not None and found[0] == version.artifact_digest
    assert version_artifact_bytes(store, version) == found[1]


def test_the_artifact_store_first_then_the_event(store: EventStore, tmp_path: Path) -> None:
    version = _register(store, "1.0.0")
    artifacts = FileArtifactStore(tmp_path / "artifacts")
    assert version_artifact(store, version, artifacts).digest == version.artifact_digest  # not in the store
    artifacts.put(version_artifact_bytes(store, version))
    corrupt = artifacts.path_for(version.artifact_digest)
    corrupt.write_bytes(b"{}")  # a file that no longer hashes to its name is refused, not skipped
    with pytest.raises(ArtifactCorrupt, match="hashes to"):
        version_artifact(store, version, artifacts)


def test_an_event_without_bytes_or_with_other_bytes(store: EventStore) -> None:
    missing = _register(store, "1.0.0", carry=False)
    with pytest.raises(ArtifactNotFound, match="position 1"):
        version_artifact(store, missing)
    forged = _register(store, "1.0.1", data=b'{"not": "the registered artifact"}')
    with pytest.raises(ArtifactCorrupt, match="position 2"):
        version_artifact(store, forged)
    with pytest.raises(ArtifactCorrupt, match="no valid artifact digest"):
        version_artifact(store, replace(forged, artifact_digest="../../etc/passwd"))
    with pytest.raises(ArtifactNotFound):  # a position that holds another event
        version_artifact_bytes(store, replace(forged, registered_position=99))


def test_registered_artifact_is_none_for_other_events(store: EventStore) -> None:
    store.append("program-triage", [new_event(pb.AliasSet(program="triage", alias="x", version="1.0.0"))], 0)
    assert registered_artifact(store.read()[0]) is None
