"""Artifacts as files under ``root/sha256/ab/<digest>.json`` (the optimizer's data directory
for a file log, or wherever ``--data-dir`` says): written once, atomically, never modified."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from dspyops.artifacts import ArtifactStore, check_digest


class FileArtifactStore(ArtifactStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.location = self.name = str(self.root)

    def __repr__(self) -> str:
        return f"FileArtifactStore({self.location!r})"

    def path_for(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / "sha256" / digest[:2] / f"{digest}.json"

    def has(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def _write(self, digest: str, data: bytes) -> None:
        path = self.path_for(digest)
        if path.is_file():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Temp file in the same directory + fsync + rename: readers see the whole file or none.
        fd, tmp = tempfile.mkstemp(prefix=f".{digest[:8]}-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def close(self) -> None:
        pass  # no connections

    def _read(self, digest: str) -> bytes | None:
        try:
            return self.path_for(digest).read_bytes()
        except FileNotFoundError:
            return None
