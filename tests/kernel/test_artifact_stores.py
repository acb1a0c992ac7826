"""The artifact store contract on every backend (a directory, a table of a PostgreSQL log's
database): put is idempotent and content-addressed, get verifies the bytes against the
digest, a missing digest is ArtifactNotFound, a bad digest is refused before any lookup,
and a store reopened from its location (a Ray task) reads what the first wrote."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from dspyops.artifacts import ArtifactCorrupt, ArtifactNotFound, ArtifactStore, encode_artifact
from dspyops.artifacts.backends import open_artifacts
from dspyops.artifacts.files import FileArtifactStore
from dspyops.artifacts.postgres import PostgresArtifactStore
from dspyops.lm import LMConfig
from dspyops.programs.build import build_module, program_state
from dspyops.programs.spec import ProgramSpec

SPEC = ProgramSpec("Predict", "text -> label")
Corrupt = Callable[[str, bytes], None]


@pytest.fixture(params=["files", "postgres"])
def located(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Corrupt]]:
    """The store's location, and how to overwrite a stored artifact behind its back."""
    if request.param == "files":
        root = tmp_path / "artifacts"

        def corrupt_file(digest: str, data: bytes) -> None:
            FileArtifactStore(root).path_for(digest).write_bytes(data)

        yield str(root), corrupt_file
        return
    url: str = request.getfixturevalue("postgres_url")

    def corrupt_row(digest: str, data: bytes) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE artifacts SET data = %s WHERE digest = %s", (data, digest))

    yield url, corrupt_row


@pytest.fixture
def store(located: tuple[str, Corrupt]) -> Iterator[ArtifactStore]:
    opened = open_artifacts(located[0])
    try:
        yield opened
    finally:
        opened.close()


def test_the_backend_is_chosen_by_the_location(located: tuple[str, Corrupt], store: ArtifactStore) -> None:
    expected = PostgresArtifactStore if located[0].startswith("postgresql://") else FileArtifactStore
    assert type(store) is expected and store.location == located[0]


def test_put_get_has_and_a_second_put_is_harmless(store: ArtifactStore) -> None:
    digest, data = encode_artifact(SPEC, program_state(build_module(SPEC)), LMConfig())
    assert not store.has(digest)
    assert store.put(data) == digest
    assert store.put(data) == digest  # content-addressed: same digest, same bytes
    assert store.has(digest) and store.get(digest) == data
    assert store.load(digest).spec == SPEC


def test_missing_corrupt_and_bad_digests(located: tuple[str, Corrupt], store: ArtifactStore) -> None:
    with pytest.raises(ArtifactNotFound):
        store.get("0" * 64)
    digest = store.put(b'{"a":1}')
    located[1](digest, b'{"a":2}')
    with pytest.raises(ArtifactCorrupt, match="hashes to"):
        store.get(digest)
    for bad in ("../../etc/passwd", "A" * 64, ""):
        with pytest.raises(ValueError, match="digest"):
            store.has(bad)
        with pytest.raises(ValueError, match="digest"):
            store.get(bad)


def test_a_store_reopened_from_its_location_reads_what_the_first_wrote(store: ArtifactStore) -> None:
    digest = store.put(b'{"b":2}')
    again = open_artifacts(store.location)
    try:
        assert again.get(digest) == b'{"b":2}'
    finally:
        again.close()
