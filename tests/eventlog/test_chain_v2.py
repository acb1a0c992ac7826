"""Chain v2's definition, pinned, and the checker that walks mixed v1/v2/keyed chains.

The formula is recomputed here from its documented byte layout with plain hashlib/hmac, so
the fast batch code in hashchain.LinkHasher cannot drift from what an auditor would write.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from dspyops.eventlog import NewEvent, StoredEvent
from dspyops.eventlog.hashchain import (
    DOMAIN_V2,
    GENESIS,
    LINK_V1,
    LINK_V2,
    LINK_V2_KEYED,
    ChainChecker,
    LinkHasher,
    event_hash,
    link_v2,
    micros,
)

KEY = b"k" * 32
FIELDS: dict[str, Any] = {
    "position": 7,
    "stream": "deployment-web",
    "version": 3,
    "event_id": "0190a3b2-1234-7abc-8def-0123456789ab",
    "type": "dspyops.v1.RoutesSet",
    "recorded_at_us": 1_764_574_800_123_456,
    "actor": "alice",
    "payload": b"\x0a\x03web",
}


def documented(prev: bytes, f: dict[str, Any], key: bytes | None = None) -> bytes:
    """The formula as the design document states it, written independently."""

    def lp(data: bytes) -> bytes:
        return len(data).to_bytes(8, "big") + data

    def u64(n: int) -> bytes:
        return n.to_bytes(8, "big")

    message = DOMAIN_V2 + b"".join(
        [
            lp(prev),
            lp(u64(f["position"])),
            lp(f["stream"].encode()),
            lp(u64(f["version"])),
            lp(f["event_id"].encode()),
            lp(f["type"].encode()),
            lp(u64(f["recorded_at_us"])),
            lp(f["actor"].encode()),
            lp(f["payload"]),
        ]
    )
    if key is None:
        return hashlib.sha256(message).digest()
    return hmac.new(key, message, hashlib.sha256).digest()


def link(prev: bytes, f: dict[str, Any], key: bytes | None = None) -> bytes:
    return link_v2(
        prev,
        f["position"],
        f["stream"],
        f["version"],
        f["event_id"],
        f["type"],
        f["recorded_at_us"],
        f["actor"],
        f["payload"],
        key,
    )


def test_v2_link_is_the_documented_formula() -> None:
    assert DOMAIN_V2 == b"dspyops.chain.v2\x00"
    prev = hashlib.sha256(b"prev").digest()
    assert link(prev, FIELDS) == documented(prev, FIELDS)
    assert link(prev, FIELDS, KEY) == documented(prev, FIELDS, KEY)
    assert link(prev, FIELDS, KEY) != link(prev, FIELDS)


def test_pinned_vectors() -> None:
    # Hard-coded: a change to the byte layout would break every v2 log already written.
    assert link(GENESIS, FIELDS).hex() == "f2dd080488ab8574b450642b181eec9b99d43e9d3caf6f1d5bd2037a805a7edc"
    assert (
        link(GENESIS, FIELDS, KEY).hex() == "9ec3e2231fd9704678dfd78b2d4bc9f469a83509a52965f460145bf0175db9b3"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("position", 8),
        ("stream", "deployment-web2"),
        ("version", 4),
        ("event_id", "0190a3b2-1234-7abc-8def-0123456789ac"),
        ("type", "dspyops.v1.RolledBack"),
        ("recorded_at_us", FIELDS["recorded_at_us"] + 1),
        ("actor", "mallory"),
        ("payload", b"\x0a\x03wed"),
    ],
)
def test_every_field_enters_the_link(name: str, value: object) -> None:
    assert link(GENESIS, {**FIELDS, name: value}) != link(GENESIS, FIELDS)
    assert link(GENESIS, {**FIELDS, name: value}, KEY) != link(GENESIS, FIELDS, KEY)
    assert link(b"\x01" * 32, FIELDS) != link(GENESIS, FIELDS)


@pytest.mark.parametrize(
    ("a", "b"),
    [("type", "payload"), ("stream", "event_id"), ("event_id", "type"), ("actor", "payload")],
)
def test_moving_bytes_between_neighbouring_fields_changes_the_link(a: str, b: str) -> None:
    """v1 hashed type || payload with no separator: a re-split of the two gave the same hash."""
    first, second = FIELDS[a], FIELDS[b]
    as_bytes = isinstance(second, bytes)
    moved = {**FIELDS, a: first[:-1], b: (first[-1:].encode() + second) if as_bytes else first[-1:] + second}
    assert link(GENESIS, moved) != link(GENESIS, FIELDS)
    if (a, b) == ("type", "payload"):
        v1 = event_hash(GENESIS, 7, FIELDS["type"], FIELDS["payload"])
        assert event_hash(GENESIS, 7, moved["type"], moved["payload"]) == v1  # the v1 weakness


def test_batch_chain_equals_one_link_at_a_time() -> None:
    events = [NewEvent("t", b"", "id-1"), NewEvent("é", b"\xff", "id-2"), NewEvent("t", b"x" * 1000, "id-3")]
    for key in (None, KEY):
        hasher = LinkHasher(key)
        links = hasher.chain(GENESIS, 5, "s", 2, 99, "bob", events)
        prev = GENESIS
        for i, (event, got) in enumerate(zip(events, links, strict=True)):
            event_id, type_, payload = event.event_id, event.type, event.payload
            f = {
                "position": 5 + i,
                "stream": "s",
                "version": 2 + i,
                "event_id": event_id,
                "type": type_,
                "recorded_at_us": 99,
                "actor": "bob",
                "payload": payload,
            }
            prev = documented(prev, f, key)
            assert got == prev
        assert hasher.version == (LINK_V2 if key is None else LINK_V2_KEYED)


def test_bad_inputs_are_refused() -> None:
    hasher, one = LinkHasher(), NewEvent("t", b"", "i")
    with pytest.raises(ValueError, match="prev_hash"):
        hasher.chain(b"short", 1, "s", 1, 0, "", [one])
    with pytest.raises(ValueError, match="positions"):
        hasher.chain(GENESIS, 0, "s", 1, 0, "", [one])
    with pytest.raises(ValueError, match="versions"):
        hasher.chain(GENESIS, 1, "s", 0, 0, "", [one])
    with pytest.raises(ValueError, match="recorded_at"):
        hasher.chain(GENESIS, 1, "s", 1, -1, "", [one])
    with pytest.raises(ValueError, match="at least 16 bytes"):
        LinkHasher(b"short")


# -- the checker ------------------------------------------------------------------------------


def events(n: int, *, key: bytes | None = None, v1_first: int = 0, stream: str = "s") -> list[StoredEvent]:
    """n events: the first ``v1_first`` with v1 links, the rest v2 (keyed with ``key``)."""
    when = datetime(2026, 12, 1, tzinfo=UTC)
    out: list[StoredEvent] = []
    prev = GENESIS
    hasher = LinkHasher(key)
    for position in range(1, n + 1):
        payload = f"p{position}".encode()
        if position <= v1_first:
            h, version = event_hash(prev, position, "t", payload), LINK_V1
        else:
            h = hasher.link(
                prev, position, stream, position, f"id-{position}", "t", micros(when), "a", payload
            )
            version = hasher.version
        out.append(
            StoredEvent(position, stream, position, f"id-{position}", "t", payload, when, h, "a", version)
        )
        prev = h
    return out


def walk(stored: list[StoredEvent], key: bytes | None = None) -> tuple[ChainChecker, int | None, str]:
    checker = ChainChecker(key=key)
    for event in stored:
        reason = checker.check_event(event)
        if reason is not None:
            return checker, event.position, reason
    return checker, None, ""


def test_mixed_v1_then_v2_chain_checks_and_is_counted() -> None:
    checker, broken, _ = walk(events(6, v1_first=3))
    assert broken is None
    assert (checker.v1_links, checker.v2_links, checker.keyed_links, checker.checked) == (3, 3, 0, 6)


def test_keyed_links_need_the_key_and_the_right_key() -> None:
    stored = events(4, key=KEY)
    checker, broken, _ = walk(stored, KEY)
    assert broken is None and checker.keyed_links == 4 and checker.v2_links == 4
    _, broken, reason = walk(stored)  # no key
    assert broken == 1 and "chain key" in reason
    _, broken, reason = walk(stored, b"x" * 32)  # another key
    assert broken == 1 and "mismatch" in reason


def test_an_unkeyed_rewrite_of_a_keyed_tail_is_a_downgrade() -> None:
    """Whoever lacks the key can recompute unkeyed v2 links, but not after keyed ones."""
    stored = events(5, key=KEY)
    fourth = stored[3]
    forged = LinkHasher().link(
        stored[2].hash, 4, "s", 4, "id-4", "t", micros(fourth.recorded_at), "a", b"forged"
    )  # a valid plain v2 link over an edited payload
    _, broken, reason = walk(
        [*stored[:3], replace(fourth, payload=b"forged", hash=forged, chain=LINK_V2)], KEY
    )
    assert broken == 4 and "downgrade" in reason


def test_a_v1_link_after_v2_links_is_a_downgrade() -> None:
    stored = events(3)
    v1 = event_hash(stored[1].hash, 3, "t", b"p3")
    _, broken, reason = walk([*stored[:2], replace(stored[2], hash=v1, chain=LINK_V1)])
    assert broken == 3 and "downgrade" in reason


def test_a_gap_and_a_non_dense_version_are_named() -> None:
    stored = events(4)
    _, broken, reason = walk([stored[0], stored[2]])
    assert broken == 3 and "position 2 is missing" in reason
    checker = ChainChecker()
    assert checker.check_event(stored[0]) is None
    bad = replace(stored[1], version=5)  # v2: the hash covers the version, so it mismatches first
    assert "mismatch" in (checker.check_event(bad) or "")


def test_checking_after_a_trusted_point() -> None:
    stored = events(6, key=KEY)
    checker = ChainChecker(key=KEY, after_position=3, prev_hash=stored[2].hash, prev_link=LINK_V2_KEYED)
    assert all(checker.check_event(e) is None for e in stored[3:])
    assert checker.checked == 3
    wrong_start = ChainChecker(key=KEY, after_position=3, prev_hash=GENESIS)
    assert "mismatch" in (wrong_start.check_event(stored[3]) or "")
