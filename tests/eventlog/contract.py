"""The behaviour every EventStore backend must have, as an abstract test suite.

A backend's test module subclasses ``EventStoreContract`` and provides the fixtures marked
"backend hook" (the pattern of the eventsourcing library's abstract recorder tests). The class
name does not start with "Test", so pytest only runs it through those subclasses.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dspyops.eventlog import (
    ANY,
    LINK_V1,
    LINK_V2,
    LINK_V2_KEYED,
    ChainKeyRequired,
    DuplicateEventId,
    EventStore,
    NewEvent,
    StoredEvent,
    StoreUnavailable,
    WriterLocked,
    WrongExpectedVersion,
    link_v2,
    open_store,
)
from dspyops.eventlog.hashchain import GENESIS, micros

from .workers import EVENT_TYPE, ack_forever, check_log, process_writer, tagged_batch, write_batches

StoreFactory = Callable[[], EventStore]
Tamper = Callable[[int, str, object], None]
RewriteAsV1 = Callable[[], None]

CHAIN_KEY = b"contract-suite-chain-key-32bytes"

SPAWN = multiprocessing.get_context("spawn")


def ev(payload: bytes = b"p", type: str = "dspyops.v1.Test", event_id: str | None = None) -> NewEvent:
    return NewEvent(type, payload) if event_id is None else NewEvent(type, payload, event_id)


def fill(store: EventStore, n: int, stream: str = "fill") -> None:
    for i in range(n):
        store.append(stream, tagged_batch("fill", i, 1), ANY)


class EventStoreContract:
    # -- backend hooks ------------------------------------------------------------------------

    @pytest.fixture
    def store_url(self) -> str:
        """Backend hook: a URL for open_store naming a fresh, empty store for this test."""
        raise NotImplementedError

    @pytest.fixture
    def new_empty_store(self) -> Iterator[StoreFactory]:
        """Backend hook: each call returns a store on its own fresh, empty storage."""
        raise NotImplementedError

    @pytest.fixture
    def make_readonly_store(self, store_url: str) -> StoreFactory:
        """Backend hook: opens the store at store_url so that writes fail as on read-only media."""
        raise NotImplementedError

    @pytest.fixture
    def tamper(self, store_url: str) -> Tamper:
        """Backend hook: tamper(position, column, value) rewrites one stored column behind the
        store's back, as an attacker with file access would."""
        raise NotImplementedError

    @pytest.fixture
    def rewrite_as_v1(self, store_url: str) -> RewriteAsV1:
        """Backend hook: rewrite_as_v1() turns every stored link into a chain v1 link (link
        version 1), as a log written before chain v2 holds them."""
        raise NotImplementedError

    # -- shared fixtures ----------------------------------------------------------------------

    @pytest.fixture
    def make_store(self, store_url: str) -> Iterator[StoreFactory]:
        opened: list[EventStore] = []

        def make() -> EventStore:
            store = open_store(store_url)
            opened.append(store)
            return store

        yield make
        for store in opened:
            store.close()

    @pytest.fixture
    def store(self, make_store: StoreFactory) -> EventStore:
        return make_store()

    @pytest.fixture
    def make_keyed_store(self, store_url: str) -> Iterator[Callable[[bytes], EventStore]]:
        opened: list[EventStore] = []

        def make(key: bytes = CHAIN_KEY) -> EventStore:
            store = open_store(store_url, chain_key=key)
            opened.append(store)
            return store

        yield make
        for store in opened:
            store.close()

    # -- basics -------------------------------------------------------------------------------

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

    # -- optimistic concurrency ---------------------------------------------------------------

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

    # -- idempotency --------------------------------------------------------------------------

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

    # -- many writers -------------------------------------------------------------------------

    def test_racing_writers_exactly_one_wins(self, make_store: StoreFactory) -> None:
        """All threads read version 0, then all append expecting it: one wins, the rest get a
        WrongExpectedVersion naming the winner's version."""
        store = make_store()
        n = 8
        barrier = threading.Barrier(n)
        outcomes: list[object] = [None] * n

        def racer(i: int) -> None:
            version = store.stream_version("deployment-web")
            barrier.wait()
            try:
                outcomes[i] = store.append("deployment-web", tagged_batch(str(i), 0, 2), version)
            except WrongExpectedVersion as exc:
                outcomes[i] = exc

        threads = [threading.Thread(target=racer, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        winners = [o for o in outcomes if not isinstance(o, WrongExpectedVersion)]
        losers = [o for o in outcomes if isinstance(o, WrongExpectedVersion)]
        assert len(winners) == 1 and len(losers) == n - 1, outcomes
        assert all((e.expected, e.actual) == (0, 2) for e in losers)
        assert store.head() == 2

    def test_threads_appending_concurrently(self, make_store: StoreFactory) -> None:
        threads_n, batches, size = 8, 12, 3
        streams = ["program-a", "program-b", "deployment-web"]
        stores = [make_store(), make_store()]  # two instances in one process, too
        conflicts = [0] * threads_n
        errors: list[BaseException] = []

        def worker(i: int) -> None:
            try:
                conflicts[i] = write_batches(stores[i % 2], f"t{i}", streams, batches, size)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        events = stores[0].read(limit=10_000)
        check_log(events, {(f"t{i}", b): size for i in range(threads_n) for b in range(batches)})
        assert stores[1].verify().ok

    def test_processes_appending_concurrently(self, store_url: str, make_store: StoreFactory) -> None:
        store = make_store()  # create the storage before the children race to open it
        procs, threads_n, batches, size = 2, 2, 40, 2
        streams = ["program-a", "program-b"]
        conflicts: list[int] = []
        with SPAWN.Manager() as manager, ProcessPoolExecutor(procs, mp_context=SPAWN) as pool:
            gate = manager.Barrier(procs + threads_n)
            futures = [
                pool.submit(process_writer, store_url, f"p{i}", streams, batches, size, gate)
                for i in range(procs)
            ]
            # Threads of this process join the race while the children run.
            threads = [
                threading.Thread(
                    target=lambda i=i: conflicts.append(
                        write_batches(store, f"t{i}", streams, batches, size, gate)
                    )
                )
                for i in range(threads_n)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            # result() re-raises anything but WrongExpectedVersion from a child.
            conflicts += [f.result(timeout=60) for f in futures]
        assert len(conflicts) == procs + threads_n
        writers = [f"p{i}" for i in range(procs)] + [f"t{i}" for i in range(threads_n)]
        check_log(store.read(limit=10_000), {(w, b): size for w in writers for b in range(batches)})
        assert store.verify().ok

    def test_acknowledged_appends_survive_kill_9(self, store_url: str, make_store: StoreFactory) -> None:
        make_store()
        parent_end, child_end = SPAWN.Pipe(duplex=False)
        child = SPAWN.Process(target=ack_forever, args=(store_url, child_end), daemon=True)
        child.start()
        acked: list[int] = []
        try:
            while len(acked) < 30:
                assert parent_end.poll(30), "the writer process stopped acknowledging"
                acked.append(parent_end.recv())
        finally:
            assert child.pid is not None
            os.kill(child.pid, signal.SIGKILL)
            child.join(10)
        assert child.exitcode == -signal.SIGKILL
        reopened = make_store()
        events = reopened.read(limit=10_000)
        assert [e.position for e in events] == list(range(1, len(events) + 1))
        assert set(acked) <= {e.position for e in events}
        assert reopened.verify().ok
        # The store is writable again: the killed writer left no lock behind.
        assert reopened.append("after-crash", [ev()], 0).last_position == len(events) + 1

    # -- subscriptions ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writers(
        self, store: EventStore, store_url: str
    ) -> Iterator[tuple[Callable[[], None], dict[tuple[str, int], int]]]:
        """Two threads and one other process appending, all started together.

        Yields (join, expected batches); join() waits for every writer and re-raises failures.
        """
        streams = ["job-1", "program-a", "deployment-web"]
        with SPAWN.Manager() as manager, ProcessPoolExecutor(1, mp_context=SPAWN) as pool:
            gate = manager.Barrier(3)
            future = pool.submit(process_writer, store_url, "p0", streams, 30, 3, gate)
            threads = [
                threading.Thread(target=write_batches, args=(store, f"t{i}", streams, 30, 2, gate))
                for i in range(2)
            ]
            for t in threads:
                t.start()
            expected = {(f"t{i}", b): 2 for i in range(2) for b in range(30)}
            expected |= {("p0", b): 3 for b in range(30)}

            def join() -> None:
                for t in threads:
                    t.join(60)
                future.result(timeout=60)

            yield join, expected

    def test_subscription_sees_every_event_once_in_order(
        self, store_url: str, make_store: StoreFactory
    ) -> None:
        store = make_store()
        fill(store, 25)  # history to catch up on, in several pages
        received: list[StoredEvent] = []
        stop = threading.Event()
        with self._writers(store, store_url) as (join, expected):
            total = 25 + sum(expected.values())

            def consume() -> None:
                for event in store.subscribe(0, stop=stop, page_size=7):
                    received.append(event)
                    if len(received) == total:
                        return

            consumer = threading.Thread(target=consume)
            consumer.start()
            join()
            consumer.join(30)
            stop.set()
            assert not consumer.is_alive(), f"subscription stalled after {len(received)} of {total}"

        assert [e.position for e in received] == list(range(1, total + 1))
        assert received == store.read(limit=10_000)
        check_log(received, expected | {("fill", i): 1 for i in range(25)})

    def test_async_subscription_sees_every_event_once_in_order(
        self, store_url: str, make_store: StoreFactory
    ) -> None:
        store = make_store()
        fill(store, 25)

        async def main() -> tuple[list[StoredEvent], dict[tuple[str, int], int]]:
            received: list[StoredEvent] = []
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.001)
                    ticks += 1

            tick_task = asyncio.create_task(ticker())
            with self._writers(store, store_url) as (join, expected):
                total = 25 + sum(expected.values())
                async with asyncio.timeout(60):
                    async for event in store.asubscribe(0, page_size=7):
                        received.append(event)
                        if len(received) == total:
                            break
                await asyncio.to_thread(join)
            tick_task.cancel()
            # The loop kept running while the subscription read and waited.
            assert ticks > 10
            return received, expected

        received, expected = asyncio.run(main())
        assert [e.position for e in received] == list(range(1, len(received) + 1))
        assert received == store.read(limit=10_000)
        check_log(received, expected | {("fill", i): 1 for i in range(25)})

    def test_subscription_from_a_position_and_stop(self, store: EventStore) -> None:
        fill(store, 5)
        stop = threading.Event()
        it = store.subscribe(3, stop=stop)
        assert [next(it).position, next(it).position] == [4, 5]
        stop.set()
        assert list(it) == []

    def test_live_subscriber_wakes_promptly_on_local_append(self, store: EventStore) -> None:
        stop = threading.Event()
        got: list[int] = []

        def consume() -> None:
            # A poll interval longer than the test: only the in-process wake-up delivers it.
            for event in store.subscribe(0, stop=stop, poll_interval=3600.0):
                got.append(event.position)
                return

        consumer = threading.Thread(target=consume)
        consumer.start()
        time.sleep(0.2)  # let it catch up and start waiting
        store.append("s", [ev()], 0)
        consumer.join(60)
        stop.set()
        assert got == [1]

    def test_close_ends_subscriptions(self, make_store: StoreFactory) -> None:
        store = make_store()
        fill(store, 2)
        received: list[int] = []
        consumer = threading.Thread(target=lambda: received.extend(e.position for e in store.subscribe(0)))
        consumer.start()
        time.sleep(0.2)
        store.close()
        consumer.join(5)
        assert not consumer.is_alive()
        assert received == [1, 2]
        with pytest.raises(StoreUnavailable, match="closed"):
            store.head()

    def test_close_while_other_threads_are_busy(self, make_store: StoreFactory) -> None:
        """close() racing with reads, verify and subscriptions in other threads: every thread
        ends with its results or StoreUnavailable. (Closing a SQLite connection under a running
        statement used to crash the interpreter here.)"""
        fill(make_store(), 20)
        for round_ in range(30):
            self._close_under_load(make_store(), delay=0.001 * (round_ % 4))

    @staticmethod
    def _close_under_load(store: EventStore, delay: float) -> None:
        failures: list[BaseException] = []

        def busy(work: Callable[[], object]) -> None:
            try:
                while not store.closed:  # a subscription just ends when the store closes
                    work()
            except StoreUnavailable:
                pass
            except BaseException as exc:
                failures.append(exc)

        def tail() -> None:
            for _ in store.subscribe(0, poll_interval=0.0005, page_size=3):
                pass

        threads = [
            threading.Thread(target=busy, args=(lambda: store.read(limit=20),)),
            threading.Thread(target=busy, args=(store.verify,)),
            threading.Thread(target=busy, args=(tail,)),
        ]
        for t in threads:
            t.start()
        time.sleep(delay)
        store.close()
        for t in threads:
            t.join(10)
        assert not any(t.is_alive() for t in threads)
        assert not failures, failures

    def test_cancelling_an_async_subscriber_ends_it_cleanly(self, store: EventStore) -> None:
        fill(store, 3)

        async def main() -> list[int]:
            seen: list[int] = []

            async def consume() -> None:
                async for event in store.asubscribe(0):
                    seen.append(event.position)

            task = asyncio.create_task(consume())
            async with asyncio.timeout(10):
                while len(seen) < 3:
                    await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # After cancellation nothing more arrives, and the store no longer wakes it.
            store.append("after", [ev()], 0)
            await asyncio.sleep(0.1)
            return seen

        assert asyncio.run(main()) == [1, 2, 3]
        assert store.head() == 4
        assert not store._appended._async_waiters  # the cancelled subscriber unregistered

    def test_wait_for(self, store: EventStore) -> None:
        assert store.wait_for(0, timeout=0)
        assert not store.wait_for(1, timeout=0.2)  # nothing came: it gives up
        # returns once the append is visible, long before its own hour-long timeout (a waiter
        # that missed it would still be waiting when the join below gives up)
        result: list[bool] = []
        waiter = threading.Thread(target=lambda: result.append(store.wait_for(2, timeout=3600)))
        waiter.start()
        store.append("s", [ev(), ev()], 0)
        waiter.join(60)
        assert result == [True]

    # -- integrity ----------------------------------------------------------------------------

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

    # -- chain v1 logs and keyed chains --------------------------------------------------------

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

    # -- one writer ------------------------------------------------------------------------------

    def test_one_writer_lease_at_a_time(self, make_store: StoreFactory) -> None:
        first, second = make_store(), make_store()
        lease = first.writer_lock()
        with pytest.raises(WriterLocked) as info:
            second.writer_lock()
        assert info.value.holder_pid == os.getpid()
        assert str(os.getpid()) in str(info.value)
        lease.release()
        lease.release()  # idempotent
        with second.writer_lock():
            with pytest.raises(WriterLocked):
                first.writer_lock()
        first.writer_lock().release()

    def test_verify_detects_a_moved_or_missing_position(self, store: EventStore, tamper: Tamper) -> None:
        fill(store, 10)
        tamper(4, "position", 400)
        result = store.verify()
        assert not result.ok and result.first_broken_position == 4
        assert "missing" in result.reason

    # -- unavailable storage ------------------------------------------------------------------

    def test_read_only_storage(self, store: EventStore, make_readonly_store: StoreFactory) -> None:
        fill(store, 3)
        readonly = make_readonly_store()
        with pytest.raises(StoreUnavailable, match=r"(?i)read.?only"):
            readonly.append("s", [ev()], ANY)
        # Still fully readable after the failed write, and nothing was written.
        assert readonly.head() == 3
        assert readonly.read() == store.read()
        assert readonly.verify().ok
        with pytest.raises(StoreUnavailable):
            readonly.append("s", [ev()], ANY)
        assert store.head() == 3

    # -- properties ---------------------------------------------------------------------------

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
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


def link_of(event: StoredEvent, prev_hash: bytes) -> bytes:
    return link_v2(
        prev_hash,
        event.position,
        event.stream,
        event.version,
        event.event_id,
        event.type,
        micros(event.recorded_at),
        event.actor,
        event.payload,
    )


def replace_actor(event: StoredEvent, actor: str) -> StoredEvent:
    from dataclasses import replace

    return replace(event, actor=actor)
