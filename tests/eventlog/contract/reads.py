"""Reads: pages by position and stream prefix, pages bounded by bytes, event sizes."""

from __future__ import annotations

from dspyops.eventlog import ANY, EventStore
from tests.eventlog.contract.base import ContractBase, ev


class ReadContract(ContractBase):
    def test_read_paging_and_stream_prefix(self, store: EventStore) -> None:
        store.append("job-1", [ev(b"j1")], 0)
        store.append("program-a", [ev(b"p1")], 0)
        store.append("job-2", [ev(b"j2"), ev(b"j2b")], 0)
        store.append("jobs", [ev(b"not-a-job-stream-but-matches-job")], 0)
        store.append("program-a", [ev(b"p2")], 1)

        assert [e.position for e in store.read(after_position=2, limit=2)] == [3, 4]
        assert [e.position for e in store.read(after_position=6)] == []
        assert [e.payload for e in store.read(stream_prefix="program-")] == [b"p1", b"p2"]
        assert [e.stream for e in store.read(stream_prefix="job-")] == ["job-1", "job-2", "job-2"]
        assert [e.position for e in store.read(after_position=3, stream_prefix="job-")] == [4]
        assert [e.position for e in store.read(limit=1, stream_prefix="job-")] == [1]
        assert len(store.read(stream_prefix="job")) == 4  # "jobs" too: a prefix, not a separator
        assert store.read(stream_prefix="nothing-") == []
        # A prefix is literal: no LIKE wildcards.
        assert store.read(stream_prefix="job_") == []
        assert store.read(stream_prefix="%") == []

    def test_read_at_gives_the_events_at_positions_in_order(self, store: EventStore) -> None:
        store.append("program-a", [ev(b"1"), ev(b"2"), ev(b"3")], 0)
        store.append("job-1", [ev(b"4"), ev(b"5")], 0)
        every = store.read()
        assert store.read_at([5, 1, 3, 3]) == [every[0], every[2], every[4]]
        assert store.read_at([0, 2, 6, 99]) == [every[1]]  # positions the log has not: left out
        assert store.read_at([]) == []

    def test_event_sizes_measure_what_read_returns(self, store: EventStore) -> None:
        store.append("program-a", [ev(b"x" * 100), ev(b"")], 0, actor="alice")
        store.append("job-1", [ev(b"y" * 10)], 0)
        sizes, events = store.event_sizes(), store.read()
        assert [s.position for s in sizes] == [1, 2, 3]
        assert [s.payload_bytes for s in sizes] == [100, 0, 10]
        for size, event in zip(sizes, events, strict=True):
            envelope = len(event.stream) + len(event.event_id) + len(event.type) + len(event.actor) + 32
            assert size.other_bytes == envelope and size.total == size.payload_bytes + envelope
        assert [s.position for s in store.event_sizes(after_position=1, limit=1)] == [2]
        assert [s.position for s in store.event_sizes(stream_prefix="job-")] == [3]

    def test_read_page_stops_before_its_byte_budget(self, store: EventStore) -> None:
        for _ in range(6):
            store.append("s", [ev(b"x" * 1000)], ANY)
        each = store.event_sizes(limit=1)[0].total  # every event here has the same size
        assert [e.position for e in store.read_page(0, max_events=10, max_bytes=2 * each + each // 2)] == [
            1,
            2,
        ]
        assert [e.position for e in store.read_page(0, max_events=3, max_bytes=100 * each)] == [1, 2, 3]
        # the first event comes back whatever its size: a reader always makes progress
        assert [e.position for e in store.read_page(2, max_events=10, max_bytes=1)] == [3]
        by_payload = store.read_page(0, max_events=10, max_bytes=3000, cost=lambda size: size.payload_bytes)
        assert [e.position for e in by_payload] == [1, 2, 3]
        assert store.read_page(0, max_events=10, max_bytes=10 * each) == store.read()
        assert store.read_page(6, max_events=10, max_bytes=each) == []
