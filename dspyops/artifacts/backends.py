"""Which artifact store a location names: a ``postgresql://`` URL (the log's database) or
a directory. The optimizer picks it at start; a Ray task reopens it from its location."""

from __future__ import annotations

from pathlib import Path

from dspyops.artifacts import ArtifactStore
from dspyops.artifacts.files import FileArtifactStore
from dspyops.artifacts.postgres import PostgresArtifactStore
from dspyops.eventlog import is_server_log


def open_artifacts(location: str) -> ArtifactStore:
    if is_server_log(location):
        return PostgresArtifactStore(location)
    return FileArtifactStore(Path(location))
