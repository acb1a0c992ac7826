"""Snapshots of the fold, so a reader starts from a position instead of from the beginning.

A snapshot is the canonical JSON of the folded State at a log position, plus the hash of
the log event at that position. A reader loads the latest snapshot at or below the log's
head, checks that the log still has that hash at that position (a snapshot of another or
a rewritten log is ignored, never trusted), and folds only the events after it. Because
the fold is pure, fold(all) == fold(rest, snapshot) exactly (a property test proves it).

Where they live is a backend's business (this module is the interface, the codec and the
checks every backend shares): ``sqlite`` keeps them in their own file beside a file log
(`<log>.snapshots`), ``postgres`` in a ``snapshots`` table in the database of a PostgreSQL
log, which every process on that log shares. Either way the log's schema stays the log's,
and losing the snapshots only costs a longer start.

With a chain key, each snapshot also carries an HMAC-SHA256 of its position, hash and state
under that key, and only snapshots whose MAC checks are used: the services start from a
snapshot (and verify the chain only after it), so someone who can write the file but lacks
the key must not be able to plant a state there. Without a key a snapshot is as
trustworthy as the file, the same as the log.
"""

from __future__ import annotations

import abc
import hashlib
import hmac
import json
from dataclasses import asdict
from typing import Any

from dspyops.evaluators_state import EvaluatorState
from dspyops.eventlog import EventStore
from dspyops.fold import fold
from dspyops.learning_state import LearningRun, LearningState
from dspyops.state import (
    EMPTY,
    CanaryState,
    CaptureState,
    CorpusContent,
    CorpusState,
    DeploymentState,
    DriftDetection,
    DriftState,
    ExperimentState,
    JobSummary,
    ProgramState,
    RequestEntry,
    RouteState,
    State,
    VersionState,
    shared,
)

FORMAT = 1
_MAC_DOMAIN = b"dspyops.snapshot.v1\x00"


def snapshot_mac(key: bytes, position: int, event_hash: bytes, state: bytes) -> bytes:
    message = _MAC_DOMAIN + position.to_bytes(8, "big") + event_hash + hashlib.sha256(state).digest()
    return hmac.new(key, message, hashlib.sha256).digest()


def encode_state(state: State) -> bytes:
    return json.dumps(
        {"format": FORMAT, "state": asdict(state)}, sort_keys=True, separators=(",", ":")
    ).encode()


def decode_state(data: bytes) -> State:
    document = json.loads(data)
    if document.get("format") != FORMAT:
        raise ValueError(f"snapshot format {document.get('format')!r} is not {FORMAT}")
    raw = document["state"]
    return State(
        position=raw["position"],
        programs={name: _program(p) for name, p in raw["programs"].items()},
        deployments={name: _deployment(d) for name, d in raw["deployments"].items()},
        jobs={job_id: JobSummary(**j) for job_id, j in raw["jobs"].items()},
        # absent in snapshots written before request ids: such a log has no origins before it
        requests={request_id: RequestEntry(**r) for request_id, r in raw.get("requests", {}).items()},
        # absent in snapshots written before corpora: such a log has no CorpusRegistered before it
        corpora={name: CorpusState(**c) for name, c in raw.get("corpora", {}).items()},
        corpus_contents={
            digest: CorpusContent(**{**c, "names": tuple(c.get("names", ()))})
            for digest, c in raw.get("corpus_contents", {}).items()
        },
    )


def _program(raw: dict[str, Any]) -> ProgramState:
    versions: dict[str, VersionState] = {}
    latest: VersionState | None = None
    for name, version in raw["versions"].items():  # sharing spec and LM objects as the fold does
        version["spec"] = shared(version["spec"], latest, "spec")
        version["lm"] = shared(version["lm"], latest, "lm")
        latest = versions[name] = VersionState(**version)
    return ProgramState(
        name=raw["name"],
        versions=versions,
        aliases=dict(raw["aliases"]),
        stream_version=raw["stream_version"],
    )


