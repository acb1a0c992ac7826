"""Content-addressed program artifacts, verified on every load.

An artifact is the canonical JSON (sorted keys, compact separators, UTF-8) of
``{"spec", "state", "lm", "dspy_version"}``; its address is the sha256 hex of those bytes.
The bytes are what gets stored and hashed, so any reader can re-verify them without this
package. Nothing here ever unpickles: the state is DSPy's own JSON save format.

A version's bytes live in two places: the optimizer's artifact store (``files``: a
directory; ``postgres``: a table in a PostgreSQL log's database), and the version's
VersionRegistered event, which carries them, so a replica that has only the log can serve
every version. ``version_artifact`` is the one way both services load a
version's artifact from either.
"""

from __future__ import annotations

import abc
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import dspy

from dspyops.errors import shown
from dspyops.eventlog import EventStore, StoredEvent
from dspyops.events import decode
from dspyops.lm import LMConfig
from dspyops.programs.spec import ProgramSpec
from dspyops.proto import events_pb2 as pb
from dspyops.state import VersionState

_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_REGISTERED = pb.VersionRegistered.DESCRIPTOR.full_name


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


class ArtifactStore(abc.ABC):
    """Where the optimizer keeps artifacts by digest (a cache of the bytes in the log's
    VersionRegistered events, and the corpora's documents): written once, never modified,
    verified on every read. ``location`` names it and reopens it elsewhere (a Ray task:
    dspyops.artifacts.backends.open_artifacts)."""

    location: str
    name: str  # for messages (a URL without its password)

    @abc.abstractmethod
    def has(self, digest: str) -> bool: ...

    @abc.abstractmethod
    def _write(self, digest: str, data: bytes) -> None:
        """Store the bytes under their digest; a digest stored already is left as it is."""

    @abc.abstractmethod
    def _read(self, digest: str) -> bytes | None:
        """The stored bytes, unverified; None when there are none."""

    def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        self._write(digest, data)  # content-addressed: same digest, same bytes
        return digest

    def get(self, digest: str) -> bytes:
        check_digest(digest)
        data = self._read(digest)
        if data is None:
            raise ArtifactNotFound(f"no artifact {digest} in {self.name}")
        actual = sha256_hex(data)
        if actual != digest:
            raise ArtifactCorrupt(f"artifact {digest} in {self.name} hashes to {actual}, expected {digest}")
        return data

    def load(self, digest: str) -> Artifact:
        return decode_artifact(self.get(digest), digest)

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections (a directory holds none)."""


def registered_artifact(event: StoredEvent) -> tuple[str, bytes] | None:
    """The digest and bytes a VersionRegistered event carries; None for any other event.
    Not verified here: whoever loads the bytes does (``decode_artifact``)."""
    if event.type != _REGISTERED:
        return None
    registered = decode(event)
    assert isinstance(registered, pb.VersionRegistered)
    return registered.artifact_digest, registered.artifact


def version_artifact_bytes(store: EventStore, version: VersionState) -> bytes:
    """The artifact bytes inside the version's VersionRegistered event (at
    ``version.registered_position``), checked against the version's digest. Raises
    ArtifactNotFound (no such event, or it carries no bytes) or ArtifactCorrupt."""
    position = version.registered_position
    events = store.read(after_position=position - 1, limit=1) if position > 0 else []
    return artifact_in_event(version, events[0] if events and events[0].position == position else None)


def artifact_in_event(version: VersionState, event: StoredEvent | None) -> bytes:
    """``version_artifact_bytes`` for the event already read from the version's
    ``registered_position`` (None: the log has none there)."""
    digest = _version_digest(version)
    position = version.registered_position
    found = registered_artifact(event) if event is not None and event.position == position else None
    if found is None or not found[1]:
        raise ArtifactNotFound(
            f"{_what(version)}: artifact {digest} is missing (not in the artifact store, and the "
            f"VersionRegistered event at log position {position} does not carry it)"
        )
    actual = sha256_hex(found[1])
    if actual != digest:
        raise ArtifactCorrupt(
            f"{_what(version)}: the artifact in its VersionRegistered event (log position {position}) "
            f"hashes to {actual}, expected {digest}"
        )
    return found[1]


def version_artifact(
    store: EventStore, version: VersionState, artifacts: ArtifactStore | None = None
) -> Artifact:
    """The version's artifact: the artifact store's file when ``artifacts`` is given and has
    it, else the bytes inside its VersionRegistered event; verified against the version's
    digest either way. Raises ArtifactNotFound or ArtifactCorrupt."""
    digest = _version_digest(version)
    if artifacts is not None:
        try:
            return artifacts.load(digest)
        except ArtifactNotFound:
            pass
    return decode_artifact(version_artifact_bytes(store, version), digest)


def _version_digest(version: VersionState) -> str:
    digest = version.artifact_digest
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise ArtifactCorrupt(f"{_what(version)}: the log names no valid artifact digest ({shown(digest)})")
    return digest


def _what(version: VersionState) -> str:
    return f"version {version.version} of {version.program!r}"
