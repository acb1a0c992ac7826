"""The log's hash chain, kept apart from any backend so auditors and replicas can recompute it.

``hash(n) = sha256(hash(n-1) || position as 8-byte big-endian || type utf-8 || payload)`` with
32 zero bytes standing in for ``hash(0)``. Changing any stored type, payload or position, or
dropping a row, breaks every hash from that point on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

HASH_SIZE: Final = 32
GENESIS: Final = bytes(HASH_SIZE)  # the "previous hash" of position 1
_MAX_POSITION: Final = 2**64 - 1


def event_hash(prev_hash: bytes, position: int, type: str, payload: bytes) -> bytes:
    """The chain link for the event at ``position``, given the link of the event before it."""
    if len(prev_hash) != HASH_SIZE:
        raise ValueError(f"prev_hash must be {HASH_SIZE} bytes, got {len(prev_hash)}")
    if not 1 <= position <= _MAX_POSITION:
        raise ValueError(f"position must be in 1..2**64-1, got {position}")
    digest = hashlib.sha256(prev_hash)
    digest.update(position.to_bytes(8, "big"))
    digest.update(type.encode("utf-8"))
    digest.update(payload)
    return digest.digest()


def chain(prev_hash: bytes, first_position: int, events: Sequence[tuple[str, bytes]]) -> list[bytes]:
    """The links of consecutive events ``(type, payload)`` from ``first_position`` on: the
    same values as calling ``event_hash`` for each, with one sha256 call per event (appends
    hash every event of a batch, so this is on the write path)."""
    if len(prev_hash) != HASH_SIZE:
        raise ValueError(f"prev_hash must be {HASH_SIZE} bytes, got {len(prev_hash)}")
    if not 1 <= first_position or first_position + len(events) - 1 > _MAX_POSITION:
        raise ValueError(f"positions must be in 1..2**64-1, got {first_position}..+{len(events)}")
    sha256, join = hashlib.sha256, b"".join
    encoded: dict[str, bytes] = {}
    links = []
    for position, (type_, payload) in enumerate(events, start=first_position):
        name = encoded.get(type_)
        if name is None:
            name = encoded[type_] = type_.encode("utf-8")
        prev_hash = sha256(join((prev_hash, position.to_bytes(8, "big"), name, payload))).digest()
        links.append(prev_hash)
    return links
