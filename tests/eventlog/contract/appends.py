"""Appends: atomic batches, expected versions, idempotent event ids, dense positions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dspyops.eventlog import ANY, DuplicateEventId, EventStore, NewEvent, WrongExpectedVersion
from tests.eventlog.contract.base import ContractBase, StoreFactory, ev, link_of, replace_actor
from tests.eventlog.workers import EVENT_TYPE


class AppendContract(ContractBase):
    def test_empty_store(self, store: EventStore) -> None:
        assert store.head() == 0
        assert store.read() == []
        assert store.read_stream("program-x") == []
        assert store.stream_version("program-x") == 0
        result = store.verify()
        assert result.ok and result.checked == 0 and result.first_broken_position is None

    def test_append_and_read_back(self, store: EventStore) -> None:
        before = datetime.now(UTC) - timedelta(seconds=1)
        first = store.append("program-a", [ev(b"a1"), ev(b"a2")], 0)
        second = store.append("program-b", [ev(b"b1", type="dspyops.v1.Other")], 0)
        third = store.append("program-a", [ev(b"a3")], 2)

        assert (first.stream, first.first_position, first.last_position, first.stream_version) == (
            "program-a",
            1,
            2,
            2,
        )
        assert (second.first_position, second.last_position, second.stream_version) == (3, 3, 1)
        assert (third.first_position, third.last_position, third.stream_version) == (4, 4, 3)
        assert not (first.deduplicated or second.deduplicated or third.deduplicated)

        events = store.read()
        assert [(e.position, e.stream, e.version, e.payload) for e in events] == [
            (1, "program-a", 1, b"a1"),
            (2, "program-a", 2, b"a2"),
            (3, "program-b", 1, b"b1"),
            (4, "program-a", 3, b"a3"),
        ]
        assert events[2].type == "dspyops.v1.Other"
        for e in events:
            assert e.recorded_at.tzinfo is not None and e.recorded_at.utcoffset() == timedelta(0)
            assert before <= e.recorded_at <= datetime.now(UTC) + timedelta(seconds=1)
            assert len(e.hash) == 32
        assert [e.recorded_at for e in events] == sorted(e.recorded_at for e in events)

        assert [e.payload for e in store.read_stream("program-a")] == [b"a1", b"a2", b"a3"]
        assert [e.version for e in store.read_stream("program-a", after_version=1)] == [2, 3]
        assert store.stream_version("program-a") == 3
        assert store.stream_version("program-b") == 1
        assert store.head() == 4

    def test_event_ids_are_kept(self, store: EventStore) -> None:
        store.append("s", [ev(event_id="id-1"), ev(event_id="id-2")], 0)
        assert [e.event_id for e in store.read()] == ["id-1", "id-2"]
        generated = NewEvent("t", b"")
        store.append("s", [generated], ANY)
        assert store.read(after_position=2)[0].event_id == generated.event_id
        assert store.read(after_position=2)[0].payload == b""

    def test_actor_is_stored_with_each_event_inside_the_hash_chain(self, store: EventStore) -> None:
        store.append("s", [ev(b"x"), ev(b"y")], 0, actor="alice")
        store.append("s", [ev(b"z")], 2)
        assert [e.actor for e in store.read()] == ["alice", "alice", ""]
        assert [e.actor for e in store.read_stream("s")] == ["alice", "alice", ""]
        one, two, _ = store.read()
        assert two.hash == link_of(two, one.hash)  # chain v2 covers the actor (v1 did not)
        assert two.hash != link_of(replace_actor(two, "mallory"), one.hash)
        for bad in ("a\nb", "x" * 257, 7):
            with pytest.raises(ValueError, match="actor"):
                store.append("s", [ev()], ANY, actor=bad)  # type: ignore[arg-type]
        assert store.head() == 3

    def test_invalid_arguments(self, store: EventStore) -> None:
        with pytest.raises(ValueError, match="empty"):
            store.append("s", [], 0)
        with pytest.raises(ValueError, match="stream"):
            store.append("", [ev()], 0)
        with pytest.raises(ValueError, match="expected_version"):
            store.append("s", [ev()], -1)
        with pytest.raises(ValueError, match="twice"):
            store.append("s", [ev(event_id="same"), ev(event_id="same")], 0)
        with pytest.raises(TypeError, match="bytes"):
            store.append("s", [NewEvent("t", "text")], 0)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="limit"):
            store.read(limit=0)
        with pytest.raises(ValueError, match="after_position"):
            store.read(after_position=-1)
        assert store.head() == 0

    def test_expected_version_zero_means_new_stream(self, store: EventStore) -> None:
        store.append("s", [ev()], 0)
        with pytest.raises(WrongExpectedVersion) as info:
            store.append("s", [ev()], 0)
        assert (info.value.stream, info.value.expected, info.value.actual) == ("s", 0, 1)
        assert store.head() == 1

    def test_wrong_expected_version_names_both_and_appends_nothing(self, store: EventStore) -> None:
        store.append("program-a", [ev(), ev(), ev()], 0)
        store.append("program-b", [ev()], 0)
        for wrong in (0, 2, 4, 17):
            with pytest.raises(WrongExpectedVersion) as info:
                store.append("program-a", [ev(b"late"), ev(b"late2")], wrong)
            assert info.value.expected == wrong and info.value.actual == 3
            message = str(info.value)
            assert "program-a" in message and str(wrong) in message and "3" in message
        assert store.head() == 4
        assert store.stream_version("program-a") == 3
        assert all(e.payload != b"late" for e in store.read())
        with pytest.raises(WrongExpectedVersion):  # an absent stream is at version 0
            store.append("program-new", [ev()], 1)
        assert store.stream_version("program-new") == 0

    def test_expected_version_any_skips_the_check(self, store: EventStore) -> None:
        assert store.append("s", [ev()], ANY).stream_version == 1
        assert store.append("s", [ev(), ev()], ANY).stream_version == 3
        assert store.append("s", [ev()], 3).stream_version == 4

    def test_retry_with_same_ids_is_a_noop(self, store: EventStore) -> None:
        batch = [ev(b"1"), ev(b"2")]
        original = store.append("s", batch, 0)
        store.append("other", [ev()], 0)
        # A retry after a lost acknowledgement: the expected version is stale now, but the
        # batch is recognised by its ids before the version is checked.
        for expected in (0, ANY, 7):
            retry = store.append("s", batch, expected)
            assert retry.deduplicated
            assert (retry.stream, retry.first_position, retry.last_position, retry.stream_version) == (
                original.stream,
                original.first_position,
                original.last_position,
                original.stream_version,
            )
        assert store.head() == 3
        assert [e.payload for e in store.read_stream("s")] == [b"1", b"2"]

    def test_batch_mixing_stored_and_new_ids_is_rejected(self, store: EventStore) -> None:
        stored = ev(b"old", event_id="old-id")
        store.append("s", [stored], 0)
        with pytest.raises(DuplicateEventId) as info:
            store.append("s", [ev(b"new", event_id="new-id"), stored], 1)
        assert info.value.event_ids == ("old-id",)
        assert "old-id" in str(info.value)
        assert store.head() == 1
        assert store.stream_version("s") == 1

    def test_reusing_ids_in_another_stream_is_rejected(self, store: EventStore) -> None:
        stored = ev(event_id="shared-id")
        store.append("a", [stored], 0)
        with pytest.raises(DuplicateEventId):
            store.append("b", [stored], 0)
        assert store.head() == 1 and store.stream_version("b") == 0

    @settings(
        max_examples=40,
        deadline=None,
        # every backend's test class runs this one method: the differing executors are the
        # point of an abstract suite (each has its own fresh store per example)
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
    )
    @given(
        ops=st.lists(
            st.tuples(
                st.sampled_from(["program-a", "program-b", "job-1", "deployment-web"]),
                st.integers(min_value=1, max_value=4),
                st.sampled_from(["exact", "any", "stale", "retry"]),
            ),
            max_size=25,
        )
    )
    def test_positions_and_versions_stay_dense(
        self, new_empty_store: StoreFactory, ops: list[tuple[str, int, str]]
    ) -> None:
        store = new_empty_store()
        model: dict[str, int] = {}
        appended = 0
        last_batch: tuple[str, list[NewEvent]] | None = None
        for stream, size, mode in ops:
            current = model.get(stream, 0)
            if mode == "retry" and last_batch is not None:
                before = store.head()
                assert store.append(last_batch[0], last_batch[1], ANY).deduplicated
                assert store.head() == before
                continue
            batch = [NewEvent(EVENT_TYPE, f"{appended}:{i}".encode()) for i in range(size)]
            if mode == "stale":
                with pytest.raises(WrongExpectedVersion):
                    store.append(stream, batch, current + 1)
                continue
            result = store.append(stream, batch, current if mode == "exact" else ANY)
            assert result.first_position == appended + 1
            assert result.stream_version == current + size
            model[stream] = current + size
            appended += size
            last_batch = (stream, batch)

        events = store.read(limit=10_000)
        assert [e.position for e in events] == list(range(1, appended + 1))
        assert store.head() == appended
        for stream, count in model.items():
            assert [e.version for e in store.read_stream(stream)] == list(range(1, count + 1))
            assert store.stream_version(stream) == count
        assert store.verify().ok
