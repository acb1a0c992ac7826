"""Catch-up subscriptions (threads and asyncio), wait_for, and closing under subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from dspyops.eventlog import EventStore, StoredEvent, StoreUnavailable
from tests.eventlog.contract.base import ContractBase, StoreFactory, WriterPool, ev, fill
from tests.eventlog.workers import check_log, process_writer, write_batches


class SubscriptionContract(ContractBase):
    @contextlib.contextmanager
    def _writers(
        self, store: EventStore, store_url: str, writer_pool: WriterPool
    ) -> Iterator[tuple[Callable[[], None], dict[tuple[str, int], int]]]:
        """Two threads and one foreign writer (another process where the backend allows it)
        appending, all started together.

        Yields (join, expected batches); join() waits for every writer and re-raises failures.
        """
        streams = ["job-1", "program-a", "deployment-web"]
        pool, barrier = writer_pool
        gate = barrier(3)
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
        self, store_url: str, make_store: StoreFactory, writer_pool: WriterPool
    ) -> None:
        store = make_store()
        fill(store, 25)  # history to catch up on, in several pages
        received: list[StoredEvent] = []
        stop = threading.Event()
        with self._writers(store, store_url, writer_pool) as (join, expected):
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
        self, store_url: str, make_store: StoreFactory, writer_pool: WriterPool
    ) -> None:
        store = make_store()
        fill(store, 25)

        async def main() -> tuple[list[StoredEvent], dict[tuple[str, int], int]]:
            received: list[StoredEvent] = []
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while ticks <= 10:  # enough to tell; then it stops taking turns
                    await asyncio.sleep(0)  # one tick per turn of the loop
                    ticks += 1

            tick_task = asyncio.create_task(ticker())
            with self._writers(store, store_url, writer_pool) as (join, expected):
                total = 25 + sum(expected.values())
                async with asyncio.timeout(60):
                    async for event in store.asubscribe(0, page_size=7):
                        received.append(event)
                        if len(received) == total:
                            break
                # The loop kept turning while the subscription read and waited: each of its
                # 40-odd pages is read in a worker thread, a turn at which the ticker runs.
                # (Counting turns, not milliseconds: an in-memory log catches up within a few.)
                assert ticks > 10
                await asyncio.to_thread(join)
            tick_task.cancel()
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
