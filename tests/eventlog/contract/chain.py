"""The hash chain: the documented v2 links, verify naming the first broken position, v1 logs,
keyed links."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dspyops.eventlog import LINK_V1, LINK_V2, LINK_V2_KEYED, ChainKeyRequired, EventStore, link_v2
from dspyops.eventlog.hashchain import GENESIS, micros
from tests.eventlog.contract.base import CHAIN_KEY, ContractBase, RewriteAsV1, StoreFactory, Tamper, ev, fill
from tests.eventlog.workers import EVENT_TYPE, tagged_batch


class ChainContract(ContractBase):
    def test_stored_hashes_form_the_documented_chain(self, store: EventStore) -> None:
        store.append("s", [ev(b"x"), ev(b"y", type="dspyops.v1.Y")], 0, actor="bob")
        one, two = store.read()
        assert (one.chain, two.chain) == (LINK_V2, LINK_V2)
        assert one.hash == link_v2(
            GENESIS, 1, "s", 1, one.event_id, one.type, micros(one.recorded_at), "bob", b"x"
        )
        assert two.hash == link_v2(
            one.hash, 2, "s", 2, two.event_id, "dspyops.v1.Y", micros(two.recorded_at), "bob", b"y"
        )
        assert store.read_stream("s") == [one, two]

    def test_verify_clean_log(self, store: EventStore) -> None:
        fill(store, 10)
        store.append("program-a", [ev(), ev()], 0)
        result = store.verify()
        assert result.ok and result.checked == 12 and result.first_broken_position is None

    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("payload", b"evil"),
            ("type", "dspyops.v1.Forged"),
            ("hash", bytes(32)),
            ("hash", b"short"),
            ("version", 99),
        ],
    )
    def test_verify_names_the_tampered_position(
        self, store: EventStore, tamper: Tamper, column: str, value: object
    ) -> None:
        fill(store, 10)
        tamper(6, column, value)
        result = store.verify()
        assert not result.ok
        assert result.first_broken_position == 6
        assert result.checked == 5
        assert "6" in result.reason

    @pytest.mark.parametrize(
        "edits",
        [
            # Each edit keeps every per-stream version dense, so only a hash over the whole
            # event can notice it (chain v1 covered position, type and payload alone).
            [("stream", "program-forged")],
            [("event_id", "forged-event-id")],
            [("recorded_at", 0)],  # time-based rollback and as_of read this column
            [("actor", "mallory")],
            # type and payload re-split: v1 hashed them back to back with no separator
            [("type", EVENT_TYPE[:-1]), ("payload", EVENT_TYPE[-1:].encode() + b"solo:0:0")],
        ],
        ids=["stream", "event_id", "recorded_at", "actor", "type-payload-resplit"],
    )
    def test_verify_names_an_edited_envelope_column(
        self, store: EventStore, tamper: Tamper, edits: list[tuple[str, object]]
    ) -> None:
        fill(store, 5, stream="a")
        store.append("b", tagged_batch("solo", 0, 1), 0, actor="alice")  # position 6, alone in "b"
        fill(store, 4, stream="a")
        assert store.verify().ok
        for column, value in edits:
            tamper(6, column, value)
        result = store.verify()
        assert not result.ok
        assert result.first_broken_position == 6
        assert result.checked == 5
        assert "6" in result.reason

    def test_verify_counts_link_versions(self, store: EventStore) -> None:
        fill(store, 4)
        result = store.verify()
        assert (result.v1_links, result.v2_links, result.keyed_links) == (0, 4, 0)

    def test_verify_after_a_trusted_position(self, store: EventStore, tamper: Tamper) -> None:
        fill(store, 10)
        result = store.verify(after_position=6)
        assert result.ok and result.checked == 4 and result.after_position == 6
        tamper(8, "payload", b"evil")
        result = store.verify(after_position=6)
        assert not result.ok and result.first_broken_position == 8 and result.checked == 1
        tamper(3, "payload", b"evil too")  # before the trusted point: only a walk from 1 sees it
        assert store.verify(after_position=6).first_broken_position == 8
        assert store.verify().first_broken_position == 3
        with pytest.raises(ValueError, match="no such position"):
            store.verify(after_position=11)

    def test_verify_detects_a_moved_or_missing_position(self, store: EventStore, tamper: Tamper) -> None:
        fill(store, 10)
        tamper(4, "position", 400)
        result = store.verify()
        assert not result.ok and result.first_broken_position == 4
        assert "missing" in result.reason

    def test_a_v1_log_still_verifies_and_gains_v2_links(
        self, store_url: str, make_store: StoreFactory, rewrite_as_v1: RewriteAsV1
    ) -> None:
        fill(make_store(), 5)
        rewrite_as_v1()
        old = make_store()
        assert [e.chain for e in old.read()] == [LINK_V1] * 5
        result = old.verify()
        assert result.ok and (result.v1_links, result.v2_links) == (5, 0)
        old.append("after-upgrade", [ev(b"new")], 0, actor="carol")
        events = old.read()
        assert [e.chain for e in events] == [LINK_V1] * 5 + [LINK_V2]
        result = old.verify()
        assert result.ok and (result.v1_links, result.v2_links, result.keyed_links) == (5, 1, 0)

    def test_a_v1_link_is_checked_by_the_v1_formula(
        self, make_store: StoreFactory, rewrite_as_v1: RewriteAsV1, tamper: Tamper
    ) -> None:
        fill(make_store(), 6)
        rewrite_as_v1()
        tamper(4, "payload", b"evil")
        result = make_store().verify()
        assert not result.ok and result.first_broken_position == 4 and result.v1_links == 3

    def test_keyed_links_verify_only_with_the_key(
        self, make_store: StoreFactory, make_keyed_store: Callable[[bytes], EventStore]
    ) -> None:
        fill(make_store(), 3)  # unkeyed links first: a key given later keys the new ones
        assert not make_store().keyed()
        keyed = make_keyed_store(CHAIN_KEY)
        keyed.append("s", [ev(b"k1"), ev(b"k2")], 0, actor="dave")
        assert [e.chain for e in keyed.read()] == [LINK_V2] * 3 + [LINK_V2_KEYED] * 2
        assert keyed.keyed() and make_store().keyed()
        result = keyed.verify()
        assert result.ok and (result.v2_links, result.keyed_links, result.checked) == (5, 2, 5)
        # the keyed link is not the plain SHA-256 one: without the key nobody recomputes it
        one = keyed.read()[3]
        plain = link_v2(
            keyed.read()[2].hash, 4, "s", 1, one.event_id, one.type, micros(one.recorded_at), "dave", b"k1"
        )
        assert one.hash != plain
        unkeyed = make_store().verify()
        assert not unkeyed.ok and unkeyed.first_broken_position == 4 and "chain key" in unkeyed.reason
        wrong = make_keyed_store(b"another-key-of-32-bytes-length!!").verify()
        assert not wrong.ok and wrong.first_broken_position == 4 and "mismatch" in wrong.reason

    def test_a_keyed_log_refuses_unkeyed_appends(
        self, make_store: StoreFactory, make_keyed_store: Callable[[bytes], EventStore]
    ) -> None:
        make_keyed_store(CHAIN_KEY).append("s", [ev()], 0)
        plain = make_store()
        assert plain.keyed()
        with pytest.raises(ChainKeyRequired, match="chain key"):
            plain.append("s", [ev()], 1)
        assert plain.head() == 1
        assert make_keyed_store(CHAIN_KEY).append("s", [ev()], 1).last_position == 2

    def test_an_unkeyed_rewrite_after_keyed_links_does_not_verify(
        self, make_keyed_store: Callable[[bytes], EventStore], tamper: Tamper
    ) -> None:
        """Someone who can write the file but lacks the key edits a keyed event and
        recomputes its link with plain SHA-256 (a valid v2 link): still caught."""
        keyed = make_keyed_store(CHAIN_KEY)
        fill(keyed, 4)
        prev, target = keyed.read()[2:4]
        forged = link_v2(
            prev.hash, 4, target.stream, target.version, target.event_id, target.type,
            micros(target.recorded_at), target.actor, b"forged",
        )  # fmt: skip
        tamper(4, "payload", b"forged")
        tamper(4, "hash", forged)
        tamper(4, "chain", LINK_V2)
        result = keyed.verify()
        assert not result.ok and result.first_broken_position == 4 and "downgrade" in result.reason
