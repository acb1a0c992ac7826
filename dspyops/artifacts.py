"""Content-addressed program artifacts, verified on every load.

An artifact is the canonical JSON (sorted keys, compact separators, UTF-8) of
``{"spec", "state", "lm", "dspy_version"}``; its address is the sha256 hex of those bytes.
The bytes are what gets stored and hashed, so any reader can re-verify them without this
package. Nothing here ever unpickles: the state is DSPy's own JSON save format.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dspy

from dspyops.errors import shown
from dspyops.events import decode
from dspyops.lm import LMConfig
from dspyops.programs import ProgramSpec
from dspyops.proto import events_pb2 as pb

if TYPE_CHECKING:
    from dspyops.eventlog import EventStore
    from dspyops.state import VersionState

_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


class ArtifactCorrupt(Exception):
    """The bytes do not hash to the expected digest, or are not a well-formed artifact."""


class ArtifactNotFound(Exception):
    """No artifact with that digest in the store."""


@dataclass(frozen=True)
class Artifact:
    digest: str
    spec: ProgramSpec
    state: dict[str, Any]
    lm: LMConfig  # rebuilt from LMConfig.public_dict(): no secrets
    dspy_version: str


def canonical_json(value: Any) -> bytes:
    """Byte-stable JSON: sorted keys, no whitespace, UTF-8, NaN refused (it is not JSON)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_artifact(spec: ProgramSpec, state: dict[str, Any], lm: LMConfig) -> tuple[str, bytes]:
    spec.validate()
    lm.validate()
    body = {
        "spec": spec.to_dict(),
        "state": state,
        "lm": lm.public_dict(),
        "dspy_version": dspy.__version__,
    }
    try:
        data = canonical_json(body)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"state: not JSON-serialisable: {exc}") from exc
    return sha256_hex(data), data


def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise ValueError(f"digest: expected 64 lowercase hex characters, got {shown(digest)}")
    return digest


def decode_artifact(data: bytes, expected_digest: str) -> Artifact:
    check_digest(expected_digest)
    actual = sha256_hex(data)
    # Verify before parsing: a corrupt file is never interpreted.
    if actual != expected_digest:
        raise ArtifactCorrupt(f"artifact digest mismatch: expected {expected_digest}, bytes hash to {actual}")
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactCorrupt(f"artifact {expected_digest} is not UTF-8 JSON: {exc}") from exc
    if not isinstance(body, dict) or set(body) != {"spec", "state", "lm", "dspy_version"}:
        raise ArtifactCorrupt(f"artifact {expected_digest} lacks the keys spec, state, lm, dspy_version")
    try:
        spec = ProgramSpec.from_dict(body["spec"])
    except ValueError as exc:
        raise ArtifactCorrupt(f"artifact {expected_digest} has a bad spec: {exc}") from exc
    if not isinstance(body["state"], dict) or not isinstance(body["lm"], dict):
        raise ArtifactCorrupt(f"artifact {expected_digest}: state and lm must be JSON objects")
    try:
        lm = LMConfig.from_dict(body["lm"])
    except (TypeError, ValueError) as exc:
        raise ArtifactCorrupt(f"artifact {expected_digest} has a bad lm config: {exc}") from exc
    return Artifact(
        digest=expected_digest,
        spec=spec,
        state=body["state"],
        lm=lm,
        dspy_version=str(body["dspy_version"]),
    )


class ArtifactStore:
    """Files under ``root/sha256/ab/<digest>.json``; written once, atomically, never modified."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / "sha256" / digest[:2] / f"{digest}.json"

    def has(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        path = self.path_for(digest)
        if path.is_file():
            return digest  # content-addressed: same digest, same bytes
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
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return digest

    def get(self, digest: str) -> bytes:
        path = self.path_for(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFound(f"no artifact {digest} in {self.root}") from None
        actual = sha256_hex(data)
        if actual != digest:
            raise ArtifactCorrupt(f"artifact file {path} hashes to {actual}, expected {digest}")
        return data

    def load(self, digest: str) -> Artifact:
        return decode_artifact(self.get(digest), digest)


def version_artifact(
    store: EventStore, version: VersionState, artifacts: ArtifactStore | None = None
) -> Artifact:
    """A registered version's artifact: the artifact store's file when a store is given and
    holds it, else the bytes its VersionRegistered event carries; verified against the
    version's digest either way.

    Raises ArtifactCorrupt (a file or bytes that do not verify: a corrupt file is never
    replaced by the log's copy, since it means the store is damaged) or ArtifactNotFound
    (neither a file nor bytes in the event).
    """
    digest = version.artifact_digest
    if artifacts is not None:
        try:
            return artifacts.load(digest)
        except ArtifactNotFound:
            pass
        except ValueError as exc:  # a malformed digest in the fold
            raise ArtifactCorrupt(str(exc)) from None
    events = store.read(after_position=version.registered_position - 1, limit=1)
    payload = decode(events[0]) if events else None
    if not isinstance(payload, pb.VersionRegistered) or not payload.artifact:
        raise ArtifactNotFound(f"artifact {digest} is missing")
    try:
        return decode_artifact(payload.artifact, digest)
    except ValueError as exc:
        raise ArtifactCorrupt(str(exc)) from None