def _deployment(raw: dict[str, Any]) -> DeploymentState:
    experiment = raw.get("experiment")
    canary = raw.get("canary")
    capture = raw.get("capture")  # absent in snapshots written before capture policies
    drift = raw.get("drift")  # absent in snapshots written before drift monitors
    learning = raw.get("learning")  # absent in snapshots written before learning policies
    return DeploymentState(
        name=raw["name"],
        program=raw["program"],
        routes=tuple(RouteState(**r) for r in raw["routes"]),
        stream_version=raw["stream_version"],
        created_position=raw["created_position"],
        changed_position=raw["changed_position"],
        experiment=ExperimentState(
            **{
                **experiment,
                "treatments": tuple(experiment["treatments"]),
                "weights": tuple(experiment["weights"]),
            }
        )
        if experiment
        else None,
        canary=CanaryState(**{**canary, "steps": tuple(canary["steps"])}) if canary else None,
        capture=CaptureState(**{**capture, "fields": tuple(capture["fields"])}) if capture else None,
        drift=DriftState(**{**drift, "detections": tuple(DriftDetection(**d) for d in drift["detections"])})
        if drift
        else None,
        # absent in snapshots written before online evaluators
        evaluators=tuple(EvaluatorState(**e) for e in raw.get("evaluators", ())),
        learning=LearningState(**{**learning, "runs": tuple(LearningRun(**r) for r in learning["runs"])})
        if learning
        else None,
    )


class SnapshotStore(abc.ABC):
    """Where snapshots are kept: a backend stores rows (position, hash, state, mac) and
    finds the newest ones at or below a position; checking them against the log (its hash
    at that position, the MAC under the chain key) is the same for every backend, here.
    Saving a position twice is harmless: the state at a position is a pure function of the
    log, so a second save writes the same bytes (last one wins)."""

    def __init__(self, *, key: bytes | None = None) -> None:
        """`key`: the log's chain key; snapshots are then signed, and unsigned ones ignored."""
        self.key = key

    @abc.abstractmethod
    def _put(self, position: int, event_hash: bytes, state: bytes, mac: bytes) -> None:
        """Store the row, replacing one at the same position."""

    @abc.abstractmethod
    def _newest(self, at_most: int, limit: int) -> list[tuple[int, bytes, bytes, bytes]]:
        """Up to `limit` rows (position, hash, state, mac) at or below `at_most`, newest first."""

    @abc.abstractmethod
    def reopen(self) -> SnapshotStore:
        """Another handle on the same snapshots, with connections of its own (for a reader
        on another thread while this one writes)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def save(self, state: State, event_hash: bytes) -> None:
        """`event_hash`: the hash of the log event at state.position (ties the snapshot to this log)."""
        data = encode_state(state)
        mac = snapshot_mac(self.key, state.position, event_hash, data) if self.key else b""
        self._put(state.position, event_hash, data, mac)

    def latest(self, store: EventStore, *, at_most: int | None = None) -> State | None:
        """The newest snapshot that matches this log (at or below `at_most`), or None."""
        found = self.latest_point(store, at_most=at_most)
        return found[0] if found else None

    def latest_point(self, store: EventStore, *, at_most: int | None = None) -> tuple[State, bytes] | None:
        """The newest snapshot that matches this log (and, with a key, is signed by it), at or
        below `at_most`, with the log's hash at its position: the trusted point a chain check
        starts after."""
        head = store.head()
        below = head if at_most is None else min(head, at_most)
        for position, event_hash, data, mac in self._newest(below, 5):
            if self.key is not None and not hmac.compare_digest(
                snapshot_mac(self.key, position, event_hash, data), mac or b""
            ):
                continue
            event = store.read(after_position=position - 1, limit=1)
            if event and event[0].position == position and event[0].hash == event_hash:
                return decode_state(data), event_hash
        return None


def take_snapshot(store: EventStore, snapshots: SnapshotStore, page: int = 10_000) -> State:
    """Fold the log (from the latest snapshot on) and save a snapshot at its head."""
    state = snapshots.latest(store) or EMPTY
    while True:
        events = store.read(after_position=state.position, limit=page)
        if not events:
            break
        state = fold(events, state)
    if state.position:
        last = store.read(after_position=state.position - 1, limit=1)[0]
        snapshots.save(state, last.hash)
    return state
