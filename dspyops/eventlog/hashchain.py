"""The log's hash chain, kept apart from any backend so auditors and replicas can recompute it.

Every stored event carries a link and the version of the formula that made it:

- **v1** (link version 1, logs written before chain v2):
  ``sha256(prev || position as 8-byte big-endian || type utf-8 || payload)``. Stream, version,
  event_id, recorded_at and actor are not covered, and type and payload are concatenated
  with no separator.
- **v2** (link version 2): ``sha256(message)``, and **v2 keyed** (link version 3):
  ``HMAC-SHA256(chain key, message)``, where ``message`` is the domain tag
  ``b"dspyops.chain.v2\\x00"`` followed by the fields ``prev_hash, position, stream, version,
  event_id, type, recorded_at, actor, payload``, each as an 8-byte big-endian length and then
  its bytes (integers as 8-byte big-endian unsigned, recorded_at as integer microseconds
  since the Unix epoch, text as UTF-8). Every column of the event is covered and no two
  fields can trade bytes.

32 zero bytes stand in for ``hash(0)``. Link versions never go down along the log: a v2
link after keyed links, or a v1 link after v2 ones, is a downgrade and does not verify
(otherwise whoever can write the file but lacks the key could rewrite the tail unkeyed).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import struct
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from dspyops.eventlog.store import StoredEvent, VerifyResult

HASH_SIZE: Final = 32
GENESIS: Final = bytes(HASH_SIZE)  # the "previous hash" of position 1
_MAX_U64: Final = 2**64 - 1

LINK_V1: Final = 1
LINK_V2: Final = 2
LINK_V2_KEYED: Final = 3
LINK_NAMES: Final = {LINK_V1: "v1", LINK_V2: "v2", LINK_V2_KEYED: "v2 keyed"}
DOMAIN_V2: Final = b"dspyops.chain.v2\x00"
MIN_KEY_BYTES: Final = 16

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)
_U64: Final = struct.Struct(">Q")
_TWO_U64: Final = struct.Struct(">QQ")
_VERSION_AND_ID: Final = struct.Struct(">QQQ")  # len(version) = 8, version, len(event_id)
_FIELD_CACHE: Final = 65_536
# domain tag, len(prev) = 32, prev, len(position) = 8, position
_LINK_HEAD: Final = struct.Struct(f">{len(DOMAIN_V2)}sQ{HASH_SIZE}sQQ")


def event_hash(prev_hash: bytes, position: int, type: str, payload: bytes) -> bytes:
    """The v1 link for the event at ``position``, given the link of the event before it."""
    if len(prev_hash) != HASH_SIZE:
        raise ValueError(f"prev_hash must be {HASH_SIZE} bytes, got {len(prev_hash)}")
    if not 1 <= position <= _MAX_U64:
        raise ValueError(f"position must be in 1..2**64-1, got {position}")
    digest = hashlib.sha256(prev_hash)
    digest.update(position.to_bytes(8, "big"))
    digest.update(type.encode("utf-8"))
    digest.update(payload)
    return digest.digest()


def micros(when: datetime) -> int:
    """A stored timestamp as the integer microseconds since the epoch that v2 links cover."""
    return (when - _EPOCH) // _ONE_US


@functools.lru_cache(maxsize=256)
def _batch_head(stream_len: int) -> Callable[..., bytes]:
    """Packs domain tag, prev_hash, position, stream, version and the event id's length of
    one link (streams of one length share it)."""
    return struct.Struct(f">{len(DOMAIN_V2)}sQ{HASH_SIZE}sQQQ{stream_len}sQQQ").pack


def _field(data: bytes) -> bytes:
    return _U64.pack(len(data)) + data


def _digest_function(key: bytes | None) -> Callable[[bytes], bytes]:
    """SHA-256, or HMAC-SHA256 under ``key``: one library object per link (the keyed one is
    copied from an object holding the key's pads, which halves the cost of hmac.digest)."""
    if key is None:
        sha256 = hashlib.sha256
        return lambda message: sha256(message).digest()
    keyed = hmac.new(key, digestmod=hashlib.sha256)

    def mac(message: bytes) -> bytes:
        h = keyed.copy()
        h.update(message)
        return h.digest()

    return mac


class BatchEvent(Protocol):
    """What ``LinkHasher.chain`` reads of each event of a batch (NewEvent has it)."""

    @property
    def event_id(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def payload(self) -> bytes: ...


def check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a chain key must be at least {MIN_KEY_BYTES} bytes")
    return key


class LinkHasher:
    """Makes v2 links: plain (``key=None``, link version 2) or keyed (link version 3).

    ``chain`` is on every append's path (bench/bench_append.py): it packs the fields that
    change per event and reuses the encodings that a batch shares (stream, recorded_at,
    actor, and each distinct type), so a link costs about one struct pack, one join and one
    digest.
    """

    __slots__ = ("_digest", "_fields", "key", "version")

    def __init__(self, key: bytes | None = None) -> None:
        self.key = None if key is None else check_key(key)
        self.version = LINK_V2 if key is None else LINK_V2_KEYED
        self._digest = _digest_function(self.key)
        # text -> its encoded field (8-byte length, UTF-8): a log has few streams, types and
        # actors, and encoding them per link was a fifth of a replica's check
        self._fields: dict[str, bytes] = {}

    def link(
        self,
        prev_hash: bytes,
        position: int,
        stream: str,
        version: int,
        event_id: str,
        type: str,
        recorded_at_us: int,
        actor: str,
        payload: bytes,
    ) -> bytes:
        """The link of one event (what ``chain`` computes for each event of a batch). Written
        out field by field rather than through ``chain``: verifying a large log calls it
        once per row."""
        if len(prev_hash) != HASH_SIZE:
            raise ValueError(f"prev_hash must be {HASH_SIZE} bytes, got {len(prev_hash)}")
        if not (1 <= position <= _MAX_U64 and 1 <= version <= _MAX_U64 and 0 <= recorded_at_us <= _MAX_U64):
            raise ValueError(
                f"position, version or recorded_at out of range ({position}, {version}, {recorded_at_us})"
            )
        fields = self._fields
        if len(fields) > _FIELD_CACHE:  # streams, types and actors repeat; bounded all the same
            fields.clear()
        s = fields.get(stream)
        if s is None:
            s = fields[stream] = _field(stream.encode("utf-8"))
        t = fields.get(type)
        if t is None:
            t = fields[type] = _field(type.encode("utf-8"))
        a = fields.get(actor)
        if a is None:
            a = fields[actor] = _field(actor.encode("utf-8"))
        e = event_id.encode("utf-8")
        message = b"".join(
            (
                _LINK_HEAD.pack(DOMAIN_V2, HASH_SIZE, prev_hash, 8, position),
                s,
                _VERSION_AND_ID.pack(8, version, len(e)),
                e,
                t,
                _TWO_U64.pack(8, recorded_at_us),
                a,
                _U64.pack(len(payload)),
                payload,
            )
        )
        return self._digest(message)

    def chain(
        self,
        prev_hash: bytes,
        first_position: int,
        stream: str,
        first_version: int,
        recorded_at_us: int,
        actor: str,
        events: Sequence[BatchEvent],
    ) -> list[bytes]:
        """The links of one appended batch: ``events`` (with ``event_id``, ``type`` and
        ``payload``, e.g. NewEvents) at consecutive positions from ``first_position`` and
        versions from ``first_version``, all in ``stream``, recorded at ``recorded_at_us``
        by ``actor``."""
        if len(prev_hash) != HASH_SIZE:
            raise ValueError(f"prev_hash must be {HASH_SIZE} bytes, got {len(prev_hash)}")
        n = len(events)
        if not 1 <= first_position or first_position + n - 1 > _MAX_U64:
            raise ValueError(f"positions must be in 1..2**64-1, got {first_position}..+{n}")
        if not 1 <= first_version or first_version + n - 1 > _MAX_U64:
            raise ValueError(f"versions must be in 1..2**64-1, got {first_version}..+{n}")
        if not 0 <= recorded_at_us <= _MAX_U64:
            raise ValueError(f"recorded_at must be in 0..2**64-1 microseconds, got {recorded_at_us}")
        # One pack per link covers the domain tag, prev_hash, position, the batch's stream,
        # version and the event id's length; each type's field is joined with the batch's
        # recorded_at and actor once per batch.
        stream_bytes = stream.encode("utf-8")
        head = _batch_head(len(stream_bytes))
        tail = _field(_U64.pack(recorded_at_us)) + _field(actor.encode("utf-8"))
        u64, join, digest, sha256 = _U64.pack, b"".join, self._digest, hashlib.sha256
        keyless, n_stream = self.key is None, len(stream_bytes)
        types: dict[str, bytes] = {}
        links = []
        position, version = first_position, first_version
        for event in events:
            type_, payload = event.type, event.payload
            type_tail = types.get(type_)
            if type_tail is None:
                type_tail = types[type_] = _field(type_.encode("utf-8")) + tail
            eid = event.event_id.encode("utf-8")
            message = join(
                (
                    head(
                        DOMAIN_V2,
                        HASH_SIZE,
                        prev_hash,
                        8,
                        position,
                        n_stream,
                        stream_bytes,
                        8,
                        version,
                        len(eid),
                    ),
                    eid,
                    type_tail,
                    u64(len(payload)),
                    payload,
                )
            )
            prev_hash = sha256(message).digest() if keyless else digest(message)
            links.append(prev_hash)
            position += 1
            version += 1
        return links


def link_v2(
    prev_hash: bytes,
    position: int,
    stream: str,
    version: int,
    event_id: str,
    type: str,
    recorded_at_us: int,
    actor: str,
    payload: bytes,
    key: bytes | None = None,
) -> bytes:
    """One v2 link (keyed when ``key`` is given): the documented formula, for auditors."""
    return LinkHasher(key).link(
        prev_hash, position, stream, version, event_id, type, recorded_at_us, actor, payload
    )


class ChainChecker:
    """Walks stored links in position order and names the first one that does not check.

    Backends feed it their rows (``check``), replicas the events they receive
    (``check_event``). ``after_position``/``prev_hash``: start after a trusted point (the
    position and hash of a snapshot that matches the log), or from the beginning. Starting
    after a point, the first version seen of each stream is taken as it is (the versions
    before the point are not read); v2 links cover versions anyway.
    """

    def __init__(
        self,
        *,
        key: bytes | None = None,
        after_position: int = 0,
        prev_hash: bytes = GENESIS,
        prev_link: int = LINK_V1,
    ) -> None:
        self.key = key
        self.after_position = after_position  # the trusted starting point (0: the beginning)
        self.position = after_position  # the last position checked (or trusted)
        self.prev_hash = prev_hash
        self.checked = 0
        self.counts = {LINK_V1: 0, LINK_V2: 0, LINK_V2_KEYED: 0}
        self._highest = prev_link  # link versions never go down from the trusted point on
        self._from_start = after_position == 0
        self._versions: dict[str, int] = {}
        self._plain = LinkHasher(None)
        self._keyed = LinkHasher(key) if key is not None else None
        self._last_at: datetime | None = None
        self._last_us = 0

    @property
    def v1_links(self) -> int:
        return self.counts[LINK_V1]

    @property
    def v2_links(self) -> int:
        return self.counts[LINK_V2] + self.counts[LINK_V2_KEYED]

    @property
    def keyed_links(self) -> int:
        return self.counts[LINK_V2_KEYED]

    def check(
        self,
        position: object,
        stream: object,
        version: object,
        event_id: object,
        type_: object,
        payload: object,
        recorded_at_us: object,
        stored_hash: object,
        actor: object,
        link_version: object,
    ) -> str | None:
        """None when this link checks (the walk moves on), else why not. Values come from
        storage and may have been rewritten with anything, so each is type-checked."""
        expected = self.position + 1
        if position != expected:
            return f"position {expected} is missing (the next row is {position})"
        if type(payload) is str:  # a BLOB rewritten as TEXT by hand
            payload = payload.encode("utf-8")
        # exact types (what storage hands back for untouched rows) first, cheaply; a closer
        # look only when one differs
        if not (
            type(stream) is str
            and type(event_id) is str
            and type(type_) is str
            and type(actor) is str
            and type(payload) is bytes
            and type(version) is int
            and type(recorded_at_us) is int
            and type(link_version) is int
            and type(stored_hash) is bytes
            and len(stored_hash) == HASH_SIZE
        ):
            return _wrong_type(position, stream, event_id, type_, actor, payload, version, recorded_at_us,
                               link_version, stored_hash)  # fmt: skip
        assert isinstance(position, int) and isinstance(version, int) and isinstance(link_version, int)
        assert isinstance(stream, str) and isinstance(type_, str) and isinstance(payload, bytes)
        if link_version not in LINK_NAMES:
            return f"position {position}: unknown chain link version {link_version}"
        if link_version < self._highest:
            return (
                f"position {position}: a {LINK_NAMES[link_version]} link after {LINK_NAMES[self._highest]} "
                "links (a downgrade: the tail was rewritten without the chain key?)"
            )
        if link_version == LINK_V2_KEYED and self._keyed is None:
            return (
                f"position {position} is a keyed link (HMAC-SHA256): checking it needs the log's chain key "
                "(--chain-key-file)"
            )
        try:
            if link_version == LINK_V1:
                recomputed = event_hash(self.prev_hash, position, type_, payload)
            else:
                hasher = self._plain if link_version == LINK_V2 else self._keyed
                assert hasher is not None
                recomputed = hasher.link(
                    self.prev_hash, position, stream, version, event_id, type_, recorded_at_us, actor, payload
                )
        except (ValueError, UnicodeEncodeError, struct.error) as exc:
            return f"position {position}: cannot be hashed ({exc})"
        if not hmac.compare_digest(recomputed, stored_hash):
            what = (
                "its type, payload or hash"
                if link_version == LINK_V1
                else "a column of the event or its hash"
            )
            hint = ", or the chain key is not this log's" if link_version == LINK_V2_KEYED else ""
            return f"position {position}: hash mismatch ({what} was altered{hint})"
        known = self._versions.get(stream)
        if known is not None or self._from_start:
            want = (known or 0) + 1
            if version != want:
                return f"position {position}: stream {stream!r} is at version {version}, not {want}"
        self._versions[stream] = version
        # _advance, inlined (once per link of a replay); link_version is a known one here
        self.position = position
        self.prev_hash = stored_hash
        if link_version > self._highest:
            self._highest = link_version
        self.counts[link_version] += 1
        self.checked += 1
        return None

    def walk(self, rows: Iterable[tuple[object, ...]]) -> VerifyResult:
        """Check stored rows (the columns of eventlog.rows.COLUMNS, in position order) from
        the starting point on; stop at the first that does not check and name it."""
        check = self.check
        for position, stream, version, event_id, type_, payload, recorded_at, hash_, actor, link in rows:
            reason = check(
                position, stream, version, event_id, type_, payload, recorded_at, hash_, actor, link
            )
            if reason is not None:  # the walk stopped at the position after the last good one
                return self.result(self.position + 1, reason)
        return self.result(None, f"{self.checked} events, chain intact")

    def result(self, first_broken_position: int | None, reason: str) -> VerifyResult:
        """What the walk found so far, as a store's ``verify`` returns it."""
        return VerifyResult(
            ok=first_broken_position is None,
            checked=self.checked,
            first_broken_position=first_broken_position,
            reason=reason,
            v1_links=self.v1_links,
            v2_links=self.v2_links,
            keyed_links=self.keyed_links,
            after_position=self.after_position,
        )

    def check_event(self, event: StoredEvent) -> str | None:
        """``check`` for a StoredEvent (what a replica receives)."""
        at = event.recorded_at
        if at is not self._last_at:  # a batch's events share one datetime (eventlog.rows)
            self._last_at, self._last_us = at, micros(at)
        return self.check(
            event.position,
            event.stream,
            event.version,
            event.event_id,
            event.type,
            event.payload,
            self._last_us,
            event.hash,
            event.actor,
            event.chain,
        )

    def skip_broken(self, position: int, stored_hash: bytes, link_version: int) -> None:
        """Go on after a broken link (``--allow-broken-log``): the next link is checked
        against this one's stored hash."""
        self._advance(position, stored_hash, link_version, counted=False)

    def _advance(self, position: int, stored_hash: bytes, link_version: int, counted: bool = True) -> None:
        self.position = position
        self.prev_hash = stored_hash
        if link_version in self.counts:
            self._highest = max(self._highest, link_version)
            if counted:
                self.counts[link_version] += 1
                self.checked += 1


def _wrong_type(position: object, *values: object) -> str:
    names = ("stream", "event_id", "type", "actor", "payload", "version", "recorded_at", "chain", "hash")
    kinds = (str, str, str, str, bytes, int, int, int, bytes)
    for name, value, kind in zip(names, values, kinds, strict=True):
        if type(value) is not kind:
            what = {str: "text", bytes: "bytes", int: "an integer"}[kind]
            return f"position {position}: {name} is not {what}"
    return f"position {position}: hash is not {HASH_SIZE} bytes"
