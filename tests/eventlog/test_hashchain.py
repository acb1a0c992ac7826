"""Chain v1's definition, pinned: logs written before chain v2 must keep verifying, so a
change to it would make every one of them fail. (v2: test_chain_v2.py.)"""

from __future__ import annotations

import hashlib

import pytest

from dspyops.eventlog.hashchain import GENESIS, event_hash


def test_first_link_matches_the_documented_formula() -> None:
    expected = hashlib.sha256(bytes(32) + b"\x00" * 7 + b"\x01" + b"dspyops.v1.A" + b"\x08\x01").digest()
    assert GENESIS == bytes(32)
    assert event_hash(GENESIS, 1, "dspyops.v1.A", b"\x08\x01") == expected


def test_pinned_vector() -> None:
    # Hard-coded so that a change to the byte layout (8-byte big-endian position, UTF-8 type,
    # raw payload) cannot pass unnoticed: it would break every log already written.
    link1 = event_hash(GENESIS, 1, "t", b"")
    assert link1.hex() == "8af661d5c6980e8d4ced286940de673ced69b70d8871dcbbcd0de4829551a1c2"
    link2 = event_hash(link1, 2, "é", b"\xff")
    assert link2.hex() == "b0cac27c22d39690e0381a9491b115ee1122c97f377651f555ddc785622c0763"


def test_every_input_changes_the_hash() -> None:
    base = event_hash(GENESIS, 5, "t", b"p")
    assert event_hash(bytes([1]) + bytes(31), 5, "t", b"p") != base
    assert event_hash(GENESIS, 6, "t", b"p") != base
    assert event_hash(GENESIS, 5, "u", b"p") != base
    assert event_hash(GENESIS, 5, "t", b"q") != base
    assert len(base) == 32


@pytest.mark.parametrize(("prev", "position"), [(b"short", 1), (GENESIS, 0), (GENESIS, 2**64)])
def test_rejects_bad_inputs(prev: bytes, position: int) -> None:
    with pytest.raises(ValueError):
        event_hash(prev, position, "t", b"")
